# lib/k134.sh -- Kubernetes v1.34 BESIDE the v1.20 lab (lib/k8s.sh): its own etcd, control plane,
# containerd instance, real kubelet node "realnode", kube-proxy (nftables mode) and kubemark hollow node
# "localhost", on ports, bridge, CIDRs, cgroup root and state dir of its own. Built from the Go module
# proxy (k8s.io/kubernetes, go.etcd.io/etcd) and cached. `up.sh k134`, `down.sh k134`, `smoke-k134.sh`.
# shellcheck shell=bash

K134_VERSION=v1.34.4          # newest v1.34 patch on the Go module proxy (go list -m -versions k8s.io/kubernetes)
K134_ETCD_VERSION=v3.6.17     # newest etcd 3.6 on the proxy (go.etcd.io/etcd/server/v3)
K134_GO_MIN=1.26              # go.mod: k8s.io/kubernetes v1.34.4 says go 1.24.0, go.etcd.io/etcd/server/v3 v3.6.17 go 1.26.0
K134_GO_TOOLCHAIN=go1.26.8    # fetched from the Go proxy (golang.org/toolchain) when no go >= K134_GO_MIN is installed
K134_BUILD_REV=1              # bump when the build recipe changes
K134_PKGS="containerd runc containernetworking-plugins nftables conntrack iptables util-linux openssl curl gcc libc6-dev python3"

# ---- layout: caches (kept by `down.sh --purge`) and state (under $LAB_HOME/k134)
K134_BIN=$BIN/k134            # binaries (cache)
K134_BUILD=$BUILD/k134        # module copy with the rewritten go.mod, etcd build module, overlays (cache)
K134_GOC=$CACHE/go-k134       # GOCACHE ($K134_GOC/build) and GOMODCACHE ($K134_GOC/mod) (cache)
K134=$LAB_HOME/k134           # state: pki, etcd, containerd, kubelet, CNI, configs, env.sh
K134_PKI=$K134/pki
K134_RUN=$K134/run            # containerd's socket and state (short path: unix sockets)
K134_BINS="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy kubemark etcd etcdctl"

# ---- addresses: none of them is used by the v1.20 lab (2379-2381, 6443, 10250, 10257, 10259,
# 10348-10350, 10356, 18081, cni0, 10.244.0.0/24, 10.0.0.0/24, cgroup /kubepods)
K134_APISERVER=https://127.0.0.1:6444
K134_ETCD_PORTS="2479 2480 2481"        # client, peer, metrics
K134_KCM_PORT=10457 K134_SCHED_PORT=10459
K134_KUBELET_PORT=10450 K134_KUBELET_HEALTHZ=10448
K134_KUBELET2_PORT=10452 K134_KUBELET2_HEALTHZ=10453   # the second real node, realnode2
K134_PROXY_HEALTHZ=10456 K134_PROXY_METRICS=10449
K134_HOLLOW_PORT=10451
K134_PROBE_PORT=18134
K134_SERVICE_CIDR=10.96.0.0/16
K134_POD_CIDR=10.234.0.0/24 K134_CLUSTER_CIDR=10.234.0.0/16
K134_POD_CIDR2=10.234.1.0/24  # realnode2's pods
K134_BRIDGE=k134br0 K134_BRIDGE2=k134br1
K134_CGROUP=k134              # kubelet cgroupRoot /k134 (the v1.20 kubelet owns /kubepods)
K134_CGROUP2=k134b            # realnode2's kubelet: cgroupRoot /k134b
K134_REAL_NODE=realnode K134_HOLLOW_NODE=localhost   # same names as in the v1.20 cluster: tests rely on them
K134_REAL_NODE2=realnode2     # second real node (drain tests): label realnode=true, taints realnode AND realnode2
K134_PAUSE_IMAGE=$REGISTRY/k134/pause:3.10.1          # build/pause/Makefile TAG in v1.34.4
K134_DAEMONS="k134-etcd k134-apiserver k134-controller-manager k134-scheduler k134-containerd k134-kubelet k134-containerd2 k134-kubelet2 k134-proxy k134-probe-server k134-hollow-node k134-pod-sd"

k134_kc() { "$K134_BIN/kubectl" --kubeconfig "$K134_PKI/admin.kubeconfig" "$@"; }
k134_api_get() { curl -fsS -m 5 --cacert "$K134_PKI/ca.crt" --cert "$K134_PKI/admin.crt" --key "$K134_PKI/admin.key" "$K134_APISERVER$1"; }
k134_node_ready() { [ "$(k134_kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }

# ------------------------------------------------------------------------------------------ build
# k134_go: export PATH/GOTOOLCHAIN for a go >= K134_GO_MIN: the one in PATH or /usr/local/go, else the
# toolchain module from the Go proxy (the same zip `GOTOOLCHAIN=auto` fetches), unpacked into the cache.
k134_go() {
  local g v d=$K134_GOC/toolchain/$K134_GO_TOOLCHAIN
  for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go "$d/bin/go"; do
    [ -x "$g" ] || continue
    v=$("$g" env GOVERSION 2>/dev/null) || continue; v=${v#go}
    if [ "$(printf '%s\n%s\n' "$K134_GO_MIN" "$v" | sort -V | head -1)" = "$K134_GO_MIN" ]; then
      export PATH=$(dirname "$g"):$PATH GOTOOLCHAIN=local; return 0
    fi
  done
  log "no go >= $K134_GO_MIN installed: fetching $K134_GO_TOOLCHAIN from the Go module proxy"
  local z=$K134_GOC/toolchain/$K134_GO_TOOLCHAIN.zip
  mkdir -p "$K134_GOC/toolchain"
  curl -fsSL -o "$z" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$K134_GO_TOOLCHAIN.linux-amd64.zip" \
    || die "downloading the Go toolchain $K134_GO_TOOLCHAIN failed"
  rm -rf "$d" "$d.tmp"
  "$PY" - "$z" "$d.tmp" <<'EOP' || die "unpacking $z failed"
import os, sys, zipfile
z, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(z) as f:
    for i in f.infolist():
        parts = i.filename.split('/')                # golang.org/toolchain@v0.0.1-go1.x.linux-amd64/...
        at = next((n for n, x in enumerate(parts) if '@' in x), None)
        name = '/'.join(parts[at + 1:]) if at is not None else ''
        if not name or i.is_dir():
            continue
        p = os.path.join(out, name); os.makedirs(os.path.dirname(p), exist_ok=True)
        with f.open(i) as src, open(p, 'wb') as dst:
            dst.write(src.read())
        os.chmod(p, (i.external_attr >> 16) & 0o777 or 0o644)
EOP
  mv "$d.tmp" "$d"; rm -f "$z"
  "$d/bin/go" version >/dev/null || die "the fetched Go toolchain does not run"
  export PATH=$d/bin:$PATH GOTOOLCHAIN=local
}

k134_src() { echo "$K134_BUILD/kubernetes-$K134_VERSION"; }

k134_fetch_source() {
  # The module zip of k8s.io/kubernetes is the full tree, but its go.mod replaces the 31 k8s.io/*
  # staging modules with ./staging/src/k8s.io/... directories the zip does not carry, and its go.work
  # lists them too ("cannot load module staging/src/... listed in go.work file"). Point the replaces at
  # the published k8s.io/* v0.34.x modules of the same release, drop go.work and the OWNERS-only vendor/.
  local dir src; src=$(k134_src)
  dir=$(go mod download -json "k8s.io/kubernetes@$K134_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || true
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download k8s.io/kubernetes@$K134_VERSION failed"
  rm -rf "$src" "$src.tmp"; mkdir -p "$K134_BUILD"
  cp -r "$dir" "$src.tmp" && chmod -R u+w "$src.tmp" || die "copying the module failed"
  rm -rf "$src.tmp/vendor" "$src.tmp/go.work" "$src.tmp/go.work.sum"
  local staging="v0.${K134_VERSION#v1.}"
  sed -i -E "s#^(\s*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+\$#\1\2 => \2 $staging#" "$src.tmp/go.mod"
  grep -q '=> \./staging' "$src.tmp/go.mod" && die "go.mod still has ./staging replaces"
  (cd "$src.tmp" && go mod download) || die "go mod download of the dependencies failed"
  mv "$src.tmp" "$src"
  log "source: k8s.io/kubernetes@$K134_VERSION, $(grep -c "=> k8s.io/.* $staging\$" "$src/go.mod") staging replaces -> $staging"
}

# k134_have_binaries: every binary present, reporting the pinned versions, built by this recipe
k134_stamp() {
  echo "$K134_BUILD_REV $K134_VERSION etcd-$K134_ETCD_VERSION $(sha256sum < "$LAB_DIR/lib/overlay-k134.py" | cut -c1-16) $(go env GOVERSION)"
}
k134_have_binaries() {
  local b v
  for b in $K134_BINS; do [ -x "$K134_BIN/$b" ] || return 1; done
  [ "$(cat "$K134_BIN/.stamp" 2>/dev/null)" = "$(k134_stamp)" ] || return 1
  # (outputs captured first: `cmd | grep -q` fails under pipefail when grep exits before cmd is done)
  for b in kube-apiserver kubelet; do
    v=$("$K134_BIN/$b" --version 2>/dev/null) || return 1; [ "$v" = "Kubernetes $K134_VERSION" ] || return 1
  done
  v=$("$K134_BIN/kubectl" version --client 2>/dev/null) || return 1; [[ $v == *"Client Version: $K134_VERSION"* ]] || return 1
  v=$("$K134_BIN/etcd" --version 2>/dev/null) || return 1; [[ $v == *"etcd Version: ${K134_ETCD_VERSION#v}"* ]] || return 1
  grep -aq KUBELET_DEVICE_PLUGIN_DIR "$K134_BIN/kubelet" && grep -aq HOLLOW_PROBE_HOST "$K134_BIN/kubemark"
}

k134_build() {
  k134_go
  export GOMODCACHE=$K134_GOC/mod GOCACHE=$K134_GOC/build GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOWORK=off
  mkdir -p "$K134_BIN" "$K134_BUILD" "$K134_GOC"
  if k134_have_binaries; then log "k134 binaries up to date ($(k134_stamp))"; return 0; fi
  local t=$SECONDS t0=$SECONDS src stamp; src=$(k134_src); stamp=$(k134_stamp)
  [ -s "$src/go.mod" ] || { k134_fetch_source; log "source fetched and prepared in $((SECONDS - t)) s"; }
  cd "$src" || die "no source tree at $src"
  "$PY" "$LAB_DIR/lib/overlay-k134.py" "$src" "$K134_BUILD/overlay" >/dev/null || die "overlay-k134.py failed"
  # version stamped like a release build (hack/lib/version.sh), so `kubectl version` and /version say
  # v1.34.4 (without it: v0.0.0-master). The build date is the module's publication time.
  local date LD p b
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K134_VERSION.info" 2>/dev/null) || true
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=$K134_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$K134_VERSION" | cut -d. -f2)"
    LD="$LD -X $p.gitTreeState=clean -X $p.gitCommit=go-module-proxy -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  t=$SECONDS
  go build -trimpath -ldflags "$LD" -o "$K134_BIN/" ./cmd/kube-apiserver ./cmd/kube-controller-manager \
    ./cmd/kube-scheduler ./cmd/kubectl || die "go build failed"
  log "built kube-apiserver kube-controller-manager kube-scheduler kubectl in $((SECONDS - t)) s"
  # three binaries with their own patches (lib/overlay-k134.py)
  for b in kubelet kube-proxy kubemark; do
    t=$SECONDS
    go build -trimpath -ldflags "$LD" -overlay "$K134_BUILD/overlay/$b.json" -o "$K134_BIN/$b" "./cmd/$b" \
      || die "go build $b failed"
    log "built $b in $((SECONDS - t)) s"
  done
  grep -aq HOLLOW_PROBE_HOST "$K134_BIN/kubemark" || die "kubemark lacks the hollow probe patch"
  grep -aq HOLLOW_PROBE_HOST "$K134_BIN/kubelet" && die "kubelet contains the hollow probe patch"
  grep -aq KUBELET_DEVICE_PLUGIN_DIR "$K134_BIN/kubelet" || die "kubelet lacks the device-plugin dir patch"
  t=$SECONDS

  # etcd 3.6: server/v3 has the etcd main package; built in a module of its own
  local e=$K134_BUILD/etcd
  mkdir -p "$e"
  printf 'module lab/k134/etcd\n\ngo %s\n' "$K134_GO_MIN" > "$e/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n\t_ "go.etcd.io/etcd/server/v3"\n)\n' > "$e/tools.go"
  (cd "$e" && { go get "go.etcd.io/etcd/server/v3@$K134_ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$K134_ETCD_VERSION" 2> "$e/go-get.log" ||
               { cat "$e/go-get.log"; false; }; } &&
   go build -trimpath -ldflags '-s -w' -o "$K134_BIN/etcd" go.etcd.io/etcd/server/v3 &&
   go build -trimpath -ldflags '-s -w' -o "$K134_BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3) || die "building etcd $K134_ETCD_VERSION failed"
  log "built etcd etcdctl $K134_ETCD_VERSION in $((SECONDS - t)) s"
  echo "$stamp" > "$K134_BIN/.stamp"
  k134_have_binaries || die "the built binaries do not report $K134_VERSION / etcd $K134_ETCD_VERSION"
  log "k134 build done in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------------------------------ PKI
# A CA of its own (the two clusters trust nothing of each other), a front-proxy CA for the
# requestheader/proxy-client pair, client identities by certificate. Idempotent per file.
k134_cert() { # NAME SUBJECT EXTENSIONS [CA]
  local ca=${4:-ca}
  [ -s "$K134_PKI/$1.crt" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$K134_PKI/$1.key" -subj "$2" -out "$K134_PKI/$1.csr" 2>/dev/null &&
  openssl x509 -req -in "$K134_PKI/$1.csr" -CA "$K134_PKI/$ca.crt" -CAkey "$K134_PKI/$ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n%s\n' "$3") \
    -out "$K134_PKI/$1.crt" 2>/dev/null || die "openssl failed for k134 $1"
  rm -f "$K134_PKI/$1.csr"; chmod 600 "$K134_PKI/$1.key"
}
k134_ca() { # NAME CN
  [ -s "$K134_PKI/$1.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K134_PKI/$1.key" -subj "/CN=$2" -days 3650 \
    -out "$K134_PKI/$1.crt" 2>/dev/null || die "openssl CA $1 failed"
  chmod 600 "$K134_PKI/$1.key"
}
k134_kubeconfig() { # NAME: $K134_PKI/NAME.kubeconfig, certificates embedded
  [ -s "$K134_PKI/$1.kubeconfig" ] && return 0
  cat > "$K134_PKI/$1.kubeconfig" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: modelship-lab-k134
  cluster:
    server: $K134_APISERVER
    certificate-authority-data: $(base64 -w0 "$K134_PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$K134_PKI/$1.crt")
    client-key-data: $(base64 -w0 "$K134_PKI/$1.key")
contexts:
- name: modelship-lab-k134
  context: { cluster: modelship-lab-k134, user: $1 }
current-context: modelship-lab-k134
EOK
  chmod 600 "$K134_PKI/$1.kubeconfig"
}
k134_pki() {
  mkdir -p "$K134_PKI"; chmod 700 "$K134_PKI"
  k134_ca ca modelship-lab-k134-ca
  k134_ca front-proxy-ca modelship-lab-k134-front-proxy-ca
  k134_cert apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${K134_SERVICE_CIDR%.*.*}.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # the real kubelets' serving certificates: the apiserver dials them as "realnode" / "realnode2"
  # (-> 127.0.0.1, /etc/hosts)
  local n
  for n in $K134_REAL_NODE $K134_REAL_NODE2; do
    k134_cert kubelet-$n "/CN=$n" "extendedKeyUsage=serverAuth
subjectAltName=DNS:$n,IP:127.0.0.1"
  done
  k134_cert front-proxy-client /CN=front-proxy-client extendedKeyUsage=clientAuth front-proxy-ca
  [ -s "$K134_PKI/sa.key" ] || { openssl genrsa -out "$K134_PKI/sa.key" 2048 2>/dev/null &&
    openssl rsa -in "$K134_PKI/sa.key" -pubout -out "$K134_PKI/sa.pub" 2>/dev/null && chmod 600 "$K134_PKI/sa.key"; }
  local c
  for c in admin:/O=system:masters/CN=admin \
           apiserver-kubelet-client:/O=system:masters/CN=kube-apiserver-kubelet-client \
           kube-controller-manager:/CN=system:kube-controller-manager \
           kube-scheduler:/CN=system:kube-scheduler \
           node-$K134_REAL_NODE:/O=system:nodes/CN=system:node:$K134_REAL_NODE \
           node-$K134_REAL_NODE2:/O=system:nodes/CN=system:node:$K134_REAL_NODE2 \
           node-$K134_HOLLOW_NODE:/O=system:nodes/CN=system:node:$K134_HOLLOW_NODE \
           kube-proxy:/CN=system:kube-proxy \
           prometheus:/O=lab:monitoring/CN=lab-prometheus; do
    k134_cert "${c%%:*}" "${c#*:}" extendedKeyUsage=clientAuth
    [ "${c%%:*}" = apiserver-kubelet-client ] || k134_kubeconfig "${c%%:*}"
  done
}

# ------------------------------------------------------------------------------------------ control plane
k134_control_plane_up() {
  local t=$SECONDS
  mkdir -p "$K134/etcd" "$K134/certs"
  need_ports k134-etcd $K134_ETCD_PORTS; need_ports k134-apiserver 6444
  need_ports k134-controller-manager $K134_KCM_PORT; need_ports k134-scheduler $K134_SCHED_PORT
  daemon k134-etcd "$K134_BIN/etcd" --name k134 --data-dir "$K134/etcd" \
    --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
    --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
    --initial-cluster k134=http://127.0.0.1:2480 --listen-metrics-urls http://127.0.0.1:2481
  wait_for k134-etcd 30 curl -fsS http://127.0.0.1:2479/health
  # As in the v1.20 lab: bound to 127.0.0.1; --endpoint-reconciler-type=none (Endpoints may not hold a
  # loopback address, so the "kubernetes" Service has no endpoints); kubelets dialled by node name
  # (realnode -> 127.0.0.1 via /etc/hosts) and checked against the lab CA.
  # PodSecurity admission is in the default plugin set (--enable-admission-plugins only adds).
  # --requestheader-*/--proxy-client-*: without them kcm and scheduler log "missing content for CA
  # bundle ...requestheader-client-ca-file" every few seconds. --enable-aggregator-routing: extension
  # API servers (metrics-server, KEDA; notes/autoscaling-on-the-1.34-lab.md) are dialled at their
  # endpoint, not their ClusterIP.
  daemon k134-apiserver "$K134_BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2479 \
    --bind-address=127.0.0.1 --secure-port=6444 --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none --service-cluster-ip-range="$K134_SERVICE_CIDR" \
    --tls-cert-file="$K134_PKI/apiserver.crt" --tls-private-key-file="$K134_PKI/apiserver.key" --client-ca-file="$K134_PKI/ca.crt" \
    --service-account-key-file="$K134_PKI/sa.pub" --service-account-signing-key-file="$K134_PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate="$K134_PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$K134_PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$K134_PKI/ca.crt" --kubelet-preferred-address-types=Hostname \
    --requestheader-client-ca-file="$K134_PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$K134_PKI/front-proxy-client.crt" --proxy-client-key-file="$K134_PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true --cert-dir="$K134/certs/apiserver"
  wait_for k134-apiserver 90 k134_api_get /readyz
  daemon k134-controller-manager "$K134_BIN/kube-controller-manager" --kubeconfig="$K134_PKI/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$K134_PKI/kube-controller-manager.kubeconfig" --authorization-kubeconfig="$K134_PKI/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=$K134_KCM_PORT --leader-elect=false \
    --service-account-private-key-file="$K134_PKI/sa.key" --root-ca-file="$K134_PKI/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$K134_PKI/ca.crt" --cluster-signing-key-file="$K134_PKI/ca.key" --cert-dir="$K134/certs/kcm"
  daemon k134-scheduler "$K134_BIN/kube-scheduler" --kubeconfig="$K134_PKI/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$K134_PKI/kube-scheduler.kubeconfig" --authorization-kubeconfig="$K134_PKI/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=$K134_SCHED_PORT --leader-elect=false --cert-dir="$K134/certs/scheduler"
  wait_for k134-controller-manager 60 curl -fsSk "https://127.0.0.1:$K134_KCM_PORT/healthz"
  wait_for k134-scheduler 60 curl -fsSk "https://127.0.0.1:$K134_SCHED_PORT/healthz"
  # pods cannot be created in a namespace before its "default" ServiceAccount exists
  wait_for k134-controller-manager 30 k134_kc -n default get serviceaccount default
  # read-only identity for the lab Prometheus' pod discovery and scrapes (as in the v1.20 cluster)
  k134_kc apply -f - >/dev/null <<EOK || die "k134: RBAC for lab-prometheus failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: lab-monitoring }
rules:
- { apiGroups: [""], resources: [pods, services, endpoints, nodes], verbs: [get, list, watch] }
- { apiGroups: [""], resources: [pods/proxy, services/proxy], verbs: [get] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: lab-monitoring }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lab-monitoring }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: "lab:monitoring" }]
EOK
  log "k134 control plane ready in $((SECONDS - t)) s"
}

# ------------------------------------------------------------------------------------------ real node
# k134_node_ip: the kubelet's --node-ip may not be loopback: the source address of the default route
# (nothing is sent), else the first global address outside the lab's bridges
k134_node_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}' | head -1)
  [ -n "$ip" ] || ip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(docker0|cni0|k134br[01])$/ {sub("/.*", "", $4); print $4; exit}')
  [ -n "$ip" ] || die "no non-loopback IPv4 address for the kubelet's --node-ip"
  echo "$ip"
}

k134_pause_image() {
  # The sandbox image: build/pause/linux/pause.c of the same tree, compiled statically with the CFLAGS
  # of build/pause/Makefile, FROM scratch, pushed to the lab registry (containerd pulls it from there).
  curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/k134/pause/manifests/${K134_PAUSE_IMAGE##*:}" 2>/dev/null && return 0
  local d tag=${K134_PAUSE_IMAGE##*:}; d=$(mktemp -d)
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-$K134_VERSION" -o "$d/pause" "$(k134_src)/build/pause/linux/pause.c" \
    && strip "$d/pause" || die "gcc pause.c failed"
  printf 'FROM scratch\nADD pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$d/Dockerfile"
  docker build -q -t "$K134_PAUSE_IMAGE" "$d" >/dev/null && docker push -q "$K134_PAUSE_IMAGE" >/dev/null \
    || die "building/pushing $K134_PAUSE_IMAGE failed"
  rm -rf "$d"; log "built and pushed $K134_PAUSE_IMAGE"
}

# k134_node 1|2: the per-node names and paths, in KN_*. Two real nodes, each a kubelet on a containerd
# instance of its own (two kubelets on one containerd would remove each other's pods), with its own
# socket, root, state, runc root (node 2), CNI bridge and pod CIDR, kubelet root dir, pod logs,
# device-plugin dir, cgroupRoot, ports and serving cert; same node IP. The first node's paths are
# those it had before realnode2 existed (no suffix), so its daemons keep running across the change.
k134_node() {
  if [ "$1" = 1 ]; then
    KN_NAME=$K134_REAL_NODE KN_S='' KN_PORT=$K134_KUBELET_PORT KN_HEALTHZ=$K134_KUBELET_HEALTHZ
    KN_BRIDGE=$K134_BRIDGE KN_CIDR=$K134_POD_CIDR KN_CGROUP=$K134_CGROUP KN_NET=k134 KN_RUNC=''
    KN_TAINTS='{ key: realnode, value: "true", effect: NoSchedule }'
  else
    # taint realnode2 too: the tests that tolerate only "realnode" never land here (their images
    # would be pulled a second time, into this node's containerd); a test that wants both nodes
    # tolerates both taints
    KN_NAME=$K134_REAL_NODE2 KN_S=2 KN_PORT=$K134_KUBELET2_PORT KN_HEALTHZ=$K134_KUBELET2_HEALTHZ
    KN_BRIDGE=$K134_BRIDGE2 KN_CIDR=$K134_POD_CIDR2 KN_CGROUP=$K134_CGROUP2 KN_NET=k134-2
    KN_RUNC=$'\n'"        Root = \"$K134_RUN/runc2\""
    KN_TAINTS='{ key: realnode, value: "true", effect: NoSchedule }, { key: realnode2, value: "true", effect: NoSchedule }'
  fi
  KN_CD=k134-containerd$KN_S KN_KL=k134-kubelet$KN_S       # daemon names
  KN_C=$K134/containerd$KN_S KN_SOCK=$K134_RUN/containerd$KN_S.sock KN_CNI=$K134/cni$KN_S
  KN_LABELS=realnode=true,lab.modelship.dev/node=$KN_NAME
}
K134_NODES="1 2"

# k134_cgroups: the kubelets' cgroupRoots /k134 and /k134b must exist in every v1 hierarchy before
# they start ("cgroup-root does not exist"); cpuset needs cpus/mems copied from its parent.
k134_cgroups() {
  local c g
  for c in /sys/fs/cgroup/*/; do
    case $c in */unified/) continue ;; esac
    for g in $K134_CGROUP $K134_CGROUP2; do
      mkdir -p "$c$g" 2>/dev/null || continue
      if [ -f "${c}cpuset.cpus" ] && [ -z "$(cat "$c$g/cpuset.cpus")" ]; then
        cat "${c}cpuset.cpus" > "$c$g/cpuset.cpus"; cat "${c}cpuset.mems" > "$c$g/cpuset.mems"
      fi
    done
  done
}

k134_containerd_up() { # NODE (1|2)
  # A containerd instance per node (Debian's 1.6 binary, the one dockerd's containerd runs): own
  # socket, root, state; the CRI plugin pulls from the plain-HTTP lab registry (hosts.toml).
  # restrict_oom_score_adj: without CAP_SYS_RESOURCE runc cannot set the negative oom_score_adj CRI
  # asks for (-998 for every sandbox: "can't get final child's PID from pipe: EOF"); containerd then
  # clamps to its own score. The other snapshotters are only noise at start.
  k134_node "$1"
  local C=$KN_C
  mkdir -p "$C/root" "$C/opt" "$C/certs.d/$REGISTRY" "$K134_RUN" "$KN_CNI/net.d" "$KN_CNI/networks"
  local changed=0
  put "$C/config.toml" <<EOK && changed=1
version = 2
root = "$C/root"
state = "$K134_RUN/containerd$KN_S"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$KN_SOCK"
[ttrpc]
  address = "$KN_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K134_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false$KN_RUNC
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KN_CNI/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$C/certs.d"
EOK
  put "$C/certs.d/$REGISTRY/hosts.toml" <<EOK || true
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOK
  # Pod network: a CNI bridge per node (k134br0 10.234.0.0/24, k134br1 10.234.1.0/24). As on the v1.20
  # node, pods get no default route and no masquerade: only the Service CIDR and the cluster CIDR (the
  # other node's pods, routed by this host between the bridges) go via the bridge. Read by containerd
  # for every new pod: a change needs no restart.
  put "$KN_CNI/net.d/10-k134.conflist" <<EOK || true
{
  "cniVersion": "0.4.0",
  "name": "$KN_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$KN_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$KN_CIDR" }]],
                "routes": [{ "dst": "$K134_SERVICE_CIDR" }, { "dst": "$K134_CLUSTER_CIDR" }], "dataDir": "$KN_CNI/networks" } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOK
  [ $changed = 1 ] && alive "$KN_CD" && { log "$KN_CD config changed"; stop "$KN_CD"; }
  local fresh=0 from=0
  alive "$KN_CD" || { fresh=1; from=$(($(wc -l < "$LOGS/$KN_CD.log" 2>/dev/null || echo 0) + 1)); }
  daemon "$KN_CD" /usr/bin/containerd --config "$C/config.toml"
  wait_for "$KN_CD" 30 test -S "$KN_SOCK"
  # The socket serves before the CRI plugin has recovered its state; a kubelet started then exits
  # ("validate CRI v1 runtime API ... server is not initialized yet"). containerd 1.6 marks the CRI
  # service initialized right after it logs "Start streaming server" (pkg/cri/server/service.go Run).
  [ $fresh = 0 ] || wait_for "$KN_CD" 60 k134_cri_initialized "$LOGS/$KN_CD.log" "$from"
}

# k134_cri_initialized LOG FROM-LINE: the CRI plugin of the containerd started at FROM-LINE is serving
k134_cri_initialized() { tail -n "+$2" "$1" | grep -q 'msg="Start streaming server"'; }

k134_forward_rules() {
  # br_netfilter is built in, so bridge traffic (pod -> pod, pod -> ClusterIP -> pod) traverses
  # FORWARD, whose policy dockerd sets to DROP. Accepted: within each bridge and between the two
  # (the nodes' pods reach each other, routed by this host). Nothing else is forwarded to or from the
  # pods: a NodePort reached from outside the machine (kube-proxy's nodePortAddresses is the node IP)
  # is dropped here. Rewritten in one iptables-restore, and only when it differs.
  local want a b
  want=$(for a in $K134_BRIDGE $K134_BRIDGE2; do for b in $K134_BRIDGE $K134_BRIDGE2; do
           echo "-A K134-FORWARD -i $a -o $b -j ACCEPT"; done; done
         for a in $K134_BRIDGE $K134_BRIDGE2; do
           echo "-A K134-FORWARD -o $a -j DROP"; echo "-A K134-FORWARD -i $a -j DROP"; done)
  if [ "$(iptables -S K134-FORWARD 2>/dev/null | grep '^-A')" != "$want" ]; then
    printf '*filter\n:K134-FORWARD - [0:0]\n%s\nCOMMIT\n' "$want" | iptables-restore --noflush ||
      die "iptables-restore of K134-FORWARD failed"
  fi
  iptables -C FORWARD -j K134-FORWARD 2>/dev/null || iptables -I FORWARD 1 -j K134-FORWARD
}

k134_kubelet_config() { # the kubelet config of the node k134_node selected (KN_*)
  local oom=-999
  (( (16#$(awk '/^CapBnd:/{print $2}' /proc/self/status) >> 24) & 1 )) || oom=0
  cat <<EOK
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# API on 127.0.0.1 (the apiserver dials "$KN_NAME" -> 127.0.0.1), serving cert of the k134 CA
address: 127.0.0.1
port: $KN_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KN_HEALTHZ
tlsCertFile: $K134_PKI/kubelet-$KN_NAME.crt
tlsPrivateKeyFile: $K134_PKI/kubelet-$KN_NAME.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $K134_PKI/ca.crt }
authorization: { mode: Webhook }
containerRuntimeEndpoint: unix://$KN_SOCK
# containerd 1.6 has no RuntimeConfig RPC: the kubelet takes the driver from here; it must match
# containerd's SystemdCgroup = false
cgroupDriver: cgroupfs
# off the v1.20 kubelet's /kubepods (created beforehand in every hierarchy, k134_cgroups)
cgroupRoot: /$KN_CGROUP
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
# cgroup v1 host: 1.34 still starts on it by default (maintenance mode); set for 1.35, whose default flips
failCgroupV1: false
failSwapOn: false
podLogsDir: $K134/pod-logs$KN_S
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
maxPods: 50
serializeImagePulls: false
# never garbage-collect images: the lab registry is the only source
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%" }
evictionPressureTransitionPeriod: 30s
# no CAP_SYS_RESOURCE on this VM kind: nothing can go below 0
oomScoreAdj: $oom
nodeStatusUpdateFrequency: 2s
# no KUBE-FIREWALL / KUBE-KUBELET-CANARY chains: the v1.20 kubelet keeps those
makeIPTablesUtilChains: false
registerWithTaints: [$KN_TAINTS]
EOK
}

# k134_kubelet_start NODE: (re)start the node's kubelet when it is not running or its config changed;
# sets K134_STARTED_<NODE> to the start time ('' when it kept running)
k134_kubelet_start() {
  k134_node "$1"
  local changed=0 node_ip; node_ip=$(k134_node_ip)
  mkdir -p "$K134/kubelet$KN_S" "$K134/pod-logs$KN_S" "$K134/device-plugins$KN_S" "$K134_PKI/kubelet$KN_S"
  k134_kubelet_config | put "$K134/config/kubelet$KN_S-config.yaml" && changed=1
  [ $changed = 1 ] && alive "$KN_KL" && { log "$KN_KL config changed"; stop "$KN_KL"; }
  need_ports "$KN_KL" "$KN_PORT" "$KN_HEALTHZ"
  printf -v "K134_STARTED_$1" '%s' ''
  if ! alive "$KN_KL"; then
    printf -v "K134_STARTED_$1" '%s' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    # KUBELET_DEVICE_PLUGIN_DIR: lib/overlay-k134.py (the v1.20 kubelet owns /var/lib/kubelet/device-plugins)
    daemon "$KN_KL" env KUBELET_DEVICE_PLUGIN_DIR="$K134/device-plugins$KN_S" "$K134_BIN/kubelet" \
      --config="$K134/config/kubelet$KN_S-config.yaml" --kubeconfig="$K134_PKI/node-$KN_NAME.kubeconfig" \
      --hostname-override="$KN_NAME" --node-ip="$node_ip" --root-dir="$K134/kubelet$KN_S" \
      --cert-dir="$K134_PKI/kubelet$KN_S" --node-labels="$KN_LABELS" --v=2
  fi
}

# k134_fresh_ready NODE-NAME STARTED: Ready, with a heartbeat newer than the kubelet's start
k134_fresh_ready() {
  local r; r=$(k134_kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}') || return 1
  [ "${r%% *}" = True ] && { [ -z "$2" ] || ! [[ "${r#* }" < "$2" ]]; }
}

k134_realnode_up() {
  local t=$SECONDS n k v started any=''
  docker_ping || die "dockerd is not answering on $DOCKER_SOCK (the pause image is built with it)"
  registry_ping || die "the lab registry $REGISTRY is not answering"
  k134_pause_image
  mkdir -p "$K134/config"
  # the apiserver dials kubelets by node name (--kubelet-preferred-address-types=Hostname); the
  # realnode line is the v1.20 lab's too (down.sh --purge removes both)
  for n in $K134_REAL_NODE $K134_REAL_NODE2; do
    if ! grep -qE "^127\.0\.0\.1[[:space:]]+$n\$" /etc/hosts; then
      [ -z "$(tail -c1 /etc/hosts)" ] || echo >> /etc/hosts
      echo "127.0.0.1 $n" >> /etc/hosts
    fi
  done
  declare -F lab_guard >/dev/null && lab_guard   # (lib/k8s.sh) the hollow pods' fake IP is never dialled
  k134_forward_rules
  k134_cgroups
  for n in $K134_NODES; do k134_containerd_up "$n"; done
  for n in $K134_NODES; do k134_kubelet_start "$n"; done
  for n in $K134_NODES; do
    k134_node "$n"; started=K134_STARTED_$n; started=${!started}
    wait_for "$KN_KL" 90 k134_fresh_ready "$KN_NAME" "$started"
    [ -n "$started" ] && any=1
    # labels and taints are set at registration only: put them on a node object registered before
    k=$(k134_kc get node "$KN_NAME" -o jsonpath='{.metadata.labels.lab\.modelship\.dev/node} {.spec.taints[*].key}')
    [ "${k%% *}" = "$KN_NAME" ] || k134_kc label node "$KN_NAME" --overwrite "lab.modelship.dev/node=$KN_NAME" >/dev/null
    [ "$n" = 1 ] || [[ " ${k#* } " == *" realnode2 "* ]] || k134_kc taint node "$KN_NAME" --overwrite realnode2=true:NoSchedule >/dev/null
  done
  if [ -n "$any" ]; then
    # a kubelet sets kernel.panic=10 and kernel.panic_on_oops=1 at start: put the host's values back
    for k in kernel.panic kernel.panic_on_oops; do
      v=$(sed -n "s/^sysctl $k=//p" "$LAB_HOME/host-before.txt" 2>/dev/null); [ -n "$v" ] && sysctl -qw "$k=$v"
    done
  fi
  log "k134 real nodes '$K134_REAL_NODE', '$K134_REAL_NODE2' ready in $((SECONDS - t)) s"
}

# ------------------------------------------------------------------------------------------ kube-proxy
k134_proxy_up() {
  # nftables mode, not iptables: an iptables-mode kube-proxy owns fixed chain names (KUBE-SERVICES,
  # KUBE-NODEPORTS, KUBE-SVC-*, ...) and deletes the ones it does not know, so two of them (the v1.20
  # one runs in iptables mode) would undo each other's rules. nftables mode keeps everything in its
  # own table "ip kube-proxy" (lib/overlay-k134.py stops it from cleaning up the iptables rules at
  # start). nftables mode has no NodePorts on 127.0.0.1 (no route_localnet): NodePorts answer on the
  # node IP, from this machine only (K134-FORWARD drops forwarded traffic to the pods).
  local node_ip changed=0; node_ip=$(k134_node_ip)
  command -v nft >/dev/null || die "nft not found (Debian package nftables)"
  put "$K134/config/kube-proxy-config.yaml" <<EOK && changed=1
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $K134_PKI/kube-proxy.kubeconfig }
hostnameOverride: $K134_REAL_NODE
mode: nftables
clusterCIDR: $K134_CLUSTER_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$K134_PROXY_HEALTHZ
metricsBindAddress: 127.0.0.1:$K134_PROXY_METRICS
nodePortAddresses: ["$node_ip/32"]
oomScoreAdj: 0
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOK
  [ $changed = 1 ] && alive k134-proxy && { log "k134 kube-proxy config changed"; stop k134-proxy; }
  need_ports k134-proxy $K134_PROXY_HEALTHZ $K134_PROXY_METRICS
  daemon k134-proxy "$K134_BIN/kube-proxy" --config="$K134/config/kube-proxy-config.yaml" --v=2
  wait_for k134-proxy 30 curl -fsS "http://127.0.0.1:$K134_PROXY_HEALTHZ/healthz"
}

# ------------------------------------------------------------------------------------------ hollow node
k134_hollow_up() {
  # kubemark (lib/overlay-k134.py): real prober dialling 127.0.0.1:<probe port>, kubelet API on
  # 127.0.0.1:$K134_HOLLOW_PORT, fake runtime and fake image service (no containers, no pulls).
  # Its own probe server: writing to the v1.20 lab's probe-status must not steer this cluster.
  mkdir -p "$K134/hollow"
  [ -s "$K134/probe-status" ] || echo 200 > "$K134/probe-status"
  need_ports k134-probe-server $K134_PROBE_PORT; need_ports k134-hollow-node $K134_HOLLOW_PORT
  daemon k134-probe-server "$PY" "$LAB_DIR/lib/probe-server.py" "$K134_PROBE_PORT" "$K134/probe-status"
  alive k134-hollow-node || rm -rf "$K134"/hollow/hollow-kubelet.*
  daemon k134-hollow-node env HOLLOW_TMPDIR="$K134/hollow" "$K134_BIN/kubemark" --morph=kubelet --name="$K134_HOLLOW_NODE" \
    --kubeconfig="$K134_PKI/node-$K134_HOLLOW_NODE.kubeconfig" --kubelet-port=$K134_HOLLOW_PORT --kubelet-read-only-port=0 \
    --use-host-image-service=false
  wait_for k134-probe-server 10 curl -sS -o /dev/null "http://127.0.0.1:$K134_PROBE_PORT/"
  wait_for k134-hollow-node 60 k134_node_ready "$K134_HOLLOW_NODE"
}

# ------------------------------------------------------------------------------------------ up / down
k134_up() {
  local t=$SECONDS
  k134_pki
  k134_control_plane_up
  k134_realnode_up
  k134_proxy_up
  k134_hollow_up
  # the lab Prometheus (up.sh prometheus), when it runs, also scrapes this cluster's annotated pods
  if alive prometheus && declare -F prometheus_up >/dev/null; then prometheus_up; fi
  k134_env
  log "k134 cluster ($K134_VERSION) up in $((SECONDS - t)) s"
}

# $K134/env.sh: source it AFTER $LAB_HOME/env.sh to point a test run at the v1.34 cluster
k134_env() {
  {
    echo "# modelship lab: the Kubernetes $K134_VERSION cluster (up.sh k134). Source after $LAB_HOME/env.sh."
    echo "export KUBECONFIG=$K134_PKI/admin.kubeconfig"
    echo "export LAB_APISERVER=$K134_APISERVER LAB_KUBECTL=$K134_BIN/kubectl LAB_K8S_VERSION=$K134_VERSION"
    echo "export LAB_REAL_NODE=$K134_REAL_NODE"
    alive k134-kubelet2 && echo "export LAB_REAL_NODE2=$K134_REAL_NODE2    # tainted realnode AND realnode2 (drain tests)"
    alive k134-hollow-node && echo "export LAB_HOLLOW_NODE=$K134_HOLLOW_NODE LAB_PROBE_PORT=$K134_PROBE_PORT LAB_PROBE_STATUS=$K134/probe-status"
    alive k134-proxy && echo "export LAB_NODEPORT_HOST=$(k134_node_ip)    # NodePorts answer on the node IP (nftables mode), not on 127.0.0.1"
    declare -F as_env >/dev/null && as_env   # metrics-server, KEDA (lib/autoscale.sh, up.sh autoscale)
    true
  } > "$K134/env.sh"
}

k134_down() {
  local n ids
  stop k134-pod-sd; stop k134-hollow-node; stop k134-probe-server; stop k134-proxy; stop k134-kubelet; stop k134-kubelet2
  # the pod containers: their shims outlive containerd, so kill and delete the tasks first (the next
  # up starts the pods again, as dockerd's containers do for the v1.20 node)
  for n in $K134_NODES; do
    k134_node "$n"
    if alive "$KN_CD"; then
      ids=$(ctr --address "$KN_SOCK" -n k8s.io task ls -q 2>/dev/null)
      # (a sandbox's shim may exit before its last task is deleted: "ttrpc: closed", all killed anyway)
      [ -n "$ids" ] && { ctr --address "$KN_SOCK" -n k8s.io task delete -f $ids >/dev/null 2>&1
        log "k134: stopped $(echo $ids | wc -w) pod containers on $KN_NAME"; }
    fi
    stop "$KN_CD"
  done
  stop k134-scheduler; stop k134-controller-manager; stop k134-apiserver; stop k134-etcd
  rm -f "$K134/env.sh"
}

# k134_host_restore (down.sh --purge): what the v1.34 part changed outside LAB_HOME
k134_host_restore() {
  local c
  iptables -D FORWARD -j K134-FORWARD 2>/dev/null; iptables -F K134-FORWARD 2>/dev/null; iptables -X K134-FORWARD 2>/dev/null
  command -v nft >/dev/null && { nft delete table ip kube-proxy 2>/dev/null; nft delete table ip6 kube-proxy 2>/dev/null; }
  for c in $K134_BRIDGE $K134_BRIDGE2; do ip link show "$c" >/dev/null 2>&1 && ip link delete "$c"; done
  for c in /sys/fs/cgroup/*/"$K134_CGROUP" /sys/fs/cgroup/*/"$K134_CGROUP2"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf /var/lib/cni/results/k134-* 2>/dev/null
  # (the realnode line is the v1.20 lab's too: host_restore removes it)
  sed -i "/^127\.0\.0\.1[[:space:]]\+$K134_REAL_NODE2\$/d" /etc/hosts
  return 0
}
