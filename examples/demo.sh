#!/bin/sh
# Installs dependencies, builds mambac, then
# 1. compiles the bundled digit classifier (examples/digits/: a small
#    Spatial-Mamba trained here on scikit-learn's handwritten digits, its
#    weights and class names in digits.pth) and classifies the bundled PNGs
#    by name: each file's top-3 digits with probabilities;
# 2. compiles the bundled digit-scene segmentor (examples/digitseg/: a small
#    UperNet trained here) and writes the bundled scenes' masks and
#    overlays into build/masks/ and build/overlays/;
# 3. compiles the bundled Spatial-Mamba-T config to a native executable for
#    this machine and runs it on the bundled 224x224 input: prints the
#    top-5 classes and the time (random weights unless WEIGHTS=ckpt.pth);
# 4. the same for UperNet-T segmentation (a class map per pixel; random
#    weights unless SEG_WEIGHTS=ckpt.pth).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
# a real answer: each file's digit first (the name in the file: digit3_...)
./build/mambac compile examples/digits/digits.yaml --weights examples/digits/digits.pth -o build/digits
./build/digits --image examples/digits/images/*.png --top 3
# segmentation with a real answer: a small UperNet trained here on scenes of
# those digits writes each scene's class map as a coloured mask and overlay
./build/mambac compile examples/digitseg/digitseg.yaml --weights examples/digitseg/digitseg.pth -o build/digitseg
mkdir -p build/masks build/overlays
./build/digitseg --image examples/digitseg/images/ --mask build/masks --overlay build/overlays
# speed: Spatial-Mamba-T on 224x224 (ImageNet-1k names)
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
