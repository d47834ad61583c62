#!/bin/sh
# Installs dependencies, builds mambac, compiles the bundled Spatial-Mamba-T
# config to a native executable for this machine, and runs it on the bundled
# 224x224 input: prints the top-5 classes and the time.
# Without a checkpoint the weights are random (set WEIGHTS=path/to/ckpt.pth).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
set -- examples/spatialmamba_tiny.yaml -o build/tiny -v
[ -n "${WEIGHTS:-}" ] && set -- "$@" --weights "$WEIGHTS"
./build/mambac compile "$@"
./build/tiny --input examples/input_224.npy --output build/logits.npy --top 5 --threads "$(nproc)"
