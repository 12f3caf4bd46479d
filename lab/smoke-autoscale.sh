#!/usr/bin/env bash
# smoke-autoscale.sh -- check of metrics-server and KEDA on the v1.34 lab (up.sh autoscale), ~40-60 s; also
# run by smoke-k134.sh when they are up. Both APIServices Available; `kubectl top node` has CPU values for
# both real nodes; in a namespace with `enforce: restricted`: an autoscaling/v2 HPA on CPU for a small
# busybox busy loop on realnode reads a utilization (not <unknown>) and `kubectl top pod` works; a KEDA
# ScaledObject with a prometheus trigger against the lab Prometheus (query vector(3), threshold 1) is
# Ready, creates its HPA keda-hpa-worker, the external metric reads 3 through
# /apis/external.metrics.k8s.io, and the HPA scales the Deployment 1 -> 3.
# Last line: "N passed, M failed"; exit status 1 on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"; . "$HERE/lib/docker.sh"; . "$HERE/lib/k134.sh"; . "$HERE/lib/autoscale.sh"

RUN_ID=$(date +%s)
NS=as-smoke-$RUN_ID
IMG=$REGISTRY/$BUSYBOX_IMAGE
PASS=0 FAIL=0
ok()    { PASS=$((PASS + 1)); log "PASS $*"; }
bad()   { FAIL=$((FAIL + 1)); log "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }
retry() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 1; done; }
quiet() { "$@" > /dev/null 2>&1; }
like()  { [[ $1 == $2 ]]; }   # like STRING GLOB
k()     { k134_kc -n "$NS" "$@"; }
cleanup() { k134_kc delete namespace "$NS" --wait=false >/dev/null 2>&1; }
finish() { cleanup; trap - EXIT; log "done in $((SECONDS - T0)) s"; echo "$PASS passed, $FAIL failed"; exit $((FAIL > 0)); }
trap finish EXIT
T0=$SECONDS

check "k134 apiserver ready on $K134_APISERVER" quiet k134_api_get /readyz || exit 1
check "metrics-server, keda-operator, keda-adapter running (up.sh autoscale)" eval 'alive k134-metrics-server && alive k134-keda-operator && alive k134-keda-adapter' || exit 1
check "APIService v1beta1.metrics.k8s.io Available" retry 30 as_available v1beta1.metrics.k8s.io
check "APIService v1beta1.external.metrics.k8s.io Available" retry 30 as_available v1beta1.external.metrics.k8s.io

# ------------------------------------------------------------ workloads first: the checks below wait on them
push_once "$BUSYBOX_IMAGE" 2>/dev/null || true
k134_kc create namespace "$NS" >/dev/null
k134_kc label namespace "$NS" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null
POD="securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: RuntimeDefault } }
      nodeSelector: { realnode: \"true\" }
      tolerations: [{ key: realnode, operator: Exists, effect: NoSchedule }]
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1"
SC='securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }'
cat <<EOF | k134_kc apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: { name: burn, namespace: $NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: burn } }
  template:
    metadata: { labels: { app: burn } }
    spec:
      $POD
      containers:
      - name: burn
        image: $IMG
        # a busy loop capped at 20m CPU: about 200 % of its 10m request, next to nothing for the machine
        command: [sh, -c, 'trap "exit 0" TERM; while :; do :; done']
        resources: { requests: { cpu: 10m, memory: 8Mi }, limits: { cpu: 20m, memory: 16Mi } }
        $SC
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: burn, namespace: $NS }
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: burn }
  minReplicas: 1
  maxReplicas: 2
  metrics: [{ type: Resource, resource: { name: cpu, target: { type: Utilization, averageUtilization: 50 } } }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: worker, namespace: $NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: worker } }
  template:
    metadata: { labels: { app: worker } }
    spec:
      $POD
      containers:
      - name: worker
        image: $IMG
        command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
        resources: { requests: { cpu: 1m, memory: 4Mi }, limits: { memory: 16Mi } }
        $SC
---
# KEDA runs on this machine: the trigger reaches the lab Prometheus at 127.0.0.1 (a pod could not)
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: { name: worker, namespace: $NS }
spec:
  scaleTargetRef: { name: worker }
  minReplicaCount: 1
  maxReplicaCount: 3
  pollingInterval: 5
  triggers:
  - type: prometheus
    metadata: { serverAddress: "http://$PROMETHEUS_ADDR", query: "vector(3)", threshold: "1" }
EOF
[ $? = 0 ] && ok "Deployments burn and worker, HPA burn (autoscaling/v2, cpu 50 %), ScaledObject worker applied" || bad "applying the workloads"

# ------------------------------------------------------------ metrics-server
top_nodes() { OUT=$(k134_kc top node --no-headers 2>&1) &&
  [[ $(grep -E "^($K134_REAL_NODE|$K134_REAL_NODE2) +[0-9]+m +[0-9]+% +[0-9]+Mi +[0-9]+%" <<< "$OUT" | wc -l) == 2 ]]; }
t=$SECONDS; OUT=''; retry 40 top_nodes
check "kubectl top node after $((SECONDS - t)) s: $(grep -E "^($K134_REAL_NODE|$K134_REAL_NODE2) " <<< "$OUT" | tr -s ' ' | tr '\n' ';')" top_nodes || echo "$OUT" >&2
check "burn pod Running on $K134_REAL_NODE" quiet k rollout status deploy/burn --timeout=60s
t=$SECONDS CPU=''
hpa_cpu() { CPU=$(k get hpa burn -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' 2>/dev/null) && [[ $CPU =~ ^[0-9]+$ ]]; }
retry 90 hpa_cpu
check "HPA burn reads cpu ${CPU:-<unknown>}% of its request (target 50 %) $((SECONDS - t)) s after the rollout: $(k get hpa burn --no-headers 2>&1 | tr -s ' ')" hpa_cpu
top_pod() { OUT=$(k top pod --no-headers -l app=burn 2>&1) && [[ $OUT =~ burn-[^\ ]+\ +[0-9]+m ]]; }
retry 20 top_pod
check "kubectl top pod: $(echo $OUT)" top_pod

# ------------------------------------------------------------ KEDA
so_ready() { [ "$(k get scaledobject worker -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
check "ScaledObject worker Ready" retry 30 so_ready
check "KEDA created HPA keda-hpa-worker: $(k get hpa keda-hpa-worker --no-headers 2>&1 | tr -s ' ')" quiet k get hpa keda-hpa-worker
ext_path="/apis/external.metrics.k8s.io/v1beta1/namespaces/$NS/s0-prometheus?labelSelector=scaledobject.keda.sh%2Fname%3Dworker"
ext() { OUT=$(k134_kc get --raw "$ext_path" 2>&1) && [[ $OUT == *'"value":"3"'* ]]; }
check "external metric s0-prometheus = 3 via kubectl get --raw $ext_path" retry 20 ext || echo "$OUT" >&2
scaled() { [ "$(k get deploy worker -o jsonpath='{.spec.replicas}')" = 3 ]; }
t=$SECONDS; retry 60 scaled
check "KEDA's HPA scaled worker 1 -> 3 (vector(3), threshold 1; $((SECONDS - t)) s after the metric read)" scaled
