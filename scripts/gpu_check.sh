#!/usr/bin/env bash
# The first contact of the cuda backend with a GPU, in one run of at most
# about 10 minutes, with one report file (Markdown):
#
#   1. the GPU and driver (nvidia-smi)
#   2. a Release build with CUDA for this GPU's architecture (-DMT_WERROR=ON)
#   3. ctest -L gpu: gpu_worker, gpu_modal_conformance (the conformance
#      matrix against a --backend cuda worker), gpu_nan_bits, bench_gpu_smoke
#   4. compute-sanitizer memcheck and racecheck on the worker while
#      test_gpu_worker drives it (the worker binary is swapped for a wrapper
#      that runs it under the tool, then put back)
#   5. the NaN bits of every floating conversion on the device (gpu_nan_bits)
#   6. scripts/bench_gpu.sh beside PyTorch (--quick when PyTorch is there)
#
# Every step has its own time limit; a step that fails or times out is
# written down and the next one runs. Exit status: 0 when every step
# passed, 1 otherwise, 2 for a usage error.
#
# Usage: scripts/gpu_check.sh [--report FILE] [--build-dir DIR] [--full-bench]
#   FILE defaults to gpu-check-report.md (in $OUT when that is set, else the
#   repository root); DIR to build-gpu-check/.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
report="${OUT:-$root}/gpu-check-report.md"
build="$root/build-gpu-check"
bench_args=(--quick)
while (($#)); do
  case $1 in
    --report) report="${2:?--report needs a file}"; shift ;;
    --build-dir) build="${2:?--build-dir needs a directory}"; shift ;;
    --full-bench) bench_args=() ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$(dirname "$report")"
logs="$build/gpu-check-logs"
failed=0

# note TEXT...: a line of the report (and of the terminal).
note() { echo "$*" | tee -a "$report"; }

# step NAME LIMIT_S CMD...: runs CMD with a time limit, its output in the
# report (the last 60 lines) and whole in $logs/NAME.log.
step() {
  local name=$1 limit=$2 rc start=$SECONDS
  shift 2
  mkdir -p "$logs"
  timeout --kill-after=10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local verdict="passed"
  ((rc == 124 || rc == 137)) && verdict="TIMED OUT after ${limit}s"
  ((rc != 0 && rc != 124 && rc != 137)) && verdict="FAILED (status $rc)"
  ((rc != 0)) && failed=1
  note ""
  note "## $name: $verdict ($((SECONDS - start)) s)"
  note '```'
  tail -n 60 "$logs/$name.log" | tee -a "$report"
  note '```'
}

worker="$build/remote_worker/modaltensor-worker"

# Puts the real worker back after a sanitizer run (also one cut short).
restore_worker() { if [ -f "$worker.real" ]; then mv -f "$worker.real" "$worker"; fi; }
trap restore_worker EXIT

# sanitize TOOL: runs test_gpu_worker with its workers under compute-sanitizer
# (run by step through bash -c, hence exported with its variables).
sanitize() {
  local tool=$1
  rm -f "$logs/$tool"-*.log
  mv "$worker" "$worker.real"
  cat >"$worker" <<SH
#!/bin/sh
exec compute-sanitizer --tool $tool --error-exitcode 99 --log-file "$logs/$tool-%p.log" \
  "$worker.real" "\$@"
SH
  chmod +x "$worker"
  WT_WORKER_BACKEND=cuda CK_DEFAULT_TIMEOUT=80 "$build/tests/gpu/test_gpu_worker"
  local rc=$?
  mv "$worker.real" "$worker"
  grep -H "ERROR SUMMARY" "$logs/$tool"-*.log || { echo "no sanitizer log"; return 1; }
  ! grep -h "ERROR SUMMARY" "$logs/$tool"-*.log | grep -vq "ERROR SUMMARY: 0 errors" && ((rc == 0))
}

: >"$report"
note "# libmodaltensor: first GPU check"
note ""
note "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  note "- no NVIDIA GPU is visible (nvidia-smi): nothing to check here"
  exit 1
fi
note "- gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
note "- nvcc: $(nvcc --version 2>/dev/null | tail -n 1)"

export -f sanitize
export worker logs build

step build 180 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release -DMT_WERROR=ON \
    -DMT_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native -DMT_BUILD_EXAMPLES=OFF >/dev/null &&
  cmake --build '$build' -j '$(nproc)' --target modaltensor-worker gpu_probe test_gpu_worker \
    test_modal_conformance gpu_nan_bits mt_bench_gpu"
step "ctest -L gpu" 150 ctest --test-dir "$build" -L gpu --output-on-failure
step "compute-sanitizer memcheck" 90 bash -c "sanitize memcheck"
restore_worker
step "compute-sanitizer racecheck" 90 bash -c "sanitize racecheck"
restore_worker
step "NaN bits of the conversions" 20 "$build/tests/gpu/gpu_nan_bits"
step "benchmark beside PyTorch" 70 env BUILD_DIR="$build" "$root/scripts/bench_gpu.sh" \
  "${bench_args[@]}"

note ""
note "Report: $report ($((SECONDS)) s in all; full logs in $logs)"
exit "$failed"
