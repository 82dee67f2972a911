#!/usr/bin/env bash
# Benchmark the engine against onnxruntime on the same ONNX file, on this machine.
#
# Usage: Tools/benchmark.sh [options] [MODEL.onnx]
#
# Builds auraface and auraface-bench in release mode and makes the ONNX graph. The default
# graph is the full-width r100 with synthetic weights from Tools/make_test_graphs.py, cached
# in Weights/bench/. Converts it with `auraface convert`, then times both runtimes at batch 1
# and 8 with 1 and 2 threads. Every configuration runs in its own process so that its peak
# RSS is its own, and engine and onnxruntime processes alternate so that load from other
# programs hits both alike. It also times the engine at batch 1 with 1 and 2 threads under
# OPENBLAS_CORETYPE=Prescott, OpenBLAS's SSE3 baseline kernels for x86-64, to show what the
# kernel choice is worth, and at batch 1 with `--convolution plain`, the path that keeps the
# 3x3 kernels untransformed, to show what the Winograd weights cost in memory and save in
# time. Prints Markdown tables with the ratios and draws a PNG chart.
#
# Options:
#   --runs-batch1 N      timed runs per batch-1 configuration (default 20)
#   --runs-batch8 N      timed runs per batch-8 configuration (default 5)
#   --warmup N           untimed runs before them (default 2)
#   --load-runs N        timed loads and session creations (default 5)
#   --out DIR            folder for the JSON results (default Weights/bench/run-<UTC time>)
#   --chart FILE.png     chart path (default DIR/benchmark.png)
#   --scratch-path DIR   SwiftPM build folder (default: SwiftPM's, .build)
#   --no-prescott        skip the OPENBLAS_CORETYPE=Prescott runs
#   --no-plain           skip the --convolution plain runs
# With the defaults the measurements take about 3 to 5 minutes on a 2-core machine, plus the
# build and, on the first run, about 30 s to make and convert the graph.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs_batch1=20
runs_batch8=5
warmup=2
load_runs=5
out=""
chart=""
scratch=()
prescott=true
plain=true
model=""
command_line="Tools/benchmark.sh $*"

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs-batch1) runs_batch1=$2; shift 2 ;;
        --runs-batch8) runs_batch8=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --load-runs) load_runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --chart) chart=$2; shift 2 ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift 2 ;;
        --no-prescott) prescott=false; shift ;;
        --no-plain) plain=false; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "benchmark.sh: unknown option '$1' (run with --help for the options)" >&2; exit 2 ;;
        *)
            if [[ -n "$model" ]]; then
                echo "benchmark.sh: more than one model given ('$model' and '$1')" >&2
                exit 2
            fi
            model=$1
            shift
            ;;
    esac
done

cache="$repo/Weights/bench"
mkdir -p "$cache"
out=${out:-"$cache/run-$(date -u +%Y%m%dT%H%M%SZ)"}
mkdir -p "$out"
chart=${chart:-"$out/benchmark.png"}
echo "$command_line" >"$out/command.txt"
# The commit measured, and whether the engine's sources differed from it (read-only git calls).
if revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null); then
    if [[ -n "$(git -C "$repo" status --porcelain -- Sources Package.swift 2>/dev/null)" ]]; then
        revision="$revision with uncommitted changes in Sources/"
    fi
    echo "commit $revision" >"$out/revision.txt"
fi
python=$("$repo/Tools/setup-venv.sh" --print-python)

echo "== machine"
grep -m1 "model name" /proc/cpuinfo | sed 's/.*: /cpu: /'
echo "nproc: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== building auraface and auraface-bench (release)"
build=(swift build -c release --package-path "$repo" ${scratch[@]+"${scratch[@]}"})
for product in auraface auraface-bench; do
    "${build[@]}" --product "$product" >"$out/build.log" 2>&1 ||
        { cat "$out/build.log"; exit 1; }
done
bin=$("${build[@]}" --show-bin-path)

if [[ -z "$model" ]]; then
    model="$cache/r100-synthetic.onnx"
    if [[ ! -f "$model" ]]; then
        echo "== making the full-width r100 graph with synthetic weights"
        "$python" "$repo/Tools/make_test_graphs.py" full-r100 "$model"
    fi
fi
[[ -f "$model" ]] || { echo "benchmark.sh: model not found: $model" >&2; exit 1; }
weights="$cache/$(basename "${model%.onnx}").safetensors"
if [[ ! -f "$weights" || "$model" -nt "$weights" ]]; then
    echo "== converting with auraface convert"
    "$bin/auraface" convert "$model" "$weights"
fi
echo "model: $model"
echo "weights: $weights"
echo "results: $out"

cut -d' ' -f1-3 /proc/loadavg >"$out/loadavg-start.txt"
if awk -v cpus="$(nproc)" '{ exit !($1 > cpus / 2) }' /proc/loadavg; then
    echo "note: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs; other programs" \
        "are running, so expect noisy wall times (CPU time at 1 thread changes least)"
fi

# Runs one engine process: NAME, then auraface-bench options.
engine() {
    local name=$1
    shift
    echo "-- engine $name"
    "$bin/auraface-bench" --model "$weights" --warmup "$warmup" --json "$out/engine-$name.json" "$@" \
        >"$out/engine-$name.txt"
    tail -n 1 "$out/engine-$name.txt"
}

# Runs one onnxruntime process: NAME, then bench_onnxruntime.py options.
onnxruntime() {
    local name=$1
    shift
    echo "-- onnxruntime $name"
    "$python" "$repo/Tools/bench_onnxruntime.py" --model "$model" --warmup "$warmup" \
        --json "$out/ort-$name.json" "$@" >"$out/ort-$name.txt"
    tail -n 1 "$out/ort-$name.txt"
}

echo "== load time and session creation"
engine load --load-only --load-runs "$load_runs" --batch-sizes 1 --threads 1
onnxruntime load --load-only --load-runs "$load_runs" --batch-sizes 1 --threads 1

echo "== time per face (one process per configuration, the two runtimes alternating)"
order=0
for batch in 1 8; do
    runs=$runs_batch1
    [[ $batch -eq 1 ]] || runs=$runs_batch8
    for threads in 1 2; do
        options=(--batch-sizes "$batch" --threads "$threads" --runs "$runs" --load-runs 1)
        # Alternate which runtime goes first, so neither always runs right after a build or
        # the other's heavier configuration.
        if ((order % 2 == 0)); then
            engine "b$batch-t$threads" "${options[@]}"
            onnxruntime "b$batch-t$threads" "${options[@]}"
        else
            onnxruntime "b$batch-t$threads" "${options[@]}"
            engine "b$batch-t$threads" "${options[@]}"
        fi
        order=$((order + 1))
    done
done

if $prescott; then
    echo "== the engine with OpenBLAS's Prescott kernels (OPENBLAS_CORETYPE=Prescott)"
    # One thread too: its CPU time per face shows the kernels' cost even when other programs
    # compete for the CPUs and the 2-thread wall times are noisy.
    for threads in 1 2; do
        OPENBLAS_CORETYPE=Prescott engine "b1-t$threads-prescott" --batch-sizes 1 \
            --threads "$threads" --runs "$runs_batch1" --load-runs 1
    done
fi

if $plain; then
    echo "== the engine with plain convolutions (--convolution plain)"
    for threads in 1 2; do
        engine "b1-t$threads-plain" --batch-sizes 1 --threads "$threads" --runs "$runs_batch1" \
            --load-runs 1 --convolution plain
    done
fi

cut -d' ' -f1-3 /proc/loadavg >"$out/loadavg-end.txt"

echo "== report"
"$python" "$repo/Tools/bench_report.py" "$out" --markdown "$out/report.md" --chart "$chart"
echo ""
echo "tables: $out/report.md"
echo "chart: $chart"
