#!/usr/bin/env python3
"""Check `auraface eval` against an independent NumPy + onnxruntime run of the same protocol.

For each .bin set, this script loads the pickle as InsightFace's load_bin does
(pickle.load(encoding='bytes')), decodes each image with Pillow to RGB, mirrors it left to
right, feeds both to the ONNX model with onnxruntime ((v - 127.5) / 127.5, NCHW float32), and
runs the verification protocol of InsightFace's recognition/arcface_torch/eval/verification.py
in NumPy: embeddings of an image and its mirror are added and L2-normalized, distances are
squared Euclidean, 10 folds without shuffling, thresholds np.arange(0, 4, 0.01) for accuracy
and np.arange(0, 4, 0.001) for VAL@FAR=1e-3.

It then compares the cells of auraface's table with the same values formatted the same way:
accuracy mean and std, per-fold thresholds, VAL mean and std and FAR must match to the last
printed digit. The mean norm must agree within 1e-3 relative (engine vs onnxruntime float32).

Usage: eval_check.py MODEL.onnx AURAFACE_OUTPUT.txt FILE.bin...
Exit status 0 when every set matches, 1 otherwise.
"""

import hashlib
import io
import os
import pickle
import sys

import numpy as np
import onnxruntime
from PIL import Image


def load_set(path):
    with open(path, "rb") as file:
        images, issame = pickle.load(file, encoding="bytes")
    pixels = []
    for data in images:
        image = Image.open(io.BytesIO(bytes(data))).convert("RGB")
        pixels.append(np.asarray(image, dtype=np.uint8))
    return np.stack(pixels), np.asarray(issame, dtype=bool)


def raw_embeddings(session, pixels, batch_size=64):
    """Run the model on [N, H, W, 3] uint8 images and return [N, D] float32 embeddings."""
    name = session.get_inputs()[0].name
    outputs = []
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start:start + batch_size].astype(np.float32)
        x = ((batch - 127.5) / 127.5).transpose(0, 3, 1, 2).astype(np.float32)
        (output,) = session.run(None, {name: np.ascontiguousarray(x)})
        outputs.append(output)
    return np.concatenate(outputs)


def folds(count, fold_count=10):
    """Contiguous index ranges as sklearn's KFold(shuffle=False) makes them."""
    sizes = [count // fold_count + (1 if i < count % fold_count else 0) for i in range(fold_count)]
    start = 0
    for size in sizes:
        test = np.arange(start, start + size)
        train = np.concatenate([np.arange(0, start), np.arange(start + size, count)])
        yield train, test
        start += size


def accuracy(threshold, dist, same):
    predict = np.less(dist, threshold)
    tp = np.sum(predict & same)
    tn = np.sum(~predict & ~same)
    return float(tp + tn) / dist.size


def accuracies(thresholds, dist, same):
    """Compute accuracy() for every threshold at once: one row of comparisons per threshold."""
    predict = np.less(dist[None, :], thresholds[:, None])
    tp = np.sum(predict & same[None, :], axis=1)
    tn = np.sum(~predict & ~same[None, :], axis=1)
    return (tp + tn).astype(np.float64) / dist.size


def rates(threshold, dist, same):
    predict = np.less(dist, threshold)
    tp = np.sum(predict & same)
    fp = np.sum(predict & ~same)
    return float(tp) / float(np.sum(same)), float(fp) / float(np.sum(~same))


def false_accept_rates(thresholds, dist, same):
    """Compute the FAR of rates() for every threshold at once."""
    fp = np.sum(np.less(dist[None, :], thresholds[:, None]) & ~same[None, :], axis=1)
    return fp.astype(np.float64) / float(np.sum(~same))


def slinear_threshold(far, thresholds, target):
    """Evaluate scipy.interpolate.interp1d(far, thresholds, kind='slinear') at target.

    far is non-decreasing. SciPy builds a degree-1 B-spline with knots [x0, x0..xn, xn] and
    evaluates it on the interval [x_m, x_m+1] where m is the last index with x_m <= target,
    capped at n - 2. Its basis weights are 0 when x_m == x_m+1.
    """
    m = int(np.searchsorted(far, target, side="right")) - 1
    m = min(max(m, 0), len(far) - 2)
    xa, xb = far[m], far[m + 1]
    if xb == xa:
        return 0.0
    w = 1.0 / (xb - xa)
    return thresholds[m] * (w * (xb - target)) + thresholds[m + 1] * (w * (target - xa))


def protocol(embeddings, issame):
    e1, e2 = embeddings[0::2], embeddings[1::2]
    dist = np.sum(np.square(e1 - e2), 1)

    thresholds = np.arange(0, 4, 0.01)
    fold_accuracy, fold_threshold = [], []
    for train, test in folds(len(issame)):
        train_accuracy = accuracies(thresholds, dist[train], issame[train])
        best = thresholds[int(np.argmax(train_accuracy))]
        fold_threshold.append(best)
        fold_accuracy.append(accuracy(best, dist[test], issame[test]))

    val_thresholds = np.arange(0, 4, 0.001)
    val, far = [], []
    for train, test in folds(len(issame)):
        far_train = false_accept_rates(val_thresholds, dist[train], issame[train])
        if np.max(far_train) >= 1e-3:
            threshold = slinear_threshold(far_train, val_thresholds, 1e-3)
        else:
            threshold = 0.0
        fold_val, fold_far = rates(threshold, dist[test], issame[test])
        val.append(fold_val)
        far.append(fold_far)

    fold_accuracy = np.asarray(fold_accuracy)
    return {
        "accuracy": "%.5f ± %.5f" % (np.mean(fold_accuracy), np.std(fold_accuracy)),
        "thresholds": fold_threshold,
        "val": "%.5f ± %.5f" % (np.mean(val), np.std(val)),
        "far": "%.5f" % np.mean(far),
    }


def threshold_cell(thresholds):
    cells = ["%.2f" % t for t in thresholds]
    return cells[0] if len(set(cells)) == 1 else ",".join(cells)


def parse_table(text):
    # Columns are separated by two or more spaces, and cells contain single spaces at most.
    def cells(line):
        return [cell.strip() for cell in line.split("  ") if cell.strip()]

    lines = [line for line in text.splitlines() if line.strip()]
    header = cells(lines[0])
    rows = {}
    for line in lines[1:]:
        values = cells(line)
        rows[values[0]] = dict(zip(header, values))
    return rows


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model, table_path, bins = argv[0], argv[1], argv[2:]
    with open(table_path, encoding="utf-8") as file:
        rows = parse_table(file.read())
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])

    failures = 0
    embedded = {}  # Sets with the same images (other pickle layouts) are embedded once.
    for path in bins:
        name = os.path.splitext(os.path.basename(path))[0]
        pixels, issame = load_set(path)
        key = hashlib.sha256(pixels.tobytes()).hexdigest()
        if key not in embedded:
            embedded[key] = (
                raw_embeddings(session, pixels).astype(np.float64),
                raw_embeddings(session, pixels[:, :, ::-1, :]).astype(np.float64),
            )
        original, mirrored = embedded[key]
        combined = original + mirrored
        combined /= np.linalg.norm(combined, axis=1, keepdims=True)
        expected = protocol(combined, issame)
        norms = np.concatenate([np.linalg.norm(original, axis=1), np.linalg.norm(mirrored, axis=1)])
        expected_norm = float(np.mean(norms))

        row = rows.get(name)
        if row is None:
            print(f"{name}: missing from auraface's table")
            failures += 1
            continue
        checks = [
            ("accuracy", row["accuracy"], expected["accuracy"]),
            ("threshold", row["threshold"], threshold_cell(expected["thresholds"])),
            ("VAL@FAR=1e-3", row["VAL@FAR=1e-3"], expected["val"]),
            ("FAR", row["FAR"], expected["far"]),
        ]
        for label, actual, expected_text in checks:
            status = "ok" if actual == expected_text else "MISMATCH"
            failures += status != "ok"
            print(f"{name:20s} {label:13s} auraface {actual:28s} numpy {expected_text:28s} {status}")
        actual_norm = float(row["mean norm"])
        relative = abs(actual_norm - expected_norm) / expected_norm
        status = "ok" if relative <= 1e-3 else "MISMATCH"
        failures += status != "ok"
        print(f"{name:20s} {'mean norm':13s} auraface {actual_norm:<28.4f} numpy {expected_norm:<28.4f} {status}")
    print("all sets match" if failures == 0 else f"{failures} mismatches")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
