#!/usr/bin/env bash
# Long run of one loaded model: build auraface-soak in release and run it.
#
# Usage: Tools/soak.sh [--quick] [--scratch-path DIR] [auraface-soak options]
#
# auraface-soak computes --count embeddings (default 10000) with batch sizes cycling 1...16.
# It checks that every value is finite and that a fixed probe image gets identical bits every
# time, and it prints VmRSS and VmHWM as it goes. It exits non-zero if RSS grows after the
# warm-up faster than --max-slope KiB per 1000 embeddings. `auraface-soak --help` lists its
# options.
#
# Model, unless --model is given:
#   default    the full-width r100 with synthetic weights, Weights/bench/r100-synthetic.safetensors,
#              made and converted as Tools/benchmark.sh does (AuraFace's size: 3000
#              embeddings took 254 s on an idle 2-core AMD EPYC, 2 threads)
#   --quick    the r100 parity fixture at widths [8, 16, 32, 64], Tests/Fixtures/parity/r100.onnx,
#              converted to Weights/bench/r100-parity-narrow.safetensors (same depth and code
#              paths: 10000 embeddings took 35 s on an idle 2-core AMD EPYC, 2 threads)
#   --scratch-path DIR   SwiftPM build folder (default: SwiftPM's, .build)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
quick=false
scratch=()
model_given=false
soak_arguments=()

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=true; shift ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --model) model_given=true; soak_arguments+=("$1" "$2"); shift 2 ;;
        *) soak_arguments+=("$1"); shift ;;
    esac
done

echo "== building auraface and auraface-soak (release)"
build=(swift build -c release --package-path "$repo" ${scratch[@]+"${scratch[@]}"})
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for product in auraface auraface-soak; do
    "${build[@]}" --product "$product" >"$log" 2>&1 || { cat "$log"; exit 1; }
done
bin=$("${build[@]}" --show-bin-path)

if ! $model_given; then
    cache="$repo/Weights/bench"
    mkdir -p "$cache"
    if $quick; then
        onnx="$repo/Tests/Fixtures/parity/r100.onnx"
        weights="$cache/r100-parity-narrow.safetensors"
    else
        onnx="$cache/r100-synthetic.onnx"
        weights="$cache/r100-synthetic.safetensors"
        if [[ ! -f "$onnx" ]]; then
            echo "== making the full-width r100 graph with synthetic weights"
            python=$("$repo/Tools/setup-venv.sh" --print-python)
            "$python" "$repo/Tools/make_test_graphs.py" full-r100 "$onnx"
        fi
    fi
    if [[ ! -f "$weights" || "$onnx" -nt "$weights" ]]; then
        echo "== converting $onnx with auraface convert"
        "$bin/auraface" convert "$onnx" "$weights"
    fi
    soak_arguments=(--model "$weights" ${soak_arguments[@]+"${soak_arguments[@]}"})
fi

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/auraface-soak" "${soak_arguments[@]}"
