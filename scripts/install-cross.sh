#!/bin/sh
# Installs Debian's cross toolchains and qemu-user, used to link and run
# `mambac compile --target aarch64-linux-gnu | riscv64-linux-gnu` artifacts:
#   gcc-aarch64-linux-gnu, gcc-riscv64-linux-gnu  (linkers; bring static libgomp.a,
#       so cross executables are linked -static and need no target libraries)
#   libc6-dev-arm64-cross, libc6-dev-riscv64-cross, libgomp1-*-cross
#   qemu-user                                     (qemu-aarch64, qemu-riscv64)
# Then checks that an OpenMP C program cross-compiles and runs under qemu for
# both targets (riscv64 with the vector extension on).  Safe to run again;
# uses sudo when not root.  `--check` only runs the check.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu libc6-dev-arm64-cross libc6-dev-riscv64-cross \
libgomp1-arm64-cross libgomp1-riscv64-cross qemu-user"

if [ "${1:-}" != "--check" ]; then
  missing=""
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "install-cross: installing$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
  else
    echo "install-cross: all packages present"
  fi
fi

# The check: an OpenMP reduction, static, under qemu-user.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/omp.c" <<'C'
#include <omp.h>
#include <stdio.h>
int main(void) {
    long s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(4)
    for (int i = 0; i < 100000; i++) s += i;
    printf("%ld\n", s);
    return s != 4999950000L;
}
C
ok=0
for t in aarch64 riscv64; do
  cpu=""
  [ "$t" = riscv64 ] && cpu="-cpu rv64,v=true,vlen=256,vext_spec=v1.0"
  # the static glibc+libgomp link warns about dlopen: expected, harmless
  if $t-linux-gnu-gcc -O2 -fopenmp -static "$tmp/omp.c" -o "$tmp/omp-$t" 2>"$tmp/log" &&
     out=$(qemu-$t $cpu "$tmp/omp-$t") && [ "$out" = 4999950000 ]; then
    echo "install-cross: $t: OpenMP program cross-compiled and ran under qemu-$t $cpu: ok"
  else
    echo "install-cross: $t: FAILED"; cat "$tmp/log"; ok=1
  fi
done
exit $ok
