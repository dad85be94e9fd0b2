#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages that scripts/device-check.sh unpacks on a
# GPU machine that has CUDA LibTorch but no registry: the build dependencies of sweep and
# sweep-worker other than LibTorch, plus pkgconf. They land in .device/debs (git-ignored), which
# travels with the working tree. Run on a Debian 12 machine with apt sources; no root needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.device/debs
packages=(
  libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libboost1.74-dev libboost-filesystem1.74-dev libboost-filesystem1.74.0
  libboost-system1.74-dev libboost-system1.74.0 libboost-atomic1.74.0
  libsqlite3-dev libsqlite3-0
  libsentencepiece-dev libsentencepiece0
  libstb-dev libstb0
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev googletest
  pkgconf pkgconf-bin libpkgconf3
)
mkdir -p "$dest"
(cd "$dest" && apt-get download "${packages[@]}")
du -sh "$dest"
