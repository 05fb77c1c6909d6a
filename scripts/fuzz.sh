#!/usr/bin/env bash
# Builds the fuzz harnesses with clang (libFuzzer, ASan, UBSan; no CUDA) in
# build-fuzz and fuzzes each from a copy of its seed corpus: the safetensors
# header parser for MT_FUZZ_SAFETENSORS_SECONDS (default 20), then the
# worker's messages for SECONDS.
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
cmake --build build-fuzz -j "${MT_BUILD_JOBS:-$(nproc)}" --target fuzz_worker fuzz_safetensors
cd build-fuzz/fuzz
rm -rf corpus-st && cp -r ../../fuzz/corpus/safetensors corpus-st
./fuzz_safetensors -max_total_time="${MT_FUZZ_SAFETENSORS_SECONDS:-20}" -timeout=10 \
  -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 corpus-st
rm -rf corpus-long && cp -r ../../fuzz/corpus/worker corpus-long
exec ./fuzz_worker -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 "$@" corpus-long
