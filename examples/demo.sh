#!/bin/sh
# Installs dependencies, builds mambac, compiles the bundled Spatial-Mamba-T
# config to a native executable for this machine, and runs it on the bundled
# 224x224 input: prints the top-5 classes and the time; then the same for
# UperNet-T segmentation (a class map per pixel).
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
# segmentation: UperNet on Spatial-Mamba-T (ADE20K's 150 classes) at the
# bundled image's size; the class map (int32 [1,224,224]) as .npy
# (SEG_WEIGHTS=path/to/upernet_checkpoint.pth for real weights)
set -- examples/upernet_spatialmamba_tiny.yaml --image-size 224x224 -o build/upernet_tiny
[ -n "${SEG_WEIGHTS:-}" ] && set -- "$@" --weights "$SEG_WEIGHTS"
./build/mambac compile "$@"
./build/upernet_tiny --input examples/input_224.npy --argmax build/seg_classes.npy --bench 3 --threads "$(nproc)"
echo "wrote build/seg_classes.npy (int32 [1,224,224], a class per pixel)"
