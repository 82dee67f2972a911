#!/usr/bin/env bash
# Photo-to-embedding parity: embed the astronaut photo from its five landmarks with the Swift
# pipeline (`auraface embed --landmarks`: align, normalize, run the engine) and with
# insightface's Python pipeline (cv2 + scikit-image alignment, onnxruntime on the same ONNX
# graph), then print the cosine. Exits non-zero below cosine 0.9999.
#
# The graph is Tests/Fixtures/parity/r18.onnx (synthetic weights, fast), or with --full the
# full-width IResNet-100 that Tools/make_test_graphs.py builds (AuraFace's size, synthetic
# weights). Synthetic weights check the arithmetic, not recognition accuracy.
#
# Usage: Tools/photo_parity.sh [--full] [WORK_DIR]   (default: a temporary folder)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
full=false
if [[ ${1:-} == --full ]]; then
    full=true
    shift
fi
case "${1:-}" in
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "photo_parity: error: unknown option '$1' (run with --help)" >&2; exit 2 ;;
esac
if [[ $# -ge 1 ]]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

python=$("$repo/Tools/setup-venv.sh" --print-python)
photo="$repo/Tests/Fixtures/faces/astronaut.png"
# The hand-marked landmarks of Tests/Fixtures/faces/astronaut_landmarks.json.
landmarks=$("$python" -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(','.join(str(v) for p in d['landmarks_xy'] for v in p))" \
    "$repo/Tests/Fixtures/faces/astronaut_landmarks.json")

echo "== building auraface (release)"
swift build -c release --package-path "$repo" --product auraface >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
auraface="$(swift build -c release --package-path "$repo" --show-bin-path)/auraface"

if $full; then
    echo "== making the full-width r100 graph with synthetic weights"
    "$python" "$repo/Tools/make_test_graphs.py" full-r100 "$work/model.onnx"
else
    cp "$repo/Tests/Fixtures/parity/r18.onnx" "$work/model.onnx"
fi
"$auraface" convert "$work/model.onnx" "$work/model.safetensors" >/dev/null

echo "== swift: photo + landmarks -> align -> embed"
"$auraface" embed --model "$work/model.safetensors" --landmarks "$landmarks" \
    --save-aligned "$work/aligned" "$photo" >"$work/swift.jsonl"

echo "== python: cv2.imread -> skimage SimilarityTransform -> cv2.warpAffine -> onnxruntime"
"$python" "$repo/Tools/photo_parity.py" "$work/model.onnx" "$photo" "$landmarks" \
    "$work/swift.jsonl" "$work/aligned/astronaut_aligned.png"
