#!/usr/bin/env python3
"""Write small synthetic face-verification sets in InsightFace's .bin format.

A .bin file is a pickled tuple (images, issame): 2P encoded 112x112 images, pair i being
images[2i] and images[2i + 1], and P bools. The images here are synthetic (smooth random
patterns, not faces): the second image of a "same" pair is the first with noise, a shift and
a brightness change, and a "different" pair uses two unrelated patterns. Pairs are laid out
as in lfw.bin: each of the 10 folds contains its same pairs first, then its different pairs.

Each set is written in five encodings of the same content:

  NAME_bytes_p2.bin         images as Python 2 str (SHORT_BINSTRING / BINSTRING), protocol 2,
                            the layout of InsightFace's original files
  NAME_numpy_p2.bin         images as NumPy uint8 arrays, pickled as Python 2 with NumPy 1.x
                            writes them (GLOBAL numpy.core.multiarray._reconstruct, str data)
  NAME_bytes_p4.bin         images as bytes, protocol 4 (FRAME, MEMOIZE, SHORT_BINBYTES, ...)
  NAME_numpy_p4.bin         images as NumPy uint8 arrays, protocol 4 (STACK_GLOBAL)
  NAME_bytes_p2_py3.bin     images as bytes, protocol 2 as Python 3 writes it
                            (_codecs.encode(str, 'latin1'))

Usage: make_verification_bins.py OUT_DIR [--pairs 600] [--format jpeg|png] [--seed 0]
       [--size 112] [--name synth]
"""

import argparse
import io
import os
import pickle
import struct
import sys

import numpy as np
from PIL import Image


class Python2StylePickler(pickle._Pickler):
    """Pickle bytes and str as Python 2 writes its str type, and NumPy globals under the
    module name NumPy 1.x used, so Python 3 can write files laid out as the originals."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        name = name or obj.__qualname__
        if module == "numpy._core.multiarray":
            module = "numpy.core.multiarray"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def pattern(rng, size):
    """Make a smooth random RGB pattern: 8x8 random colors upsampled bicubically."""
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float64)


def variant(rng, base, size):
    """Shift the base pattern, change its brightness, blend in an unrelated pattern and add
    pixel noise, so some "same" pairs are farther apart than some "different" ones."""
    shift = (int(rng.integers(-6, 7)), int(rng.integers(-6, 7)))
    shifted = np.roll(base, shift=shift, axis=(0, 1)) * rng.uniform(0.8, 1.2)
    blend = rng.uniform(0.2, 0.6)
    mixed = (1 - blend) * shifted + blend * pattern(rng, size)
    return mixed + rng.normal(0, 20, size=base.shape)


def encode(pixels, image_format):
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_set(pairs, image_format, seed, size):
    if pairs % 20 != 0:
        raise SystemExit(f"--pairs must be a multiple of 20 (10 folds, half same), got {pairs}")
    rng = np.random.default_rng(seed)
    images, issame = [], []
    per_fold = pairs // 10
    for _ in range(10):
        for index in range(per_fold):
            same = index < per_fold // 2
            first = pattern(rng, size)
            second = variant(rng, first, size) if same else pattern(rng, size)
            images += [encode(first, image_format), encode(second, image_format)]
            issame.append(same)
    return images, issame


def dump(path, obj, protocol, python2_style):
    with open(path, "wb") as file:
        if python2_style:
            Python2StylePickler(file, protocol=protocol).dump(obj)
        else:
            pickle.dump(obj, file, protocol=protocol)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--format", choices=["jpeg", "png"], default="jpeg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=112, help="image side in pixels")
    parser.add_argument("--name", default="synth")
    args = parser.parse_args(argv)

    os.makedirs(args.out_dir, exist_ok=True)
    images, issame = make_set(args.pairs, args.format, args.seed, args.size)
    arrays = [np.frombuffer(data, dtype=np.uint8) for data in images]
    variants = [
        ("bytes_p2", (images, issame), 2, True),
        ("numpy_p2", (arrays, issame), 2, True),
        ("bytes_p4", (images, issame), 4, False),
        ("numpy_p4", (arrays, issame), 4, False),
        ("bytes_p2_py3", (images, issame), 2, False),
    ]
    for suffix, obj, protocol, python2_style in variants:
        path = os.path.join(args.out_dir, f"{args.name}_{suffix}.bin")
        dump(path, obj, protocol, python2_style)
        # Read each file back as InsightFace's load_bin does and check the round trip.
        with open(path, "rb") as file:
            loaded_images, loaded_issame = pickle.load(file, encoding="bytes")
        assert list(loaded_issame) == issame
        assert all(bytes(a) == b for a, b in zip(loaded_images, images))
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
