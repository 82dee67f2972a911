"""Reference side of the parity checks: run onnxruntime and compare its output with the engine's.

Subcommands:
  run MODEL.onnx INPUT.npy OUTPUT.npy      onnxruntime's raw output for INPUT (float32 NCHW)
  face-tensor IMAGE.png OUTPUT.npy         a 112x112 RGB PNG as a [1,3,112,112] input,
                                           (v - 127.5) / 127.5, channel 0 = R
  random-tensor N SEED OUTPUT.npy          N standard-normal faces of shape [3,112,112]
  compare LABEL EXPECTED.npy ACTUAL.npy    cosine and max |diff| per row; exits 1 when a row has
                                           cosine < 0.99999 or max |diff| > 1e-4 * max |expected|
"""

import sys

import numpy as np


def run(model_path, input_path, output_path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    x = np.load(input_path)
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.save(output_path, output.astype(np.float32))


def face_tensor(image_path, output_path):
    from PIL import Image

    rgb = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)
    if rgb.shape != (112, 112, 3):
        sys.exit(f"{image_path}: expected a 112x112 image, found {rgb.shape[1]}x{rgb.shape[0]}")
    x = ((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None]
    np.save(output_path, np.ascontiguousarray(x, dtype=np.float32))


def random_tensor(count, seed, output_path):
    rng = np.random.default_rng(int(seed))
    x = rng.standard_normal((int(count), 3, 112, 112)).astype(np.float32)
    np.save(output_path, x)


def compare(label, expected_path, actual_path):
    expected = np.load(expected_path).astype(np.float64)
    actual = np.load(actual_path).astype(np.float64)
    if expected.shape != actual.shape:
        print(f"{label}: shape {actual.shape}, expected {expected.shape}")
        return 1
    failed = 0
    tolerance = 1e-4 * np.abs(expected).max()
    for row, (e, a) in enumerate(zip(expected, actual)):
        cosine = float(e @ a / (np.linalg.norm(e) * np.linalg.norm(a)))
        max_diff = float(np.abs(e - a).max())
        ok = cosine >= 0.99999 and max_diff <= tolerance
        failed += not ok
        print(
            f"{label} row {row}: cosine {cosine:.9f} (1 - cosine {1 - cosine:.1e})  max|diff| {max_diff:.3e}"
            f"  (limit {tolerance:.3e})  max|expected| {np.abs(e).max():.3e}"
            f"  {'ok' if ok else 'FAILED'}"
        )
    return 1 if failed else 0


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    command, args = argv[1], argv[2:]
    if command == "run" and len(args) == 3:
        run(*args)
    elif command == "face-tensor" and len(args) == 2:
        face_tensor(*args)
    elif command == "random-tensor" and len(args) == 3:
        random_tensor(*args)
    elif command == "compare" and len(args) == 3:
        return compare(*args)
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
