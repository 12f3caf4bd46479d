#!/usr/bin/env python3
"""The face detector worked example's sample image and expected detections, with OpenCV's DNN module as the oracle.

  .venv-opencv/bin/python examples/face-detector/make-example.py DEPLOY.prototxt WEIGHTS.caffemodel [OUTDIR]

OpenCV's face detector (samples/dnn/face_detector: res10_300x300 SSD) as OpenCV's own sample runs it:
cv2.dnn.blobFromImage(image, 1.0, (300, 300), (104, 177, 123)) -- the whole image resized to 300x300, BGR, that mean,
scale 1 -- which is what the modelship server's /detect does with MODELSHIP_PREPROCESS={"mean": [104, 177, 123]}.

Writes OUTDIR/sample.png (drawn here: a 480x360 picture of four cartoon faces on colour waves, the same bytes for the
same OpenCV and numpy) unless it exists, and OUTDIR/expected-detections.json: OpenCV's detections with a score of at
least THRESHOLD (0.5), in pixels of the sample image, rounded to a tenth of a pixel. Refuses when a score lies within
MARGIN (0.02) of the threshold: a detection that near the edge could come and go with a JPEG decoder or a resize.

The weights in this repository are seeded, not trained (test/fixtures/ssd/res10_300x300, made by
`scripts/ssd-reference.py weights`): the detections are where those weights fire, not where the faces are. With the
trained res10_300x300_ssd_iter_140000.caffemodel the same commands give the real faces.
"""
import json
import os
import sys

import cv2
import numpy as np

THRESHOLD = 0.5
MARGIN = 0.02
MEAN = (104.0, 177.0, 123.0)
SEED = 91


def draw_sample(seed=SEED, w=480, h=360):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = 128 + 60 * np.sin(x / (20 + 10 * c) + rng.rand() * 6) * np.cos(y / (25 + 7 * c) + rng.rand() * 6)
    for _ in range(4):
        cx, cy = rng.randint(60, w - 60), rng.randint(60, h - 60)
        ax, ay = rng.randint(25, 60), rng.randint(35, 75)
        col = [int(v) for v in rng.randint(40, 230, 3)]
        cv2.ellipse(img, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, col, -1)
        cv2.circle(img, (int(cx - ax // 3), int(cy - ay // 4)), int(max(3, ax // 6)), (20, 20, 20), -1)
        cv2.circle(img, (int(cx + ax // 3), int(cy - ay // 4)), int(max(3, ax // 6)), (20, 20, 20), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    deploy, weights = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) == 4 else os.path.dirname(os.path.abspath(__file__))
    sample = os.path.join(out, "sample.png")
    if not os.path.exists(sample):
        cv2.imwrite(sample, draw_sample())
    img = cv2.imread(sample)  # BGR, as the net was trained
    h, w = img.shape[:2]
    net = cv2.dnn.readNetFromCaffe(deploy, weights)
    net.setInput(cv2.dnn.blobFromImage(img, 1.0, (300, 300), MEAN, swapRB=False, crop=False))
    rows = net.forward()[0, 0]
    near = [float(r[2]) for r in rows if abs(r[2] - THRESHOLD) < MARGIN]
    if near:
        sys.exit(f"scores {near} lie within {MARGIN} of the threshold {THRESHOLD}: pick another sample image")
    expected = [
        {"label": int(r[1]), "box": [round(float(v), 1) for v in (r[3] * w, r[4] * h, r[5] * w, r[6] * h)], "score": round(float(r[2]), 4)}
        for r in rows
        if r[2] >= THRESHOLD
    ]
    with open(os.path.join(out, "expected-detections.json"), "w") as f:
        f.write("[\n" + ",\n".join("  " + json.dumps(d) for d in expected) + "\n]\n")
    below = max([float(r[2]) for r in rows if r[2] < THRESHOLD], default=0.0)
    print(f"{sample} ({w}x{h}): {len(expected)} detections with score >= {THRESHOLD} (lowest {min(d['score'] for d in expected) if expected else '-'}, highest below {below:.4f}); OpenCV {cv2.__version__}")


if __name__ == "__main__":
    main()
