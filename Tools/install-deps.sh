#!/usr/bin/env bash
# Installs the Debian packages the library builds and runs with: OpenBLAS (loaded at run time),
# libpng and libjpeg-turbo, and python3-venv for the reference scripts. Does nothing when they
# are already installed. Needs root (or sudo) only when something is missing.
set -euo pipefail

missing=()
for package in libopenblas-dev libpng-dev libturbojpeg0-dev; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$package")
done
# A python3 from outside Debian (pyenv, for one) brings its own venv module.
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
