#!/usr/bin/env bash
# Create the Python venv for the reference tools at <repo>/.venv and install the pinned
# packages of Tools/requirements.txt into it.
#
# Usage: Tools/setup-venv.sh [--print-python]
#
# Quiet on success. A second run is a fast no-op: the venv records the sha256 of the
# requirements file it was built from and reinstalls only when that file changes or the
# venv's python is missing. --print-python prints the venv's python path on success.
# Set PYTHON to choose the interpreter that creates the venv (default: python3, 3.11 here).
set -euo pipefail

print_python=false
for argument in "$@"; do
    case "$argument" in
        --print-python) print_python=true ;;
        -h | --help)
            sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup-venv.sh: unknown option '$argument' (expected --print-python or --help)" >&2
            exit 2
            ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
requirements="$repo_root/Tools/requirements.txt"
stamp="$venv/.requirements.sha256"
venv_python="$venv/bin/python"
base_python="${PYTHON:-python3}"

wanted_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ -x "$venv_python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted_hash" ]]; then
    if $print_python; then echo "$venv_python"; fi
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

fail() {
    echo "setup-venv.sh: $1 failed; its output follows." >&2
    cat "$log" >&2
    exit 1
}

if [[ ! -x "$venv_python" ]]; then
    "$base_python" -m venv "$venv" >"$log" 2>&1 ||
        fail "creating the venv at $venv with $base_python"
fi

# The stamp is removed first so that an interrupted install is retried on the next run.
rm -f "$stamp"
"$venv_python" -m pip install --disable-pip-version-check --no-input --quiet \
    -r "$requirements" >"$log" 2>&1 ||
    fail "pip install -r $requirements"
echo "$wanted_hash" >"$stamp"

if $print_python; then echo "$venv_python"; fi
