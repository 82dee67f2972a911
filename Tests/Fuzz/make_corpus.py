#!/usr/bin/env python3
"""Write the seed corpora under Tests/Fuzz/Corpus/, one folder per fuzz target.

Run with the venv of Tools/setup-venv.sh (onnx, numpy and Pillow pinned there):

    .venv/bin/python Tests/Fuzz/make_corpus.py [--auraface PATH]

Each folder gets small valid files of its format, in as many variants as the reader
handles, and a few malformed ones. The safetensors folder also gets weight files converted
from the tiny ONNX seeds, which need the `auraface` program (`--auraface`, default: the
debug build in .build). Every file is a function of this script and the pinned package
versions: the weights are seeded, so two runs write the same files.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
from PIL import Image

FUZZ_ROOT = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(FUZZ_ROOT))
CORPUS = os.path.join(FUZZ_ROOT, "Corpus")

sys.path.insert(0, os.path.join(REPO_ROOT, "Tools"))

import iresnet_onnx as builder  # noqa: E402
from iresnet_onnx import Architecture, ExportStyle  # noqa: E402

# The smallest IResNet the converter accepts: one block per stage, one channel per stage and
# a 16x16 input, which the four stride-2 stages reduce to 1x1.
TINY = Architecture(stage_depths=(1, 1, 1, 1), stage_widths=(1, 1, 1, 2), stem_width=1,
                    embedding_size=2, input_size=16)
# Room for the residual-Add defect, which is placed in block layer3.1.
TINY_TWO_BLOCKS = Architecture(stage_depths=(1, 2, 2, 1), stage_widths=(1, 1, 1, 2),
                               stem_width=1, embedding_size=2, input_size=16)


def write(target: str, name: str, data: bytes) -> None:
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as file:
        file.write(data)


# MARK: ONNX

def onnx_bytes(arch: Architecture, style: ExportStyle, seed: int = 1) -> bytes:
    return builder.build_graph(arch, style, seed).model.SerializeToString()


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire_type) + payload


def length_delimited(number: int, payload: bytes) -> bytes:
    return field(number, 2, varint(len(payload)) + payload)


def make_onnx() -> None:
    target = "fuzz-onnx"
    styles = {
        "tiny-torch-folded.onnx": (TINY, ExportStyle()),
        "tiny-unfolded-typed-data.onnx": (
            TINY, ExportStyle(style="unfolded", typed_data=True, omit_defaults=True,
                              fc="matmul_add", flatten="reshape_minus_one",
                              prelu_slope_shape="1c11", opset=17)),
        "tiny-mxnet-prelude-constant-nodes.onnx": (
            TINY, ExportStyle(mxnet_prelude=True, prelude_constants="constant_node",
                              naming="mxnet", opset=8, initializers_as_inputs=True)),
        "tiny-reshape-zero-opset13.onnx": (
            TINY, ExportStyle(flatten="reshape_zero", opset=13)),
        "tiny-prelu-slope-c.onnx": (TINY, ExportStyle(prelu_slope_shape="c")),
        "tiny-pinned-reshape.onnx": (TINY, ExportStyle(flatten="pinned_reshape")),
        "bad-tiny-relu-in-block.onnx": (TINY, ExportStyle(defect="relu_in_block")),
        "bad-tiny-missing-residual-add.onnx": (
            TINY_TWO_BLOCKS, ExportStyle(defect="missing_residual_add")),
    }
    for name, (arch, style) in styles.items():
        write(target, name, onnx_bytes(arch, style))

    # External data: every tensor in "weights.data", the file the fuzz target creates beside
    # its input. The target's file is zeros, so only the offsets and lengths here matter.
    model = builder.build_graph(TINY, ExportStyle(), 1).model
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        onnx.save_model(copy.deepcopy(model), path, save_as_external_data=True,
                        all_tensors_to_one_file=True, location="weights.data",
                        size_threshold=0)
        data_size = os.path.getsize(os.path.join(folder, "weights.data"))
        if data_size > 1 << 16:
            raise SystemExit(f"external data is {data_size} bytes, more than the fuzz target's "
                             "65536-byte weights.data")
        with open(path, "rb") as file:
            write(target, "tiny-external-data.onnx", file.read())

    folded = onnx_bytes(TINY, ExportStyle())
    write(target, "bad-truncated.onnx", folded[: len(folded) // 2])
    # ModelProto.ir_version as a varint that continues past 10 bytes.
    write(target, "bad-varint-too-long.onnx", bytes([0x08]) + bytes([0xFF] * 11) + b"\x01")
    # Field 7 (graph) with wire type 3 (start group).
    write(target, "bad-group-wire-type.onnx", bytes([7 << 3 | 3]))
    # A graph whose length runs past the end of the file.
    write(target, "bad-length-past-end.onnx", field(7, 2, varint(1 << 40)) + b"\x00")
    # 120 nested messages in an unknown field of GraphProto, which the decoder skips whole.
    nested = b""
    for _ in range(120):
        nested = length_delimited(15, nested)
    write(target, "unknown-nested-fields.onnx", length_delimited(7, nested))
    # An initializer with a negative dimension and 4 bytes of raw_data.
    tensor = (field(1, 0, varint((1 << 64) - 3)) + field(2, 0, varint(1))
              + length_delimited(8, b"w") + length_delimited(9, b"\0\0\0\0"))
    write(target, "bad-negative-dim.onnx", length_delimited(7, length_delimited(5, tensor)))
    # Packed float_data whose length is not a multiple of 4.
    tensor = field(2, 0, varint(1)) + length_delimited(4, b"\0\0\0\0\0")
    write(target, "bad-packed-length.onnx", length_delimited(7, length_delimited(5, tensor)))
    # External data whose location leaves the model's folder.
    entry = length_delimited(1, b"location") + length_delimited(2, b"../weights.data")
    tensor = (field(1, 0, varint(1)) + field(2, 0, varint(1)) + length_delimited(8, b"w")
              + length_delimited(13, entry) + field(14, 0, varint(1)))
    write(target, "bad-external-location.onnx",
          field(8, 2, varint(2) + field(2, 0, varint(11)))
          + length_delimited(7, length_delimited(5, tensor)))


# MARK: safetensors

def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None,
                      dtype: str = "F32") -> bytes:
    header: dict = {}
    data = b""
    for name, array in tensors.items():
        raw = array.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def make_safetensors(auraface: str | None) -> None:
    target = "fuzz-safetensors"
    rng = np.random.default_rng(5)
    tensors = {"a": rng.standard_normal((2, 3)), "b": rng.standard_normal(4),
               "scalar": np.array(1.5), "empty": np.zeros((0, 3))}
    write(target, "plain.safetensors", safetensors_bytes(tensors, {"note": "plain"}))
    write(target, "no-metadata.safetensors", safetensors_bytes({"x": np.ones(2)}, None))
    write(target, "bad-dtype-f16.safetensors",
          safetensors_bytes({"x": np.ones(2)}, None, dtype="F16"))
    valid = safetensors_bytes({"x": np.ones(2)}, None)
    write(target, "bad-truncated.safetensors", valid[:-3])
    write(target, "bad-header-past-end.safetensors", struct.pack("<Q", 1 << 20) + b"{}")
    header = json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    write(target, "bad-overlap.safetensors",
          struct.pack("<Q", len(header)) + header + b"\0" * 8)
    write(target, "bad-not-json.safetensors", struct.pack("<Q", 4) + b"{x:1")

    if auraface is None:
        print("no auraface program: skipping the converted weight files", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as folder:
        for name in ("tiny-torch-folded", "tiny-unfolded-typed-data"):
            source = os.path.join(CORPUS, "fuzz-onnx", name + ".onnx")
            output = os.path.join(folder, name + ".safetensors")
            subprocess.run([auraface, "convert", source, output], check=True,
                           stdout=subprocess.DEVNULL)
            with open(output, "rb") as file:
                write(target, name + ".safetensors", file.read())


# MARK: .npy

def npy_bytes(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    stream = io.BytesIO()
    if version is None:
        np.save(stream, array)
    else:
        np.lib.format.write_array(stream, array, version=version)
    return stream.getvalue()


def make_npy() -> None:
    target = "fuzz-npy"
    rng = np.random.default_rng(6)
    values = rng.standard_normal((2, 3)).astype("<f4")
    write(target, "f4-2d.npy", npy_bytes(values))
    write(target, "f4-1d.npy", npy_bytes(values.ravel()))
    write(target, "f4-scalar.npy", npy_bytes(np.array(2.5, dtype="<f4")))
    write(target, "f4-empty.npy", npy_bytes(np.zeros((0, 3), dtype="<f4")))
    write(target, "f4-version2.npy", npy_bytes(values, (2, 0)))
    write(target, "f4-version3.npy", npy_bytes(values, (3, 0)))
    # Dtypes and layouts the reader rejects with a typed error.
    write(target, "f8.npy", npy_bytes(values.astype("<f8")))
    write(target, "i4.npy", npy_bytes(values.astype("<i4")))
    write(target, "u1.npy", npy_bytes(values.astype("|u1")))
    write(target, "f4-big-endian.npy", npy_bytes(values.astype(">f4")))
    write(target, "f4-fortran.npy", npy_bytes(np.asfortranarray(values)))
    valid = npy_bytes(values)
    write(target, "bad-truncated.npy", valid[:-5])
    write(target, "bad-magic.npy", b"\x93NUMPX" + valid[6:])

    def with_header(text: str) -> bytes:
        header = text.encode()
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header

    write(target, "bad-header-not-dict.npy", with_header("[1, 2, 3]"))
    write(target, "bad-header-nested.npy",
          with_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                      + "(" * 20 + ")" * 20 + "}"))
    write(target, "bad-header-negative-shape.npy",
          with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"))


# MARK: images

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def pack_row(samples: np.ndarray, bit_depth: int) -> bytes:
    """Packs one scanline of integer samples at `bit_depth` bits, most significant first."""
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray()
    for start in range(0, len(samples), per_byte):
        byte = 0
        group = list(samples[start:start + per_byte]) + [0] * per_byte
        for index in range(per_byte):
            byte |= int(group[index]) << (8 - bit_depth * (index + 1))
        out.append(byte)
    return bytes(out)


# The seven Adam7 passes of the PNG specification: (x start, y start, x step, y step).
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_bytes(samples: np.ndarray, color_type: int, bit_depth: int, interlaced: bool = False,
              extra_chunks: list[bytes] = ()) -> bytes:
    """Encodes samples [H, W, channels] as a PNG with filter type 0 on every row."""
    height, width = samples.shape[:2]
    rows = b""
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            rows += b"\0" + pack_row(row.reshape(-1), bit_depth)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(extra_chunks)
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def make_png() -> None:
    target = "fuzz-png"
    rng = np.random.default_rng(7)

    def image(channels: int, bit_depth: int, size: tuple[int, int] = (9, 7)) -> np.ndarray:
        return rng.integers(0, 1 << bit_depth, size=(*size, channels))

    for bit_depth in (1, 2, 4, 8, 16):
        write(target, f"gray-{bit_depth}bit.png", png_bytes(image(1, bit_depth), 0, bit_depth))
    for bit_depth in (8, 16):
        write(target, f"rgb-{bit_depth}bit.png", png_bytes(image(3, bit_depth), 2, bit_depth))
        write(target, f"gray-alpha-{bit_depth}bit.png",
              png_bytes(image(2, bit_depth), 4, bit_depth))
        write(target, f"rgba-{bit_depth}bit.png", png_bytes(image(4, bit_depth), 6, bit_depth))
    palette = png_chunk(b"PLTE", rng.integers(0, 256, 16 * 3).astype(np.uint8).tobytes())
    transparency = png_chunk(b"tRNS", bytes(range(0, 256, 32)))
    for bit_depth in (1, 2, 4, 8):
        write(target, f"palette-{bit_depth}bit.png",
              png_bytes(image(1, min(bit_depth, 4)), 3, bit_depth, extra_chunks=[palette]))
    write(target, "palette-trns.png",
          png_bytes(image(1, 4), 3, 8, extra_chunks=[palette, transparency]))
    write(target, "rgb-interlaced.png", png_bytes(image(3, 8, (11, 13)), 2, 8, interlaced=True))
    write(target, "gray-2bit-interlaced.png",
          png_bytes(image(1, 2, (10, 9)), 0, 2, interlaced=True))
    write(target, "rgba-16bit-interlaced.png",
          png_bytes(image(4, 16, (5, 6)), 6, 16, interlaced=True))
    write(target, "rgb-gamma-trns.png",
          png_bytes(image(3, 8), 2, 8, extra_chunks=[
              png_chunk(b"gAMA", struct.pack(">I", 45455)),
              png_chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3))]))
    valid = png_bytes(image(3, 8), 2, 8)
    write(target, "bad-truncated.png", valid[:-20])
    write(target, "bad-crc.png", valid[:29] + bytes([valid[29] ^ 1]) + valid[30:])
    write(target, "bad-zero-width.png",
          b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 2, 0, 0, 0))
          + png_chunk(b"IEND", b""))
    write(target, "bad-huge.png",
          b"\x89PNG\r\n\x1a\n"
          + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
          + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b""))
    write(target, "bad-palette-missing.png", png_bytes(image(1, 4), 3, 8))
    # Found by the fuzzer: an sPLT chunk header declaring 536870961 bytes in a 45-byte file,
    # which made libpng allocate 512 MB before the shim checked chunk lengths.
    ihdr = struct.pack(">IIBBBBB", 7, 9, 8, 3, 0, 0, 0)
    write(target, "bad-chunk-length-past-end.png",
          b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
          + struct.pack(">I", 536870961) + b"sPLT" + b"PLTE")


def jpeg_bytes(pixels: np.ndarray, mode: str, **options) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode=mode).save(stream, "JPEG", **options)
    return stream.getvalue()


def exif_orientation(value: int, little_endian: bool = True) -> bytes:
    """An Exif block with IFD0 holding only the orientation tag (0x0112, SHORT, count 1)."""
    order = "<" if little_endian else ">"
    tiff = (b"II" if little_endian else b"MM") + struct.pack(order + "HI", 42, 8)
    tiff += struct.pack(order + "H", 1)
    tiff += struct.pack(order + "HHIHH", 0x0112, 3, 1, value, 0)
    tiff += struct.pack(order + "I", 0)
    return b"Exif\0\0" + tiff


def make_jpeg() -> None:
    target = "fuzz-jpeg"
    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, (12, 10, 3))
    gray = rng.integers(0, 256, (12, 10))
    write(target, "rgb-444.jpg", jpeg_bytes(rgb, "RGB", quality=90, subsampling=0))
    write(target, "rgb-420.jpg", jpeg_bytes(rgb, "RGB", quality=50, subsampling=2))
    write(target, "rgb-progressive.jpg", jpeg_bytes(rgb, "RGB", quality=75, progressive=True))
    write(target, "gray.jpg", jpeg_bytes(gray, "L", quality=80))
    write(target, "cmyk.jpg",
          jpeg_bytes(rng.integers(0, 256, (8, 8, 4)), "CMYK", quality=80))
    for value in (3, 6, 8):
        write(target, f"exif-orientation-{value}.jpg",
              jpeg_bytes(rgb, "RGB", quality=60, exif=exif_orientation(value)))
    write(target, "exif-orientation-5-big-endian.jpg",
          jpeg_bytes(rgb, "RGB", quality=60, exif=exif_orientation(5, little_endian=False)))
    valid = jpeg_bytes(rgb, "RGB", quality=60)
    write(target, "bad-truncated.jpg", valid[: len(valid) * 2 // 3])
    write(target, "bad-soi-only.jpg", b"\xff\xd8\xff")
    # An APP1 segment whose length runs past the end of the file.
    write(target, "bad-exif-length.jpg", b"\xff\xd8\xff\xe1\xff\xf0Exif\0\0II*\0")


def make_ppm() -> None:
    target = "fuzz-ppm"
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    write(target, "p6.ppm", b"P6\n5 4\n255\n" + rgb.tobytes())
    write(target, "p5.pgm", b"P5 5 4 255 " + rgb[..., 0].tobytes())
    write(target, "p6-comments.ppm", b"P6\n# a comment\n5 4 # width and height\n255\n"
          + rgb.tobytes())
    write(target, "p6-maxval-1000.ppm", b"P6\n5 4\n1000\n"
          + rng.integers(0, 1001, (4, 5, 3)).astype(">u2").tobytes())
    write(target, "p5-maxval-15.pgm", b"P5\n5 4\n15\n"
          + rng.integers(0, 16, (4, 5)).astype(np.uint8).tobytes())
    write(target, "bad-sample-above-maxval.pgm", b"P5\n2 1\n15\n\x0f\x10")
    write(target, "bad-truncated.ppm", b"P6\n5 4\n255\n" + rgb.tobytes()[:-7])
    write(target, "bad-plain-p3.ppm", b"P3\n1 1\n255\n1 2 3\n")
    write(target, "bad-zero-width.ppm", b"P6\n0 4\n255\n")


# MARK: landmarks and pickles

def make_landmarks() -> None:
    target = "fuzz-landmarks"
    points = [[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]]
    flat = [value for point in points for value in point]
    write(target, "object.json", json.dumps({"a.jpg": points, "dir/b.png": flat}).encode())
    write(target, "array.json", json.dumps([{"image": "a.jpg", "landmarks": points},
                                            {"file": "/abs/c.jpg", "kps": flat}]).encode())
    write(target, "lines.jsonl", (json.dumps({"path": "a.jpg", "landmarks": points}) + "\n\n"
                                  + json.dumps({"image": "b.jpg", "kps": flat}) + "\n").encode())
    numbers = " ".join(f"{value:g}" for value in flat)
    write(target, "text.txt", f"# five points per photo\na.jpg {numbers}\n\n"
          f"sub/b.jpg {numbers}\n".encode())
    write(target, "text.csv", ("image,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5\n"
                               f"photo one.jpg,{','.join(f'{v:g}' for v in flat)}\n").encode())
    write(target, "bom-text.txt", f"\ufeffa.jpg {numbers}\r\n".encode())
    with open(os.path.join(REPO_ROOT, "Tests", "Fixtures", "faces", "astronaut_landmarks.json"),
              "rb") as file:
        write(target, "astronaut_landmarks.json", file.read())
    write(target, "bad-nan.txt", f"a.jpg nan {' '.join(f'{v:g}' for v in flat[1:])}\n".encode())
    write(target, "bad-nine-values.txt", f"a.jpg {' '.join(f'{v:g}' for v in flat[:9])}\n".encode())
    write(target, "bad-duplicate.txt", f"a.jpg {numbers}\n./a.jpg {numbers}\n".encode())
    write(target, "bad-json.json", b'[{"image": "a.jpg", "landmarks": [1, 2,')
    write(target, "bad-point-of-three.json",
          json.dumps({"a.jpg": [[1, 2, 3]] + points[1:]}).encode())
    write(target, "bad-bool.jsonl", json.dumps({"image": "a.jpg", "kps": [True] * 10}).encode())


def make_pickle() -> None:
    target = "fuzz-pickle"
    rng = np.random.default_rng(10)
    images = []
    for _ in range(2):
        stream = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)).save(stream, "PNG")
        images.append(stream.getvalue())
    pair = (images, [True])
    write(target, "set-protocol2.bin", pickle.dumps(pair, protocol=2))
    write(target, "set-protocol4.bin", pickle.dumps(pair, protocol=4))
    write(target, "set-protocol5.bin", pickle.dumps(pair, protocol=5))
    arrays = ([np.frombuffer(image, dtype=np.uint8) for image in images], [False])
    write(target, "set-numpy-arrays-protocol2.bin", pickle.dumps(arrays, protocol=2))
    write(target, "set-numpy-arrays-protocol4.bin", pickle.dumps(arrays, protocol=4))
    write(target, "values.bin", pickle.dumps((None, 1, -2, 70000, "text", [b"", (True,)]),
                                             protocol=2))
    write(target, "bad-global.bin", b"cos\nsystem\n(S'true'\ntR.")
    write(target, "bad-no-stop.bin", pickle.dumps(pair, protocol=4)[:-1])
    write(target, "bad-wrong-layout.bin", pickle.dumps(([images[0]], [True]), protocol=4))
    write(target, "bad-float16-array.bin",
          pickle.dumps(([np.zeros(4, dtype=np.float16)] * 2, [True]), protocol=2))
    # Inputs the fuzzer found: a list appended to itself through the memo (a leak, then a
    # stack overflow), tuples nested past the reader's limit, and lists that share one inner
    # list through the memo, 2^30 paths to it.
    write(target, "bad-list-contains-itself.bin", b"\x80\x02]q\x00h\x00a.")
    write(target, "bad-nested-tuples.bin", b"\x80\x02N" + b"\x85" * 101 + b".")
    shared = bytearray(b"\x80\x02]q\x00")
    for level in range(1, 30):
        shared += b"]q" + bytes([level]) + b"h" + bytes([level - 1]) + b"ah" + bytes([level - 1])
        shared += b"a"
    write(target, "shared-lists.bin", bytes(shared) + b".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auraface",
                        default=os.path.join(REPO_ROOT, ".build", "debug", "auraface"),
                        help="the auraface program, for converting the tiny ONNX seeds")
    arguments = parser.parse_args()
    auraface = arguments.auraface if os.path.exists(arguments.auraface) else None
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    make_onnx()
    make_safetensors(auraface)
    make_npy()
    make_png()
    make_jpeg()
    make_ppm()
    make_landmarks()
    make_pickle()
    for target in sorted(os.listdir(CORPUS)):
        folder = os.path.join(CORPUS, target)
        files = os.listdir(folder)
        size = sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        print(f"{target}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
