"""Compare every layer of an `auraface trace` with onnxruntime's intermediate values.

Usage: trace_compare.py MODEL.onnx MAP.json TRACE_DIR [--tolerance T]

MAP.json comes from `auraface convert --layer-map` and names, for each traced layer, the ONNX
value that holds the same activation. TRACE_DIR is the output folder of `auraface trace`, whose
manifest.json names the input tensor. The script exposes every mapped value as a graph output,
runs onnxruntime once on that input with graph optimizations off (so each value is computed by
its own node, as in the exported graph) and prints, per layer in forward order, max|a - b|,
max|b| and the relative difference max|a - b| / max|b|, where a is the engine's output and b
onnxruntime's. It names the first layer whose relative difference exceeds T (default 1e-5) and
exits 1 if there is one, or if the map lists a layer the trace lacks or orders layers differently.
Traced layers missing from the map (a conv whose bias the converter moved into the batch norm
after it) are listed and not compared.
"""

import argparse
import json
import os
import sys

import numpy as np


def reference_outputs(model_path, values, x):
    import onnx
    import onnxruntime as ort

    model = onnx.load(model_path)
    existing = {output.name for output in model.graph.output}
    for value in values:
        if value not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(value, onnx.TensorProto.FLOAT, None))
            existing.add(value)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = session.run(values, {session.get_inputs()[0].name: x})
    return dict(zip(values, outputs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("layer_map")
    parser.add_argument("trace_dir")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()

    with open(args.layer_map) as f:
        layer_map = json.load(f)
    with open(os.path.join(args.trace_dir, "manifest.json")) as f:
        manifest = json.load(f)

    mapped = [entry["layer"] for entry in layer_map]
    traced_layers = {layer["name"]: layer for layer in manifest["layers"]}
    in_map = set(mapped)
    # The converter leaves out a conv whose bias it moved into the batch norm after it: the
    # engine's conv output then lacks that bias, so only the conv + batch norm pair compares.
    unmapped = [name for name in traced_layers if name not in in_map]
    traced_order = [name for name in traced_layers if name in in_map]
    if mapped != traced_order:
        only_map = [name for name in mapped if name not in traced_layers]
        print(f"the layer map and the trace disagree: only in the map {only_map[:5]}, "
              f"map order {mapped[:3]}..., trace order {traced_order[:3]}...")
        return 1

    x = np.load(manifest["input"]).astype(np.float32)
    values = [entry["onnx_value"] for entry in layer_map]
    reference = reference_outputs(args.model, values, x)

    rows = []
    first_drift = None
    for entry in layer_map:
        layer = traced_layers[entry["layer"]]
        ours = np.load(os.path.join(args.trace_dir, layer["file"])).astype(np.float64)
        theirs = reference[entry["onnx_value"]].astype(np.float64)
        if ours.size != theirs.size:
            print(f"{entry['layer']}: the trace has shape {list(ours.shape)}, onnxruntime {list(theirs.shape)}")
            return 1
        # fc and features are [N, D] in the trace; onnxruntime may keep [N, D, 1, 1] or similar.
        theirs = theirs.reshape(ours.shape)
        difference = float(np.max(np.abs(ours - theirs)))
        scale = float(np.max(np.abs(theirs)))
        if scale > 0:
            relative = difference / scale
        else:
            relative = 0.0 if difference == 0 else float("inf")
        rows.append((entry["layer"], entry["onnx_value"], list(ours.shape), difference, scale, relative))
        if first_drift is None and not relative <= args.tolerance:
            first_drift = entry["layer"]

    name_width = max(len(row[0]) for row in rows)
    print(f"{'layer':<{name_width}}  {'shape':<18}  {'max|a-b|':>10}  {'max|b|':>10}  {'rel diff':>10}")
    for name, _, shape, difference, scale, relative in rows:
        flag = "  > tolerance" if not relative <= args.tolerance else ""
        shape_text = "[" + ", ".join(map(str, shape)) + "]"
        print(f"{name:<{name_width}}  {shape_text:<18}  {difference:10.3e}  {scale:10.3e}  {relative:10.3e}{flag}")

    if unmapped:
        print(f"not compared (no matching ONNX value): {', '.join(unmapped)}")
    worst = sorted(rows, key=lambda row: row[5], reverse=True)[:5]
    print()
    print("worst layers: " + ", ".join(f"{row[0]} {row[5]:.3e}" for row in worst))
    if first_drift is None:
        print(f"all {len(rows)} layers within relative difference {args.tolerance:g}")
        return 0
    print(f"first layer beyond relative difference {args.tolerance:g}: {first_drift}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
