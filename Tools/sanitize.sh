#!/usr/bin/env bash
# Run the test suite under AddressSanitizer (with LeakSanitizer) and ThreadSanitizer.
#
# Usage: Tools/sanitize.sh [address|thread|all] [options]
#
# Each sanitizer builds into its own SwiftPM scratch folder, so the normal .build is not
# rebuilt, and a later run rebuilds only what changed. The build and the tests are timed
# apart. Exits non-zero when the build fails, a test fails, or a sanitizer prints a report
# that the suppression files in Tools/sanitizers/ do not cover. Those files list each
# suppressed report with the reason it is not the project's.
#
# Options:
#   --scratch-path DIR   parent of the scratch folders DIR/address and DIR/thread
#                        (default .build/sanitizers in the repository)
#   --filter X           run only the tests that `swift test --filter X` selects
#   --keep-going         run the next sanitizer even when one fails
#
# Logs: DIR/<sanitizer>-build.log and DIR/<sanitizer>-test.log. On a 2-core AMD EPYC shared
# with other builds, a cold run of both took 16 to 20 minutes: AddressSanitizer about
# 2.5 min to build and 2 to 4 min to test, ThreadSanitizer about 3.5 min to build and 6 to
# 9 min to test.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
suppressions="$repo/Tools/sanitizers"
scratch_root="$repo/.build/sanitizers"
filter=()
keep_going=false
mode=all

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        address | thread | all) mode=$1; shift ;;
        --scratch-path) scratch_root=$2; shift 2 ;;
        --filter) filter=(--filter "$2"); shift 2 ;;
        --keep-going) keep_going=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "sanitize.sh: unknown argument '$1' (run with --help for the options)" >&2; exit 2 ;;
    esac
done

case "$mode" in
    all) sanitizers=(address thread) ;;
    *) sanitizers=("$mode") ;;
esac

"$repo/Tools/install-deps.sh"
mkdir -p "$scratch_root"

# Sanitizer runtime options. halt_on_error=0 lets ThreadSanitizer list every race of a run
# instead of stopping at the first; it still exits with status 66 when it reported any.
# AddressSanitizer stops at its first error, whose stack is the one that matters.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$suppressions/lsan.supp:print_suppressions=1"
export TSAN_OPTIONS="suppressions=$suppressions/tsan.supp:print_suppressions=1:halt_on_error=0:second_deadlock_stack=1"

# Prints the seconds elapsed since START (a `date +%s` value).
elapsed_since() {
    echo $(($(date +%s) - $1))
}

# Counts sanitizer report headers in a log. The exit status alone is not trusted, because a
# report printed by a child process or after the test runner decided its status would be lost.
count_reports() {
    grep -cE "^(WARNING: ThreadSanitizer|==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer))" "$1" || true
}

# Runs one sanitizer: build, then test. Returns non-zero on any failure or report.
run_sanitizer() {
    local sanitizer=$1
    local scratch="$scratch_root/$sanitizer"
    local build_log="$scratch_root/$sanitizer-build.log"
    local test_log="$scratch_root/$sanitizer-test.log"
    local swift_options=(--package-path "$repo" --scratch-path "$scratch" --sanitize="$sanitizer")

    echo "== $sanitizer: building the tests (log: $build_log)"
    local start
    start=$(date +%s)
    if ! swift build --build-tests "${swift_options[@]}" >"$build_log" 2>&1; then
        tail -n 40 "$build_log"
        echo "$sanitizer: build FAILED after $(elapsed_since "$start") s"
        return 1
    fi
    echo "$sanitizer: build took $(elapsed_since "$start") s"

    echo "== $sanitizer: running the tests (log: $test_log)"
    start=$(date +%s)
    local status=0
    swift test --skip-build "${swift_options[@]}" ${filter[@]+"${filter[@]}"} >"$test_log" 2>&1 ||
        status=$?
    local seconds
    seconds=$(elapsed_since "$start")
    local reports
    reports=$(count_reports "$test_log")
    # Both test libraries print a summary line; show them so the count of tests run is visible.
    grep -E "^(Executed [0-9]+ tests|.*Test run with [0-9]+ tests)" "$test_log" || true
    # The suppressions that matched, from print_suppressions=1: "count bytes pattern" lines
    # after LeakSanitizer's "Suppressions used:", "count pattern" after ThreadSanitizer's
    # "Matched N suppressions".
    grep -A 20 -E "^Suppressions used:|ThreadSanitizer: Matched" "$test_log" |
        grep -E "^ *[0-9]+ +([0-9]+ +)?[^ ]+$" | sed 's/^ */suppressed: /' || true
    echo "$sanitizer: tests took $seconds s, exit status $status, $reports unsuppressed report(s)"
    if [[ $status -ne 0 || $reports -ne 0 ]]; then
        grep -nE -A 30 "^(WARNING: ThreadSanitizer|==[0-9]+==ERROR)" "$test_log" | head -n 120 || true
        grep -E "✘|error:|failed" "$test_log" | head -n 40 || true
        echo "$sanitizer: FAILED (full log: $test_log)"
        return 1
    fi
    echo "$sanitizer: passed"
}

overall=0
for sanitizer in "${sanitizers[@]}"; do
    if ! run_sanitizer "$sanitizer"; then
        overall=1
        $keep_going || break
    fi
done
exit $overall
