#!/usr/bin/env bash
# Layer-by-layer parity: convert an ONNX IResNet with its layer map, trace the engine on one
# random input, and compare every traced layer with onnxruntime's value for it
# (Tools/trace_compare.py). Exits 1 if any layer's max|a - b| / max|b| exceeds the tolerance.
#
# Usage: Tools/trace_compare.sh MODEL.onnx [WORK_DIR] [TOLERANCE]
#   WORK_DIR defaults to a temporary folder, removed at exit; TOLERANCE defaults to 1e-5.
#   SWIFT_SCRATCH_PATH, if set, is passed to swift build as --scratch-path.
#   Make a full-width r100 with: "$(Tools/setup-venv.sh --print-python)" Tools/make_test_graphs.py full-r100 r100.onnx
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "trace_compare: error: unknown option '$1' (run with --help)" >&2; exit 2 ;;
esac
if [[ $# -lt 1 ]]; then
    echo "usage: $0 MODEL.onnx [WORK_DIR] [TOLERANCE]" >&2
    exit 2
fi
model=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -ge 2 ]]; then
    work=$2
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
tolerance=${3:-1e-5}

python=$("$repo/Tools/setup-venv.sh" --print-python)

build=(swift build -c release --package-path "$repo")
if [[ -n "${SWIFT_SCRATCH_PATH:-}" ]]; then
    build+=(--scratch-path "$SWIFT_SCRATCH_PATH")
fi
echo "== building auraface (release)"
"${build[@]}" --product auraface >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
auraface="$("${build[@]}" --show-bin-path)/auraface"

echo "== converting with its layer map"
"$auraface" convert --layer-map "$work/layer-map.json" "$model" "$work/model.safetensors"

echo "== tracing one random input"
"$python" "$repo/Tools/ort_reference.py" random-tensor 1 20261204 "$work/input.npy"
"$auraface" trace --model "$work/model.safetensors" --tensor "$work/input.npy" --out "$work/trace" \
    >"$work/trace.txt"
echo "$(($(wc -l <"$work/trace.txt") - 1)) layers traced to $work/trace"

echo "== comparing each layer with onnxruntime"
"$python" "$repo/Tools/trace_compare.py" --tolerance "$tolerance" "$model" "$work/layer-map.json" "$work/trace"
