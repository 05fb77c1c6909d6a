#!/usr/bin/env bash
# Builds the worker's fuzz harness with clang (libFuzzer, ASan, UBSan; no
# CUDA) in build-fuzz and fuzzes it from a copy of the seed corpus.
#
#   bash scripts/fuzz.sh [SECONDS] [LIBFUZZER_ARG...]   (default 600 s)
#
# Crashes, leaks and sanitizer reports stop the run and leave the input in
# build-fuzz/fuzz/crash-*; replay one with build-fuzz/fuzz/fuzz_worker FILE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
shift || true
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMT_FUZZ=ON \
  -DMT_SANITIZE=ON -DMT_ENABLE_CUDA=OFF -DMT_BUILD_BENCH=OFF -DMT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j "${MT_BUILD_JOBS:-$(nproc)}" --target fuzz_worker
cd build-fuzz/fuzz
rm -rf corpus-long && cp -r ../../fuzz/corpus/worker corpus-long
exec ./fuzz_worker -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 "$@" corpus-long
