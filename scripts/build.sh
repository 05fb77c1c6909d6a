#!/usr/bin/env bash
# The one list of build steps: configures and builds libmodaltensor with CMake.
# The README's commands, .ci/run and the Modal image (remote_worker/modal/)
# all build through this script, so they cannot drift apart.
#
#   bash scripts/build.sh [--worker-only] [--build-dir DIR] [CMAKE_ARG...]
#
#   --worker-only    configure without tests, examples and benchmarks and
#                    build only modaltensor-worker (the Modal image)
#   --build-dir DIR  build tree (default: build, relative to the repository
#                    root unless absolute)
#   CMAKE_ARG...     passed to the configure step after the script's own,
#                    so they win (e.g. -DMT_WERROR=ON, -DCMAKE_BUILD_TYPE=Debug)
#
# Parallel jobs: MT_BUILD_JOBS, default the number of processors.
# Run scripts/setup.sh first for the dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=build
worker_only=0
cmake_args=()
while (($#)); do
  case $1 in
    --worker-only) worker_only=1 ;;
    --build-dir)
      (($# >= 2)) || { echo "build.sh: --build-dir needs a directory" >&2; exit 2; }
      build_dir=$2
      shift ;;
    --build-dir=*) build_dir=${1#--build-dir=} ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) cmake_args+=("$1") ;;
  esac
  shift
done

configure=(cmake -S . -B "$build_dir")
build=(cmake --build "$build_dir" -j "${MT_BUILD_JOBS:-$(nproc)}")
if ((worker_only)); then
  configure+=(-DMT_BUILD_TESTS=OFF -DMT_BUILD_EXAMPLES=OFF -DMT_BUILD_BENCH=OFF)
  build+=(--target modaltensor-worker)
fi

echo "build.sh: ${configure[*]} ${cmake_args[*]}"
"${configure[@]}" "${cmake_args[@]}"
echo "build.sh: ${build[*]}"
"${build[@]}"
