#!/usr/bin/python3
"""Reference outputs from real Caffe for `modelship convert --reference` (runs inside the bullseye chroot).

For each DIR with a deploy.prototxt: fill every learned blob with seeded values (generic rules per layer
type), save weights.caffemodel with Caffe itself, reload it in a fresh caffe.Net, and write the inputs, the
net outputs at batch 1 and 2, every blob after a batch-1 forward, and the statistics of every layer's tops
right after that layer ran (so in-place layers can be checked one by one).

Seeds derive from the directory name, so runs are reproducible (Debian's reference BLAS is single-threaded).
"""
import argparse
import json
import os
import re
import sys
import zlib

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np  # noqa: E402
import caffe  # noqa: E402

BASE_SEED = 20240601
BN_SCALE_FACTOR = 999.982


def seed_for(name, what):
    return (zlib.crc32(("%s/%s" % (name, what)).encode()) ^ BASE_SEED) & 0x7FFFFFFF


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def stats(a, n=8):
    a = np.asarray(a)
    f = a.astype(np.float64).ravel()
    return {"shape": list(a.shape), "dtype": str(a.dtype), "first": [float(v) for v in f[:n]],
            "min": float(f.min()), "max": float(f.max()), "mean": float(f.mean()), "std": float(f.std())}


def fill(net, name, x):
    """Fill learned blobs layer by layer on input x, so statistics-based fills (BatchNorm) see real data."""
    rng = np.random.RandomState(seed_for(name, "weights"))
    net.blobs[net.inputs[0]].data[...] = x
    names = list(net._layer_names)
    for i, layer in enumerate(net.layers):
        t, b = layer.type, layer.blobs
        bottoms = net.bottom_names[names[i]]
        if t in ("Convolution", "InnerProduct", "Deconvolution"):
            w = b[0].data
            fan_in = int(np.prod(w.shape[1:])) if w.ndim > 1 else w.shape[0]
            w[...] = rng.randn(*w.shape) * np.sqrt(2.0 / fan_in)
            if len(b) > 1:
                b[1].data[...] = rng.randn(*b[1].data.shape) * 0.1
        elif t == "BatchNorm":
            xb = net.blobs[bottoms[0]].data
            axes = tuple(a for a in range(xb.ndim) if a != 1)
            mu, var = xb.mean(axis=axes), xb.var(axis=axes)
            c = mu.shape[0]
            b[0].data[...] = (mu + rng.randn(c) * 0.1 * np.sqrt(var)) * BN_SCALE_FACTOR
            b[1].data[...] = (var * rng.uniform(0.7, 1.3, c) + 0.01 * var.mean() + 1e-6) * BN_SCALE_FACTOR
            b[2].data[...] = BN_SCALE_FACTOR
        elif t == "Scale" and len(b):
            b[0].data[...] = rng.uniform(0.8, 1.2, b[0].data.shape)
            if len(b) > 1:
                b[1].data[...] = rng.randn(*b[1].data.shape) * 0.1
        elif t == "Bias" and len(b):
            b[0].data[...] = rng.randn(*b[0].data.shape) * 0.1
        elif t == "PReLU" and len(b):
            b[0].data[...] = rng.uniform(0.1, 0.4, b[0].data.shape)
        elif len(b):
            for blob in b:
                blob.data[...] = rng.randn(*blob.data.shape) * 0.1
        net._forward(i, i)


def make_input(name, kind, shape):
    rng = np.random.RandomState(seed_for(name, "input"))
    if kind == "pixel":
        x = rng.uniform(-128.0, 128.0, size=shape)
    elif kind == "unit":
        x = rng.uniform(0.0, 1.0, size=shape)
    else:
        x = rng.randn(*shape)
    return x.astype(np.float32)


def set_input(net, x):
    net.blobs[net.inputs[0]].reshape(*x.shape)
    net.reshape()
    net.blobs[net.inputs[0]].data[...] = x


def process(d, keep_weights, kind):
    name = os.path.basename(os.path.normpath(d))
    deploy = os.path.join(d, "deploy.prototxt")
    weights = os.path.join(d, "weights.caffemodel")
    probe = caffe.Net(deploy, caffe.TEST)
    shape1 = [1] + list(probe.blobs[probe.inputs[0]].data.shape[1:])
    x1 = make_input(name, kind, shape1)
    x2 = np.concatenate([x1, make_input(name + "#2", kind, shape1)], axis=0)
    if not (keep_weights and os.path.exists(weights)):
        set_input(probe, x1)
        fill(probe, name, x1)
        probe.save(weights)
    del probe

    net = caffe.Net(deploy, weights, caffe.TEST)
    set_input(net, x1)
    names = list(net._layer_names)
    layers = []
    for i, layer in enumerate(net.layers):
        net._forward(i, i)
        ln = names[i]
        bottoms, tops = list(net.bottom_names[ln]), list(net.top_names[ln])
        layers.append({"index": i, "name": ln, "type": layer.type, "bottoms": bottoms, "tops": tops,
                       "in_place": bool(set(bottoms) & set(tops)),
                       "top_stats": {t: stats(net.blobs[t].data, 4) for t in tops}})
    outputs = list(net.outputs)
    np.save(os.path.join(d, "input_b1.npy"), x1)
    np.save(os.path.join(d, "input_b2.npy"), x2)
    bdir = os.path.join(d, "blobs_b1")
    os.makedirs(bdir, exist_ok=True)
    for f in os.listdir(bdir):
        os.remove(os.path.join(bdir, f))
    manifest, used = [], set()
    for bn, blob in net.blobs.items():
        fn = sanitize(bn)
        while fn in used:
            fn += "_"
        used.add(fn)
        np.save(os.path.join(bdir, fn + ".npy"), blob.data)
        manifest.append(dict(stats(blob.data), blob=bn, file="blobs_b1/%s.npy" % fn))
    result = {}
    for tag, x in (("b1", x1), ("b2", x2)):
        set_input(net, x)
        net.forward()
        for o in outputs:
            a = net.blobs[o].data.copy()
            np.save(os.path.join(d, "output_%s__%s.npy" % (tag, sanitize(o))), a)
            result.setdefault(o, {})[tag] = stats(a)
    summary = {"model": name, "generator": "modelship tools/caffe-reference/make_reference.py",
               "caffe": getattr(caffe, "__version__", "unknown"), "input_blob": net.inputs[0],
               "input_kind": kind, "outputs": outputs, "outputs_stats": result,
               "blobs_b1": manifest, "layers_b1": layers}
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("%-20s outputs=%s layers=%d" % (name, outputs, len(layers)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--keep-weights", action="store_true", help="reuse an existing weights.caffemodel")
    ap.add_argument("--input", default="normal", choices=["normal", "unit", "pixel"])
    a = ap.parse_args()
    caffe.set_mode_cpu()
    for d in a.dirs:
        process(d, a.keep_weights, a.input)


if __name__ == "__main__":
    sys.exit(main())
