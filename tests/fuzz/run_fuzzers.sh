#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c with clang's libFuzzer + ASan/UBSan and runs
# each for a bounded time, seeded by its kept corpus.  A crash fails the test;
# the crashing input is left in WORK/<name>/ (copy it into
# tests/fuzz/corpus/<name>/ to keep it as a regression test).
# usage: run_fuzzers.sh CLANG SRCDIR WORKDIR SECONDS
set -eu
CC=$1; SRC=$2; WORK=$3; SECS=$4
mkdir -p "$WORK"
CORE_SRC=$(ls "$SRC"/ir/*.c "$SRC"/frontend/*.c "$SRC"/runtime/*.c "$SRC"/backends/*.c "$SRC"/backends/ref/*.c "$SRC"/passes/*.c 2>/dev/null | grep -v '/frontend/main.c$')
YAML_FLAGS=$(pkg-config --cflags --libs yaml-0.1)
fail=0
for h in "$SRC"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$h" .c); short=${name#fuzz_}
  bin="$WORK/$name"
  if ! "$CC" -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
       -fopenmp -I"$SRC" -I"$SRC/runtime" "$h" $CORE_SRC $YAML_FLAGS -lm -o "$bin" 2>"$WORK/$name.build.log"; then
    echo "fuzz: cannot build $name (see $WORK/$name.build.log)"; cat "$WORK/$name.build.log" | tail -20; fail=1; continue
  fi
  mkdir -p "$WORK/$short.corpus" "$WORK/$short.crash"
  cp "$SRC/tests/fuzz/corpus/$short"/* "$WORK/$short.corpus/" 2>/dev/null || true
  echo "fuzz: $name for ${SECS}s"
  if ! (cd "$WORK/$short.crash" && ASAN_OPTIONS=detect_leaks=0 "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=0 "$WORK/$short.corpus" >"$WORK/$name.log" 2>&1); then
    echo "fuzz: $name FAILED; crash inputs in $WORK/$short.crash"; tail -40 "$WORK/$name.log"; fail=1
  fi
done
exit $fail
