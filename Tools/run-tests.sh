#!/usr/bin/env bash
# The test command: installs what the build needs, then runs the whole `swift test` suite.
# Extra arguments go to `swift test` (for example `--filter ConverterTests`).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/Tools/install-deps.sh"
cd "$repo"
swift test "$@"
