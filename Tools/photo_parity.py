#!/usr/bin/env python3
"""Embed a photo with five landmarks the way insightface does, and compare with the Swift engine.

The Python side is insightface's pipeline: cv2.imread (BGR), scikit-image's least-squares
SimilarityTransform onto the ArcFace template (insightface's estimate_norm), cv2.warpAffine
to 112x112 with a black border (norm_crop), BGR to RGB, (v - 127.5) / 127.5, NCHW float32,
onnxruntime on the ONNX graph. It reads the Swift result (one JSON line from
`auraface embed --landmarks`) and prints the cosine of the two L2-normalized embeddings,
the largest difference between the two crops and the two alignment matrices.

Usage: photo_parity.py MODEL.onnx PHOTO X1,Y1,...,X5,Y5 SWIFT.json SWIFT_CROP.png [MIN_COSINE]
Exits 1 when the cosine is below MIN_COSINE (default 0.9999).
"""

import json
import sys
import warnings

import cv2
import numpy as np
import onnxruntime as ort
from skimage.transform import SimilarityTransform

# insightface python-package/insightface/utils/face_align.py, arcface_dst.
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32)


def main(argv):
    if len(argv) not in (6, 7):
        print(__doc__, file=sys.stderr)
        return 2
    model_path, photo_path, landmarks_text, swift_json, swift_crop_path = argv[1:6]
    min_cosine = float(argv[6]) if len(argv) == 7 else 0.9999
    landmarks = np.array([float(v) for v in landmarks_text.split(",")], dtype=np.float64).reshape(5, 2)

    image = cv2.imread(photo_path, cv2.IMREAD_COLOR)
    if image is None:
        print(f"cannot read {photo_path}", file=sys.stderr)
        return 1
    tform = SimilarityTransform()
    with warnings.catch_warnings():
        # scikit-image 0.26 deprecates estimate() in favour of from_estimate(); insightface
        # still calls estimate(), and both compute the same fit.
        warnings.simplefilter("ignore", FutureWarning)
        tform.estimate(landmarks, ARCFACE_DST)
    matrix = tform.params[0:2, :]
    crop = cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0)
    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)
    x = ((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None].astype(np.float32)

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    reference = output[0].astype(np.float64)
    reference /= np.linalg.norm(reference)

    with open(swift_json) as handle:
        record = json.loads(handle.readline())
    swift = np.array(record["embedding"], dtype=np.float64)
    cosine = float(swift @ reference)

    swift_crop = cv2.imread(swift_crop_path, cv2.IMREAD_COLOR)
    crop_difference = int(np.abs(swift_crop.astype(int) - crop.astype(int)).max())
    exact = float((swift_crop == crop).mean())
    matrix_difference = float(np.abs(np.array(record["matrix"]) - matrix).max())

    print(f"opencv {cv2.__version__}, onnxruntime {ort.__version__}")
    print(f"matrix: max |swift - skimage| = {matrix_difference:.2e}")
    print(f"crop: max |swift - cv2.warpAffine| = {crop_difference} grey levels, "
          f"{exact * 100:.3f}% of samples equal")
    print(f"cosine(swift, insightface pipeline) = {cosine:.9f} (required >= {min_cosine})")
    return 0 if cosine >= min_cosine else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
