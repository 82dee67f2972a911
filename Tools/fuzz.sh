#!/usr/bin/env bash
# Build the libFuzzer targets of Tests/Fuzz and run each for a fixed time.
#
# Usage: Tools/fuzz.sh [--seconds N] [--target NAME]... [--scratch-path DIR] [--merge]
#
# One target per reader of untrusted files: fuzz-onnx (protobuf, ONNX, external data and the
# converter), fuzz-safetensors (safetensors, weight metadata, the model loader's checks),
# fuzz-npy, fuzz-png, fuzz-jpeg (EXIF orientation included), fuzz-ppm, fuzz-landmarks and
# fuzz-pickle (verification .bin sets). A thrown error is a correct outcome for a bad file. A
# crash, a Swift runtime trap, a hang (one input running over 10 s), a leak, one allocation over
# 512 MB, more than 2 GB of memory in all, or an AddressSanitizer report is a finding.
#
# Options:
#   --seconds N          run each target for N seconds (default 60)
#   --target NAME        run only NAME (fuzz-png or png); repeat for several
#   --scratch-path DIR   build and work folder (default .build/fuzz in the repository)
#   --merge              afterwards, add the inputs that reached new code to the committed
#                        seed corpus in Tests/Fuzz/Corpus/<target>
#
# Each target starts from its seeds in Tests/Fuzz/Corpus/<target> and the inputs earlier runs
# kept in DIR/corpus/<target>, and writes only to DIR, so the committed seeds change only with
# --merge. Per target the script prints the executions, exec/s and any finding with the path of
# the input that caused it (DIR/findings/<target>/), and it exits with status 1 when any
# target found something. Reproduce a finding with
#   SWIFT_BACKTRACE=enable=no DIR/release/<target> FILE
# Logs: DIR/logs/<target>.log.
#
# Build: `swift build -c release --sanitize=fuzzer --sanitize=address` alone instruments the
# Swift code for coverage but not for AddressSanitizer. SwiftPM passes the two sanitizers to
# swiftc as two flags, and swiftc 6.3.1 keeps only the last one. clang keeps both, so the C
# shim is instrumented either way. `-Xswiftc -sanitize=fuzzer,address` comes after
# SwiftPM's flags and asks for both at once. The libFuzzer runtime ships with the Swift
# toolchain (usr/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a); Tools/install-deps.sh
# installs the libraries the readers link.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fuzz_package="$repo/Tests/Fuzz"
scratch="$repo/.build/fuzz"
seconds=60
merge=false
selected=()

# The largest input each target is given, in bytes: a few times its largest seed.
declare -A max_length=(
    [fuzz-onnx]=65536
    [fuzz-safetensors]=65536
    [fuzz-npy]=4096
    [fuzz-png]=16384
    [fuzz-jpeg]=16384
    [fuzz-ppm]=4096
    [fuzz-landmarks]=4096
    [fuzz-pickle]=8192
)
all_targets=(
    fuzz-onnx fuzz-safetensors fuzz-npy fuzz-png fuzz-jpeg fuzz-ppm fuzz-landmarks fuzz-pickle
)

usage() {
    # The comment block at the top of this file, without its '#' marks.
    awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --target)
            name=${2#fuzz-}
            selected+=("fuzz-$name")
            shift 2
            ;;
        --scratch-path) scratch=$2; shift 2 ;;
        --merge) merge=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "fuzz.sh: unknown argument '$1' (run with --help for the options)" >&2; exit 2 ;;
    esac
done

if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: --seconds must be a positive integer, found '$seconds'" >&2
    exit 2
fi
[[ ${#selected[@]} -eq 0 ]] && selected=("${all_targets[@]}")
for target in "${selected[@]}"; do
    if [[ -z ${max_length[$target]+set} ]]; then
        echo "fuzz.sh: unknown target '$target', expected one of: ${all_targets[*]}" >&2
        exit 2
    fi
done

"$repo/Tools/install-deps.sh"
# The swift.org toolchain for Linux ships libFuzzer. Without it the build would fail only when
# linking, so check first.
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")/..
if ! compgen -G "$toolchain/lib/clang/*/lib/linux/libclang_rt.fuzzer-$(uname -m).a" >/dev/null; then
    echo "fuzz.sh: no libFuzzer runtime (libclang_rt.fuzzer-$(uname -m).a) in the Swift" \
        "toolchain at $toolchain; install a swift.org toolchain for Linux" >&2
    exit 1
fi
mkdir -p "$scratch/logs"
scratch=$(cd "$scratch" && pwd)

build_log="$scratch/logs/build.log"
echo "== building ${selected[*]} (log: $build_log)"
start=$(date +%s)
build_command=(swift build -c release --package-path "$fuzz_package" --scratch-path "$scratch"
    --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
if [[ ${#selected[@]} -eq ${#all_targets[@]} ]]; then
    products=("")
else
    products=("${selected[@]}")
fi
: >"$build_log"
for product in "${products[@]}"; do
    if ! "${build_command[@]}" ${product:+--product "$product"} >>"$build_log" 2>&1; then
        tail -n 30 "$build_log"
        echo "fuzz.sh: building ${product:-the fuzz targets} FAILED" >&2
        exit 1
    fi
done
echo "build took $(($(date +%s) - start)) s"

# The Swift runtime's backtracer would catch the crash signals before libFuzzer writes the
# input that caused them.
export SWIFT_BACKTRACE=enable=no
# AddressSanitizer holds freed memory in a quarantine, 256 MB by default, so resident memory
# sits far above the live heap: fuzz-png used 245 MB after 30,000 runs with the default and
# 128 MB after 150,000 runs with 64 MB. The smaller quarantine leaves the 2 GB limit to inputs.
export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=64"
export LSAN_OPTIONS="suppressions=$repo/Tools/sanitizers/lsan.supp"

findings=0
for target in "${selected[@]}"; do
    seeds="$fuzz_package/Corpus/$target"
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/findings/$target"
    log="$scratch/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    options=(
        -max_total_time="$seconds"
        -max_len="${max_length[$target]}"
        -timeout=10
        -rss_limit_mb=2048
        -malloc_limit_mb=512
        -print_final_stats=1
        -artifact_prefix="$artifacts/"
    )
    dictionary="$fuzz_package/Dictionaries/$target.dict"
    [[ -f $dictionary ]] && options+=(-dict="$dictionary")

    echo "== $target for $seconds s (log: $log)"
    target_start=$(date +%s)
    status=0
    # The working corpus comes first, so new inputs are written there and not among the seeds.
    "$scratch/release/$target" "${options[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    elapsed=$(($(date +%s) - target_start))
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "$target: ${executions:-?} executions in $elapsed s, ${rate:-?} exec/s"
    if [[ $status -ne 0 || -n $artifact ]]; then
        findings=$((findings + 1))
        # The first line that names the kind of finding.
        grep -m 1 -E "^==[0-9]+== ?ERROR|Fatal error" "$log" || true
        echo "$target: FINDING (exit status $status), input: ${artifact:-none written, see $log}"
    else
        echo "$target: no finding"
    fi
    if $merge; then
        "$scratch/release/$target" -merge=1 -max_len="${max_length[$target]}" "$seeds" "$corpus" \
            >>"$log" 2>&1
        echo "$target: merged new inputs into $seeds"
    fi
done

if [[ $findings -gt 0 ]]; then
    echo "fuzz.sh: $findings target(s) found a crash, hang, leak or sanitizer report"
    exit 1
fi
echo "fuzz.sh: no findings"
