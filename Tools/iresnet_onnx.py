"""Build ONNX graphs of arcface_torch's IResNet with deterministic synthetic weights.

The topology follows recognition/arcface_torch/backbones/iresnet.py in deepinsight/insightface.
A 3x3 stem (conv1, bn1, prelu) feeds four stages of IBasicBlocks. A block runs bn1, conv1, bn2,
prelu, conv2 (with the stage stride) and bn3, and the first block of each stage adds a
downsample (conv1x1 + BatchNorm2d) of the block input. The head is bn2, flatten, fc and the
BatchNorm1d `features`.

`ExportStyle` switches reproduce the ways real exporters write that network (torch.onnx with batch
norms folded into convolutions, unfolded batch norms, Reshape instead of Flatten, MatMul + Add
instead of Gemm, an MXNet-style Sub/Mul input prelude, old opsets, initializers listed as inputs,
omitted default attributes, other PReLU slope shapes, typed tensor fields, external data), so that
the Swift converter can be tested on each one without the real AuraFace weights.

The weights are random: they exercise the arithmetic, and the graphs recognize no faces.
Only numpy and onnx are used; torch is not needed.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Blocks per stage of the named IResNet depths in arcface_torch (iresnet18 ... iresnet200).
STAGE_DEPTHS = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
    "r200": (6, 26, 60, 6),
}

# The pixel mapping arcface_torch models are trained with: v in 0...255 -> (v - 127.5) / 127.5.
INPUT_MEAN = 127.5
TRAINING_INPUT_SCALE = 1 / 127.5
# MXNet-era insightface models hard-code the scale of their Sub/Mul prelude as 1/128.
INPUT_SCALE = 0.0078125

# Block whose PReLU the "relu_in_block" defect replaces, block whose residual Add the
# "missing_residual_add" defect drops, and convolution that the "kernel_5x5" defect widens.
DEFECT_MODULES = {
    "relu_in_block": "layer2.0",
    "missing_residual_add": "layer3.1",
    "kernel_5x5": "layer1.0.conv1",
}

# Error kind that a correct converter raises for each defect (`expected_error.kind` in the
# .expected.json fixtures).
DEFECT_ERROR_KINDS = {
    "relu_in_block": "unsupported_activation",
    "missing_residual_add": "missing_residual_add",
    "kernel_5x5": "unexpected_kernel_size",
}


@dataclass(frozen=True)
class Architecture:
    """Hyperparameters of one IResNet, as in IResNetArchitecture.swift."""

    stage_depths: tuple[int, ...]
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    embedding_size: int = 512
    input_size: int = 112
    input_channels: int = 3

    @property
    def final_spatial_size(self) -> int:
        return self.input_size // 16

    @property
    def flattened_size(self) -> int:
        """Length of the vector that fc reads: C4 * 7 * 7 for a 112x112 input."""
        return self.stage_widths[-1] * self.final_spatial_size**2

    @property
    def name(self) -> str:
        """The conventional name, such as iresnet100 (two convolutions per block, plus two)."""
        return f"iresnet{sum(self.stage_depths) * 2 + 2}"


@dataclass(frozen=True)
class ExportStyle:
    """How the graph is written. The defaults match AuraFace's glintr100.onnx.

    style: "torch_folded" folds every batch norm that follows a convolution into that
        convolution's bias, as torch.onnx does in eval mode. "unfolded" keeps bias-free
        convolutions, each followed by its own BatchNormalization.
    flatten: "flatten" (Flatten axis 1), "reshape_zero" (Reshape to [0, -1]),
        "reshape_minus_one" (Reshape to [-1, C*49]) or "pinned_reshape". The last reshapes to
        [1, C*49], as a trace with one image writes it, so the graph input has batch size 1.
    fc: "gemm" (Gemm with transB=1 and weight [E, C*49]) or "matmul_add" (MatMul with weight
        [C*49, E], then Add of the bias).
    mxnet_prelude: the graph input takes raw 0-255 pixels, and Sub 127.5 then Mul 0.0078125 come
        before the stem convolution.
    prelude_constants: "initializer" (shape [1] initializers) or "constant_node" (scalar
        Constant nodes) for the two prelude constants.
    naming: "torch" (node names such as /layer1/layer1.0/conv1/Conv, PyTorch parameter names)
        or "mxnet" (stage1_unit1_conv1, stage1_unit1_bn1_gamma, as insightface's MXNet models).
    bn_epsilon: epsilon of every batch norm; None means 2e-5 with the MXNet prelude, else 1e-5.
    opset: the default-domain opset (8, 11, 13 and 17 are tested).
    initializers_as_inputs: also list every initializer in graph.input, as IR version 3 requires.
    omit_defaults: leave out attributes at their default value (Conv strides of 1, pads of 0,
        dilations, group and kernel_shape; BatchNormalization epsilon 1e-5 and momentum; Flatten
        axis; Gemm alpha, beta and transA).
    prelu_slope_shape: "c11" ([C, 1, 1]), "1c11" ([1, C, 1, 1]) or "c" ([C]). A [C] slope
        broadcasts along the width of an NCHW tensor under ONNX rules, so it is ambiguous and
        onnxruntime cannot run such a graph unless C equals the width.
    typed_data: store tensors in float_data / int64_data instead of raw_data.
    defect: None, or one of DEFECT_MODULES: a graph that a converter must reject.
    """

    style: str = "torch_folded"
    flatten: str = "flatten"
    fc: str = "gemm"
    mxnet_prelude: bool = False
    prelude_constants: str = "initializer"
    naming: str = "torch"
    bn_epsilon: float | None = None
    opset: int = 11
    initializers_as_inputs: bool = False
    omit_defaults: bool = False
    prelu_slope_shape: str = "c11"
    typed_data: bool = False
    defect: str | None = None

    def __post_init__(self) -> None:
        choices = {
            "style": ("torch_folded", "unfolded"),
            "flatten": ("flatten", "reshape_zero", "reshape_minus_one", "pinned_reshape"),
            "fc": ("gemm", "matmul_add"),
            "prelude_constants": ("initializer", "constant_node"),
            "naming": ("torch", "mxnet"),
            "prelu_slope_shape": ("c11", "1c11", "c"),
            "defect": (None, *DEFECT_MODULES),
        }
        for field, allowed in choices.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(f"ExportStyle.{field} is {value!r}, expected one of {allowed}")
        if self.opset < 8:
            raise ValueError(f"ExportStyle.opset is {self.opset}, expected 8 or later")

    @property
    def epsilon(self) -> float:
        if self.bn_epsilon is not None:
            return self.bn_epsilon
        return 2e-5 if self.mxnet_prelude else 1e-5

    @property
    def ir_version(self) -> int:
        """The lowest IR version of the opset; at least 4 unless initializers are inputs.

        IR versions before 4 require every initializer to be a graph input.
        """
        minimum = helper.find_min_ir_version_for([helper.make_opsetid("", self.opset)])
        return minimum if self.initializers_as_inputs else max(minimum, 4)


@dataclass
class BuiltGraph:
    """A built model and what a correct converter must read from it."""

    model: onnx.ModelProto
    architecture: Architecture
    style: ExportStyle
    seed: int
    # The tensors a converter must write, under PyTorch names, in IResNetArchitecture's
    # expectedTensors order: folded convolutions carry a bias, PReLU slopes are [C].
    converter_tensors: dict[str, np.ndarray]
    # Module paths of the batch norms folded into the layer before them, in forward order.
    folded_batch_norms: list[str]
    # The unfolded PyTorch parameters and buffers the graph was made from.
    state_dict: dict[str, np.ndarray]

    @property
    def input_name(self) -> str:
        return self.model.graph.input[0].name

    @property
    def fixed_batch_size(self) -> int | None:
        return 1 if self.style.flatten == "pinned_reshape" else None

    def expected_facts(self) -> dict:
        """Return the facts a correct converter must find, keyed as in .expected.json."""
        arch = self.architecture
        style = self.style
        facts = {
            "architecture": arch.name,
            "stage_depths": list(arch.stage_depths),
            "stage_widths": list(arch.stage_widths),
            "stem_width": arch.stem_width,
            "embedding_size": arch.embedding_size,
            "input_size": arch.input_size,
            "input_channels": arch.input_channels,
            "input_mean": INPUT_MEAN,
            "input_scale": INPUT_SCALE if style.mxnet_prelude else TRAINING_INPUT_SCALE,
            "input_normalization_in_graph": style.mxnet_prelude,
            "bn_epsilon": style.epsilon,
            "opset": style.opset,
            "ir_version": style.ir_version,
            "folded_batch_norms": list(self.folded_batch_norms),
            "fixed_batch_size": self.fixed_batch_size,
            "prelu_slope_shape": {"c11": "[C,1,1]", "1c11": "[1,C,1,1]", "c": "[C]"}[
                style.prelu_slope_shape
            ],
            "input_name": self.input_name,
            "output_name": self.model.graph.output[0].name,
            "seed": self.seed,
            "expected_error": None,
        }
        if style.defect is not None:
            facts["expected_error"] = {
                "kind": DEFECT_ERROR_KINDS[style.defect],
                "module": DEFECT_MODULES[style.defect],
            }
        elif style.prelu_slope_shape == "c":
            facts["expected_error"] = {
                "kind": "ambiguous_prelu_slope",
                "module": "prelu",
                "accepted_with_flag": True,
            }
        return facts


# --- Synthetic weights ---------------------------------------------------------------------


def make_state_dict(
    arch: Architecture, seed: int, kernel_sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Draw the parameters and buffers of an eval-mode IResNet, under PyTorch names.

    The draws follow the module order of the PyTorch state dict, so a seed always gives the
    same tensors. The scales keep activations finite and far from zero at every depth (the
    `sanity` command of make_test_graphs.py checks full-width r18 and r100):
    - convolutions and fc: normal with std sqrt(1 / fan_in), so a layer roughly keeps the
      variance of its input.
    - batch norms: running_var uniform in [0.5, 1.5], running_mean and bias normal with std
      0.1, weight uniform in [0.8, 1.2]. The exception is bn3, the residual branch's last,
      whose weight is in [0.1, 0.3] so that each block adds a small correction to its input.
    - PReLU slopes: uniform in [0.1, 0.3].

    kernel_sizes maps a convolution's module path to a kernel size other than its usual one.
    """
    rng = np.random.default_rng(seed)
    kernel_sizes = kernel_sizes or {}
    state: dict[str, np.ndarray] = {}

    def conv(module: str, in_channels: int, out_channels: int, kernel_size: int) -> None:
        kernel_size = kernel_sizes.get(module, kernel_size)
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        state[module + ".weight"] = rng.standard_normal(shape, dtype=np.float32) * np.float32(
            np.sqrt(1.0 / fan_in)
        )

    def batch_norm(module: str, channels: int, weight_range: tuple[float, float]) -> None:
        state[module + ".weight"] = rng.uniform(*weight_range, channels).astype(np.float32)
        state[module + ".bias"] = (0.1 * rng.standard_normal(channels)).astype(np.float32)
        state[module + ".running_mean"] = (0.1 * rng.standard_normal(channels)).astype(np.float32)
        state[module + ".running_var"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)

    def prelu(module: str, channels: int) -> None:
        state[module + ".weight"] = rng.uniform(0.1, 0.3, channels).astype(np.float32)

    near_one = (0.8, 1.2)
    conv("conv1", arch.input_channels, arch.stem_width, 3)
    batch_norm("bn1", arch.stem_width, near_one)
    prelu("prelu", arch.stem_width)

    in_channels = arch.stem_width
    for stage, (depth, width) in enumerate(zip(arch.stage_depths, arch.stage_widths)):
        for block in range(depth):
            prefix = block_name(stage, block)
            batch_norm(prefix + ".bn1", in_channels, near_one)
            conv(prefix + ".conv1", in_channels, width, 3)
            batch_norm(prefix + ".bn2", width, near_one)
            prelu(prefix + ".prelu", width)
            conv(prefix + ".conv2", width, width, 3)
            batch_norm(prefix + ".bn3", width, (0.1, 0.3))
            if block == 0:
                conv(prefix + ".downsample.0", in_channels, width, 1)
                batch_norm(prefix + ".downsample.1", width, near_one)
            in_channels = width

    batch_norm("bn2", arch.stage_widths[-1], near_one)
    fan_in = arch.flattened_size
    state["fc.weight"] = rng.standard_normal(
        (arch.embedding_size, fan_in), dtype=np.float32
    ) * np.float32(np.sqrt(1.0 / fan_in))
    state["fc.bias"] = (0.01 * rng.standard_normal(arch.embedding_size)).astype(np.float32)
    batch_norm("features", arch.embedding_size, near_one)
    return state


def block_name(stage: int, block: int) -> str:
    """PyTorch module path of a block, 0-based: block_name(0, 0) is layer1.0."""
    return f"layer{stage + 1}.{block}"


def pytorch_parameter_count(arch: Architecture) -> int:
    """Count parameters as sum(p.numel() for p in IResNet(...).parameters()) would.

    That is the unfolded network: convolution weights (no biases), every batch norm's weight and
    bias (running statistics are buffers, not parameters), PReLU slopes, fc weight and bias.
    """
    state = make_state_dict_shapes(arch)
    return sum(
        int(np.prod(shape))
        for name, shape in state.items()
        if not name.endswith((".running_mean", ".running_var"))
    )


def make_state_dict_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Return the PyTorch state dict's names and shapes without drawing any values."""
    shapes: dict[str, tuple[int, ...]] = {}

    def batch_norm(module: str, channels: int) -> None:
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{module}.{field}"] = (channels,)

    shapes["conv1.weight"] = (arch.stem_width, arch.input_channels, 3, 3)
    batch_norm("bn1", arch.stem_width)
    shapes["prelu.weight"] = (arch.stem_width,)
    in_channels = arch.stem_width
    for stage, (depth, width) in enumerate(zip(arch.stage_depths, arch.stage_widths)):
        for block in range(depth):
            prefix = block_name(stage, block)
            batch_norm(prefix + ".bn1", in_channels)
            shapes[prefix + ".conv1.weight"] = (width, in_channels, 3, 3)
            batch_norm(prefix + ".bn2", width)
            shapes[prefix + ".prelu.weight"] = (width,)
            shapes[prefix + ".conv2.weight"] = (width, width, 3, 3)
            batch_norm(prefix + ".bn3", width)
            if block == 0:
                shapes[prefix + ".downsample.0.weight"] = (width, in_channels, 1, 1)
                batch_norm(prefix + ".downsample.1", width)
            in_channels = width
    batch_norm("bn2", arch.stage_widths[-1])
    shapes["fc.weight"] = (arch.embedding_size, arch.flattened_size)
    shapes["fc.bias"] = (arch.embedding_size,)
    batch_norm("features", arch.embedding_size)
    return shapes


def fold_batch_norm(
    weight: np.ndarray, state: dict[str, np.ndarray], module: str, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an eval-mode batch norm into the bias-free convolution before it.

    scale = gamma / sqrt(running_var + eps); W' = W * scale per output channel;
    b' = beta - running_mean * scale. Computed in float64, stored as float32.
    """
    gamma = state[module + ".weight"].astype(np.float64)
    beta = state[module + ".bias"].astype(np.float64)
    mean = state[module + ".running_mean"].astype(np.float64)
    var = state[module + ".running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + epsilon)
    folded_weight = weight.astype(np.float64) * scale[:, None, None, None]
    folded_bias = beta - mean * scale
    return folded_weight.astype(np.float32), folded_bias.astype(np.float32)


# --- Names ---------------------------------------------------------------------------------


class _TorchNames:
    """Names in the style of recent torch.onnx exports (scoped node names, onnx::Op_N)."""

    input_name = "input.1"
    output_name = "embedding"

    def __init__(self) -> None:
        self._next_constant = 1000

    def node(self, module: str, op_type: str) -> str:
        # torch.onnx nests one scope per module: layer1.0.downsample.0 becomes
        # /layer1/layer1.0/downsample/downsample.0/Conv. Operations written in a forward()
        # (the residual Add, flatten, the prelude) belong to the enclosing module's scope.
        parts = module.split(".")
        if parts[0] in ("prelude", "flatten"):
            parts = []
        elif parts[-1] == "add":
            parts = parts[:-1]
        scopes = []
        for index, part in enumerate(parts):
            scopes.append(f"{parts[index - 1]}.{part}" if part.isdigit() else part)
        return "/" + "/".join([*scopes, op_type])

    def output(self, node_name: str) -> str:
        return node_name + "_output_0"

    def initializer(self, module: str, field: str, op_type: str, exporter_made: bool) -> str:
        # Parameters that reach the graph unchanged keep their PyTorch name; tensors the
        # exporter computed (folded weights, reshaped slopes, shape constants) get a number.
        if not exporter_made:
            return f"{module}.{field}"
        self._next_constant += 1
        return f"onnx::{op_type}_{self._next_constant}"


class _MXNetNames:
    """Names in the style of insightface's MXNet IResNet models converted to ONNX."""

    input_name = "data"
    output_name = "fc1"

    _fields = {
        "weight": "weight",
        "bias": "bias",
        "gamma": "gamma",
        "beta": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_var",
    }

    def module(self, module: str) -> str:
        top = {
            "conv1": "conv0",
            "bn1": "bn0",
            "prelu": "relu0",
            "bn2": "bn1",
            "flatten": "flatten0",
            "fc": "pre_fc1",
            "features": "fc1",
            "prelude.sub": "_minusscalar0",
            "prelude.mul": "_mulscalar0",
            "prelude.sub.constant": "_minusscalar0_scalar",
            "prelude.mul.constant": "_mulscalar0_scalar",
        }
        if module in top:
            return top[module]
        layer, block, *rest = module.split(".")
        unit = f"stage{layer[len('layer'):]}_unit{int(block) + 1}"
        part = ".".join(rest)
        suffix = {
            "bn1": "bn1",
            "conv1": "conv1",
            "bn2": "bn2",
            "prelu": "relu1",
            "conv2": "conv2",
            "bn3": "bn3",
            "downsample.0": "conv1sc",
            "downsample.1": "sc",
            "add": "plus",
        }[part]
        return f"{unit}_{suffix}"

    def node(self, module: str, op_type: str) -> str:
        name = self.module(module)
        # MatMul + Add replaces one FullyConnected, so the Add needs a name of its own.
        return name + "_plus" if module == "fc" and op_type == "Add" else name

    def output(self, node_name: str) -> str:
        return node_name

    def initializer(self, module: str, field: str, op_type: str, exporter_made: bool) -> str:
        if op_type == "BatchNormalization":
            field = {"weight": "gamma", "bias": "beta"}.get(field, field)
        if op_type == "PRelu":
            field = "gamma"
        return f"{self.module(module)}_{self._fields.get(field, field)}"


# --- Graph ---------------------------------------------------------------------------------


class _GraphWriter:
    def __init__(self, style: ExportStyle) -> None:
        self.style = style
        self.names = _TorchNames() if style.naming == "torch" else _MXNetNames()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._node_names: set[str] = set()

    def tensor(self, name: str, array: np.ndarray) -> onnx.TensorProto:
        if not self.style.typed_data:
            return numpy_helper.from_array(array, name)
        if array.dtype == np.float32:
            return helper.make_tensor(
                name, TensorProto.FLOAT, array.shape, array.ravel().tolist(), raw=False
            )
        if array.dtype == np.int64:
            return helper.make_tensor(
                name, TensorProto.INT64, array.shape, array.ravel().tolist(), raw=False
            )
        raise TypeError(f"no typed field for dtype {array.dtype}")

    def initializer(
        self, module: str, field: str, op_type: str, array: np.ndarray, exporter_made: bool
    ) -> str:
        name = self.names.initializer(module, field, op_type, exporter_made)
        self.initializers.append(self.tensor(name, array))
        return name

    def node(
        self,
        op_type: str,
        inputs: list[str],
        module: str,
        attributes: dict | None = None,
        output: str | None = None,
    ) -> str:
        base = self.names.node(module, op_type)
        # Exporters number repeated names: /Constant, /Constant_1.
        name = base
        while name in self._node_names:
            name = f"{base}_{len([n for n in self._node_names if n.startswith(base)])}"
        self._node_names.add(name)
        output = output or self.names.output(name)
        node = helper.make_node(op_type, inputs, [output], name=name)
        for key in sorted(attributes or {}):
            node.attribute.append(helper.make_attribute(key, attributes[key]))
        self.nodes.append(node)
        return output


def build_graph(
    arch: Architecture, style: ExportStyle = ExportStyle(), seed: int = 0
) -> BuiltGraph:
    """Build the IResNet graph for `arch` in `style`, with weights drawn from `seed`.

    Raises ValueError when the defect needs a block that `arch` does not have.
    """
    if style.defect is not None:
        _check_defect_fits(arch, style.defect)

    kernel_sizes = {DEFECT_MODULES["kernel_5x5"]: 5} if style.defect == "kernel_5x5" else {}
    state = make_state_dict(arch, seed, kernel_sizes)
    writer = _GraphWriter(style)
    epsilon = style.epsilon
    folded = style.style == "torch_folded"
    omit = style.omit_defaults
    converter_tensors: dict[str, np.ndarray] = {}
    folded_batch_norms: list[str] = []

    def batch_norm(x: str, module: str) -> str:
        attributes: dict = {}
        if not omit or not np.isclose(epsilon, 1e-5, rtol=0, atol=1e-12):
            attributes["epsilon"] = epsilon
        if not omit:
            attributes["momentum"] = 0.9
            if style.opset < 9:
                attributes["spatial"] = 1
        inputs = [x]
        for field in ("weight", "bias", "running_mean", "running_var"):
            array = state[f"{module}.{field}"]
            converter_tensors[f"{module}.{field}"] = array
            inputs.append(writer.initializer(module, field, "BatchNormalization", array, False))
        return writer.node("BatchNormalization", inputs, module, attributes)

    def conv(x: str, module: str, stride: int, batch_norm_module: str | None) -> str:
        """Write a bias-free PyTorch convolution, with its batch norm folded in or after it."""
        weight = state[module + ".weight"]
        kernel_size = weight.shape[-1]
        padding = kernel_size // 2

        attributes: dict = {}
        if not omit:
            attributes = {
                "dilations": [1, 1],
                "group": 1,
                "kernel_shape": [kernel_size, kernel_size],
                "pads": [padding] * 4,
                "strides": [stride, stride],
            }
        else:
            if padding != 0:
                attributes["pads"] = [padding] * 4
            if stride != 1:
                attributes["strides"] = [stride, stride]

        if folded and batch_norm_module is not None:
            weight, bias = fold_batch_norm(weight, state, batch_norm_module, epsilon)
            converter_tensors[module + ".weight"] = weight
            converter_tensors[module + ".bias"] = bias
            folded_batch_norms.append(batch_norm_module)
            inputs = [
                x,
                writer.initializer(module, "weight", "Conv", weight, True),
                writer.initializer(module, "bias", "Conv", bias, True),
            ]
            return writer.node("Conv", inputs, module, attributes)

        converter_tensors[module + ".weight"] = weight
        inputs = [x, writer.initializer(module, "weight", "Conv", weight, False)]
        out = writer.node("Conv", inputs, module, attributes)
        if batch_norm_module is not None:
            out = batch_norm(out, batch_norm_module)
        return out

    def prelu(x: str, module: str) -> str:
        slope = state[module + ".weight"]
        converter_tensors[module + ".weight"] = slope
        channels = slope.shape[0]
        shape = {"c11": (channels, 1, 1), "1c11": (1, channels, 1, 1), "c": (channels,)}[
            style.prelu_slope_shape
        ]
        exporter_made = style.prelu_slope_shape != "c"
        name = writer.initializer(module, "weight", "PRelu", slope.reshape(shape), exporter_made)
        return writer.node("PRelu", [x, name], module)

    x = writer.names.input_name
    if style.mxnet_prelude:
        x = _prelude(writer, x)

    x = conv(x, "conv1", 1, "bn1")
    x = prelu(x, "prelu")

    for stage, (depth, width) in enumerate(zip(arch.stage_depths, arch.stage_widths)):
        for block in range(depth):
            prefix = block_name(stage, block)
            stride = 2 if block == 0 else 1
            identity = x

            out = batch_norm(x, prefix + ".bn1")
            out = conv(out, prefix + ".conv1", 1, prefix + ".bn2")
            if style.defect == "relu_in_block" and prefix == DEFECT_MODULES["relu_in_block"]:
                out = writer.node("Relu", [out], prefix + ".prelu")
            else:
                out = prelu(out, prefix + ".prelu")
            out = conv(out, prefix + ".conv2", stride, prefix + ".bn3")

            if block == 0:
                # The downsample path reads the block input, not bn1's output.
                identity = conv(
                    identity, prefix + ".downsample.0", stride, prefix + ".downsample.1"
                )
            if style.defect == "missing_residual_add" and prefix == DEFECT_MODULES[
                "missing_residual_add"
            ]:
                x = out
            else:
                x = writer.node("Add", [out, identity], prefix + ".add")

    x = batch_norm(x, "bn2")
    x = _flatten(writer, x, arch)
    x = _fully_connected(writer, x, state, converter_tensors)
    x = batch_norm(x, "features")

    # The last node writes the graph output under the output's own name.
    writer.nodes[-1].output[0] = writer.names.output_name
    model = _make_model(writer, arch)
    ordered = _order_like_expected_tensors(arch, converter_tensors, set(folded_batch_norms))
    return BuiltGraph(model, arch, style, seed, ordered, folded_batch_norms, state)


def _check_defect_fits(arch: Architecture, defect: str) -> None:
    module = DEFECT_MODULES[defect]
    layer, block = module.split(".")[:2]
    stage = int(layer[len("layer"):]) - 1
    if int(block) >= arch.stage_depths[stage]:
        raise ValueError(
            f"defect {defect!r} needs block {layer}.{block}, "
            f"but stage {stage + 1} has {arch.stage_depths[stage]} blocks"
        )


def _prelude(writer: _GraphWriter, x: str) -> str:
    """Sub 127.5 then Mul 0.0078125: raw 0-255 pixels to the range the stem expects."""
    style = writer.style
    operands = []
    for module, op_type, value in (
        ("prelude.sub", "Sub", INPUT_MEAN),
        ("prelude.mul", "Mul", INPUT_SCALE),
    ):
        if style.prelude_constants == "initializer":
            name = writer.initializer(
                module, "scalar", op_type, np.array([value], dtype=np.float32), True
            )
        else:
            constant = writer.tensor("value", np.array(value, dtype=np.float32))
            name = writer.node("Constant", [], module + ".constant", {"value": constant})
        operands.append((module, op_type, name))
    for module, op_type, name in operands:
        x = writer.node(op_type, [x, name], module)
    return x


def _flatten(writer: _GraphWriter, x: str, arch: Architecture) -> str:
    style = writer.style
    if style.flatten == "flatten":
        attributes = {} if style.omit_defaults else {"axis": 1}
        return writer.node("Flatten", [x], "flatten", attributes)
    shape = {
        "reshape_zero": [0, -1],
        "reshape_minus_one": [-1, arch.flattened_size],
        "pinned_reshape": [1, arch.flattened_size],
    }[style.flatten]
    name = writer.initializer("flatten", "shape", "Reshape", np.array(shape, dtype=np.int64), True)
    return writer.node("Reshape", [x, name], "flatten")


def _fully_connected(
    writer: _GraphWriter, x: str, state: dict[str, np.ndarray], converter_tensors: dict
) -> str:
    style = writer.style
    weight = state["fc.weight"]
    bias = state["fc.bias"]
    converter_tensors["fc.weight"] = weight
    converter_tensors["fc.bias"] = bias
    if style.fc == "gemm":
        attributes = {"transB": 1}
        if not style.omit_defaults:
            attributes.update({"alpha": 1.0, "beta": 1.0, "transA": 0})
        weight_name = writer.initializer("fc", "weight", "Gemm", weight, False)
        bias_name = writer.initializer("fc", "bias", "Gemm", bias, False)
        return writer.node("Gemm", [x, weight_name, bias_name], "fc", attributes)
    # MatMul reads [in, out]; the converter must transpose it back to PyTorch's [out, in].
    transposed = np.ascontiguousarray(weight.T)
    weight_name = writer.initializer("fc", "weight", "MatMul", transposed, True)
    bias_name = writer.initializer("fc", "bias", "Add", bias, False)
    product = writer.node("MatMul", [x, weight_name], "fc")
    return writer.node("Add", [product, bias_name], "fc")


def _make_model(writer: _GraphWriter, arch: Architecture) -> onnx.ModelProto:
    style = writer.style
    # arcface_torch's torch2onnx.py marks the batch dimension symbolic with dim_param "None".
    batch: int | str = 1 if style.flatten == "pinned_reshape" else "None"
    size = arch.input_size
    graph_input = helper.make_tensor_value_info(
        writer.names.input_name, TensorProto.FLOAT, [batch, arch.input_channels, size, size]
    )
    graph_output = helper.make_tensor_value_info(
        writer.names.output_name, TensorProto.FLOAT, [batch, arch.embedding_size]
    )
    inputs = [graph_input]
    if style.initializers_as_inputs:
        for tensor in writer.initializers:
            inputs.append(
                helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
            )
    graph = helper.make_graph(
        writer.nodes, arch.name, inputs, [graph_output], initializer=writer.initializers
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", style.opset)],
        producer_name="auraface-tools iresnet_onnx",
        producer_version="1",
    )
    model.ir_version = style.ir_version
    return model


def _order_like_expected_tensors(
    arch: Architecture, tensors: dict[str, np.ndarray], folded: set[str]
) -> dict[str, np.ndarray]:
    """Order as IResNetArchitecture.expectedTensors: weight layers, batch norms, PReLUs."""
    shapes = make_state_dict_shapes(arch)
    weight_layers = [
        name[: -len(".weight")] for name, shape in shapes.items() if len(shape) in (2, 4)
    ]
    batch_norms = [
        name[: -len(".running_var")] for name in shapes if name.endswith(".running_var")
    ]
    prelus = [name for name in shapes if name.endswith("prelu.weight")]
    order: list[str] = []
    for layer in weight_layers:
        order.append(layer + ".weight")
        if layer + ".bias" in tensors:
            order.append(layer + ".bias")
    for norm in batch_norms:
        if norm not in folded:
            fields = ("weight", "bias", "running_mean", "running_var")
            order.extend(f"{norm}.{field}" for field in fields)
    order.extend(prelus)
    missing = set(tensors) - set(order)
    if missing:
        raise AssertionError(f"tensors outside the expected layout: {sorted(missing)}")
    # A defect graph can lack a tensor (a Relu has no slope), so absent names are skipped.
    return {name: tensors[name] for name in order if name in tensors}


# --- Saving and checking -------------------------------------------------------------------


def save_model(model: onnx.ModelProto, path: str, external_data: bool = False) -> str | None:
    """Write `model` to `path`; return the external data file's name, or None.

    With external_data, every tensor of 256 bytes or more goes to `<file name>.data` beside the
    model (a relative location), and smaller ones stay inline, as onnx.save_model mixes them.
    The data file is removed first, because onnx appends to an existing one.
    """
    if not external_data:
        onnx.save_model(model, path)
        return None
    location = os.path.basename(path) + ".data"
    data_path = os.path.join(os.path.dirname(path) or ".", location)
    if os.path.exists(data_path):
        os.remove(data_path)
    onnx.save_model(
        copy.deepcopy(model),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=256,
    )
    # onnx creates the data file readable by its owner only; the model file is 0644.
    os.chmod(data_path, 0o644)
    return location


def run_onnxruntime(path: str, inputs: np.ndarray, log_severity: int = 3) -> np.ndarray:
    """Run the model at `path` on one thread (so the sums always run in the same order).

    log_severity is onnxruntime's: 3 logs errors only (not the warning that IR-3 style graphs
    list initializers as inputs), 4 logs nothing but fatal errors.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = log_severity
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: inputs})
    return output


def check_output_sane(
    output: np.ndarray, label: str, low: float = 1e-2, high: float = 1e4
) -> float:
    """Assert that every value is finite and each row's L2 norm is in [low, high]."""
    if not np.all(np.isfinite(output)):
        raise AssertionError(f"{label}: output has non-finite values")
    norms = np.linalg.norm(output.astype(np.float64), axis=1)
    if not np.all((norms >= low) & (norms <= high)):
        raise AssertionError(f"{label}: row norms {norms} outside [{low}, {high}]")
    return float(norms.mean())


# --- Reference forward pass ----------------------------------------------------------------


def reference_forward(
    state: dict[str, np.ndarray],
    arch: Architecture,
    images: np.ndarray,
    epsilon: float,
    input_in_pixels: bool = False,
) -> np.ndarray:
    """Run IResNet.forward of arcface_torch in float64 numpy, straight from the state dict.

    This is the oracle for the graphs: it shares no code with the graph writer, so a wrong
    wire in a graph (say, a downsample that reads bn1's output) shows up as a mismatch.
    images: [N, 3, H, W]; raw 0-255 pixels when input_in_pixels, else already normalized.
    Returns the [N, E] embedding before L2 normalization.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    x = images.astype(np.float64)
    if input_in_pixels:
        x = (x - INPUT_MEAN) * INPUT_SCALE

    def conv(x: np.ndarray, module: str, stride: int) -> np.ndarray:
        weight = state[module + ".weight"].astype(np.float64)
        kernel_size = weight.shape[-1]
        padding = kernel_size // 2
        padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        # windows: [N, C, H_out, W_out, k, k]
        windows = sliding_window_view(padded, (kernel_size, kernel_size), axis=(2, 3))
        windows = windows[:, :, ::stride, ::stride]
        return np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)

    def batch_norm(x: np.ndarray, module: str) -> np.ndarray:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        gamma = state[module + ".weight"].astype(np.float64).reshape(shape)
        beta = state[module + ".bias"].astype(np.float64).reshape(shape)
        mean = state[module + ".running_mean"].astype(np.float64).reshape(shape)
        var = state[module + ".running_var"].astype(np.float64).reshape(shape)
        return (x - mean) / np.sqrt(var + epsilon) * gamma + beta

    def prelu(x: np.ndarray, module: str) -> np.ndarray:
        slope = state[module + ".weight"].astype(np.float64).reshape(1, -1, 1, 1)
        return np.where(x > 0, x, slope * x)

    x = prelu(batch_norm(conv(x, "conv1", 1), "bn1"), "prelu")
    for stage, depth in enumerate(arch.stage_depths):
        for block in range(depth):
            prefix = block_name(stage, block)
            stride = 2 if block == 0 else 1
            out = batch_norm(x, prefix + ".bn1")
            out = conv(out, prefix + ".conv1", 1)
            out = batch_norm(out, prefix + ".bn2")
            out = prelu(out, prefix + ".prelu")
            out = conv(out, prefix + ".conv2", stride)
            out = batch_norm(out, prefix + ".bn3")
            identity = x
            if block == 0:
                identity = batch_norm(
                    conv(x, prefix + ".downsample.0", stride), prefix + ".downsample.1"
                )
            x = out + identity
    x = batch_norm(x, "bn2")
    x = x.reshape(x.shape[0], -1)
    x = x @ state["fc.weight"].astype(np.float64).T + state["fc.bias"].astype(np.float64)
    return batch_norm(x, "features")
