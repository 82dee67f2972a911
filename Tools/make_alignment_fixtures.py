#!/usr/bin/env python3
"""Write the face-alignment reference cases in Tests/Fixtures/alignment.

Each case has a textured test photo (PNG) and five landmarks. It stores the 2x3 matrix that
scikit-image's SimilarityTransform estimates from them onto insightface's ArcFace template,
scaled for the crop size as insightface's estimate_norm scales it. It also stores the crop that
cv2.warpAffine makes with that matrix (bilinear, black border), as insightface's norm_crop does. Landmark sets that should be
rejected (mirrored, collapsed, random) are listed with their fit residuals.

Everything is generated from fixed seeds, so rerunning with the versions pinned in
Tools/requirements.txt rewrites identical files.

Usage: python Tools/make_alignment_fixtures.py [OUTPUT_DIR]
"""

import json
import math
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import skimage
from skimage.transform import SimilarityTransform

# insightface python-package/insightface/utils/face_align.py, arcface_dst (float32 there too).
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32)


def template(crop_size):
    """The template for a crop size, scaled as insightface's estimate_norm scales it."""
    if crop_size % 112 == 0:
        ratio = float(crop_size) / 112.0
        shift_x = 0.0
    else:
        ratio = float(crop_size) / 128.0
        shift_x = 8.0 * ratio
    dst = ARCFACE_DST * ratio
    dst[:, 0] += shift_x
    return dst


def fit(landmarks, crop_size):
    """The skimage least-squares similarity matrix and its RMS residual in crop pixels."""
    dst = template(crop_size)
    tform = SimilarityTransform()
    with warnings.catch_warnings():
        # scikit-image 0.26 deprecates estimate() in favour of from_estimate(); insightface
        # still calls estimate(), and both compute the same fit.
        warnings.simplefilter("ignore", FutureWarning)
        tform.estimate(landmarks, dst)
    matrix = tform.params[0:2, :]
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    rms = float(np.sqrt(np.mean(np.sum((mapped - dst) ** 2, axis=1))))
    return matrix, rms


def textured_photo(width, height, seed):
    """Return a smooth colour pattern with fine detail and mild noise, in BGR order as cv2 stores images."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for c in range(3):
        fx, fy = rng.uniform(0.02, 0.12, size=2)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(fx * x + phase) * np.cos(fy * y - phase)
        checker = ((x // (5 + 3 * c) + y // (7 + 2 * c)) % 2) * 40.0
        ramp = 60.0 * (x / width) + 40.0 * (y / height)
        noise = rng.normal(0, 6, size=(height, width))
        channels.append(90 + 70 * wave + checker + ramp + noise)
    return np.clip(np.stack(channels, axis=-1), 0, 255).round().astype(np.uint8)


def face_landmarks(center, eye_distance, angle_degrees, jitter, rng):
    """Template landmarks scaled, turned by `angle_degrees` and moved to `center`, plus jitter."""
    points = ARCFACE_DST.astype(np.float64) - ARCFACE_DST.mean(axis=0)
    scale = eye_distance / (ARCFACE_DST[1, 0] - ARCFACE_DST[0, 0])
    theta = math.radians(angle_degrees)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    points = (points * scale) @ rotation.T + np.asarray(center, dtype=np.float64)
    points += rng.uniform(-jitter, jitter, size=points.shape)
    return np.round(points, 3)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "alignment")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261204)

    photos = {"texture_a.png": textured_photo(256, 192, 1), "texture_b.png": textured_photo(160, 224, 2)}
    for name, image in photos.items():
        cv2.imwrite(str(out / name), image)

    # name, photo, centre, eye distance (px), rotation (deg), jitter (px), crop size
    specs = [
        ("frontal", "texture_a.png", (128, 96), 40, 0, 1.0, 112),
        ("rotated_25", "texture_a.png", (120, 100), 45, 25, 1.0, 112),
        ("rotated_minus_70", "texture_b.png", (80, 110), 38, -70, 1.0, 112),
        ("upside_down", "texture_b.png", (75, 120), 30, 180, 0.5, 112),
        ("small_face", "texture_a.png", (60, 50), 9, 8, 0.3, 112),
        ("large_face", "texture_b.png", (82, 112), 110, -5, 2.0, 112),
        ("left_border", "texture_a.png", (8, 90), 36, 0, 1.0, 112),
        ("bottom_right_corner", "texture_b.png", (150, 215), 30, 15, 1.0, 112),
        ("outside_top", "texture_a.png", (128, -20), 36, 0, 1.0, 112),
        ("crop_224", "texture_a.png", (130, 90), 60, 10, 1.0, 224),
        ("crop_128", "texture_b.png", (78, 115), 42, -12, 1.0, 128),
    ]
    cases = []
    for name, photo, center, eye_distance, angle, jitter, crop_size in specs:
        landmarks = face_landmarks(center, eye_distance, angle, jitter, rng)
        matrix, rms = fit(landmarks, crop_size)
        crop = cv2.warpAffine(photos[photo], matrix, (crop_size, crop_size), borderValue=0.0)
        crop_name = f"{name}_{crop_size}.png"
        cv2.imwrite(str(out / crop_name), crop)
        cases.append({
            "name": name,
            "photo": photo,
            "crop_size": crop_size,
            "landmarks_xy": landmarks.tolist(),
            "similarity_transform_2x3": matrix.tolist(),
            "rms_residual": rms,
            "aligned": crop_name,
        })

    # Landmark sets that alignment must reject, with the residual skimage's fit leaves.
    frontal = face_landmarks((128, 96), 40, 0, 0.0, rng)
    mirrored = frontal[[1, 0, 2, 4, 3]]
    random_points = np.round(rng.uniform(0, 200, size=(5, 2)), 3)
    collapsed = np.repeat(frontal[2:3], 5, axis=0)
    rejected = []
    for name, landmarks in [("eyes_and_mouth_swapped", mirrored), ("random", random_points),
                            ("all_equal", collapsed)]:
        entry = {"name": name, "landmarks_xy": landmarks.tolist()}
        if name != "all_equal":
            entry["rms_residual"] = fit(landmarks, 112)[1]
        rejected.append(entry)

    record = {
        "generator": "Tools/make_alignment_fixtures.py",
        "opencv": cv2.__version__,
        "scikit_image": skimage.__version__,
        "numpy": np.__version__,
        "landmark_order": ["eye on the image's left", "eye on the image's right", "nose tip",
                           "mouth corner on the image's left", "mouth corner on the image's right"],
        "cases": cases,
        "rejected": rejected,
    }
    (out / "cases.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {len(cases)} cases and {len(rejected)} rejected sets to {out}")


if __name__ == "__main__":
    main()
