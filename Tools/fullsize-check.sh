#!/usr/bin/env bash
# Full-size parity check: build the full-width IResNet-100 graph (AuraFace's size, synthetic
# weights), convert it with `auraface convert`, and compare the engine with onnxruntime on
# random tensors and on the aligned astronaut face. Exits non-zero if any row misses
# cosine >= 0.99999 or max |diff| <= 1e-4 * max |expected|, or if `inspect` does not report
# AuraFace's 65.2M parameters and 24.2 GFLOPs.
#
# Usage: Tools/fullsize-check.sh [WORK_DIR]   (default: a temporary folder, removed at exit)
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fullsize-check: error: unknown option '$1' (run with --help)" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -ge 1 ]]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

python=$("$repo/Tools/setup-venv.sh" --print-python)
face="$repo/Tests/Fixtures/faces/astronaut_aligned_112.png"

echo "== building auraface (release)"
swift build -c release --package-path "$repo" --product auraface >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
auraface="$(swift build -c release --package-path "$repo" --show-bin-path)/auraface"

echo "== making the full-width r100 graph with synthetic weights"
"$python" "$repo/Tools/make_test_graphs.py" full-r100 "$work/r100.onnx"

echo "== converting with auraface convert"
"$auraface" convert "$work/r100.onnx" "$work/r100.safetensors"

echo "== inspect totals"
"$auraface" inspect "$work/r100.safetensors" >"$work/inspect.txt"
grep -iE "total|parameters|GFLOP|BLAS" "$work/inspect.txt" | head -n 12
grep -q "65\.2M" "$work/inspect.txt" || { echo "inspect does not report 65.2M parameters"; exit 1; }
grep -q "24\.2 GFLOP" "$work/inspect.txt" || { echo "inspect does not report 24.2 GFLOPs"; exit 1; }

echo "== inputs: 4 random tensors and the aligned astronaut face"
"$python" "$repo/Tools/ort_reference.py" random-tensor 4 20261204 "$work/random.npy"
"$python" "$repo/Tools/ort_reference.py" face-tensor "$face" "$work/face.npy"

status=0
for input in random face; do
    "$python" "$repo/Tools/ort_reference.py" run "$work/r100.onnx" "$work/$input.npy" \
        "$work/$input.ort.npy"
    "$auraface" embed --model "$work/r100.safetensors" --tensor "$work/$input.npy" \
        --output "$work/$input.swift.npy" --raw
    "$python" "$repo/Tools/ort_reference.py" compare "$input" "$work/$input.ort.npy" \
        "$work/$input.swift.npy" || status=1
done

echo "== the same face read from PNG by the engine (libpng, RGB, (v - 127.5) / 127.5)"
"$auraface" embed --model "$work/r100.safetensors" "$face" >"$work/face.jsonl"
"$python" - "$work/face.jsonl" "$work/face.ort.npy" <<'EOF' || status=1
import json, sys
import numpy as np
line = json.loads(open(sys.argv[1]).readline())
swift = np.array(line["embedding"], dtype=np.float64)
ort = np.load(sys.argv[2])[0].astype(np.float64)
ort /= np.linalg.norm(ort)
cosine = float(swift @ ort)
print(f"png path: cosine {cosine:.9f} against onnxruntime on the same crop")
sys.exit(0 if cosine >= 0.99999 else 1)
EOF

if [[ $status -ne 0 ]]; then
    echo "full-size check FAILED"
else
    echo "full-size check passed"
fi
exit $status
