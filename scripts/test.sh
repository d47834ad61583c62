#!/bin/sh
# Installs dependencies, builds mambac and runs every test (unit, IR text,
# fuzz replay + short fuzzing runs, end-to-end against the PyTorch reference).
# Then a second, sanitized build (build-asan/, -DMC_SANITIZE=ON: ASan + UBSan,
# any report fails the test) runs a short subset: the unit tests, the fuzz
# replays and the bad-input/CLI end-to-end tests.  MC_SKIP_ASAN=1 skips that
# stage (local quick runs; CI runs it).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
(cd build && ctest --output-on-failure -j2 "$@")
if [ "${MC_SKIP_ASAN:-0}" = 1 ]; then
  echo "test.sh: MC_SKIP_ASAN=1: the ASan+UBSan stage is skipped"
  exit 0
fi
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMC_SANITIZE=ON
cmake --build build-asan -j"$(nproc)"
# tests/e2e/test_bad_*.py are picked up as they are added; fuzz.run is left
# out (it builds its own sanitized harnesses in the first stage).
cd build-asan && ctest --output-on-failure -j2 \
  -R '^(unit\.|fuzz\.replay\.|e2e\.test_bad_|e2e\.test_cli$)'
