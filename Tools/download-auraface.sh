#!/usr/bin/env bash
# Download AuraFace-v1 (fal/AuraFace-v1 on Hugging Face, Apache-2.0) as Weights/glintr100.onnx.
#
# Usage: Tools/download-auraface.sh [--sha256 HEX] [--output PATH] [--url URL]
#
# The file is downloaded with curl to PATH.part and renamed to PATH only when the download is
# complete (and, with --sha256 or AURAFACE_SHA256, when its SHA-256 matches). An existing PATH
# is left alone. A failed download keeps PATH.part, and the next run resumes it. --url replaces
# the Hugging Face address, for a mirror or a local copy (file:///path/glintr100.onnx).
set -euo pipefail

url="https://huggingface.co/fal/AuraFace-v1/resolve/main/glintr100.onnx"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="$repo_root/Weights/glintr100.onnx"
expected_sha256="${AURAFACE_SHA256:-}"

fail() {
    echo "download-auraface.sh: error: $1" >&2
    exit "${2:-1}"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --sha256)
            [[ $# -ge 2 ]] || fail "--sha256 requires a value HEX" 2
            expected_sha256="$2"
            shift 2
            ;;
        --output)
            [[ $# -ge 2 ]] || fail "--output requires a value PATH" 2
            output="$2"
            shift 2
            ;;
        --url)
            [[ $# -ge 2 ]] || fail "--url requires a value URL" 2
            url="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            fail "unknown argument '$1' (expected --sha256 HEX, --output PATH, --url URL or --help)" 2
            ;;
    esac
done

expected_sha256="$(echo "$expected_sha256" | tr 'A-F' 'a-f')"
if [[ -n "$expected_sha256" && ! "$expected_sha256" =~ ^[0-9a-f]{64}$ ]]; then
    fail "--sha256 must be 64 hexadecimal digits, found '$expected_sha256'" 2
fi
command -v curl >/dev/null || fail "curl is not installed (Debian: apt-get install curl)"

if [[ -e "$output" ]]; then
    echo "download-auraface.sh: $output already exists; delete it to download again" >&2
    exit 0
fi
mkdir -p "$(dirname "$output")"
partial="$output.part"

echo "download-auraface.sh: downloading $url" >&2
# A progress bar only on a terminal; otherwise curl prints just its error message.
progress=(--silent --show-error)
if [[ -t 2 ]]; then
    progress=(--progress-bar)
fi
# --fail turns HTTP errors into a non-zero exit; --continue-at - resumes a previous .part file.
if ! curl "${progress[@]}" --fail --location --continue-at - --connect-timeout 20 --retry 2 \
    --output "$partial" "$url"; then
    kept=""
    if [[ -s "$partial" ]]; then
        kept=" The partial file $partial is kept for the next run to resume."
    fi
    fail "download of $url failed (offline, or the host is unreachable or refused the request).\
$kept To use a copy you already have, put it at $output or pass its path to 'auraface convert'."
fi

if [[ -n "$expected_sha256" ]]; then
    found_sha256="$(sha256sum "$partial" | cut -d' ' -f1)"
    if [[ "$found_sha256" != "$expected_sha256" ]]; then
        rm -f "$partial"
        fail "SHA-256 of the download is $found_sha256, expected $expected_sha256; the file was deleted"
    fi
fi

mv "$partial" "$output"
echo "download-auraface.sh: wrote $output ($(stat -c %s "$output") bytes, sha256 $(sha256sum "$output" | cut -d' ' -f1))" >&2
