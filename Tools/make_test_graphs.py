#!/usr/bin/env python3
"""Write the ONNX test fixtures under Tests/Fixtures/, or build one IResNet graph.

Commands (run with the venv of Tools/setup-venv.sh, e.g. .venv/bin/python):
  fixtures [--out DIR]     write every converter and parity fixture (default Tests/Fixtures)
  full-r100 OUT.onnx       the full-width r100 (AuraFace's shape) with synthetic weights
  build OUT.onnx ...       any depth, width and export style; see `build --help`
  sanity                   check activations of full-width r18 and r100 and a narrow r200

Every file is a function of this script, its seeds and the pinned package versions in
Tools/requirements.txt: two runs write byte-identical files.
The weights are random, so these graphs recognize no faces.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import iresnet_onnx as builder  # noqa: E402
from iresnet_onnx import Architecture, ExportStyle  # noqa: E402
from iresnet_onnx import ExportStyle as Style  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tiny widths keep converter fixtures small: they test structure, not arithmetic at scale.
TINY = dict(stage_widths=(4, 8, 8, 16), stem_width=4, embedding_size=16)
# Parity fixtures are wider so that every GEMM has several rows and columns to get wrong.
NARROW = dict(stage_widths=(8, 16, 32, 64), stem_width=8, embedding_size=64)

R18_SEED = 18
FULL_R100_SEED = 100


@dataclass(frozen=True)
class Fixture:
    name: str
    depth: str
    widths: dict
    style: ExportStyle = ExportStyle()
    seed: int = R18_SEED
    external_data: bool = False
    # Written with a <name>.tensors.json of names, shapes, sums and first values.
    tensor_summary: bool = False
    description: str = ""


@dataclass(frozen=True)
class ParityFixture:
    name: str
    depth: str
    widths: dict
    seed: int
    style: ExportStyle = ExportStyle()
    batch: int = 3
    description: str = ""
    input_in_pixels: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_in_pixels", self.style.mxnet_prelude)


MXNET_UNFOLDED = Style(style="unfolded", mxnet_prelude=True, naming="mxnet")

CONVERTER_FIXTURES = [
    Fixture("r18-torch-folded", "r18", TINY, tensor_summary=True,
            description="torch.onnx export as AuraFace ships it (opset 11)"),
    Fixture("r18-unfolded", "r18", TINY, Style(style="unfolded"), tensor_summary=True,
            description="bias-free convolutions, each followed by BatchNormalization"),
    Fixture("r18-reshape-flatten", "r18", TINY, Style(flatten="reshape_zero"),
            description="Reshape to [0, -1] instead of Flatten"),
    Fixture("r18-reshape-flatten-minus-one", "r18", TINY, Style(flatten="reshape_minus_one"),
            description="Reshape to [-1, C*49] instead of Flatten"),
    Fixture("r18-pinned-reshape", "r18", TINY, Style(flatten="pinned_reshape"),
            description="Reshape to [1, C*49]: traced with one image, runs only batch 1"),
    Fixture("r18-matmul-add", "r18", TINY, Style(fc="matmul_add"),
            description="MatMul with weight [C*49, E] and Add instead of Gemm"),
    Fixture("r18-mxnet-prelude", "r18", TINY, Style(mxnet_prelude=True),
            description="Sub 127.5 and Mul 0.0078125 initializers before the stem; eps 2e-5"),
    Fixture("r18-mxnet-prelude-constant-nodes", "r18", TINY,
            Style(mxnet_prelude=True, prelude_constants="constant_node"),
            description="the prelude constants as scalar Constant nodes"),
    Fixture("r18-mxnet-unfolded", "r18", TINY, MXNET_UNFOLDED,
            description="as insightface's MXNet models: prelude, unfolded, MXNet names"),
    Fixture("r18-initializers-as-inputs", "r18", TINY, Style(initializers_as_inputs=True),
            description="every initializer also listed in graph.input"),
    Fixture("r18-omit-defaults", "r18", TINY, Style(omit_defaults=True),
            description="attributes at their default value left out, kernel_shape too"),
    Fixture("r18-prelu-slope-1c11", "r18", TINY, Style(prelu_slope_shape="1c11"),
            description="PReLU slopes of shape [1, C, 1, 1]"),
    Fixture("r18-prelu-slope-c", "r18", TINY, Style(prelu_slope_shape="c"),
            description="PReLU slopes of shape [C]: ambiguous, onnxruntime cannot run it"),
    Fixture("r18-opset8", "r18", TINY, Style(opset=8),
            description="opset 8, IR version 4, BatchNormalization with spatial=1"),
    Fixture("r18-opset8-initializers-as-inputs", "r18", TINY,
            Style(opset=8, initializers_as_inputs=True),
            description="opset 8, IR version 3, initializers listed in graph.input"),
    Fixture("r18-opset13", "r18", TINY, Style(opset=13), description="opset 13, IR version 7"),
    Fixture("r18-opset17", "r18", TINY, Style(opset=17), description="opset 17, IR version 8"),
    Fixture("r18-external-data", "r18", TINY, external_data=True,
            description="tensors of 256 bytes or more in r18-external-data.onnx.data"),
    Fixture("r18-typed-data", "r18", TINY, Style(typed_data=True),
            description="tensors in float_data and int64_data instead of raw_data"),
    Fixture("r18-opset17-unfolded-omit-defaults-matmul-add-typed-data", "r18", TINY,
            Style(style="unfolded", opset=17, omit_defaults=True, fc="matmul_add",
              typed_data=True, prelu_slope_shape="1c11", flatten="reshape_minus_one"),
            description="several switches at once, with [1, C, 1, 1] slopes and Reshape"),
    Fixture("r34-torch-folded", "r34", TINY, seed=34, description="depth [3, 4, 6, 3]"),
    Fixture("r50-torch-folded", "r50", TINY, seed=50, description="depth [3, 4, 14, 3]"),
    Fixture("r100-torch-folded", "r100", TINY, seed=100, description="depth [3, 13, 30, 3]"),
    Fixture("r200-torch-folded", "r200", TINY, seed=200, description="depth [6, 26, 60, 6]"),
    Fixture("bad-relu-in-block", "r18", TINY, Style(defect="relu_in_block"),
            description="layer2.0 uses Relu where PRelu belongs"),
    Fixture("bad-missing-residual-add", "r18", TINY, Style(defect="missing_residual_add"),
            description="layer3.1 has no residual Add: its conv2 output goes straight on"),
    Fixture("bad-kernel-5x5", "r18", TINY, Style(defect="kernel_5x5"),
            description="layer1.0.conv1 has a 5x5 kernel (padding 2) where 3x3 belongs"),
]

PARITY_FIXTURES = [
    ParityFixture("r18", "r18", NARROW, seed=1018,
                  description="torch_folded, opset 11, normalized input"),
    ParityFixture("r100", "r100", NARROW, seed=1100,
                  description="torch_folded, opset 11, normalized input"),
    ParityFixture("r18-mxnet-unfolded", "r18", TINY, seed=1218, style=MXNET_UNFOLDED,
                  description="MXNet prelude, unfolded, eps 2e-5, input 0-255 pixels"),
]

# Fixtures that compute the same function as r18-torch-folded on the same input: they differ
# only in how the graph is written. The MXNet-prelude ones form a second group (eps 2e-5).
SAME_FUNCTION_GROUPS = [
    ["r18-torch-folded", "r18-unfolded", "r18-reshape-flatten", "r18-reshape-flatten-minus-one",
     "r18-pinned-reshape", "r18-matmul-add", "r18-initializers-as-inputs", "r18-omit-defaults",
     "r18-prelu-slope-1c11", "r18-opset8", "r18-opset8-initializers-as-inputs", "r18-opset13",
     "r18-opset17", "r18-external-data", "r18-typed-data",
     "r18-opset17-unfolded-omit-defaults-matmul-add-typed-data"],
    ["r18-mxnet-prelude", "r18-mxnet-prelude-constant-nodes", "r18-mxnet-unfolded"],
]


def architecture(depth: str, widths: dict) -> Architecture:
    return Architecture(builder.STAGE_DEPTHS[depth], **widths)


def test_images(seed: int, batch: int, in_pixels: bool) -> np.ndarray:
    """Deterministic [batch, 3, 112, 112] float32: 0-255 integers, or normal(0, 1) values."""
    rng = np.random.default_rng(seed)
    if in_pixels:
        return rng.integers(0, 256, (batch, 3, 112, 112)).astype(np.float32)
    return rng.standard_normal((batch, 3, 112, 112), dtype=np.float32)


def json_text(value, indent: int = 0) -> str:
    """JSON with two-space indentation, except that lists of numbers stay on one line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(key)}: {json_text(item, indent + 1)}"
                 for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value and not all(
            isinstance(item, (int, float)) and not isinstance(item, bool) for item in value):
        items = [pad + json_text(item, indent + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, separators=(", ", ": "))


def write_json(path: str, value) -> None:
    with open(path, "w") as file:
        file.write(json_text(value) + "\n")


def check_against_reference(built: builder.BuiltGraph, images: np.ndarray, output: np.ndarray,
                            label: str) -> float:
    """Assert that onnxruntime matches the float64 numpy forward pass; return the max error."""
    reference = builder.reference_forward(
        built.state_dict, built.architecture, images, built.style.epsilon,
        input_in_pixels=built.style.mxnet_prelude)
    error = float(np.max(np.abs(output - reference)))
    scale = float(np.max(np.abs(reference)))
    if error > 1e-4 * max(scale, 1.0):
        raise AssertionError(f"{label}: onnxruntime differs from the numpy reference by {error}")
    return error


def tensor_summary(tensors: dict[str, np.ndarray]) -> dict:
    return {
        name: {
            "shape": list(array.shape),
            "sum": float(array.astype(np.float64).sum()),
            "first": [float(v) for v in array.ravel()[:4]],
        }
        for name, array in tensors.items()
    }


def write_converter_fixtures(directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    images = test_images(seed=7, batch=2, in_pixels=False)
    pixels = test_images(seed=7, batch=2, in_pixels=True)
    outputs: dict[str, np.ndarray] = {}
    written = []
    for fixture in CONVERTER_FIXTURES:
        arch = architecture(fixture.depth, fixture.widths)
        built = builder.build_graph(arch, fixture.style, fixture.seed)
        path = os.path.join(directory, fixture.name + ".onnx")
        data_file = builder.save_model(built.model, path, fixture.external_data)
        written.append(path)
        if data_file:
            written.append(os.path.join(directory, data_file))
        onnx.checker.check_model(path, full_check=fixture.style.prelu_slope_shape != "c")

        facts = built.expected_facts()
        facts["external_data_file"] = data_file
        facts["description"] = fixture.description
        write_json(os.path.join(directory, fixture.name + ".expected.json"), facts)
        written.append(os.path.join(directory, fixture.name + ".expected.json"))
        if fixture.tensor_summary:
            summary_path = os.path.join(directory, fixture.name + ".tensors.json")
            write_json(summary_path, tensor_summary(built.converter_tensors))
            written.append(summary_path)

        inputs = pixels if fixture.style.mxnet_prelude else images
        if built.fixed_batch_size is not None:
            inputs = inputs[: built.fixed_batch_size]
        if fixture.style.prelu_slope_shape == "c":
            # [C] broadcasts along W under ONNX rules; C=4 against W=112 cannot run.
            try:
                builder.run_onnxruntime(path, inputs, log_severity=4)
            except Exception:
                print(f"  {fixture.name}: onnxruntime rejects it, as expected")
                continue
            raise AssertionError(f"{fixture.name}: onnxruntime ran a graph with [C] slopes")
        output = builder.run_onnxruntime(path, inputs)
        norm = builder.check_output_sane(output, fixture.name)
        line = f"  {fixture.name}: mean row norm {norm:.3f}"
        if fixture.style.defect is None:
            error = check_against_reference(built, inputs, output, fixture.name)
            line += f", max |ort - numpy| {error:.2e}"
        print(line)
        outputs[fixture.name] = output

    for group in SAME_FUNCTION_GROUPS:
        first = outputs[group[0]]
        for name in group[1:]:
            rows = outputs[name].shape[0]
            difference = float(np.max(np.abs(outputs[name] - first[:rows])))
            if difference > 1e-4:
                raise AssertionError(f"{name} differs from {group[0]} by {difference}")
        print(f"  same function: {', '.join(group)}")
    return written


def write_parity_fixtures(directory: str) -> list[str]:
    import onnxruntime

    os.makedirs(directory, exist_ok=True)
    written = []
    for fixture in PARITY_FIXTURES:
        arch = architecture(fixture.depth, fixture.widths)
        built = builder.build_graph(arch, fixture.style, fixture.seed)
        path = os.path.join(directory, fixture.name + ".onnx")
        builder.save_model(built.model, path)
        onnx.checker.check_model(path, full_check=True)

        images = test_images(fixture.seed + 1, fixture.batch, fixture.input_in_pixels)
        output = builder.run_onnxruntime(path, images)
        norm = builder.check_output_sane(output, fixture.name)
        error = check_against_reference(built, images, output, fixture.name)
        print(f"  parity {fixture.name}: mean row norm {norm:.3f}, "
              f"max |ort - numpy| {error:.2e}")

        np.save(os.path.join(directory, fixture.name + ".input.npy"), images)
        np.save(os.path.join(directory, fixture.name + ".expected.npy"), output)
        facts = built.expected_facts()
        facts["description"] = fixture.description
        facts["input_seed"] = fixture.seed + 1
        facts["onnxruntime_version"] = onnxruntime.__version__
        write_json(os.path.join(directory, fixture.name + ".expected.json"), facts)
        written += [path] + [
            os.path.join(directory, fixture.name + suffix)
            for suffix in (".input.npy", ".expected.npy", ".expected.json")
        ]
    return written


def command_fixtures(arguments: argparse.Namespace) -> None:
    out = arguments.out
    print("converter fixtures:")
    written = write_converter_fixtures(os.path.join(out, "converter"))
    print("parity fixtures:")
    written += write_parity_fixtures(os.path.join(out, "parity"))
    total = sum(os.path.getsize(path) for path in written)
    print(f"wrote {len(written)} files, {total / 1e6:.2f} MB, under {out}")


def full_r100() -> Architecture:
    return Architecture(builder.STAGE_DEPTHS["r100"])


def build_and_report(arch: Architecture, style: ExportStyle, seed: int, out: str,
                     external_data: bool, check: bool) -> None:
    start = time.perf_counter()
    built = builder.build_graph(arch, style, seed)
    builder.save_model(built.model, out, external_data)
    elapsed = time.perf_counter() - start
    initializer_count = sum(
        int(np.prod(tensor.dims)) for tensor in built.model.graph.initializer)
    parameters = builder.pytorch_parameter_count(arch)
    print(f"{arch.name} depths {list(arch.stage_depths)} widths {list(arch.stage_widths)} "
          f"stem {arch.stem_width} embedding {arch.embedding_size}, style {style.style}, "
          f"opset {style.opset}, seed {seed}")
    print(f"PyTorch parameters (sum of numel over IResNet.parameters(), before folding, "
          f"batch-norm weight and bias included, running statistics excluded): "
          f"{parameters:,} ({parameters / 1e6:.1f}M)")
    print(f"values in ONNX initializers (after folding, running statistics included): "
          f"{initializer_count:,}")
    size = os.path.getsize(out)
    where = out
    if external_data:
        size += os.path.getsize(out + ".data")
        where = f"{out} and {out}.data"
    print(f"wrote {where} ({size / 1e6:.1f} MB) in {elapsed:.1f} s")
    if check:
        start = time.perf_counter()
        onnx.checker.check_model(out)
        batch = 1 if built.fixed_batch_size else 2
        images = test_images(seed=7, batch=batch, in_pixels=style.mxnet_prelude)
        output = builder.run_onnxruntime(out, images)
        norm = builder.check_output_sane(output, out)
        print(f"checked with onnx.checker and onnxruntime in {time.perf_counter() - start:.1f} s: "
              f"output {list(output.shape)}, finite, mean row norm {norm:.3f}")


def command_full_r100(arguments: argparse.Namespace) -> None:
    build_and_report(full_r100(), ExportStyle(), arguments.seed, arguments.out,
                     external_data=False, check=not arguments.no_check)


def command_build(arguments: argparse.Namespace) -> None:
    if arguments.typed_data and arguments.external_data:
        # onnx moves only raw_data to the external file, so it would write no data file.
        raise SystemExit("make_test_graphs.py build: --typed-data and --external-data cannot be "
                         "combined: onnx stores only raw_data tensors externally")
    if arguments.depths:
        depths = tuple(int(value) for value in arguments.depths.split(","))
    else:
        depths = builder.STAGE_DEPTHS[arguments.depth]
    widths = tuple(int(value) for value in arguments.widths.split(","))
    arch = Architecture(depths, widths, arguments.stem_width, arguments.embedding_size)
    style = ExportStyle(
        style=arguments.style, flatten=arguments.flatten, fc=arguments.fc,
        mxnet_prelude=arguments.mxnet_prelude, prelude_constants=arguments.prelude_constants,
        naming=arguments.naming, opset=arguments.opset,
        initializers_as_inputs=arguments.initializers_as_inputs,
        omit_defaults=arguments.omit_defaults, prelu_slope_shape=arguments.prelu_slope_shape,
        typed_data=arguments.typed_data, defect=arguments.defect)
    build_and_report(arch, style, arguments.seed, arguments.out, arguments.external_data,
                     check=not arguments.no_check and style.prelu_slope_shape != "c")


def command_sanity(arguments: argparse.Namespace) -> None:
    """Check that synthetic weights give finite, input-dependent outputs at full size."""
    import tempfile

    cases = [
        ("full-width r18", Architecture(builder.STAGE_DEPTHS["r18"])),
        ("full-width r100", full_r100()),
        ("r200 at widths [16, 32, 64, 128]",
         Architecture(builder.STAGE_DEPTHS["r200"], (16, 32, 64, 128), 16, 128)),
    ]
    images = test_images(seed=7, batch=2, in_pixels=False)
    with tempfile.TemporaryDirectory() as directory:
        for label, arch in cases:
            built = builder.build_graph(arch, ExportStyle(), arguments.seed)
            path = os.path.join(directory, "model.onnx")
            builder.save_model(built.model, path)
            output = builder.run_onnxruntime(path, images)
            norm = builder.check_output_sane(output, label)
            cosine = float(output[0] @ output[1]
                           / np.linalg.norm(output[0]) / np.linalg.norm(output[1]))
            print(f"{label}: finite, mean row norm {norm:.3f}, "
                  f"cosine between two random inputs {cosine:.3f}")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    fixtures = commands.add_parser("fixtures", help="write every test fixture")
    fixtures.add_argument("--out", default=os.path.join(REPO_ROOT, "Tests", "Fixtures"),
                          help="fixture directory (default: Tests/Fixtures of this repository)")
    fixtures.set_defaults(run=command_fixtures)

    full = commands.add_parser(
        "full-r100", help="full-width r100 (stem 64, widths 64-512, embedding 512), torch_folded")
    full.add_argument("out", help="path of the .onnx file to write")
    full.add_argument("--seed", type=int, default=FULL_R100_SEED,
                      help=f"weight seed (default {FULL_R100_SEED})")
    full.add_argument("--no-check", action="store_true",
                      help="skip onnx.checker and the onnxruntime run")
    full.set_defaults(run=command_full_r100)

    build = commands.add_parser("build", help="any depth, width and export style")
    build.add_argument("out", help="path of the .onnx file to write")
    build.add_argument("--depth", choices=sorted(builder.STAGE_DEPTHS), default="r100")
    build.add_argument("--depths", help="blocks per stage, e.g. 3,13,30,3 (overrides --depth)")
    build.add_argument("--widths", default="64,128,256,512", help="channels per stage")
    build.add_argument("--stem-width", type=int, default=64)
    build.add_argument("--embedding-size", type=int, default=512)
    build.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    build.add_argument("--style", choices=["torch_folded", "unfolded"], default="torch_folded")
    build.add_argument("--flatten", default="flatten",
                       choices=["flatten", "reshape_zero", "reshape_minus_one", "pinned_reshape"])
    build.add_argument("--fc", choices=["gemm", "matmul_add"], default="gemm")
    build.add_argument("--mxnet-prelude", action="store_true",
                       help="the input takes 0-255 pixels that a Sub/Mul prelude normalizes; "
                       "BN epsilon 2e-5")
    build.add_argument("--prelude-constants", choices=["initializer", "constant_node"],
                       default="initializer")
    build.add_argument("--naming", choices=["torch", "mxnet"], default="torch")
    build.add_argument("--opset", type=int, default=11)
    build.add_argument("--initializers-as-inputs", action="store_true")
    build.add_argument("--omit-defaults", action="store_true")
    build.add_argument("--prelu-slope-shape", choices=["c11", "1c11", "c"], default="c11")
    build.add_argument("--typed-data", action="store_true")
    build.add_argument("--external-data", action="store_true",
                       help="store tensors in OUT.onnx.data beside the model")
    build.add_argument("--defect", choices=sorted(builder.DEFECT_MODULES))
    build.add_argument("--no-check", action="store_true",
                       help="skip onnx.checker and the onnxruntime run")
    build.set_defaults(run=command_build)

    sanity = commands.add_parser(
        "sanity", help="output checks of full-width r18 and r100 and a narrow r200")
    sanity.add_argument("--seed", type=int, default=FULL_R100_SEED)
    sanity.set_defaults(run=command_sanity)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    arguments = parse_arguments(argv)
    arguments.run(arguments)


if __name__ == "__main__":
    main(sys.argv[1:])
