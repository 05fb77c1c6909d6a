#!/usr/bin/env bash
# Benchmarks the worker's cuda backend against PyTorch on the same GPU.
#
# Builds mt_bench_gpu (Release, MT_ENABLE_CUDA=ON) if needed, then runs it and
# bench/bench_torch.py one after the other in this invocation and prints a
# Markdown table: case | ours | PyTorch | unit | ours/PyTorch, and for the
# memory-bound cases ours/copy: the share of the device's copy bandwidth
# (a 256 MiB device-to-device copy measured by PyTorch in the same run).
# Our side records --reps ops into one graph and syncs once, so the RPC cost
# is amortised; PyTorch's side times the same ops with CUDA events.
#
# Usage: scripts/bench_gpu.sh [--quick] [--reps N] [--build-dir DIR]
#   The build directory defaults to $BUILD_DIR or build-gpu-bench/ in the
#   repository; PyTorch comes from $PYTHON (default python3). Raw results are
#   kept in DIR/bench-results/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build-gpu-bench}"
python="${PYTHON:-python3}"
args=()

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
    --quick) args+=("$1"); shift ;;
    --reps) args+=("$1" "${2:?--reps needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_gpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "bench_gpu.sh: no NVIDIA GPU is visible on this machine (nvidia-smi finds none);" \
       "this benchmark compares the cuda backend with PyTorch on a GPU and cannot run here" >&2
  exit 1
fi
if ! "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "bench_gpu.sh: $python has no PyTorch with CUDA (pip install torch, or set PYTHON)" >&2
  exit 1
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DMT_SANITIZE=OFF \
        -DMT_ENABLE_CUDA=ON -DMT_BUILD_TESTS=OFF -DMT_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build_dir" --target mt_bench_gpu -j "$(nproc)" >/dev/null

results="$build_dir/bench-results"
mkdir -p "$results"
ours="$results/gpu-ours.tsv"
theirs="$results/gpu-torch.tsv"

echo "# libmodaltensor cuda backend vs PyTorch"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(hostname)"
echo "- gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
"$build_dir/bench/mt_bench_gpu" "${args[@]}" >"$ours"
"$python" "$root/bench/bench_torch.py" "${args[@]}" >"$theirs"

"$python" - "$ours" "$theirs" <<'PY'
import sys

def load(path):
    rows, notes = {}, []
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if line.startswith("#"):
            notes.append(" ".join(parts).lstrip("# "))
        elif len(parts) == 3:
            rows[parts[0]] = (float(parts[1]), parts[2])
    return rows, notes

ours, our_notes = load(sys.argv[1])
theirs, their_notes = load(sys.argv[2])
for note in our_notes:
    print(f"- ours: {note}")
for note in their_notes:
    print(f"- PyTorch: {note}")
copy = theirs.get("copy_d2d_256MiB", (0.0, "GB/s"))[0]
print(f"- device copy bandwidth (256 MiB device-to-device, PyTorch): {copy:.1f} GB/s")
print()
print("| case | ours | PyTorch | unit | ours/PyTorch | ours/copy |")
print("|---|---:|---:|---|---:|---:|")
for name, (value, unit) in ours.items():
    ref = theirs.get(name, (0.0, unit))[0]
    frac = f"{value / ref:.2f}" if ref else "-"
    of_copy = f"{value / copy:.2f}" if unit == "GB/s" and copy else "-"
    print(f"| {name} | {value:.2f} | {ref:.2f} | {unit} | {frac} | {of_copy} |")
PY
echo
echo "targets: matmul >= 0.95 of PyTorch; memory-bound cases >= 0.80 of the copy bandwidth"
echo "raw results: $ours $theirs"
