#!/usr/bin/env python3
"""Reference fixtures for SSD detection nets, with OpenCV's DNN module as the oracle.

BVLC Caffe lacks the SSD layers (Normalize, Permute, PriorBox, DetectionOutput); OpenCV's Caffe importer
(cv2.dnn.readNetFromCaffe, 4.x) implements them. Run with the venv of test/requirements-opencv.txt:

  .venv-opencv/bin/python scripts/ssd-reference.py weights DIR OUT.caffemodel   # seeded weights only (fast)
  .venv-opencv/bin/python scripts/ssd-reference.py inputs DIR OUTDIR             # input_b1.npy / input_b2.npy only
  .venv-opencv/bin/python scripts/ssd-reference.py reference DIR [--calibrate]  # weights, OpenCV, fixtures
  .venv-opencv/bin/python scripts/ssd-reference.py all [--calibrate]

Each fixture DIR holds a deploy.prototxt and a recipe.json (seed + calibration knobs). The weights are a pure
function of both: every learned blob is drawn from numpy RandomState(seed, layer name) with a rule per layer
type, the loc / conf head convolutions (the convolutions that feed DetectionOutput through Permute, Flatten,
Concat, Reshape) get the recipe's gains and per-class biases. The caffemodel is written with a small protobuf
encoder (no protobuf package), so it is not committed: tests call `weights` to regenerate it.

`reference --calibrate` searches the seed / conf gain / class biases so that at batch 1 and 2 a handful of
detections survive and no decision of DetectionOutput is near an edge (score vs confidence_threshold, IoU vs
nms_threshold, the top_k and keep_top_k cuts, the order of scores); it stores the result in recipe.json.
Without --calibrate the stored recipe is used as is and the margins are only measured (and checked).

A numpy model of DetectionOutput (weiliu89/caffe ssd semantics, plus OpenCV's `clip`) checks OpenCV's
detections from OpenCV's own loc / conf / priorbox blobs, and measures the margins.
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "ssd")
DELTA_SCORE = 1e-3   # every candidate score at least this far from confidence_threshold; top_k/keep_top_k cuts
DELTA_IOU = 1e-3     # every IoU compared in NMS at least this far from nms_threshold
DELTA_ORDER = 1e-4   # adjacent candidate scores of one class (NMS order) at least this far apart
MIN_DET, MAX_DET = 3, 15
# OpenCV 4.10 vs weiliu89/caffe (ssd branch) as seen while making these fixtures (source reading + probing)
OPENCV_VS_CAFFE = [
    "PriorBox clip: OpenCV defaults to true, Caffe to false; every PriorBox here sets clip explicitly.",
    "PriorBox img_size / img_h / img_w: OpenCV ignores them and always uses bottom[1]'s H x W; Caffe uses them. "
    "Fixtures only give them equal to bottom[1]'s dims.",
    "PriorBox min_size / max_size: Caffe truncates them to int (`int min_size_ = min_sizes_[s]`), OpenCV keeps "
    "floats. All sizes here are integral.",
    "PriorBox with several min_size (and as many max_size): both accept it, same order per cell: for each "
    "min_size: min, sqrt(min*max), then the aspect ratios (each followed by its flip).",
    "DetectionOutput confidence_threshold absent: Caffe -FLT_MAX, OpenCV 0 (its source); with softmax scores "
    "the two only differ on scores that underflow to 0. Every fixture sets it.",
    "DetectionOutput keep_top_k, nms_threshold and code_type are required by OpenCV (Caffe: -1, 0.3, CORNER); "
    "keep_top_k -1 gives a malformed [1, 1, 7] output in OpenCV. nms_param.eta is ignored by OpenCV (1.0).",
    "DetectionOutput `clip` (clip decoded boxes to [0, 1] before NMS) exists only in OpenCV's caffe.proto: "
    "weiliu89 Caffe rejects the field (the res10 face detector prototxt sets it) and never clips there.",
    "DetectionOutput top: OpenCV returns [1, 1, N*keep_top_k, 7] padded with all-zero rows, each image's rows "
    "sorted by score (descending) across classes; Caffe returns [1, 1, M, 7] exactly, grouped by class "
    "(ascending), score-descending within a class. No detection at all: OpenCV all-zero rows, Caffe "
    "[1, 1, N, 7] rows (i, -1, -1, -1, -1, -1, -1). The fixtures drop the zero rows and keep OpenCV's order.",
    "variance_encoded_in_target: OpenCV insists on a [1, 1, P*4] prior blob (no variance channel); Caffe takes "
    "PriorBox's [1, 2, P*4] (given one channel it reads the unused variances out of bounds). "
    "zoo/encoded_clip slices the variances off for OpenCV.",
    "code_type CORNER_SIZE is not in OpenCV's caffe.proto (parse error).",
    "Normalize across_spatial: true with channel_shared: false (global norm, per-channel scale) is rejected by "
    "OpenCV (scale.total() == C*H*W assertion); Caffe supports it. eps is inside the square root in both.",
    "Permute: OpenCV needs all axes in `order`; Caffe appends the missing ones.",
    "keep_top_k ties: both sort with std::sort (unstable); the fixtures keep every cut clear of ties.",
]

MAX_CANDIDATES = 400  # calibration skips settings with more candidates than this per image (NMS in Python)


# ---------------------------------------------------------------------------------------------------------
# prototxt (protobuf text format) parser: enough for deploy.prototxt files
# ---------------------------------------------------------------------------------------------------------

class Msg:
    def __init__(self):
        self.items = []

    def add(self, k, v):
        self.items.append((k, v))

    def all(self, k):
        return [v for kk, v in self.items if kk == k]

    def has(self, k):
        return any(kk == k for kk, _ in self.items)

    def get(self, k, default=None):
        vals = self.all(k)
        return vals[-1] if vals else default

    def msg(self, k):
        v = self.get(k)
        return v if isinstance(v, Msg) else Msg()


_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}:\[\],;<>]|[^\s{}:\[\],;<>"\'#]+')


def _scalar(tok):
    if tok[0] in "\"'":
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    low = tok.lower()
    if low in ("true", "t"):
        return True
    if low in ("false", "f"):
        return False
    try:
        return int(tok, 0) if re.fullmatch(r"[-+]?(0x[0-9a-fA-F]+|\d+)", tok) else float(tok)
    except ValueError:
        return tok  # enum identifier


def parse_prototxt(text):
    toks = [m.group(0) for m in _TOKEN.finditer(text)]
    toks = [t for t in toks if not t[0].isspace() and t[0] != "#" and t not in (",", ";")]
    pos = 0

    def parse(end):
        nonlocal pos
        msg = Msg()
        while pos < len(toks):
            t = toks[pos]
            if t in ("}", ">"):
                if end is None:
                    raise ValueError("unbalanced }")
                pos += 1
                return msg
            key = t
            pos += 1
            if toks[pos] == ":":
                pos += 1
            t = toks[pos]
            if t in ("{", "<"):
                pos += 1
                msg.add(key, parse(t))
            elif t == "[":
                pos += 1
                while toks[pos] != "]":
                    if toks[pos] in ("{", "<"):
                        pos += 1
                        msg.add(key, parse(toks[pos - 1]))
                    else:
                        msg.add(key, _scalar(toks[pos]))
                        pos += 1
                pos += 1
            else:
                msg.add(key, _scalar(t))
                pos += 1
        if end is not None:
            raise ValueError("unexpected end of prototxt")
        return msg

    return parse(None)


def as_bool(v):
    if isinstance(v, str):
        return v.lower() in ("true", "1")
    return bool(v)


# ---------------------------------------------------------------------------------------------------------
# net structure and shape inference (the layer types of these nets)
# ---------------------------------------------------------------------------------------------------------

class Layer:
    def __init__(self, m):
        self.m = m
        self.name = m.get("name")
        self.type = m.get("type")
        self.bottoms = m.all("bottom")
        self.tops = m.all("top")


def load_net(path):
    with open(path) as f:
        root = parse_prototxt(f.read())
    if root.all("layers"):
        raise ValueError("V1 'layers' nets are not supported here")
    inputs = {}
    names = root.all("input")
    shapes = root.all("input_shape")
    dims = root.all("input_dim")
    for i, n in enumerate(names):
        if shapes:
            inputs[n] = [int(d) for d in shapes[i].all("dim")]
        else:
            inputs[n] = [int(d) for d in dims[4 * i:4 * i + 4]]
    layers = []
    for m in root.all("layer"):
        phases = [inc.get("phase") for inc in m.all("include")]
        if phases and "TEST" not in phases:
            continue
        layers.append(Layer(m))
    return inputs, layers


def _hw(p, key, default):
    """kernel/pad/stride/dilation of a conv/pool param: (h, w)."""
    h, w = p.get(key + "_h"), p.get(key + "_w")
    if h is not None or w is not None:
        return int(h if h is not None else default), int(w if w is not None else default)
    vals = [int(v) for v in p.all(key if key != "kernel" else "kernel_size")]
    if not vals:
        return default, default
    return vals[0], vals[1] if len(vals) > 1 else vals[0]


def conv_geometry(p):
    kh, kw = _hw(p, "kernel", None)
    ph, pw = _hw(p, "pad", 0)
    sh, sw = _hw(p, "stride", 1)
    dh, dw = _hw(p, "dilation", 1)
    return (kh, kw), (ph, pw), (sh, sw), (dh, dw)


def aspect_ratios(p):
    """A PriorBox's aspect ratios, Caffe's rule (ssd branch): 1 first, duplicates dropped, each followed by its flip."""
    ars = [1.0]
    flip = as_bool(p.get("flip", True))
    for ar in p.all("aspect_ratio"):
        ar = float(ar)
        if any(abs(ar - a) < 1e-6 for a in ars):
            continue
        ars.append(ar)
        if flip:
            ars.append(1.0 / ar)
    return ars


def prior_count(p):
    """Priors per cell of a PriorBox, Caffe's rule (ssd branch)."""
    return len(aspect_ratios(p)) * len(p.all("min_size")) + len(p.all("max_size"))


def infer_shapes(inputs, layers):
    """blob name -> shape after each layer, and per layer the learned blob shapes."""
    shapes = dict((k, list(v)) for k, v in inputs.items())
    blob_shapes = {}
    for L in layers:
        t, m = L.type, L.m
        ins = [shapes[b] for b in L.bottoms]
        x = ins[0] if ins else None
        out, learned = None, []
        if t == "Input":
            outs = [[int(d) for d in s.all("dim")] for s in m.msg("input_param").all("shape")]
            for i, top in enumerate(L.tops):
                shapes[top] = outs[i if len(outs) > 1 else 0]
            continue
        elif t == "Convolution":
            p = m.msg("convolution_param")
            (kh, kw), (ph, pw), (sh, sw), (dh, dw) = conv_geometry(p)
            co, g = int(p.get("num_output")), int(p.get("group", 1))
            oh = (x[2] + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
            ow = (x[3] + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
            out = [x[0], co, oh, ow]
            learned = [[co, x[1] // g, kh, kw]]
            if as_bool(p.get("bias_term", True)):
                learned.append([co])
        elif t == "Pooling":
            p = m.msg("pooling_param")
            if as_bool(p.get("global_pooling", False)):
                out = [x[0], x[1], 1, 1]
            else:
                (kh, kw), (ph, pw), (sh, sw), _ = conv_geometry(p)
                oh = int(math.ceil((x[2] + 2 * ph - kh) / sh)) + 1
                ow = int(math.ceil((x[3] + 2 * pw - kw) / sw)) + 1
                if ph or pw:
                    if (oh - 1) * sh >= x[2] + ph:
                        oh -= 1
                    if (ow - 1) * sw >= x[3] + pw:
                        ow -= 1
                out = [x[0], x[1], oh, ow]
        elif t == "BatchNorm":
            out, learned = list(x), [[x[1]], [x[1]], [1]]
        elif t == "Scale":
            p = m.msg("scale_param")
            axis, num_axes = int(p.get("axis", 1)), int(p.get("num_axes", 1))
            if len(L.bottoms) > 1:
                raise ValueError("Scale with two bottoms is not used by these nets")
            s = x[axis:] if num_axes == -1 else x[axis:axis + num_axes]
            learned = [list(s)]
            if as_bool(p.get("bias_term", False)):
                learned.append(list(s))
            out = list(x)
        elif t == "Normalize":
            p = m.msg("norm_param")
            out = list(x)
            learned = [[1] if as_bool(p.get("channel_shared", True)) else [x[1]]]
        elif t in ("ReLU", "Sigmoid", "TanH", "Dropout", "Softmax", "Power", "AbsVal"):
            out = list(x)
        elif t == "Eltwise":
            out = list(x)
        elif t == "Concat":
            p = m.msg("concat_param")
            axis = int(p.get("axis", p.get("concat_dim", 1)))
            axis = axis % len(x)
            out = list(x)
            out[axis] = sum(s[axis] for s in ins)
        elif t == "Slice":
            p = m.msg("slice_param")
            axis = int(p.get("axis", p.get("slice_dim", 1))) % len(x)
            points = [int(v) for v in p.all("slice_point")]
            if not points:
                step = x[axis] // len(L.tops)
                points = [step * i for i in range(1, len(L.tops))]
            bounds = [0] + points + [x[axis]]
            for i, top in enumerate(L.tops):
                shapes[top] = x[:axis] + [bounds[i + 1] - bounds[i]] + x[axis + 1:]
            blob_shapes[L.name] = []
            continue
        elif t == "Permute":
            order = [int(o) for o in m.msg("permute_param").all("order")]
            order += [a for a in range(len(x)) if a not in order]
            out = [x[o] for o in order]
        elif t == "Flatten":
            p = m.msg("flatten_param")
            a, e = int(p.get("axis", 1)) % len(x), int(p.get("end_axis", -1)) % len(x)
            out = x[:a] + [int(np.prod(x[a:e + 1]))] + x[e + 1:]
        elif t == "Reshape":
            p = m.msg("reshape_param")
            dims = [int(d) for d in p.msg("shape").all("dim")]
            axis, num_axes = int(p.get("axis", 0)), int(p.get("num_axes", -1))
            axis = axis % (len(x) + 1) if axis < 0 else axis
            end = len(x) if num_axes == -1 else axis + num_axes
            mid = [x[axis + i] if d == 0 else d for i, d in enumerate(dims)]
            out = x[:axis] + mid + x[end:]
            if -1 in out:
                known = int(np.prod([d for d in out if d != -1]))
                out[out.index(-1)] = int(np.prod(x)) // known
        elif t == "PriorBox":
            out = [1, 2, x[2] * x[3] * prior_count(m.msg("prior_box_param")) * 4]
        elif t == "DetectionOutput":
            out = [1, 1, -1, 7]
        else:
            raise ValueError("layer type %s (%s) is not handled" % (t, L.name))
        for top in L.tops:
            shapes[top] = out
        blob_shapes[L.name] = learned
    return shapes, blob_shapes


def producers(layers):
    """blob -> the last layer writing it (these head paths have no in-place layers)."""
    prod = {}
    for L in layers:
        for t in L.tops:
            prod[t] = L
    return prod


def head_convs(layers, blob):
    """Convolutions feeding `blob` through Permute / Flatten / Concat / Reshape / Softmax only."""
    prod, found, stack = producers(layers), [], [blob]
    while stack:
        b = stack.pop()
        L = prod.get(b)
        if L is None:
            continue
        if L.type == "Convolution":
            if L.name not in found:
                found.append(L.name)
        elif L.type in ("Permute", "Flatten", "Concat", "Reshape", "Softmax"):
            stack.extend(L.bottoms)
    return found


def detection_layer(layers):
    det = [L for L in layers if L.type == "DetectionOutput"]
    if len(det) != 1:
        raise ValueError("expected one DetectionOutput layer")
    return det[0]


# ---------------------------------------------------------------------------------------------------------
# caffemodel writer: protobuf wire format by hand
# ---------------------------------------------------------------------------------------------------------

def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, payload):
    """length-delimited field (wire type 2)."""
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def encode_blob(arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    shape = _field(1, b"".join(_varint(int(d)) for d in arr.shape))     # BlobShape.dim, packed int64
    return _field(7, shape) + _field(5, arr.tobytes())                  # BlobProto.shape, .data packed


def encode_net(name, layers):
    """layers: [(name, type, [arrays])] -> NetParameter bytes."""
    out = [_field(1, name.encode())]
    for lname, ltype, blobs in layers:
        body = _field(1, lname.encode()) + _field(2, ltype.encode())
        body += b"".join(_field(7, encode_blob(b)) for b in blobs)
        out.append(_field(100, body))
    return b"".join(out)


# ---------------------------------------------------------------------------------------------------------
# seeded weights and inputs
# ---------------------------------------------------------------------------------------------------------

def load_recipe(d):
    with open(os.path.join(d, "recipe.json")) as f:
        return json.load(f)


def rng_for(seed, what):
    return np.random.RandomState((int(seed) * 1000003 + zlib.crc32(what.encode())) & 0xFFFFFFFF)


def make_weights(d, recipe=None):
    """[(layer, type, [float32 arrays])] for the net in d, from d/deploy.prototxt and the recipe."""
    recipe = recipe or load_recipe(d)
    inputs, layers = load_net(os.path.join(d, "deploy.prototxt"))
    shapes, blob_shapes = infer_shapes(inputs, layers)
    det = detection_layer(layers)
    dp = det.m.msg("detection_output_param")
    num_classes = int(dp.get("num_classes"))
    loc_convs = set(head_convs(layers, det.bottoms[0]))
    conf_convs = set(head_convs(layers, det.bottoms[1]))
    seed = recipe["seed"]
    bn_var = recipe.get("bn_var", {})
    head_gain = recipe.get("head_gain", {})
    class_bias = np.asarray(recipe.get("class_bias", [0.0] * num_classes), dtype=np.float64)
    out = []
    for L in layers:
        shp = blob_shapes.get(L.name) or []
        if not shp:
            continue
        rng = rng_for(seed, L.name)
        t = L.type
        if t == "Convolution":
            w_shape = shp[0]
            fan_in = int(np.prod(w_shape[1:]))
            w = rng.randn(*w_shape) * math.sqrt(2.0 / fan_in)
            b = rng.randn(*shp[1]) * 0.1 if len(shp) > 1 else None
            if L.name in conf_convs or L.name in loc_convs:
                # head convs: per-layer gain (output RMS ~1, measured by calibration), then the global knobs
                g = float(head_gain.get(L.name, 1.0))
                has_bias = b is not None
                b = b if has_bias else np.zeros(w_shape[0])
                if L.name in conf_convs:
                    co = w_shape[0]
                    if co % num_classes:
                        raise ValueError("%s: %d outputs, not a multiple of %d classes" % (L.name, co, num_classes))
                    g *= float(recipe.get("conf_gain", 1.0))
                    w, b = w * g, b * g + np.tile(class_bias, co // num_classes)
                    if not has_bias and np.any(class_bias):
                        raise ValueError("%s has no bias for class_bias" % L.name)
                else:
                    g *= float(recipe.get("loc_gain", 1.0))
                    w, b = w * g, b * g
                b = b if has_bias else None
            blobs = [w] + ([b] if b is not None else [])
        elif t == "BatchNorm":
            c = shp[0][0]
            s2 = float(bn_var.get(L.name, 1.0))
            mean = rng.randn(c) * 0.1 * math.sqrt(s2)
            var = rng.uniform(0.7, 1.3, c) * s2
            blobs = [mean, var, np.ones(1)]
        elif t == "Scale":
            blobs = [rng.uniform(0.8, 1.2, shp[0])]
            if len(shp) > 1:
                blobs.append(rng.randn(*shp[1]) * 0.1)
        elif t == "Normalize":
            filler = L.m.msg("norm_param").msg("scale_filler")
            value = float(filler.get("value", 1.0)) if filler.items else 1.0
            if shp[0] == [1]:
                blobs = [np.full(1, value)]
            else:  # per channel: vary around the filler value so a wrong broadcast shows
                blobs = [value * rng.uniform(0.75, 1.25, shp[0])]
        else:
            blobs = [rng.randn(*s) * 0.1 for s in shp]
        out.append((L.name, t, [np.asarray(b, dtype=np.float32) for b in blobs]))
    return out


def write_weights(d, path, recipe=None):
    data = encode_net(os.path.basename(os.path.normpath(d)), make_weights(d, recipe))
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def make_inputs(d, recipe=None):
    recipe = recipe or load_recipe(d)
    inputs, layers = load_net(os.path.join(d, "deploy.prototxt"))
    shapes, _ = infer_shapes(inputs, layers)
    shape = list(shapes[recipe.get("input_blob", "data")])
    spec = recipe["input"]
    one = [1] + shape[1:]

    def draw(tag):
        rng = rng_for(recipe.get("input_seed", recipe["seed"]), tag)
        x = rng.uniform(spec["low"], spec["high"], size=one)
        if spec.get("integer"):
            x = np.floor(x)
        if spec.get("mean") is not None:
            x = x - np.asarray(spec["mean"], dtype=np.float64).reshape(1, -1, 1, 1)
        return x * spec.get("scale", 1.0)

    x1 = draw("input#1").astype(np.float32)
    x2 = np.concatenate([x1, draw("input#2").astype(np.float32)], axis=0)
    return x1, x2


# ---------------------------------------------------------------------------------------------------------
# PriorBox model (weiliu89/caffe ssd branch: note `int min_size_ = min_sizes_[s]`, sizes truncated to int)
# ---------------------------------------------------------------------------------------------------------

def prior_box(m, layer_hw, data_hw, int_sizes=True):
    p = m.msg("prior_box_param")
    lh, lw = layer_hw
    mins = [float(v) for v in p.all("min_size")]
    maxs = [float(v) for v in p.all("max_size")]
    if int_sizes:
        mins, maxs = [float(int(v)) for v in mins], [float(int(v)) for v in maxs]
    ars = aspect_ratios(p)
    if p.has("img_h") or p.has("img_w"):
        ih, iw = int(p.get("img_h")), int(p.get("img_w"))
    elif p.has("img_size"):
        ih = iw = int(p.get("img_size"))
    else:
        ih, iw = data_hw
    if p.has("step_h") or p.has("step_w"):
        sh, sw = float(p.get("step_h")), float(p.get("step_w"))
    elif p.has("step"):
        sh = sw = float(p.get("step"))
    else:
        sh, sw = np.float32(ih) / np.float32(lh), np.float32(iw) / np.float32(lw)
    off = float(p.get("offset", 0.5))
    sizes = []
    for s, mn in enumerate(mins):
        sizes.append((mn, mn))
        if maxs:
            sizes.append((math.sqrt(mn * maxs[s]),) * 2)
        for ar in ars[1:]:
            sizes.append((mn * math.sqrt(ar), mn / math.sqrt(ar)))
    wh = np.asarray(sizes, dtype=np.float64)
    cy, cx = np.meshgrid((np.arange(lh) + off) * np.float32(sh), (np.arange(lw) + off) * np.float32(sw), indexing="ij")
    cx, cy = cx[:, :, None].astype(np.float32), cy[:, :, None].astype(np.float32)
    bw, bh = wh[None, None, :, 0], wh[None, None, :, 1]
    boxes = np.stack([(cx - bw / 2.) / iw, (cy - bh / 2.) / ih, (cx + bw / 2.) / iw, (cy + bh / 2.) / ih], axis=-1)
    boxes = boxes.astype(np.float32).reshape(-1)
    if as_bool(p.get("clip", False)):
        boxes = np.clip(boxes, 0, 1)
    var = [float(v) for v in p.all("variance")] or [0.1]
    var = np.tile(np.asarray(var if len(var) == 4 else var * 4, dtype=np.float32), boxes.size // 4)
    return np.stack([boxes, var])[None]


# ---------------------------------------------------------------------------------------------------------
# DetectionOutput model (weiliu89/caffe ssd branch, CPU; plus OpenCV's clip) with margins
# ---------------------------------------------------------------------------------------------------------

class DetParams:
    def __init__(self, m):
        p = m.msg("detection_output_param")
        nms = p.msg("nms_param")
        self.num_classes = int(p.get("num_classes"))
        self.share_location = as_bool(p.get("share_location", True))
        self.background = int(p.get("background_label_id", 0))
        self.nms_threshold = float(nms.get("nms_threshold", 0.3))
        self.top_k = int(nms.get("top_k", -1))
        self.eta = float(nms.get("eta", 1.0))
        self.code_type = str(p.get("code_type", "CORNER"))
        self.variance_encoded = as_bool(p.get("variance_encoded_in_target", False))
        self.keep_top_k = int(p.get("keep_top_k", -1))
        self.has_threshold = p.has("confidence_threshold")
        self.confidence_threshold = float(p.get("confidence_threshold", -3.4028234663852886e38))
        self.clip = as_bool(p.get("clip", False))  # OpenCV's field; Caffe always decodes unclipped
        if self.eta != 1.0:
            raise ValueError("adaptive NMS (eta < 1) is not modelled")


def decode(loc, priors, var, code_type, variance_encoded, clip):
    """loc [..., 4], priors/var [P, 4] (broadcast on the prior axis) -> boxes, float32 like the layers."""
    f = np.float32
    loc = loc.astype(f)
    if code_type == "CORNER":
        if variance_encoded:
            b = priors + loc
        else:
            b = priors + var * loc
    elif code_type == "CENTER_SIZE":
        pw = priors[..., 2] - priors[..., 0]
        ph = priors[..., 3] - priors[..., 1]
        pcx = (priors[..., 0] + priors[..., 2]) / f(2)
        pcy = (priors[..., 1] + priors[..., 3]) / f(2)
        if variance_encoded:
            cx = loc[..., 0] * pw + pcx
            cy = loc[..., 1] * ph + pcy
            w = np.exp(loc[..., 2]) * pw
            h = np.exp(loc[..., 3]) * ph
        else:
            cx = var[..., 0] * loc[..., 0] * pw + pcx
            cy = var[..., 1] * loc[..., 1] * ph + pcy
            w = np.exp(var[..., 2] * loc[..., 2]) * pw
            h = np.exp(var[..., 3] * loc[..., 3]) * ph
        b = np.stack([cx - w / f(2), cy - h / f(2), cx + w / f(2), cy + h / f(2)], axis=-1)
    elif code_type == "CORNER_SIZE":
        pw = (priors[..., 2] - priors[..., 0])[..., None]
        ph = (priors[..., 3] - priors[..., 1])[..., None]
        scale = np.concatenate([pw, ph, pw, ph], axis=-1)
        b = priors + (loc if variance_encoded else var * loc) * scale
    else:
        raise ValueError("code_type %s" % code_type)
    b = b.astype(f)
    if clip:
        b = np.clip(b, 0, 1)
    return b


def box_size(b):
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    return np.where((w < 0) | (h < 0), 0.0, w.astype(np.float64) * h)


def iou_one_to_many(a, bs):
    """Caffe JaccardOverlap (normalized, no +1) of box a with boxes bs, in float64."""
    a = a.astype(np.float64)
    bs = bs.astype(np.float64).reshape(-1, 4)
    disjoint = (bs[:, 0] > a[2]) | (bs[:, 2] < a[0]) | (bs[:, 1] > a[3]) | (bs[:, 3] < a[1])
    iw = np.minimum(a[2], bs[:, 2]) - np.maximum(a[0], bs[:, 0])
    ih = np.minimum(a[3], bs[:, 3]) - np.maximum(a[1], bs[:, 1])
    inter = np.where(disjoint | (iw <= 0) | (ih <= 0), 0.0, iw * ih)
    union = box_size(a) + box_size(bs) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def detect(loc, conf, prior, dp, boxes=None):
    """Caffe's DetectionOutput on blobs loc [N, P*L*4], conf [N, P*C] (probabilities), prior [1, 2, P*4].

    Returns (rows, stats): rows [M, 7] in Caffe's output order (image, then class ascending, then score
    descending), stats: per image the counts and the margins of every decision."""
    n = loc.shape[0]
    C = dp.num_classes
    P = prior.shape[2] // 4
    pri = prior[0, 0].reshape(P, 4).astype(np.float32)
    # a [1, 1, P*4] prior blob (OpenCV's form for variance_encoded_in_target) has no variances: unused then
    var = prior[0, 1].reshape(P, 4).astype(np.float32) if prior.shape[1] > 1 else np.ones((P, 4), np.float32)
    nl = 1 if dp.share_location else C
    conf = conf.reshape(n, P, C)
    if boxes is None:
        boxes = decode(loc.reshape(n, P, nl, 4), pri[:, None, :], var[:, None, :], dp.code_type,
                       dp.variance_encoded, dp.clip)
    thr = dp.confidence_threshold
    rows, stats = [], []
    for i in range(n):
        st = {"candidates": 0, "score_margin": math.inf, "iou_margin": math.inf, "iou_compared": 0,
              "order_margin": math.inf, "top_k_cut_margin": None, "keep_top_k_cut_margin": None,
              "top_k_cut": False, "keep_top_k_cut": False, "nms_suppressed": 0}
        kept = {}
        for c in range(C):
            if c == dp.background:
                continue
            s = conf[i, :, c].astype(np.float64)
            if dp.has_threshold:
                st["score_margin"] = min(st["score_margin"], float(np.min(np.abs(s - thr))))
            cand = np.nonzero(s > thr)[0]
            order = cand[np.argsort(-s[cand], kind="stable")]
            st["candidates"] += len(order)
            ss = s[order]
            if dp.top_k > -1 and len(order) > dp.top_k:
                st["top_k_cut"] = True
                gap = float(ss[dp.top_k - 1] - ss[dp.top_k])
                st["top_k_cut_margin"] = gap if st["top_k_cut_margin"] is None else min(st["top_k_cut_margin"], gap)
                order, ss = order[:dp.top_k], ss[:dp.top_k]
            if len(ss) > 1:
                st["order_margin"] = min(st["order_margin"], float(np.min(ss[:-1] - ss[1:])))
            bx = boxes[i, :, 0 if dp.share_location else c]
            keep = []
            for idx in order:
                if keep:
                    ious = iou_one_to_many(bx[idx], bx[np.asarray(keep)])
                    st["iou_compared"] += len(ious)
                    st["iou_margin"] = min(st["iou_margin"], float(np.min(np.abs(ious - dp.nms_threshold))))
                    ok = bool(np.all(ious <= dp.nms_threshold))
                else:
                    ok = True
                if ok:
                    keep.append(idx)
            kept[c] = keep
            st["nms_suppressed"] += len(order) - len(keep)
        dets = [(conf[i, idx, c], c, idx) for c in sorted(kept) for idx in kept[c]]
        st["after_nms"] = len(dets)
        if dp.keep_top_k > -1 and len(dets) > dp.keep_top_k:
            st["keep_top_k_cut"] = True
            sc = np.sort(np.asarray([d[0] for d in dets], dtype=np.float64))[::-1]
            st["keep_top_k_cut_margin"] = float(sc[dp.keep_top_k - 1] - sc[dp.keep_top_k])
            top = sorted(dets, key=lambda d: -float(d[0]))[:dp.keep_top_k]
            new = {}
            for sc_, c, idx in top:
                new.setdefault(c, []).append(idx)
            kept = new
        st["detections"] = sum(len(v) for v in kept.values())
        for c in sorted(kept):
            for idx in kept[c]:
                b = boxes[i, idx, 0 if dp.share_location else c]
                rows.append([i, c, conf[i, idx, c]] + [float(v) for v in b])
        stats.append(st)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 7), stats


def margins_ok(stats):
    for st in stats:
        if st["score_margin"] < DELTA_SCORE or st["iou_margin"] < DELTA_IOU or st["order_margin"] < DELTA_ORDER:
            return False
        for k in ("top_k_cut_margin", "keep_top_k_cut_margin"):
            if st[k] is not None and st[k] < DELTA_SCORE:
                return False
    return True


def margin_quality(stats):
    """min over images of the margins in units of their deltas (bigger is safer)."""
    q = math.inf
    for st in stats:
        q = min(q, st["score_margin"] / DELTA_SCORE, st["iou_margin"] / DELTA_IOU, st["order_margin"] / DELTA_ORDER)
        for k in ("top_k_cut_margin", "keep_top_k_cut_margin"):
            if st[k] is not None:
                q = min(q, st[k] / DELTA_SCORE)
    return q


# ---------------------------------------------------------------------------------------------------------
# OpenCV
# ---------------------------------------------------------------------------------------------------------

def cv_forward(prototxt, caffemodel, x, names):
    import cv2
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.setInput(x, "data")
    outs = net.forward(names)
    return dict((n, np.array(o, dtype=np.float32, copy=True)) for n, o in zip(names, outs))


def strip_padding(det):
    """OpenCV's DetectionOutput top [1, 1, rows, 7] padded with all-zero rows -> the real rows."""
    rows = det.reshape(-1, 7)
    real = rows[np.any(rows != 0, axis=1)]
    return real.reshape(1, 1, -1, 7)


def softmax_last(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------
# calibration and fixtures
# ---------------------------------------------------------------------------------------------------------

def net_info(d):
    inputs, layers = load_net(os.path.join(d, "deploy.prototxt"))
    det = detection_layer(layers)
    dp = DetParams(det.m)
    prod = producers(layers)
    # the conf bottom of DetectionOutput is softmax(reshape(mbox_conf)) flattened: find the pre-softmax blob
    conf_raw = det.bottoms[1]
    chain = []
    while prod.get(conf_raw) is not None and prod[conf_raw].type in ("Flatten", "Softmax", "Reshape"):
        chain.append(prod[conf_raw].type)
        conf_raw = prod[conf_raw].bottoms[0]
    if "Softmax" not in chain:
        raise ValueError("the conf path has no Softmax")
    return inputs, layers, det, dp, conf_raw


def evaluate(loc, conf_logits, prior, dp, conf_gain_ratio, class_bias, boxes):
    n = loc.shape[0]
    C = dp.num_classes
    z = conf_logits.reshape(n, -1, C).astype(np.float64) * conf_gain_ratio + np.asarray(class_bias)
    prob = softmax_last(z).astype(np.float32)
    fg = [c for c in range(C) if c != dp.background]
    cand = np.sum(prob[:, :, fg] > dp.confidence_threshold, axis=(1, 2))
    if np.min(cand) < MIN_DET or np.max(cand) > MAX_CANDIDATES:
        return [{"detections": -1}] * n
    _, stats = detect(loc, prob.reshape(n, -1), prior, dp, boxes=boxes)
    return stats


def head_outputs(d, recipe, x, layers, det, conf_raw, tmp):
    model = os.path.join(tmp, "w.caffemodel")
    write_weights(d, model, recipe)
    heads = head_convs(layers, det.bottoms[0]) + head_convs(layers, det.bottoms[1])
    names = [det.bottoms[0], conf_raw, det.bottoms[2]] + heads
    return cv_forward(os.path.join(d, "deploy.prototxt"), model, x, names), heads


def calibrate(d, recipe, log):
    """Search the seed (from recipe['seed'] on), the conf gain and the class biases; returns the new recipe.

    1. head_gain: each loc / conf head conv scaled so its output RMS is 1 (they are leaves: exact)
    2. with conf_gain 1 and class_bias 0, the conf logits z0 and the decoded boxes come from OpenCV; the final
       logits are conf_gain * z0 + class_bias, so the search over (gain, background bias) runs in numpy
    3. the first seed with a (gain, bias) meeting the detection counts and all margins wins (the largest
       margin among those)."""
    inputs, layers, det, dp, conf_raw = net_info(d)
    C = dp.num_classes
    tmp = tempfile.mkdtemp(prefix="ssdref-")
    try:
        overall = None
        target = recipe.get("target_quality", 2.0)
        for attempt in range(recipe.get("max_seed_tries", 40)):
            r = dict(recipe)
            r["seed"] = recipe["seed"] + attempt
            r["conf_gain"], r["class_bias"], r["head_gain"] = 1.0, [0.0] * C, {}
            x1, x2 = make_inputs(d, r)
            o, heads = head_outputs(d, dict(r, loc_gain=1.0), x2, layers, det, conf_raw, tmp)
            r["head_gain"] = dict((h, float("%.4g" % (1.0 / max(1e-6, float(np.sqrt(np.mean(
                o[h].astype(np.float64) ** 2))))))) for h in heads)
            o, _ = head_outputs(d, r, x2, layers, det, conf_raw, tmp)
            loc, logits, prior = o[det.bottoms[0]], o[conf_raw], o[det.bottoms[2]]
            if not np.all(np.isfinite(logits)) or not np.all(np.isfinite(loc)):
                log("seed %d: non-finite blobs" % r["seed"])
                continue
            P = prior.shape[2] // 4
            nl = 1 if dp.share_location else C
            var = prior[0, 1] if prior.shape[1] > 1 else np.ones_like(prior[0, 0])
            boxes = decode(loc.reshape(loc.shape[0], P, nl, 4), prior[0, 0].reshape(P, 4)[:, None, :],
                           var.reshape(P, 4)[:, None, :], dp.code_type, dp.variance_encoded, dp.clip)
            best = None
            need_cut = recipe.get("require_cuts", [])
            grid = [0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0] if dp.background >= 0 else list(np.round(np.arange(0.5, 6.0, 0.05), 4))
            for g in recipe.get("conf_gain_grid", grid):
                biases = np.round(np.arange(-1.0, 10.0, 0.05), 4) if dp.background >= 0 else [0.0]
                for bb in biases:
                    cb = [0.0] * C
                    if dp.background >= 0:
                        cb[dp.background] = float(bb)
                    st = evaluate(loc, logits, prior, dp, g, cb, boxes)
                    counts = [s_["detections"] for s_ in st]
                    if min(counts) < MIN_DET or max(counts) > MAX_DET:
                        continue
                    if "top_k" in need_cut and not any(s_["top_k_cut"] for s_ in st):
                        continue
                    if "keep_top_k" in need_cut and not any(s_["keep_top_k_cut"] for s_ in st):
                        continue
                    if recipe.get("require_suppression", True) and not any(s_["nms_suppressed"] for s_ in st):
                        continue
                    if not margins_ok(st):
                        continue
                    q = margin_quality(st)
                    # prefer: margins >= target, then the most NMS work and detections, then the margins
                    key = (min(q, target), sum(s_["nms_suppressed"] for s_ in st), min(counts), q)
                    if best is None or key > best[0]:
                        best = (key, g, cb, counts)
            if best is None:
                log("seed %d: no (gain, bias) meets the targets" % r["seed"])
                continue
            (_, supp, _, q), g, cb, counts = best
            r["conf_gain"], r["class_bias"] = g, cb
            log("seed %d: conf_gain %g class_bias %s -> detections %s, suppressed by NMS %d (margin quality %.2f)" %
                (r["seed"], g, cb, counts, supp, q))
            if overall is None or best[0] > overall[0]:
                overall = (best[0], r)
            if q >= target:
                break
        if overall is not None:
            return overall[1]
        raise SystemExit("%s: calibration failed" % d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def jsonable(v):
    if isinstance(v, float) and math.isinf(v):
        return None
    if isinstance(v, dict):
        return dict((k, jsonable(x)) for k, x in v.items())
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def compare_rows(cv_rows, np_rows):
    """OpenCV's rows vs the numpy Caffe model: same detections (as sets), boxes/scores within 1e-5."""
    a = cv_rows.reshape(-1, 7)
    b = np_rows.reshape(-1, 7)
    if a.shape != b.shape:
        return "count differs: OpenCV %d, model %d" % (a.shape[0], b.shape[0])
    ka = a[np.lexsort((-a[:, 2], a[:, 1], a[:, 0]))]
    kb = b[np.lexsort((-b[:, 2], b[:, 1], b[:, 0]))]
    err = float(np.max(np.abs(ka - kb))) if len(a) else 0.0
    if err > 1e-4:
        return "values differ (max abs %.3g)" % err
    same_order = bool(len(a) == 0 or np.max(np.abs(a - b)) <= 1e-4)
    return {"max_abs_diff": err, "same_order_as_caffe": same_order}


def reference(d, do_calibrate, log=print):
    import cv2
    d = os.path.abspath(d)
    name = os.path.relpath(d, FIXTURES)
    recipe = load_recipe(d)
    if do_calibrate:
        recipe = calibrate(d, recipe, lambda s: log("  %s: %s" % (name, s)))
        with open(os.path.join(d, "recipe.json"), "w") as f:
            json.dump(recipe, f, indent=1)
            f.write("\n")
    inputs, layers, det, dp, conf_raw = net_info(d)
    proto = os.path.join(d, "deploy.prototxt")
    extra = []
    if recipe.get("save_tops_of"):
        kinds = set(recipe["save_tops_of"])
        extra = [L.tops[0] for L in layers if L.type in kinds]
        for L in layers:
            if L.type in kinds and L.tops[0] != L.name:
                raise ValueError("%s: top %s differs from the layer name" % (L.name, L.tops[0]))
    extra += [b for b in recipe.get("save_blobs", []) if b not in extra]
    priorboxes = [L for L in layers if L.type == "PriorBox"]
    shapes, _ = infer_shapes(inputs, layers)
    names = [det.name] + list(det.bottoms) + extra
    names += [L.tops[0] for L in priorboxes if L.tops[0] not in names]
    for f in os.listdir(d):
        if f.startswith(("output_b", "input_b")) and f.endswith(".npy"):
            os.remove(os.path.join(d, f))
    tmp = tempfile.mkdtemp(prefix="ssdref-")
    try:
        model = os.path.join(tmp, "weights.caffemodel")
        nbytes = write_weights(d, model, recipe)
        x1, x2 = make_inputs(d, recipe)
        np.save(os.path.join(d, "input_b1.npy"), x1)
        np.save(os.path.join(d, "input_b2.npy"), x2)
        with open(model, "rb") as f:
            model_sha = hashlib.sha256(f.read()).hexdigest()
        summary = {"fixture": name, "source": recipe.get("source"), "oracle": "OpenCV DNN (cv2.dnn.readNetFromCaffe)",
                   "opencv": cv2.__version__, "numpy": np.__version__,
                   "generator": "scripts/ssd-reference.py", "seed": recipe["seed"], "recipe": recipe,
                   "caffemodel_bytes": nbytes, "caffemodel_sha256": model_sha,
                   "input_sha256": {"input_b1.npy": file_sha(os.path.join(d, "input_b1.npy")),
                                    "input_b2.npy": file_sha(os.path.join(d, "input_b2.npy"))}, "deltas": {"score": DELTA_SCORE, "iou": DELTA_IOU, "order": DELTA_ORDER},
                   "detection_output": {"layer": det.name, "bottoms": det.bottoms, "top": det.tops[0],
                                        "params": vars(dp)},
                   "files": {}, "batches": {}}
        for tag, x in (("b1", x1), ("b2", x2)):
            o = cv_forward(proto, model, x, names)
            raw = o[det.name]
            rows = strip_padding(raw)
            files = {}
            fn = "output_%s__%s.npy" % (tag, sanitize(det.tops[0]))
            np.save(os.path.join(d, fn), rows)
            files[det.tops[0]] = fn
            for b in list(det.bottoms) + extra:
                fn = "output_%s__%s.npy" % (tag, sanitize(b))
                np.save(os.path.join(d, fn), o[b])
                files[b] = fn
            if tag == "b1":  # every PriorBox vs the Caffe (ssd branch) model of it
                pb = {}
                for L in priorboxes:
                    ref = prior_box(L.m, shapes[L.bottoms[0]][2:4], shapes[L.bottoms[1]][2:4])
                    got = o[L.tops[0]]
                    pb[L.name] = float(np.max(np.abs(ref - got))) if ref.shape == got.shape else "shape %s vs %s" % (
                        list(got.shape), list(ref.shape))
                    if isinstance(pb[L.name], str) or pb[L.name] > 1e-5:
                        raise SystemExit("%s: PriorBox %s differs from the Caffe model: %s" % (name, L.name, pb[L.name]))
                summary["priorbox_vs_caffe_model_max_abs_diff"] = pb
            loc, conf, prior = (o[b] for b in det.bottoms)
            model_rows, stats = detect(loc, conf, prior, dp)
            cmp = compare_rows(rows, model_rows)
            if isinstance(cmp, str):
                raise SystemExit("%s %s: OpenCV and the Caffe model disagree: %s" % (name, tag, cmp))
            per_img = [int(np.sum(rows.reshape(-1, 7)[:, 0] == i)) for i in range(x.shape[0])]
            ok = margins_ok(stats) and all(MIN_DET <= c <= MAX_DET for c in per_img)
            summary["files"][tag] = files
            summary["batches"][tag] = {
                "input_shape": list(x.shape), "opencv_raw_output_shape": list(raw.shape),
                "detections_per_image": per_img, "margins_ok": bool(ok),
                "opencv_vs_caffe_model": cmp, "per_image": [jsonable(s) for s in stats]}
            if not ok:
                log("  WARNING %s %s: margins/counts not met: %s" % (name, tag, stats))
            log("  %s %s: detections per image %s, raw %s" % (name, tag, per_img, list(raw.shape)))
        summary["fixture_notes"] = recipe.get("notes", [])
        summary["opencv_vs_caffe"] = OPENCV_VS_CAFFE
        with open(os.path.join(d, "summary.json"), "w") as f:
            json.dump(jsonable(summary), f, indent=1)
            f.write("\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fixture_dirs():
    out = []
    for root, dirs, files in os.walk(FIXTURES):
        dirs.sort()
        if "deploy.prototxt" in files and "recipe.json" in files:
            out.append(root)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights", help="write the seeded caffemodel of the net in DIR")
    w.add_argument("dir")
    w.add_argument("out")
    i = sub.add_parser("inputs", help="write input_b1.npy and input_b2.npy of the net in DIR to OUTDIR")
    i.add_argument("dir")
    i.add_argument("outdir")
    r = sub.add_parser("reference", help="weights + OpenCV -> the fixtures in DIR")
    r.add_argument("dir")
    r.add_argument("--calibrate", action="store_true", help="search seed/gain/bias and rewrite recipe.json")
    a = sub.add_parser("all", help="reference for every fixture dir under test/fixtures/ssd")
    a.add_argument("--calibrate", action="store_true")
    args = ap.parse_args()
    if args.cmd == "weights":
        n = write_weights(args.dir, args.out)
        print("%s: %d bytes" % (args.out, n))
    elif args.cmd == "inputs":
        os.makedirs(args.outdir, exist_ok=True)
        x1, x2 = make_inputs(args.dir)
        np.save(os.path.join(args.outdir, "input_b1.npy"), x1)
        np.save(os.path.join(args.outdir, "input_b2.npy"), x2)
    elif args.cmd == "reference":
        reference(args.dir, args.calibrate)
    else:
        for d in fixture_dirs():
            print(os.path.relpath(d, ROOT), flush=True)
            reference(d, args.calibrate)


if __name__ == "__main__":
    sys.exit(main())
