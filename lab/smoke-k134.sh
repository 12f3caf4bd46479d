#!/usr/bin/env bash
# smoke-k134.sh -- end-to-end check of the Kubernetes v1.34 lab component (up.sh k134), ~15 s.
# Both nodes Ready (the real node labelled and tainted like the v1.20 one), the API groups the v1.20
# lab lacks; in a namespace with Pod Security `enforce: restricted`: a compliant pod of
# $REGISTRY/local/busybox:static (pushed when missing) runs as non-root with seccomp and no privilege,
# `kubectl exec` and `logs` work, a privileged pod is refused; a Deployment + Service with a
# `preStop: sleep` hook answers through the API server's service proxy, kubectl port-forward, from a pod through its ClusterIP
# (kube-proxy, nftables) and on a NodePort of the node IP; deleting a pod waits for the hook; with the
# lab Prometheus up, it scrapes the pods (job lab-pods-k134); a hollow pod's readiness follows its
# probe server. The second real node realnode2 (tainted realnode and realnode2): a pod pinned there
# serves on a NodePort, pods on the two nodes reach each other (pod IP, ClusterIP), logs/exec work,
# `kubectl drain` evicts it and `uncordon` brings it back (only this run's pods are evicted: the drain
# has a --pod-selector). With metrics-server/KEDA up (up.sh autoscale), smoke-autoscale.sh runs beside
# it (its log is printed at the end) and its counts are added. Last line: "N passed, M failed"; exit status
# 1 on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"; . "$HERE/lib/docker.sh"; . "$HERE/lib/k134.sh"

RUN_ID=$(date +%s)
NS=k134-smoke-$RUN_ID
IMG=$REGISTRY/$BUSYBOX_IMAGE
TMP=$(mktemp -d)
PASS=0 FAIL=0 PROBE_PID='' PF_PID='' DRAINED='' AS_PID=''
ok()    { PASS=$((PASS + 1)); log "PASS $*"; }
bad()   { FAIL=$((FAIL + 1)); log "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }
retry() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.5; done; }
quiet() { "$@" > /dev/null 2>&1; }
like()  { [[ $1 == $2 ]]; }   # like STRING GLOB
k()     { k134_kc -n "$NS" "$@"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
  [ -n "$AS_PID" ] && kill "$AS_PID" 2>/dev/null   # (only when this run ends early: its own trap cleans up)
  [ -n "$PF_PID" ] && kill "$PF_PID" 2>/dev/null
  [ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null
  [ -n "$DRAINED" ] && k134_kc uncordon "$K134_REAL_NODE2" >/dev/null 2>&1
  k134_kc delete namespace "$NS" --wait=false >/dev/null 2>&1
  rm -rf "$TMP"
}
finish() { cleanup; trap - EXIT; log "done in $((SECONDS - T0)) s"; echo "$PASS passed, $FAIL failed"; exit $((FAIL > 0)); }
trap finish EXIT
T0=$SECONDS

check "k134 apiserver ready on $K134_APISERVER" quiet k134_api_get /readyz || exit 1
# metrics-server / KEDA (up.sh autoscale): their check mostly waits (metric scrapes, HPA syncs), so it runs beside this one
if alive k134-metrics-server || alive k134-keda-operator || alive k134-keda-adapter; then
  "$HERE/smoke-autoscale.sh" > "$TMP/autoscale.out" 2> "$TMP/autoscale.log" & AS_PID=$!
fi
OUT=$(k134_kc version -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
check "server version $OUT" [ "$OUT" = "$K134_VERSION" ]
check "node $K134_REAL_NODE Ready" retry 30 k134_node_ready "$K134_REAL_NODE"
check "node $K134_HOLLOW_NODE Ready (hollow)" retry 30 k134_node_ready "$K134_HOLLOW_NODE"
OUT=$(k134_kc get node "$K134_REAL_NODE" -o jsonpath='{.metadata.labels.realnode} {.spec.taints[?(@.key=="realnode")].effect} {.status.nodeInfo.containerRuntimeVersion}')
check "$K134_REAL_NODE: label realnode=true, taint realnode:NoSchedule, runtime: $OUT" like "$OUT" "true NoSchedule containerd://*"
check "node $K134_REAL_NODE2 Ready" retry 30 k134_node_ready "$K134_REAL_NODE2"
OUT=$(k134_kc get node "$K134_REAL_NODE2" -o jsonpath='{.metadata.labels.realnode} {.metadata.labels.lab\.modelship\.dev/node} {.spec.taints[*].key}')
check "$K134_REAL_NODE2: labels realnode=true, lab.modelship.dev/node; taints: $OUT" like "$OUT" "true $K134_REAL_NODE2 *realnode *realnode2*"
OUT=$(k134_kc api-versions | grep -xE 'autoscaling/v2|policy/v1|batch/v1|discovery.k8s.io/v1' | sort | tr '\n' ' ')
check "served: $OUT" [ "$OUT" = "autoscaling/v2 batch/v1 discovery.k8s.io/v1 policy/v1 " ]

# ------------------------------------------------------------ Pod Security: restricted
push_once "$BUSYBOX_IMAGE" 2>/dev/null || true   # the registry copy the kubelet pulls (containerd, no docker images)
check "registry has $IMG" quiet curl -fsS -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REGISTRY/v2/${BUSYBOX_IMAGE%:*}/manifests/${BUSYBOX_IMAGE##*:}"
k134_kc create namespace "$NS" >/dev/null
k134_kc label namespace "$NS" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null
SC='securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }'
POD_SC='securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: RuntimeDefault } }'
ON_REAL="nodeSelector: { realnode: \"true\" }
      tolerations: [{ key: realnode, operator: Exists, effect: NoSchedule }]"
ON_REAL2="nodeSelector: { kubernetes.io/hostname: $K134_REAL_NODE2 }
      tolerations: [{ key: realnode, operator: Exists, effect: NoSchedule }, { key: realnode2, operator: Exists, effect: NoSchedule }]"
cat <<EOF > "$TMP/pod.yaml"
apiVersion: v1
kind: Pod
metadata: { name: bb, namespace: $NS }
spec:
  $POD_SC
  nodeSelector: { realnode: "true" }
  tolerations: [{ key: realnode, operator: Exists, effect: NoSchedule }]
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: bb
    image: $IMG
    command: [sh, -c, 'echo started as \$(id -u); exec sleep 3600']
    $SC
EOF
OUT=$(k134_kc apply -f "$TMP/pod.yaml" 2>&1)
check "compliant pod admitted under enforce=restricted" [ $? = 0 ] || echo "$OUT"
check "compliant pod Running" quiet k wait --for=condition=Ready pod/bb --timeout=60s
OUT=$(k exec bb -- id 2>&1); check "kubectl exec: $OUT" like "$OUT" "uid=65534*"
OUT=$(k exec bb -- sh -c 'grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/1/status | tr -s "\t\n" "  "' 2>&1)
check "pod process: $OUT" like "$OUT" "CapEff: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 "
OUT=$(k logs bb 2>&1); check "kubectl logs: $OUT" [ "$OUT" = "started as 65534" ]
sed -e 's/name: bb, /name: bb-bad, /' -e "s/allowPrivilegeEscalation: false,/privileged: true,/" "$TMP/pod.yaml" > "$TMP/bad.yaml"
OUT=$(k134_kc apply -f "$TMP/bad.yaml" 2>&1)
check "privileged pod refused: $(echo "$OUT" | cut -c1-150)..." grep -q 'violates PodSecurity "restricted:latest":.*privileged' <<< "$OUT"

# ------------------------------------------------------------ Deployment + Service, preStop sleep
cat <<EOF | k134_kc apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: $NS }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata:
      labels: { app: web }
      annotations: { prometheus.io/scrape: "true", prometheus.io/port: "8080" }
    spec:
      $POD_SC
      $ON_REAL
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 10
      volumes: [{ name: srv, emptyDir: {} }]
      containers:
      - name: web
        image: $IMG
        # read-only root: the files go to an emptyDir. PID 1 ignores SIGTERM without a handler: the
        # shell exits on it, so the pod ends right after the preStop hook.
        command: [sh, -c, 'cp /www/index.html /srv/; echo "k134_smoke_info{run=\"$RUN_ID\"} 1" > /srv/metrics;
          trap "exit 0" TERM; httpd -f -p 8080 -h /srv & wait']
        volumeMounts: [{ name: srv, mountPath: /srv }]
        ports: [{ name: http, containerPort: 8080, protocol: TCP }]
        readinessProbe: { httpGet: { path: /index.html, port: http }, periodSeconds: 1 }
        lifecycle: { preStop: { sleep: { seconds: 3 } } }
        $SC
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: $NS }
spec:
  type: NodePort
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
---
# on the second real node (both taints tolerated)
apiVersion: apps/v1
kind: Deployment
metadata: { name: web2, namespace: $NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: web2 } }
  template:
    metadata: { labels: { app: web2, smoke-run: "$RUN_ID" } }
    spec:
      $POD_SC
      $ON_REAL2
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 5
      volumes: [{ name: srv, emptyDir: {} }]
      containers:
      - name: web
        image: $IMG
        env: [{ name: NODE, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }]
        command: [sh, -c, 'echo "serving on \$NODE"; echo "hello from \$NODE" > /srv/index.html;
          trap "exit 0" TERM; httpd -f -p 8080 -h /srv & wait']
        volumeMounts: [{ name: srv, mountPath: /srv }]
        ports: [{ name: http, containerPort: 8080, protocol: TCP }]
        readinessProbe: { httpGet: { path: /index.html, port: http }, periodSeconds: 1 }
        $SC
---
apiVersion: v1
kind: Service
metadata: { name: web2, namespace: $NS }
spec:
  type: NodePort
  selector: { app: web2 }
  ports: [{ name: http, port: 80, targetPort: http }]
EOF
check "Deployment with preStop sleep admitted and rolled out" quiet k rollout status deploy/web --timeout=90s
OUT=$(k get deploy web -o jsonpath='{.spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds}')
check "preStop.sleep.seconds kept by the server: $OUT" [ "$OUT" = 3 ]
OUT=$(k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {.status.podIP}{"\n"}{end}')
check "2 pods on $K134_REAL_NODE in $K134_POD_CIDR: $(echo $OUT)" [ "$(grep -cE "^$K134_REAL_NODE ${K134_POD_CIDR%.*}\." <<< "$OUT")" = 2 ]
OUT=$(k134_api_get "/api/v1/namespaces/$NS/services/web:http/proxy/index.html" 2>&1)
check "GET via the apiserver service proxy -> '$OUT'" [ "$OUT" = "hello from busybox httpd" ]
PF=$(free_port)
"$K134_BIN/kubectl" --kubeconfig "$K134_PKI/admin.kubeconfig" -n "$NS" port-forward --address 127.0.0.1 svc/web "$PF:80" > "$TMP/pf.log" 2>&1 &
PF_PID=$!
pf_ok() { [ "$(curl -sS -m 3 "http://127.0.0.1:$PF/index.html" 2>/dev/null)" = "hello from busybox httpd" ]; }
check "kubectl port-forward 127.0.0.1:$PF -> svc/web" retry 10 pf_ok
kill "$PF_PID" 2>/dev/null; PF_PID=''
CIP=$(k get svc web -o jsonpath='{.spec.clusterIP}')
# (busybox-static's wget segfaults in these pods; nc does the request)
nc_get() { # POD HOST PORT BODY: GET /index.html from inside POD answers BODY
  local r; r=$(k exec "$1" -- sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 2 $2 $3" 2>/dev/null); [[ $r == *$'\n'"$4"* ]]; }
check "pod -> ClusterIP $CIP:80 (kube-proxy, nftables)" retry 10 nc_get bb "$CIP" 80 "hello from busybox httpd"
NP=$(k get svc web -o jsonpath='{.spec.ports[0].nodePort}') NODE_IP=$(k134_node_ip)
np_ok() { [ "$(curl -sS -m 3 "http://$NODE_IP:$NP/index.html" 2>/dev/null)" = "hello from busybox httpd" ]; }
check "NodePort $NODE_IP:$NP from this machine" retry 10 np_ok
OUT=$(k exec bb -- ip route 2>&1 | tr '\n' ';')
check "pod routes: $OUT (no default route)" bash -c '[[ $1 == *"$2"* && $1 == *"$3"* && $1 != *default* ]]' _ "$OUT" "$K134_SERVICE_CIDR" "$K134_CLUSTER_CIDR"

# ------------------------------------------------------------ second real node: realnode2, drain
H2="hello from $K134_REAL_NODE2"
check "web2 (tolerates realnode and realnode2) rolled out" quiet k rollout status deploy/web2 --timeout=60s
read -r P2 N2 IP2 <<< "$(k get pods -l app=web2 -o jsonpath='{.items[0].metadata.name} {.items[0].spec.nodeName} {.items[0].status.podIP}')"
check "web2 pod on $N2 with IP $IP2 in $K134_POD_CIDR2" like "$N2 $IP2" "$K134_REAL_NODE2 ${K134_POD_CIDR2%.*}.*"
OUT=$(k logs "$P2" 2>&1); check "kubectl logs on $K134_REAL_NODE2: $OUT" [ "$OUT" = "serving on $K134_REAL_NODE2" ]
OUT=$(k exec "$P2" -- cat /srv/index.html 2>&1); check "kubectl exec on $K134_REAL_NODE2: $OUT" [ "$OUT" = "$H2" ]
CIP2=$(k get svc web2 -o jsonpath='{.spec.clusterIP}') IP1=$(k get pods -l app=web -o jsonpath='{.items[0].status.podIP}')
check "pod on $K134_REAL_NODE -> pod IP $IP2:8080 on $K134_REAL_NODE2" retry 10 nc_get bb "$IP2" 8080 "$H2"
check "pod on $K134_REAL_NODE -> ClusterIP $CIP2:80 -> $K134_REAL_NODE2" retry 10 nc_get bb "$CIP2" 80 "$H2"
check "pod on $K134_REAL_NODE2 -> pod IP $IP1:8080 on $K134_REAL_NODE" retry 10 nc_get "$P2" "$IP1" 8080 "hello from busybox httpd"
NP2=$(k get svc web2 -o jsonpath='{.spec.ports[0].nodePort}')
np2_ok() { [ "$(curl -sS -m 3 "http://$NODE_IP:$NP2/index.html" 2>/dev/null)" = "$H2" ]; }
check "NodePort $NODE_IP:$NP2 -> pod on $K134_REAL_NODE2" retry 10 np2_ok
DRAINED=1 t=$SECONDS
OUT=$(k134_kc drain "$K134_REAL_NODE2" --ignore-daemonsets --delete-emptydir-data --pod-selector "smoke-run=$RUN_ID" --timeout=60s 2>&1)
check "kubectl drain $K134_REAL_NODE2 evicted $P2 ($((SECONDS - t)) s)" grep -q "pod/$P2 evicted" <<< "$OUT" || echo "$OUT"
OUT=$(k get pods -l app=web2 -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase} {end}')
check "while cordoned the replacement is Pending: $OUT" like "$OUT" "web2-*=Pending "
k134_kc uncordon "$K134_REAL_NODE2" >/dev/null && DRAINED=''
t=$SECONDS
check "after uncordon the replacement runs on $K134_REAL_NODE2 and serves on the NodePort" eval \
  'quiet k rollout status deploy/web2 --timeout=60s && retry 10 np2_ok'
log "  uncordon -> serving: $((SECONDS - t)) s"
P1=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
t0=$(date +%s.%N); k delete pod "$P1" --wait=true >/dev/null 2>&1; t1=$(date +%s.%N)
OUT=$("$PY" -c "print(round($t1 - $t0, 1))")
check "deleting a pod waits for preStop sleep 3 s (httpd exits at once on SIGTERM): ${OUT} s" "$PY" -c "import sys; sys.exit(not 3 <= $OUT < 10)"

# ------------------------------------------------------------ Prometheus (optional part of the lab)
if curl -fsS -m 2 "http://$PROMETHEUS_ADDR/-/ready" >/dev/null 2>&1; then
  scraped() { local r; r=$(curl -fsS -G "http://$PROMETHEUS_ADDR/api/v1/query" \
      --data-urlencode "query=k134_smoke_info{job=\"lab-pods-k134\",namespace=\"$NS\",run=\"$RUN_ID\"}") && [[ $r == *'"value"'* ]]; }
  check "Prometheus scraped the pods through the k134 apiserver pod proxy (job lab-pods-k134)" retry 30 scraped
fi

# ------------------------------------------------------------ hollow node: readiness from a probe server
PP=$(free_port); echo 200 > "$TMP/probe-status"
"$PY" "$HERE/lib/probe-server.py" "$PP" "$TMP/probe-status" & PROBE_PID=$!
cat <<EOF | k134_kc apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: { name: hollow, namespace: $NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: hollow } }
  template:
    metadata: { labels: { app: hollow } }
    spec:
      $POD_SC
      nodeSelector: { kubernetes.io/hostname: $K134_HOLLOW_NODE }
      containers:
      - name: app
        image: example.invalid/never-pulled:1
        readinessProbe: { httpGet: { path: /healthz, port: $PP }, periodSeconds: 1, failureThreshold: 1 }
        $SC
EOF
check "hollow pod Ready (probe server on 127.0.0.1:$PP says 200)" quiet k rollout status deploy/hollow --timeout=30s
echo 500 > "$TMP/probe-status"
not_ready() { [ -z "$(k get deploy hollow -o jsonpath='{.status.readyReplicas}')" ]; }
check "hollow pod NotReady after the probe server says 500" retry 10 not_ready
echo 200 > "$TMP/probe-status"
ready() { [ "$(k get deploy hollow -o jsonpath='{.status.readyReplicas}')" = 1 ]; }
check "hollow pod Ready again after 200" retry 10 ready

# ------------------------------------------------------------ autoscaling (smoke-autoscale.sh, started above)
if [ -n "$AS_PID" ]; then
  wait "$AS_PID"; AS_PID=''
  log "---- smoke-autoscale.sh (ran beside the checks above):"; cat "$TMP/autoscale.log" >&2
  OUT=$(tail -n 1 "$TMP/autoscale.out")
  if [[ $OUT =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASS=$((PASS + BASH_REMATCH[1])) FAIL=$((FAIL + BASH_REMATCH[2]))
  else bad "smoke-autoscale.sh gave no result ('$OUT')"; fi
fi
