#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c with clang's libFuzzer + ASan/UBSan and runs
# each for a bounded time, seeded by its kept corpus.  A crash fails the test;
# the crashing input is left in WORK/<name>/ (copy it into
# tests/fuzz/corpus/<name>/ to keep it as a regression test).
# usage: run_fuzzers.sh CLANG SRCDIR WORKDIR SECONDS GENDIR
# (GENDIR: the build's gen/, the embedded CUDA device sources the backend includes)
set -eu
CC=$1; SRC=$2; WORK=$3; SECS=$4; GEN=$5
mkdir -p "$WORK"
CORE_SRC=$(ls "$SRC"/ir/*.c "$SRC"/frontend/*.c "$SRC"/runtime/*.c "$SRC"/backends/*.c "$SRC"/backends/ref/*.c \
           "$SRC"/backends/llvm/*.c "$SRC"/backends/cemit/*.c "$SRC"/backends/cuda/*.c "$SRC"/passes/*.c 2>/dev/null \
           | grep -v -e '/frontend/main.c$' -e '/frontend/prebuild_main.c$')
YAML_FLAGS=$(pkg-config --cflags --libs yaml-0.1)
LLVM_CONFIG=$(command -v llvm-config-19 || command -v llvm-config)
LLVM_FLAGS="-I$($LLVM_CONFIG --includedir) -L$($LLVM_CONFIG --libdir) -lLLVM-19 -Wl,-rpath,$($LLVM_CONFIG --libdir)"
# the image reader as the build has it: with libjpeg + libpng where both are found
IMAGE_CFLAGS=""; IMAGE_LIBS=""
if pkg-config --exists libjpeg libpng; then
  IMAGE_CFLAGS="-DMC_HAVE_IMAGE $(pkg-config --cflags libjpeg libpng)"; IMAGE_LIBS=$(pkg-config --libs libjpeg libpng)
fi
fail=0
FLAGS="-std=gnu11 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fopenmp"
# the library sources once, instrumented; each harness then only links
mkdir -p "$WORK/core"
objs=""
for c in $CORE_SRC; do
  o="$WORK/core/$(echo "$c" | sed "s|^$SRC/||; s|/|_|g; s|\.c$|.o|")"
  if ! "$CC" $FLAGS -I"$SRC" -I"$SRC/runtime" -I"$GEN" -I"$($LLVM_CONFIG --includedir)" -DMC_SOURCE_DIR="\"$SRC\"" \
       $(pkg-config --cflags yaml-0.1) $IMAGE_CFLAGS -c "$c" -o "$o" 2>>"$WORK/core.build.log"; then
    echo "fuzz: cannot compile $c (see $WORK/core.build.log)"; tail -20 "$WORK/core.build.log"; exit 1
  fi
  objs="$objs $o"
done
for h in "$SRC"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$h" .c); short=${name#fuzz_}
  bin="$WORK/$name"
  if ! "$CC" -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
       -fopenmp -I"$SRC" -I"$SRC/runtime" "$h" $objs $YAML_FLAGS $LLVM_FLAGS $IMAGE_LIBS -lm -o "$bin" 2>"$WORK/$name.build.log"; then
    echo "fuzz: cannot build $name (see $WORK/$name.build.log)"; cat "$WORK/$name.build.log" | tail -20; fail=1; continue
  fi
  mkdir -p "$WORK/$short.corpus" "$WORK/$short.crash"
  cp "$SRC/tests/fuzz/corpus/$short"/* "$WORK/$short.corpus/" 2>/dev/null || true
  dict=""  # tests/fuzz/<name>.dict: libFuzzer's dictionary for that harness, where there is one
  [ -f "$SRC/tests/fuzz/$short.dict" ] && dict="-dict=$SRC/tests/fuzz/$short.dict"
  echo "fuzz: $name for ${SECS}s"
  if ! (cd "$WORK/$short.crash" && ASAN_OPTIONS=detect_leaks=0 "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=0 $dict "$WORK/$short.corpus" >"$WORK/$name.log" 2>&1); then
    echo "fuzz: $name FAILED; crash inputs in $WORK/$short.crash"; tail -40 "$WORK/$name.log"; fail=1
  fi
done
exit $fail
