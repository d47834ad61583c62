#!/bin/sh
# Installs dependencies, builds mambac and runs every test (unit, IR text,
# fuzz replay + short fuzzing runs, end-to-end against the PyTorch reference).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
cd build && ctest --output-on-failure -j2 "$@"
