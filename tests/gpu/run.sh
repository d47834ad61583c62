#!/bin/sh
# tests/gpu/run.sh -- the GPU suite of the CUDA backend, in one invocation.
#
#   sh tests/gpu/run.sh [DIR]          build + check + bench (needs mambac's
#                                      build deps, nvcc 12.0 or newer: the
#                                      executables are built for sm_90a,
#                                      torch AND an sm_90 GPU)
#   sh tests/gpu/run.sh build [DIR]    build only (no GPU needed): inputs and
#                                      float64 expected logits, executables
#   sh tests/gpu/run.sh gen [DIR]      as build, but only the generated .cu
#                                      files: 'check' compiles them with nvcc
#                                      (in parallel) on the GPU machine
#   sh tests/gpu/run.sh check [DIR]    check + bench on a GPU machine with DIR
#                                      from 'build', or only its
#                                      gpu-suite.tar.xz (needs python3 + numpy;
#                                      torch for the ceilings)
#
# DIR defaults to build-gpu.  MAMBAC_BUILD (default build) holds
# libmc_core.a, libmc_runtime.a and mambac (the dense cases' reference runs).  MC_NVCC_EXTRA: more nvcc flags for
# 'check' (e.g. "-DMC_FAST_SILU=0" to check the libm SiLU).  Checks: every kernel kind of the model
# (GEMM, implicit-GEMM conv, depthwise conv, the scan in three passes and in
# one, 25-tap fusion (also in 2D position tiles), layernorm, mean,
# elementwise, and the fused forms: the on-chip MLP (mc_mlp, tf32's
# mc_mlp32; a case built with cudagen --fill runs it, on sm_90a on wgmma,
# at 64 and 128 channels), mc_conv3 (tf32: mc_conv3t), mc_down, the kernels run inside
# others) through
# whole small models at odd,
# non-square sizes, batch 1 and > 1, against the float64 PyTorch reference,
# per precision (fp32 <= 1e-4, tf32 <= 1e-3, bf16 <= 2e-2).  Dense
# prediction (tests/gpu/dense_cases.py, cases dn_*): graph YAMLs of bilinear
# resizes (both align_corners, out or in of 1), adaptive average pooling
# (a pyramid pooling module, even and uneven bins), channel concats (their
# operands written in place by GEMMs, resizes and pools, or copied), resize
# + add, strided and permuted inputs, 8 channels a thread and one, against
# mambac's ref backend, same tolerances.  Real data: a
# small model trained on scikit-learn's digits (tests/gpu/digits.py; the
# build needs python3-sklearn): fp32 and bf16 against the float64 reference,
# and bf16's top-1 equal to fp32's on >= 99% of the test set.  Users' I/O
# (tests/gpu/images.py; its 'gen' builds CUDA executables with nvcc on the
# build machine): --image DIR --top 5 --json, --save-input, --mask/--overlay
# and an unreadable image, fp32 and bf16, against the CPU executables' output
# of the same models.  Bench: tiny,
# small and base at 224x224 (synthetic weights), plus the GPU's ceilings.
# The last lines are a summary table; exit status 1 if any check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=all
case "${1:-}" in build|check|gen) mode=$1; shift ;; esac
dir=${1:-$root/build-gpu}
PY=${PYTHON:-python3}
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then PY=/usr/bin/python3; fi
PRECS="fp32 tf32 bf16"
DIGITS_PRECS="fp32 bf16"
# name model batch precision
BENCHES="tiny_b128_fp32 tiny 128 fp32
tiny_b128_tf32 tiny 128 tf32
tiny_b128_bf16 tiny 128 bf16
tiny_b1_fp32 tiny 1 fp32
tiny_b1_bf16 tiny 1 bf16
small_b128_bf16 small 128 bf16
base_b128_bf16 base 128 bf16
upernet_t_b1_fp32 upernet_spatialmamba_tiny 1 fp32
upernet_t_b1_tf32 upernet_spatialmamba_tiny 1 tf32
upernet_t_b1_bf16 upernet_spatialmamba_tiny 1 bf16
backbone_t_b1_bf16 backbone_spatialmamba_tiny 1 bf16
backbone_t_b1_tf32 backbone_spatialmamba_tiny 1 tf32"

# MC_NVCC_EXTRA: more nvcc flags for 'check' (e.g. -DMC_FAST_SILU=1)
NVCCFLAGS="-O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -cudart static ${MC_NVCC_EXTRA:-}"

# keep_blob CASE CONFIG PRECISION: the first weights blob of CONFIG becomes
# cases/CONFIG.weights, any later one must be identical to it
keep_blob() {
    f=$dir/exe/$1_$3.weights
    if [ -f "$dir/cases/$2.weights" ]; then
        cmp -s "$f" "$dir/cases/$2.weights" || { echo "build: $f differs from $2.weights"; return 1; }
        rm -f "$f"
    else
        mv "$f" "$dir/cases/$2.weights"
    fi
}

# build [gen]: with 'gen', cudagen writes only OUT.cu (+ weights)
build() {
    emit=exe
    [ "${1:-}" = gen ] && emit=cuda
    lib=${MAMBAC_BUILD:-$root/build}
    "$PY" -c 'import sklearn' 2>/dev/null ||
        { echo "build: the digits check needs scikit-learn: apt-get install -y python3-sklearn"; exit 1; }
    mkdir -p "$dir/exe" "$dir/bench"
    gcc -std=gnu11 -O2 -fopenmp -I"$root" -I"$lib/gen" "$root/tests/gpu/cudagen.c" "$root"/backends/cuda/cuda_*.c \
        "$root/backends/cemit/cemit.c" "$lib/libmc_core.a" "$lib/libmc_runtime.a" -lyaml -lm \
        -o "$dir/cudagen" || exit 1
    "$PY" "$here/prepare.py" "$dir/cases" || exit 1
    # the dense-prediction graphs, their expected outputs from mambac's ref backend
    "$PY" "$here/dense_cases.py" "$dir/cases" "$lib/mambac" || { echo "build: dense_cases.py failed"; exit 1; }
    "$PY" "$here/digits.py" "$dir/cases" || { echo "build: digits.py failed"; exit 1; }
    # --image, --top/--json, --mask/--overlay: CUDA and CPU executables (nvcc here), the CPU's outputs
    "$PY" "$here/images.py" gen "$dir/images" "$lib/mambac" || { echo "build: images.py failed"; exit 1; }
    jobs=$dir/jobs.txt
    : > "$jobs"
    while read -r case cfg B H W extra; do
        for p in $PRECS; do
            echo "$dir/cases/$cfg.yaml --weights $dir/cases/$cfg.pth --batch $B --image-size ${H}x$W --precision $p --external-weights --emit $emit${extra:+ $extra} -o $dir/exe/${case}_$p" >> "$jobs"
        done
    done < "$dir/cases/cases.txt"
    # the digits model at its test set's size (batch = number of test images)
    read -r dcase dcfg B H W < "$dir/cases/digits.txt"
    for p in $DIGITS_PRECS; do
        echo "$dir/cases/$dcfg.yaml --weights $dir/cases/$dcfg.pth --batch $B --image-size ${H}x$W --precision $p --external-weights --emit $emit -o $dir/exe/${dcase}_$p" >> "$jobs"
    done
    # M: examples/spatialmamba_M.yaml, or examples/M.yaml (dense models at their DATA.IMG_SIZE)
    echo "$BENCHES" | while read -r name m B p; do
        cfgf=$root/examples/spatialmamba_$m.yaml
        [ -f "$root/examples/$m.yaml" ] && cfgf=$root/examples/$m.yaml
        echo "$cfgf --batch $B --precision $p --external-weights --emit $emit -o $dir/bench/$name" >> "$jobs"
    done
    n=$(nproc 2>/dev/null || echo 2)
    xargs -P "$n" -L 1 "$dir/cudagen" < "$jobs" || { echo "build: cudagen/nvcc failed"; exit 1; }
    # one weights blob per small model (the layout does not depend on shapes
    # or precision): keep the first, check the others are identical
    rm -f "$dir"/cases/*.weights
    while read -r case cfg B H W extra; do
        for p in $PRECS; do keep_blob "$case" "$cfg" "$p" || exit 1; done
    done < "$dir/cases/cases.txt"
    for p in $DIGITS_PRECS; do keep_blob "$dcase" "$dcfg" "$p" || exit 1; done
    rm -f "$dir"/bench/*.weights
    [ "$emit" = exe ] && rm -f "$dir"/exe/*.cu "$dir"/bench/*.cu
    # what 'check' needs, compressed (the executables compress ~20x), for
    # copying to a GPU machine
    rm -f "$dir/gpu-suite.tar.xz"
    (cd "$dir" && tar cJf gpu-suite.tar.xz exe bench cases/cases.txt cases/*.weights cases/x_*.npy \
        $(ls cases/want_*.np[yz]) cases/digits.txt cases/labels_digits.npy images)
    echo "build: ok ($(ls "$dir/exe" | wc -l) check executables, $(ls "$dir/bench" | wc -l) bench executables)"
}

check() {
    if [ ! -d "$dir/exe" ] && [ -f "$dir/gpu-suite.tar.xz" ]; then
        (cd "$dir" && tar xJf gpu-suite.tar.xz) || exit 1
    fi
    # generated .cu without an executable ('gen'): compile them here
    ls "$dir"/exe/*.cu "$dir"/bench/*.cu 2>/dev/null | while read -r cu; do
        [ -x "${cu%.cu}" ] || echo "$cu"
    done > "$dir/nvcc-jobs.txt"
    if [ -s "$dir/nvcc-jobs.txt" ]; then
        nv=${NVCC:-nvcc}
        command -v "$nv" >/dev/null 2>&1 || nv=/usr/local/cuda/bin/nvcc
        n=$(nproc 2>/dev/null || echo 2)
        t0=$(date +%s)
        # the executable's host side: the runtime's C (as mambac compile builds it)
        rto=$dir/rtobj
        mkdir -p "$rto"
        (cd "$rto" && ${CC:-cc} -O2 -std=gnu11 -I"$root/runtime" -I"$root/runtime/exe" -c "$root/runtime/exe/cuda_main.c" \
            "$root/runtime/npy.c" "$root/runtime/out.c") || { echo "check: cc of the runtime failed"; exit 1; }
        xargs -P "$n" -I{} sh -c 'cu={}; '"$nv $NVCCFLAGS"' -o "${cu%.cu}" "$cu" '"$rto/cuda_main.o $rto/npy.o $rto/out.o" \
            < "$dir/nvcc-jobs.txt" || { echo "check: nvcc failed"; exit 1; }
        echo "check: compiled $(wc -l < "$dir/nvcc-jobs.txt") .cu files in $(($(date +%s) - t0)) s"
    fi
    fails=0
    summary=$dir/summary.txt
    : > "$summary"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
    while read -r case cfg B H W extra; do
        for p in $PRECS; do
            case $p in fp32) tol=1e-4 ;; tf32) tol=1e-3 ;; bf16) tol=2e-2 ;; esac
            # a model with several outputs: want_CASE.npz, and the executable writes an .npz
            ext=npy
            [ -f "$dir/cases/want_$case.npz" ] && ext=npz
            y=$dir/y_${case}_$p.$ext
            rm -f "$y"
            if ! "$dir/exe/${case}_$p" --weights "$dir/cases/$cfg.weights" --input "$dir/cases/x_$case.npy" --output "$y"; then
                line="FAIL run"
            else
                ref=""
                [ "$p" != fp32 ] && [ -f "$dir/y_${case}_fp32.$ext" ] && ref=$dir/y_${case}_fp32.$ext
                line=$("$PY" "$here/compare.py" "$y" "$dir/cases/want_$case.$ext" "$tol" $ref)
            fi
            case $line in ok*) ;; *) fails=$((fails + 1)) ;; esac
            printf 'check %-24s %-5s %s\n' "$case" "$p" "$line" | tee -a "$summary"
        done
    done < "$dir/cases/cases.txt"
    # real data: the digits model on its test set (tests/gpu/digits.py)
    dcase=digits dcfg=digits
    [ -f "$dir/cases/digits.txt" ] && read -r dcase dcfg B H W < "$dir/cases/digits.txt"
    for p in $DIGITS_PRECS; do
        case $p in fp32) tol=1e-4 ;; bf16) tol=2e-2 ;; esac
        y=$dir/y_${dcase}_$p.npy
        rm -f "$y"
        if ! "$dir/exe/${dcase}_$p" --weights "$dir/cases/$dcfg.weights" --input "$dir/cases/x_$dcase.npy" --output "$y"; then
            line="FAIL run"
        else
            line=$("$PY" "$here/compare.py" "$y" "$dir/cases/want_$dcase.npy" "$tol")
        fi
        case $line in ok*) ;; *) fails=$((fails + 1)) ;; esac
        printf 'check %-24s %-5s %s\n' "$dcase" "$p" "$line" | tee -a "$summary"
    done
    if [ -f "$dir/y_${dcase}_bf16.npy" ] && [ -f "$dir/y_${dcase}_fp32.npy" ]; then
        line=$("$PY" "$here/top1.py" "$dir/y_${dcase}_bf16.npy" "$dir/y_${dcase}_fp32.npy" \
            "$dir/cases/labels_$dcase.npy" 0.99)
    else
        line="FAIL top-1: no bf16 or fp32 output"
    fi
    case $line in ok*) ;; *) fails=$((fails + 1)) ;; esac
    printf 'check %-24s %-5s %s\n' "$dcase" top-1 "$line" | tee -a "$summary"
    # users' I/O: the CUDA executables' --image, --json, --save-input, masks against the CPU's
    "$PY" "$here/images.py" check "$dir/images" > "$dir/images.log" 2>&1 || fails=$((fails + 1))
    cat "$dir/images.log"
    grep '^check ' "$dir/images.log" >> "$summary"
    "$PY" "$here/ceiling.py" 2>&1 | tee -a "$summary"
    "$dir/bench/tiny_b128_fp32" --synthetic-weights --profile 3 | head -22
    "$dir/bench/tiny_b128_bf16" --synthetic-weights --profile 3 | head -22
    "$dir/bench/tiny_b1_fp32" --synthetic-weights --profile 10 | head -22
    echo "$BENCHES" | while read -r name m B p; do
        "$dir/bench/$name" --synthetic-weights --bench 20 | tee -a "$summary"
    done
    echo "==== summary ($(date -u +%Y-%m-%d))"
    cat "$summary"
    echo "checks failed: $fails"
    [ "$fails" -eq 0 ]
}

case $mode in
build) build ;;
gen) build gen ;;
check) check ;;
all) build && check ;;
esac
