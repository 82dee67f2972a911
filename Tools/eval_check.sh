#!/usr/bin/env bash
# End-to-end check of `auraface eval`: write small synthetic verification sets in every .bin
# layout (Tools/make_verification_bins.py), convert the r18 fixture graph, run `auraface eval`
# on the sets, and compare its table with an independent NumPy + onnxruntime run of the same
# protocol (Tools/eval_check.py). A second run must read the embedding cache and print the
# same table. The weights are synthetic: the accuracies prove the protocol, not recognition.
#
# Usage: Tools/eval_check.sh [--format jpeg|png] [--pairs N] [WORK_DIR]
#   --format  image encoding inside the sets (default jpeg, as in InsightFace's files)
#   --pairs   pairs per set, a multiple of 20 (default 600)
#   WORK_DIR  keeps the sets, weights and tables (default: a temporary folder, removed at exit)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
format=jpeg
pairs=600
work=
while [[ $# -gt 0 ]]; do
    case $1 in
    --format) format=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "eval_check: error: unknown option '$1' (run with --help)" >&2; exit 2 ;;
    *) work=$1; shift ;;
    esac
done
if [[ -n $work ]]; then
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

python=$("$repo/Tools/setup-venv.sh" --print-python)

echo "== building auraface (release)"
swift build -c release --package-path "$repo" --product auraface >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
auraface="$(swift build -c release --package-path "$repo" --show-bin-path)/auraface"

echo "== writing synthetic sets: $pairs pairs, $format images, 5 pickle layouts"
"$python" "$repo/Tools/make_verification_bins.py" "$work/sets" --pairs "$pairs" --format "$format"
bins=("$work"/sets/*.bin)

echo "== converting the r18 fixture graph"
"$auraface" convert "$repo/Tests/Fixtures/parity/r18.onnx" "$work/r18.safetensors" >/dev/null

echo "== auraface eval (embeddings computed)"
rm -rf "$work/cache"
start=$(date +%s%N)
"$auraface" eval --model "$work/r18.safetensors" --cache "$work/cache" --roc "$work/roc" \
    "${bins[@]}" | tee "$work/table.txt"
first_ms=$((($(date +%s%N) - start) / 1000000))

echo "== auraface eval again (embeddings read from the cache)"
start=$(date +%s%N)
"$auraface" eval --model "$work/r18.safetensors" --cache "$work/cache" "${bins[@]}" >"$work/table-cached.txt"
second_ms=$((($(date +%s%N) - start) / 1000000))
echo "first run ${first_ms} ms, cached run ${second_ms} ms"
if ! diff "$work/table.txt" "$work/table-cached.txt"; then
    echo "the cached run printed a different table"
    exit 1
fi

echo "== comparing with NumPy + onnxruntime"
"$python" "$repo/Tools/eval_check.py" "$repo/Tests/Fixtures/parity/r18.onnx" "$work/table.txt" "${bins[@]}"
