#!/usr/bin/env bash
# Installs the Debian packages DisRanker builds and tests with, when any is missing. Idempotent and quiet when
# everything is present; needs root (or sudo) only when something must be installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libxapian-dev nlohmann-json3-dev libcli11-dev libutf8proc-dev libpcre2-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev jq curl
  libonnx-dev libprotobuf-dev
  libtorch-dev libopenblas0-openmp libdnnl-dev
  libgloo-dev openmpi-bin
)

# Node runs the reference implementations the tests compare against (tests/oracle). Machines that already have a
# node on PATH (not from Debian) keep it.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
