#!/usr/bin/env bash
# Installs every Debian 12 package llava-sweep needs to build, test and run.
# Idempotent; run as root (or through sudo). Selects OpenBLAS as the system BLAS:
# LibTorch from Debian otherwise falls back to the reference BLAS (~3 GFLOP/s matmul).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtorch-dev
  libopenblas0-openmp
  libyaml-cpp-dev
  libsqlite3-dev sqlite3
  libboost-dev libboost-filesystem-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libsentencepiece-dev
  libstb-dev
  libcli11-dev
  nlohmann-json3-dev
  clang-format
  clang libclang-rt-14-dev
  chromium libjs-chart.js libcpp-httplib-dev
  slurm-wlm munge
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# Select OpenBLAS (OpenMP flavour) as libblas.so.3 / liblapack.so.3.
arch_dir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  alt="${lib}-$(basename "$arch_dir")"
  candidate="$arch_dir/openblas-openmp/$lib"
  if [ -e "$candidate" ] && update-alternatives --query "$alt" >/dev/null 2>&1; then
    current=$(update-alternatives --query "$alt" | awk '/^Value:/ {print $2}')
    if [ "$current" != "$candidate" ]; then
      $SUDO update-alternatives --set "$alt" "$candidate"
    fi
  fi
done
echo "install-deps: BLAS = $(readlink -f "$arch_dir/libblas.so.3")"
