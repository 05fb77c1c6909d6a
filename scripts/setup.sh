#!/usr/bin/env bash
# Installs every package that building and testing libmodaltensor needs, on
# Debian 12; the same names exist on Ubuntu 24.04, the base of the Modal
# image (remote_worker/modal/app.py runs this script there). Idempotent: when
# all of them are installed already it only says so. Runs as root, or through
# sudo when that exists.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config libopenblas-dev libdlpack-dev
  # OpenBLAS's OpenMP build: GEMM in the kernels' own libgomp team (one pool,
  # docs/ARCHITECTURE.md "Threads"); the build prefers it when installed
  libopenblas-openmp-dev
  # remote device: gRPC C core and protobuf-c
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
  # SHA-256 of content-addressed uploads (libcrypto)
  libssl-dev
  # tests: Check for the C suites, Python for the binding and cffi checks,
  # valgrind for memory checks
  check python3 python3-numpy python3-cffi python3-pytest python3-hypothesis valgrind
  # PyTorch (CPU), the second reference of the op tests and benchmarks
  python3-torch
  # scikit-learn: its bundled digits data set trains the CNN example (no download)
  python3-sklearn
  # clang: libFuzzer for the fuzz harnesses (scripts/fuzz.sh, CI's fuzz pass)
  clang
  # pip, for Modal's client (the Modal app's tests; .ci/run installs it)
  python3-pip
  # openssl: the TLS tests make a throw-away CA and certificates
  openssl
  # static linking through OpenBLAS's pkg-config file names -lgfortran
  libgfortran-12-dev
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "setup: run as root (missing: ${missing[*]})" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"
