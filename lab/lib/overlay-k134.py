#!/usr/bin/env python3
"""overlay-k134.py TREE OUTDIR -- `go build -overlay` files for the v1.34 lab component (lib/k134.sh).

Like overlay.py for v1.20: the source tree stays as the Go module proxy ships it (apart from the
go.mod rewrite in k134.sh); binary-specific patches are applied at build time.

OUTDIR/kube-proxy.json  (kube-proxy in nftables mode, beside the v1.20 kube-proxy in iptables mode)
  * cmd/kube-proxy/app/server_linux.go: platformCleanup() removes every iptables-mode rule of a
    "previous" kube-proxy when it starts in nftables mode (iptables.CleanupLeftovers: the KUBE-SERVICES,
    KUBE-NODEPORTS, KUBE-POSTROUTING, ... chains). On this host those belong to the running v1.20
    kube-proxy, so the cleanup would cut the v1.20 cluster's ClusterIPs and NodePorts until its next
    sync. Only --cleanup still does it.

OUTDIR/kubelet.json  (the real kubelet, node "realnode", beside the v1.20 kubelet)
  * pkg/kubelet/cm/devicemanager/manager.go: the device-plugin registration socket is hard-coded to
    /var/lib/kubelet/device-plugins/kubelet.sock, and at start the device manager empties that
    directory -- the v1.20 kubelet's socket and checkpoint are there. With $KUBELET_DEVICE_PLUGIN_DIR
    set, the socket (and the checkpoint next to it) go there instead.

OUTDIR/kubemark.json  (the hollow node of the v1.34 cluster)
  * pkg/kubemark/hollow_kubelet.go:
    - no fake ProbeManager: upstream 1.34 passes probetest.FakeManager{}, which marks every container
      Ready at once; with nil the kubelet builds its real prober, so readiness can be steered;
    - the kubelet API binds 127.0.0.1 (upstream "0.0.0.0");
    - root dir under $HOLLOW_TMPDIR (upstream /tmp/hollow-kubelet.XXXX, one per start);
    - nodeStatusUpdateFrequency 2s (upstream 10s);
    - makeIPTablesUtilChains false: no KUBE-* chains on the host.
  * cmd/kubemark/app/hollow_node.go: the fake CRI runtime's socket in $HOLLOW_TMPDIR (upstream a new
    /tmp/kubelet_remote_<random>.sock per start, never removed).
  * pkg/kubelet/prober/prober.go: httpGet/tcpSocket/grpc probes dial 127.0.0.1 (or
    $HOLLOW_PROBE_HOST) instead of the fake pod IP, as in the v1.20 lab (lib/probe-server.py).
"""
import json
import os
import sys

tree, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def patched(rel, *edits, append=''):
    """The file's text with each (old, new) edit applied; every `old` must occur exactly once."""
    s = open(os.path.join(tree, rel)).read()
    for old, new in edits:
        if s.count(old) != 1:
            sys.exit(f"overlay-k134.py: {rel}: expected 1 occurrence of {old!r}, found {s.count(old)} "
                     "(is the source tree pristine and v1.34?)")
        s = s.replace(old, new)
    return s + append


def write(name, files):
    repl = {}
    for rel, text in files.items():
        dst = os.path.join(out, name + '__' + rel.replace('/', '__'))
        with open(dst, 'w') as f:
            f.write(text)
        repl[os.path.join(tree, rel)] = dst
    with open(os.path.join(out, name + '.json'), 'w') as f:
        json.dump({'Replace': repl}, f, indent=1)


write('kube-proxy', {
    'cmd/kube-proxy/app/server_linux.go': patched(
        'cmd/kube-proxy/app/server_linux.go',
        ('\tif !isIPTablesBased(mode) || cleanupAndExit {\n',
         '\tif cleanupAndExit { // lab patch: never remove the v1.20 kube-proxy\'s iptables rules at start-up\n')),
})

write('kubelet', {
    'pkg/kubelet/cm/devicemanager/manager.go': patched(
        'pkg/kubelet/cm/devicemanager/manager.go',
        ('\tsocketPath := pluginapi.KubeletSocket\n',
         '\tsocketPath := pluginapi.KubeletSocket\n'
         '\tif d := os.Getenv("KUBELET_DEVICE_PLUGIN_DIR"); d != "" { // lab patch\n'
         '\t\tsocketPath = filepath.Join(d, "kubelet.sock")\n\t}\n')),
})

write('kubemark', {
    'cmd/kubemark/app/hollow_node.go': patched(
        'cmd/kubemark/app/hollow_node.go',
        ('\t\tendpoint, err := fakeremote.GenerateEndpoint()\n',
         '\t\tendpoint, err := fakeremote.GenerateEndpoint()\n'
         '\t\tif d := os.Getenv("HOLLOW_TMPDIR"); d != "" { // lab patch\n'
         '\t\t\t_ = os.Remove(d + "/fake-runtime.sock")\n'
         '\t\t\tendpoint = "unix://" + d + "/fake-runtime.sock"\n\t\t}\n'),
        ('import (\n', 'import (\n\t"os"\n')),
    'pkg/kubemark/hollow_kubelet.go': patched(
        'pkg/kubemark/hollow_kubelet.go',
        ('\t\tProbeManager:              probetest.FakeManager{},\n',
         '\t\tProbeManager:              nil, // lab patch: the real prober (readiness steered by lib/probe-server.py)\n'),
        ('utils.MakeTempDirOrDie("hollow-kubelet.", "")',
         'utils.MakeTempDirOrDie("hollow-kubelet.", os.Getenv("HOLLOW_TMPDIR")) // lab patch'),
        ('\tc.Address = "0.0.0.0" /* bind address */\n',
         '\tc.Address = "127.0.0.1" // lab patch (upstream 0.0.0.0)\n'),
        ('\tc.NodeStatusUpdateFrequency.Duration = 10 * time.Second\n',
         '\tc.NodeStatusUpdateFrequency.Duration = 2 * time.Second // lab patch (upstream 10s)\n'),
        ('\tc.ProtectKernelDefaults = false\n',
         '\tc.ProtectKernelDefaults = false\n\tc.MakeIPTablesUtilChains = false // lab patch\n'),
        ('import (\n', 'import (\n\t"os"\n'),
        append='\nvar _ = probetest.FakeManager{} // lab patch: keep the import\n'),
    'pkg/kubelet/prober/prober.go': patched(
        'pkg/kubelet/prober/prober.go',
        ('\ttimeout := time.Duration(p.TimeoutSeconds) * time.Second\n\tswitch {\n',
         '\ttimeout := time.Duration(p.TimeoutSeconds) * time.Second\n'
         '\tstatus.PodIP = hollowProbeHost() // lab patch (kubemark only)\n\tswitch {\n'),
        ('import (\n', 'import (\n\t"os"\n'),
        append='''
// hollowProbeHost (lab patch, kubemark only): probes dial loopback, never the fake pod IP.
func hollowProbeHost() string {
	if h := os.Getenv("HOLLOW_PROBE_HOST"); h != "" {
		return h
	}
	return "127.0.0.1"
}
'''),
})
print(f'overlays written to {out}: kube-proxy.json, kubelet.json, kubemark.json')
