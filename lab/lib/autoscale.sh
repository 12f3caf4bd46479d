# lib/autoscale.sh -- metrics-server and KEDA (operator + metrics adapter) for the Kubernetes v1.34 lab
# cluster (lib/k134.sh), as host processes with client certificates of the k134 CA. Built from the Go
# module proxy and cached. `up.sh autoscale` (implies k134 and prometheus), `down.sh autoscale`,
# `smoke-autoscale.sh` (also run by smoke-k134.sh when they are up). Facts: notes/autoscaling-on-the-1.34-lab.md.
#
# How the apiserver reaches them: the aggregator (kube-apiserver --enable-aggregator-routing) dials an
# extension API server at the endpoint of its Service, which it reads from EndpointSlices. Pods cannot
# reach this apiserver and endpoints may not be loopback, so each server listens on the node IP and is
# registered as a selectorless Service + a hand-written EndpointSlice + an APIService whose caBundle is
# the k134 CA. The iptables chain LAB-AUTOSCALE accepts their ports from this machine only.
# shellcheck shell=bash

AS_MS_VERSION=v0.9.1            # sigs.k8s.io/metrics-server: newest on the proxy; go.mod: go 1.26.10, k8s.io/* v0.36.5
AS_KEDA_VERSION=v2.19.0         # github.com/kedacore/keda/v2 (issue 23); go.mod: go 1.25.6, k8s.io/* v0.34.3
AS_GO_TOOLCHAIN=go1.26.10       # metrics-server v0.9.1 needs go >= 1.26.10; both are built with it (GOTOOLCHAIN, from the Go proxy)
AS_BUILD_REV=1                  # bump when the build recipe changes

# ---- layout: caches (kept by `down.sh --purge`) and state
AS_BIN=$BIN/autoscale           # binaries + the upstream RBAC/CRD manifests rendered from the modules (cache)
AS_BUILD=$BUILD/autoscale       # module copies (cache)
AS_GOC=$CACHE/go-autoscale      # GOMODCACHE (mod: also the go1.26.10 toolchain) and GOCACHE (build, emptied after a build) (cache)
AS=$K134/autoscale              # state: KEDA's cert dir, its CA dir, the registration manifest
AS_BINS="metrics-server keda-operator keda-adapter"
AS_KEDA_CRDS="scaledobjects.keda.sh scaledjobs.keda.sh triggerauthentications.keda.sh clustertriggerauthentications.keda.sh
  cloudeventsources.eventing.keda.sh clustercloudeventsources.eventing.keda.sh"

# ---- addresses (none used by the v1.20 lab or lib/k134.sh)
AS_MS_PORT=10460                # metrics-server, https on the node IP (the aggregator dials it there)
AS_KEDA_PORT=10461              # KEDA metrics adapter, https on the node IP
AS_KEDA_OP_METRICS=10462 AS_KEDA_OP_HEALTH=10463 AS_KEDA_GRPC=10464   # KEDA operator, 127.0.0.1
AS_KEDA_ADAPTER_METRICS=10465   # the adapter's own /metrics, plain HTTP on all addresses (its --port takes no address; guarded)
AS_DAEMONS="k134-metrics-server k134-keda-operator k134-keda-adapter"
# client identities: certificates whose CN is the upstream manifests' ServiceAccount user name, so the
# upstream RBAC (rendered from the modules) applies unchanged
AS_MS_USER=system:serviceaccount:kube-system:metrics-server
AS_KEDA_USER=system:serviceaccount:keda:keda-operator

# ------------------------------------------------------------------------------------------ build
as_src() { echo "$AS_BUILD/$1"; }   # metrics-server-v0.9.1, keda-v2.19.0

as_stamp() { echo "$AS_BUILD_REV ms-$AS_MS_VERSION keda-$AS_KEDA_VERSION $AS_GO_TOOLCHAIN"; }
as_have_binaries() {
  local b v
  for b in $AS_BINS; do [ -x "$AS_BIN/$b" ] || return 1; done
  [ -s "$AS_BIN/metrics-server-rbac.yaml" ] && [ -s "$AS_BIN/keda-rbac-crds.yaml" ] || return 1
  [ "$(cat "$AS_BIN/.stamp" 2>/dev/null)" = "$(as_stamp)" ] || return 1
  v=$("$AS_BIN/metrics-server" --version 2>/dev/null) || return 1; [ "$v" = "$AS_MS_VERSION" ] || return 1
  # the main package in each one's embedded build info (the version itself: the stamp; KEDA has no --version)
  grep -aqF $'path\tgithub.com/kedacore/keda/v2/cmd/operator' "$AS_BIN/keda-operator" &&
    grep -aqF $'path\tgithub.com/kedacore/keda/v2/cmd/adapter' "$AS_BIN/keda-adapter"
}

# as_module MODULE@VERSION DEST: a writable copy of the module as the proxy ships it (no vendor/, no go.work).
# KEDA's go.mod has replace directives (version pins only), so `go install ...@version` refuses it;
# `go build` inside a copy uses them as they are.
as_module() {
  local dir
  [ -s "$2/go.mod" ] && return 0
  dir=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || true
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $1 failed"
  rm -rf "$2" "$2.tmp"; mkdir -p "$(dirname "$2")"
  cp -r "$dir" "$2.tmp" && chmod -R u+w "$2.tmp" || die "copying $1 failed"
  grep -E '^replace|=>' "$2.tmp/go.mod" | grep -qE '=> \.{1,2}/' && die "$1: go.mod replaces with local paths"
  (cd "$2.tmp" && go mod download) || die "go mod download of the dependencies of $1 failed"
  mv "$2.tmp" "$2"
}

# as_pick KIND... < multi-document YAML (kubectl kustomize output): only the documents of those kinds
as_pick() {
  "$PY" -c '
import re, sys
kinds = set(sys.argv[1:])
for doc in re.split(r"(?m)^---\s*$", sys.stdin.read()):
    m = re.search(r"(?m)^kind: (\S+)\s*$", doc)
    if m and m.group(1) in kinds:
        print("---\n" + doc.strip("\n"))
' "$@"
}

as_build() {
  k134_go                       # a go >= 1.26 (installed or fetched), which then runs the pinned toolchain
  export GOMODCACHE=$AS_GOC/mod GOCACHE=$AS_GOC/build GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOWORK=off \
         GOTOOLCHAIN=$AS_GO_TOOLCHAIN   # the golang.org/toolchain module from the Go proxy, checked against sum.golang.org
  mkdir -p "$AS_BIN" "$AS_BUILD" "$AS_GOC"
  if as_have_binaries; then log "autoscale binaries up to date ($(as_stamp))"; return 0; fi
  local t=$SECONDS t0=$SECONDS ms keda LD p kubectl=$K134_BIN/kubectl
  [ -x "$kubectl" ] || die "$kubectl missing (up.sh k134 builds it; used for kubectl kustomize)"
  go version >/dev/null || die "the Go toolchain $AS_GO_TOOLCHAIN could not be fetched from the Go proxy"
  log "Go: $(go version)"
  ms=$(as_src "metrics-server-$AS_MS_VERSION") keda=$(as_src "keda-$AS_KEDA_VERSION")
  as_module "sigs.k8s.io/metrics-server@$AS_MS_VERSION" "$ms"
  as_module "github.com/kedacore/keda/v2@$AS_KEDA_VERSION" "$keda"
  log "sources and their modules in $((SECONDS - t)) s"
  rm -f "$AS_BIN/.stamp"

  # metrics-server: version stamped like its Makefile (PKG k8s.io/client-go/pkg); component-base too
  # (what /version answers). Without it: v0.0.0-master.
  t=$SECONDS; LD="-s -w"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    LD="$LD -X $p.gitVersion=$AS_MS_VERSION -X $p.gitCommit=go-module-proxy -X $p.gitTreeState=clean"
  done
  (cd "$ms" && nice -n 10 go build -trimpath -ldflags "$LD" -o "$AS_BIN/metrics-server" ./cmd/metrics-server) ||
    die "go build metrics-server failed"
  log "built metrics-server $AS_MS_VERSION in $((SECONDS - t)) s"

  # KEDA: operator and metrics adapter (the admission webhooks are not used)
  LD="-s -w -X github.com/kedacore/keda/v2/version.Version=${AS_KEDA_VERSION#v} -X github.com/kedacore/keda/v2/version.GitCommit=go-module-proxy"
  t=$SECONDS
  (cd "$keda" && nice -n 10 go build -trimpath -ldflags "$LD" -o "$AS_BIN/keda-operator" ./cmd/operator) || die "go build keda operator failed"
  log "built keda-operator $AS_KEDA_VERSION in $((SECONDS - t)) s"
  t=$SECONDS
  (cd "$keda" && nice -n 10 go build -trimpath -ldflags "$LD" -o "$AS_BIN/keda-adapter" ./cmd/adapter) || die "go build keda adapter failed"
  log "built keda-adapter $AS_KEDA_VERSION in $((SECONDS - t)) s"

  # the upstream objects the host processes need, rendered from the same modules: RBAC (bound to the
  # ServiceAccounts whose names the lab's client certificates carry) and KEDA's CRDs. Not the
  # Deployments, Services, APIServices or webhooks: up.sh registers the host processes itself.
  "$kubectl" kustomize "$ms/manifests/base" | as_pick ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding \
    > "$AS_BIN/metrics-server-rbac.yaml" || die "kubectl kustomize metrics-server manifests failed"
  "$kubectl" kustomize "$keda/config/default" | as_pick Namespace CustomResourceDefinition ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding \
    > "$AS_BIN/keda-rbac-crds.yaml" || die "kubectl kustomize keda config failed"
  [ "$(grep -c '^kind: CustomResourceDefinition' "$AS_BIN/keda-rbac-crds.yaml")" = 6 ] || die "expected 6 KEDA CRDs"
  as_stamp > "$AS_BIN/.stamp"
  as_have_binaries || die "the built autoscale binaries do not check out (metrics-server --version: $("$AS_BIN/metrics-server" --version 2>&1 | head -1))"
  log "autoscale build done in $((SECONDS - t0)) s ($(du -sh "$AS_BIN" | cut -f1) of binaries)"
  # The build cache (3.8 GB) only pays off when this recipe changes; the module cache (2.4 GB, the
  # toolchain included) is kept, so a rebuild needs no downloads. AS_KEEP_GOCACHE=1 keeps it.
  [ "${AS_KEEP_GOCACHE:-0}" = 1 ] || { go clean -cache && log "Go build cache $GOCACHE emptied (AS_KEEP_GOCACHE=1 keeps it)"; }
}

# ------------------------------------------------------------------------------------------ PKI
# Certificates of the k134 CA (lib/k134.sh k134_cert). Serving certificates carry the Service names the
# aggregator checks (<service>.<namespace>.svc), not the node IP, so they survive an address change.
as_pki() {
  local c
  k134_cert metrics-server /CN=metrics-server "extendedKeyUsage=serverAuth
subjectAltName=DNS:metrics-server.kube-system.svc,DNS:localhost,IP:127.0.0.1"
  # KEDA: one certificate for the adapter's API server and both ends of the operator <-> adapter gRPC
  # link (mutual TLS from the files ca.crt, tls.crt, tls.key of a cert dir, as upstream's kedaorg-certs)
  k134_cert keda /CN=keda "extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:keda-metrics-apiserver.keda.svc,DNS:keda-operator.keda.svc,DNS:keda-operator.keda.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
  # client identities named like the upstream ServiceAccounts: RBAC binds them unchanged
  for c in "metrics-server-client:/O=system:serviceaccounts/O=system:serviceaccounts:kube-system/CN=$AS_MS_USER" \
           "keda-client:/O=system:serviceaccounts/O=system:serviceaccounts:keda/CN=$AS_KEDA_USER"; do
    k134_cert "${c%%:*}" "${c#*:}" extendedKeyUsage=clientAuth
    k134_kubeconfig "${c%%:*}"
  done
  mkdir -p "$AS/keda-certs" "$AS/keda-ca"; chmod 700 "$AS/keda-certs"
  # --ca-dir must hold CA PEMs only (a key in it: "no certs appended"). Copied only when they differ:
  # the adapter watches these files and reloads (and logs errors) when they are replaced.
  as_install 644 "$K134_PKI/ca.crt" "$AS/keda-ca/ca.crt"
  as_install 644 "$K134_PKI/ca.crt" "$AS/keda-certs/ca.crt"
  as_install 644 "$K134_PKI/keda.crt" "$AS/keda-certs/tls.crt"
  as_install 600 "$K134_PKI/keda.key" "$AS/keda-certs/tls.key"
}
as_install() { cmp -s "$2" "$3" || install -m "$1" "$2" "$3"; }

# ------------------------------------------------------------------------------------------ up
# as_guard: the two API servers listen on the node IP (an endpoint may not be loopback) and the
# adapter's plain-HTTP metrics on all addresses (its --port has no address): accept those ports from
# this machine (lo) only, so neither the network nor the pods reach them. Chain LAB-AUTOSCALE.
as_guard() {
  local want="-A LAB-AUTOSCALE -i lo -j RETURN
-A LAB-AUTOSCALE -j DROP" jump="-p tcp -m multiport --dports $AS_MS_PORT,$AS_KEDA_PORT,$AS_KEDA_ADAPTER_METRICS -j LAB-AUTOSCALE"
  if [ "$(iptables -S LAB-AUTOSCALE 2>/dev/null | grep '^-A')" != "$want" ]; then
    printf '*filter\n:LAB-AUTOSCALE - [0:0]\n%s\nCOMMIT\n' "$want" | iptables-restore --noflush || die "iptables-restore of LAB-AUTOSCALE failed"
  fi
  # shellcheck disable=SC2086
  iptables -C INPUT $jump 2>/dev/null || iptables -I INPUT 1 $jump
}

# as_daemon NAME CMD...: daemon, restarted when its command line (or the binaries' stamp) changed
as_daemon() {
  local n=$1 want; shift
  want="$(cat "$AS_BIN/.stamp") $*"
  if alive "$n" && [ "$(cat "$AS/$n.cmd" 2>/dev/null)" != "$want" ]; then log "$n: command or binary changed"; stop "$n"; fi
  alive "$n" || printf '%s\n' "$want" > "$AS/$n.cmd"
  daemon "$n" "$@"
}

# the apiserver's view: APIService NAME Available
as_available() { [ "$(k134_kc get apiservice "$1" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ]; }
# an extension API server's /livez, checked against the CA under the name the aggregator uses
as_livez() { curl -fsS -m 3 --cacert "$K134_PKI/ca.crt" --resolve "$1:$2:$(k134_node_ip)" "https://$1:$2/livez"; }

# as_registration: what makes the apiserver proxy to the host processes (regenerated on every up:
# the node IP may change). Labelled, so that only the lab's own APIServices are ever deleted.
as_registration() {
  local ip ca; ip=$(k134_node_ip); ca=$(base64 -w0 "$K134_PKI/ca.crt")
  local L='lab.modelship.dev/component: autoscale'
  local svc ns port api group
  for svc in metrics-server:kube-system:$AS_MS_PORT:v1beta1.metrics.k8s.io keda-metrics-apiserver:keda:$AS_KEDA_PORT:v1beta1.external.metrics.k8s.io; do
    IFS=: read -r svc ns port api <<< "$svc"; group=${api#v1beta1.}
    cat <<EOK
---
apiVersion: v1
kind: Service
metadata: { name: $svc, namespace: $ns, labels: { $L } }
spec:
  ports: [{ name: https, port: 443, targetPort: $port, protocol: TCP }]
---
# selectorless Service: its endpoint is the host process on the node IP (no controller touches this slice)
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $svc-host
  namespace: $ns
  labels: { kubernetes.io/service-name: $svc, endpointslice.kubernetes.io/managed-by: lab.modelship.dev, $L }
addressType: IPv4
ports: [{ name: https, port: $port, protocol: TCP }]
endpoints: [{ addresses: ["$ip"], conditions: { ready: true } }]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: { name: $api, labels: { $L } }
spec:
  service: { name: $svc, namespace: $ns, port: 443 }
  group: $group
  version: v1beta1
  caBundle: $ca
  groupPriorityMinimum: 100
  versionPriority: 100
EOK
  done
}

as_apply() { # FILE...: server-side apply (KEDA's scaledjobs CRD is too large for client-side apply's annotation)
  local f args=()
  for f in "$@"; do args+=(-f "$f"); done
  k134_kc apply --server-side --force-conflicts --field-manager=lab-autoscale "${args[@]}" >/dev/null
}

as_up() {
  local t=$SECONDS ip kc_ms=$K134_PKI/metrics-server-client.kubeconfig kc_keda=$K134_PKI/keda-client.kubeconfig
  k134_api_get /readyz >/dev/null || die "the k134 apiserver is not ready (up.sh k134)"
  as_have_binaries || die "autoscale binaries missing or stale (as_build)"
  ip=$(k134_node_ip)
  mkdir -p "$AS"
  as_pki
  as_guard
  # upstream RBAC (+ KEDA's namespace and CRDs) first: the operator exits when its CRDs are missing
  as_apply "$AS_BIN/metrics-server-rbac.yaml" "$AS_BIN/keda-rbac-crds.yaml" || die "applying the upstream RBAC/CRDs failed"
  k134_kc wait --for=condition=Established --timeout=60s $(printf 'crd/%s ' $AS_KEDA_CRDS) >/dev/null ||
    die "KEDA's CRDs are not Established"
  need_ports k134-metrics-server $AS_MS_PORT
  need_ports k134-keda-operator $AS_KEDA_OP_METRICS $AS_KEDA_OP_HEALTH $AS_KEDA_GRPC
  need_ports k134-keda-adapter $AS_KEDA_PORT $AS_KEDA_ADAPTER_METRICS
  # metrics-server: kubelets by node name (realnode, realnode2 -> 127.0.0.1 via /etc/hosts; their serving
  # certs are for those names) at the port in the node status (10450, 10452), verified against the
  # k134 CA; real nodes only (the hollow node's kubelet has no stats and a self-signed cert).
  as_daemon k134-metrics-server "$AS_BIN/metrics-server" --kubeconfig="$kc_ms" \
    --authentication-kubeconfig="$kc_ms" --authorization-kubeconfig="$kc_ms" \
    --bind-address="$ip" --secure-port=$AS_MS_PORT --cert-dir="$AS/metrics-server-certs" \
    --tls-cert-file="$K134_PKI/metrics-server.crt" --tls-private-key-file="$K134_PKI/metrics-server.key" \
    --kubelet-certificate-authority="$K134_PKI/ca.crt" --kubelet-preferred-address-types=Hostname \
    --kubelet-use-node-status-port --node-selector=realnode=true --metric-resolution=10s --kubelet-request-timeout=5s
  # KEDA: outside a pod it needs KEDA_CLUSTER_OBJECT_NAMESPACE (else it reads the ServiceAccount
  # namespace file); client config from KUBECONFIG; no cert rotation (the files in keda-certs are used).
  as_daemon k134-keda-operator env KUBECONFIG="$kc_keda" POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda WATCH_NAMESPACE= \
    "$AS_BIN/keda-operator" --leader-elect=false --zap-encoder=console --zap-log-level=info \
    --metrics-bind-address=127.0.0.1:$AS_KEDA_OP_METRICS --health-probe-bind-address=127.0.0.1:$AS_KEDA_OP_HEALTH \
    --metrics-service-bind-address=127.0.0.1:$AS_KEDA_GRPC --cert-dir="$AS/keda-certs" --enable-cert-rotation=false \
    --ca-dir="$AS/keda-ca"
  as_daemon k134-keda-adapter env KUBECONFIG="$kc_keda" POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda WATCH_NAMESPACE= \
    "$AS_BIN/keda-adapter" --secure-port=$AS_KEDA_PORT --bind-address="$ip" --port=$AS_KEDA_ADAPTER_METRICS \
    --tls-cert-file="$AS/keda-certs/tls.crt" --tls-private-key-file="$AS/keda-certs/tls.key" --cert-dir="$AS/keda-certs" \
    --client-ca-file="$K134_PKI/ca.crt" --lister-kubeconfig="$kc_keda" \
    --authentication-kubeconfig="$kc_keda" --authorization-kubeconfig="$kc_keda" \
    --metrics-service-address=127.0.0.1:$AS_KEDA_GRPC
  wait_for k134-metrics-server 60 as_livez metrics-server.kube-system.svc $AS_MS_PORT
  wait_for k134-keda-operator 90 curl -fsS -m 3 "http://127.0.0.1:$AS_KEDA_OP_HEALTH/readyz"
  wait_for k134-keda-adapter 90 as_livez keda-metrics-apiserver.keda.svc $AS_KEDA_PORT
  # registered once the servers answer (before that the apiserver logs "failing or missing response")
  as_registration > "$AS/registration.yaml"
  as_apply "$AS/registration.yaml" || die "registering the APIServices failed"
  wait_for k134-metrics-server 60 as_available v1beta1.metrics.k8s.io
  wait_for k134-keda-adapter 60 as_available v1beta1.external.metrics.k8s.io
  k134_env
  log "metrics-server $AS_MS_VERSION and KEDA $AS_KEDA_VERSION up in $((SECONDS - t)) s (APIServices Available)"
}

# as_env: lines for $K134/env.sh (lib/k134.sh k134_env)
as_env() {
  alive k134-metrics-server && echo "export LAB_METRICS_SERVER=1    # metrics-server $AS_MS_VERSION: kubectl top, HPA on cpu/memory (pods on the real nodes)"
  alive k134-keda-operator && alive k134-keda-adapter &&
    echo "export LAB_KEDA=1    # KEDA $AS_KEDA_VERSION (host processes): a prometheus trigger reaches the lab Prometheus at http://$PROMETHEUS_ADDR"
  true
}

# ------------------------------------------------------------------------------------------ down
# as_unregister: delete the lab's APIServices (label-selected). An APIService whose server is gone
# makes discovery fail, and the namespace controller then leaves deleted namespaces Terminating.
as_unregister() {
  local out
  k134_api_get /readyz >/dev/null 2>&1 || return 0
  if out=$(k134_kc delete apiservice -l lab.modelship.dev/component=autoscale --ignore-not-found -o name 2>&1); then
    [ -n "$out" ] && log "unregistered the autoscale APIServices: $(echo $out)"
  else log "WARNING: could not delete the autoscale APIServices: $out"; fi
  return 0
}

as_down() {
  local n any=''
  for n in $AS_DAEMONS; do alive "$n" && any=1; done
  as_unregister
  stop k134-keda-adapter; stop k134-keda-operator; stop k134-metrics-server
  [ -n "$any" ] && alive k134-apiserver && [ -s "$K134/env.sh" ] && k134_env
  return 0
}

# as_host_restore (down.sh --purge): the iptables chain is the only change outside LAB_HOME
as_host_restore() {
  local jump="-p tcp -m multiport --dports $AS_MS_PORT,$AS_KEDA_PORT,$AS_KEDA_ADAPTER_METRICS -j LAB-AUTOSCALE"
  # shellcheck disable=SC2086
  while iptables -D INPUT $jump 2>/dev/null; do :; done
  iptables -F LAB-AUTOSCALE 2>/dev/null; iptables -X LAB-AUTOSCALE 2>/dev/null
  return 0
}
