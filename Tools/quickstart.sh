#!/usr/bin/env bash
# The main job, from a fresh clone: install the Debian packages, build `auraface`, get
# AuraFace's ONNX file, convert it to safetensors and embed the aligned astronaut face.
#
# Usage:
#   Tools/quickstart.sh                 download glintr100.onnx from Hugging Face (fal/AuraFace-v1)
#   Tools/quickstart.sh MODEL.onnx      use an ONNX file you already have
#   Tools/quickstart.sh --synthetic     use a full-size IResNet-100 with synthetic weights
#
# Without an argument and without a network connection to Hugging Face, the script falls back to
# the synthetic model and prints a warning, because its embeddings recognise no one.
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --synthetic | "") ;;
    -*) echo "quickstart: error: unknown option '$1' (run with --help)" >&2; exit 2 ;;
esac
if [[ $# -gt 1 ]]; then
    echo "quickstart: error: expected at most one argument, found $#" >&2
    exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
weights="$repo/Weights"
face="$repo/Tests/Fixtures/faces/astronaut_aligned_112.png"
mkdir -p "$weights"

"$repo/Tools/install-deps.sh"

echo "== building auraface (release)"
swift build -c release --package-path "$repo" --product auraface >"$weights/build.log" 2>&1 ||
    { cat "$weights/build.log"; exit 1; }
auraface="$(swift build -c release --package-path "$repo" --show-bin-path)/auraface"

synthetic=false
case "${1:-}" in
    --synthetic)
        synthetic=true
        ;;
    "")
        if [[ ! -f "$weights/glintr100.onnx" ]] && ! "$repo/Tools/download-auraface.sh"; then
            echo "quickstart: could not download AuraFace; falling back to synthetic weights" >&2
            synthetic=true
        fi
        model="$weights/glintr100.onnx"
        ;;
    *)
        model=$1
        [[ -f "$model" ]] || { echo "quickstart: error: '$model' not found" >&2; exit 2; }
        ;;
esac

if $synthetic; then
    python=$("$repo/Tools/setup-venv.sh" --print-python)
    model="$weights/synthetic-r100.onnx"
    echo "== making a full-size IResNet-100 with SYNTHETIC weights (not a face recogniser)"
    [[ -f "$model" ]] || "$python" "$repo/Tools/make_test_graphs.py" full-r100 "$model"
fi

converted="$weights/$(basename "${model%.onnx}").safetensors"
echo "== converting $model"
"$auraface" convert "$model" "$converted"

echo "== inspecting $converted"
"$auraface" inspect "$converted" | tail -n 25

echo "== embedding $face"
"$auraface" embed --model "$converted" "$face" >"$weights/astronaut.jsonl"
python3 - "$weights/astronaut.jsonl" <<'EOF'
import json, sys
line = json.loads(open(sys.argv[1]).readline())
values = ", ".join(f"{v:+.4f}" for v in line["embedding"][:6])
print(f"{line['file']}: {len(line['embedding'])}-d embedding [{values}, ...], raw norm {line['norm']:.3f}")
print(f"full JSON line: {sys.argv[1]}")
EOF
if $synthetic; then
    echo "NOTE: these weights are synthetic; the embedding proves the engine runs, not that it recognises faces."
fi
