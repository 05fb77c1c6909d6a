#!/usr/bin/env bash
# Benchmarks libmodaltensor's cpu device against NumPy and PyTorch (cpu) on
# this machine.
#
# Builds mt_bench, mt_bench_bert and mt_bench_nn (Release) if needed, runs them, then
# bench/bench_numpy.py and bench/bench_torch_cpu.py (when torch imports), one
# after the other in this invocation, and prints a Markdown table (case | ours
# | numpy | torch | best/ours) with the geometric mean, under a header saying
# what it ran on: CPU, the thread count (ours = PyTorch's, set with
# torch.set_num_threads), OPENBLAS_CORETYPE and the BLAS NumPy uses.
# OPENBLAS_CORETYPE is left as the environment has it: it changes OpenBLAS's
# GEMM speed, and every side runs under the same setting.
#
# Usage: scripts/bench.sh [--quick] [--filter SUBSTR] [--reps N] [--seconds S]
#                         [--build-dir DIR]
#   Options other than --build-dir go to both benchmarks. The build directory
#   defaults to $BUILD_DIR or build-bench/ in the repository. Raw results are
#   kept in DIR/bench-results/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build-bench}"
python="${PYTHON:-/usr/bin/python3}"
bench_args=()

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
    --quick) bench_args+=("$1"); shift ;;
    --filter|--reps|--seconds|--warmup) bench_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# A benchmark of a debug or sanitizer build measures the wrong thing.
cache="$build_dir/CMakeCache.txt"
if [ -f "$cache" ]; then
  build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")"
  sanitize="$(sed -n 's/^MT_SANITIZE:[A-Z]*=//p' "$cache")"
  if [ "$build_type" != "Release" ] || [ "$sanitize" = "ON" ]; then
    echo "bench.sh: $build_dir is a '$build_type' build (MT_SANITIZE=$sanitize);" \
         "use a Release build without sanitizers (--build-dir)" >&2
    exit 2
  fi
else
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DMT_SANITIZE=OFF \
        -DMT_BUILD_TESTS=OFF -DMT_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build_dir" --target mt_bench mt_bench_bert mt_bench_nn -j "$(nproc)" >/dev/null
mt_bench="$build_dir/bench/mt_bench"
# The count libmodaltensor uses by default (mt_get_num_threads), given to torch.
threads="${OMP_NUM_THREADS:-$(nproc)}"
threads="${threads%%,*}"

results="$build_dir/bench-results"
mkdir -p "$results"
ours="$results/ours.jsonl"
theirs="$results/numpy.jsonl"
torch_out="$results/torch.jsonl"

cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "# libmodaltensor cpu vs NumPy and PyTorch"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(hostname)"
echo "- cpu: ${cpu_model:-unknown}, $(nproc) cores available"
echo "- OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)}" \
     " OMP_NUM_THREADS=${OMP_NUM_THREADS-(unset)}" \
     " OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS-(unset)}"
echo "- libmodaltensor BLAS: $(ldd "$mt_bench" | awk '/blas/ {print $3}' | xargs -r readlink -f | tr '\n' ' ')"
echo "- threads: $threads for libmodaltensor (kernels and BLAS) and PyTorch (torch.set_num_threads);" \
     "NumPy: one for its own loops, OpenBLAS's count for matmul"
echo "- method: median per op (call + free of the result), after warm-up; same run, same machine"

bert_args=()
for a in "${bench_args[@]}"; do [ "$a" = --quick ] && bert_args+=(--quick); done
"$mt_bench" "${bench_args[@]}" >"$ours"
filter_bert=1
for ((i = 0; i < ${#bench_args[@]}; i++)); do
  if [ "${bench_args[i]}" = --filter ] && [[ bert_forward_6x384_8x49 != *"${bench_args[i + 1]}"* ]]; then
    filter_bert=0
  fi
done
((filter_bert)) && "$build_dir/bench/mt_bench_bert" "${bert_args[@]}" >>"$ours"
nn_args=()
for ((i = 0; i < ${#bench_args[@]}; i++)); do
  case "${bench_args[i]}" in
    --quick) nn_args+=(--quick) ;;
    --filter|--reps|--seconds) nn_args+=("${bench_args[i]}" "${bench_args[i + 1]}"); i=$((i + 1)) ;;
    --warmup) i=$((i + 1)) ;;
  esac
done
"$build_dir/bench/mt_bench_nn" "${nn_args[@]}" >>"$ours"
"$python" "$root/bench/bench_numpy.py" "${bench_args[@]}" >"$theirs"
peers=("$theirs")
if "$python" -c "import torch" 2>/dev/null; then
  "$python" "$root/bench/bench_torch_cpu.py" --threads "$threads" "${bench_args[@]}" >"$torch_out"
  peers+=("$torch_out")
  echo "- torch $("$python" -c 'import torch; print(torch.__version__)') with $threads threads"
else
  echo "- torch: not installed for $python (no PyTorch column)"
fi

"$python" - "$theirs" <<'EOF'
import json, sys
meta = json.loads(open(sys.argv[1]).readline())["meta"]
blas = meta["blas"]
if blas["source"] == "threadpoolctl":
    pools = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                      f"{p.get('num_threads')} threads, {p.get('filepath')})" for p in blas["pools"])
else:
    ob = blas.get("openblas")
    pools = (f"{ob['config']}, core {ob['corename']}, {ob['threads']} threads ({ob['library']})"
             if ob else ", ".join(blas.get("libraries", [])) or "unknown")
print(f"- numpy {meta['version']} (python {meta['python']}), BLAS via {blas['source']}: {pools}")
EOF
echo
"$python" "$root/bench/compare.py" "$ours" "${peers[@]}"
echo
echo "raw results: $ours ${peers[*]}"
