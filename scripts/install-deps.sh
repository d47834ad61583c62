#!/bin/sh
# Installs every Debian package that building and testing mambac needs,
# including the cross toolchains and qemu-user that the cross-compilation
# tests use (tests/e2e/test_cross_qemu.py: aarch64 and riscv64 executables
# linked by Debian's cross gcc, run under qemu-user; see also
# scripts/install-cross.sh, which installs only those and checks them).
# Safe to run again; uses sudo when not root.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="build-essential cmake pkg-config libyaml-dev libcunit1-dev llvm-19-dev clang-19 libomp-19-dev \
python3 python3-torch python3-numpy"
# images (runtime/image.c): libjpeg-turbo, libpng, zlib; PIL for the tests
# that compare with it; Dask for the scale-out example
PKGS="$PKGS libjpeg62-turbo-dev libpng-dev zlib1g-dev python3-pil python3-distributed"
# cross linkers (with static libgomp.a), target libc, and qemu-user
PKGS="$PKGS gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu libc6-dev-arm64-cross \
libc6-dev-riscv64-cross libgomp1-arm64-cross libgomp1-riscv64-cross qemu-user"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
else
  echo "install-deps: all packages present"
fi
