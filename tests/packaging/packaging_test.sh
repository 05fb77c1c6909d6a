#!/usr/bin/env bash
# Packaging checks of libmodaltensor, run by CTest (tests/packaging/CMakeLists.txt).
#
#   packaging_test.sh install   BUILD_DIR PREFIX SOURCE_HEADER
#       cmake --install BUILD_DIR into a fresh PREFIX, then checks what landed there.
#   packaging_test.sh cmake     PREFIX WORK_DIR shared|static
#       builds tests/packaging/consumer with find_package(modaltensor) and runs it.
#   packaging_test.sh pkgconfig PREFIX WORK_DIR shared|static
#       builds consumer/main.c with the flags of `pkg-config modaltensor` and runs it.
#   packaging_test.sh exports   LIBRARY HEADER
#       the shared library exports only mt_ symbols, each declared in HEADER.
#
# Environment (set by CTest): MT_VERSION (MAJOR.MINOR.PATCH), MT_LIBDIR (the
# install libdir relative to the prefix), CMAKE (the cmake that built the
# project), CC (the C compiler), MT_CONSUMER_FLAGS (compile+link flags the
# consumer needs too, e.g. the sanitizer flags of an MT_SANITIZE build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CMAKE=${CMAKE:-cmake}
CC=${CC:-cc}
MT_CONSUMER_FLAGS=${MT_CONSUMER_FLAGS:-}
MT_LIBDIR=${MT_LIBDIR:-lib}

die() {
  echo "FAIL: $*" >&2
  exit 1
}

need_version() {
  [[ ${MT_VERSION:-} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "MT_VERSION is '${MT_VERSION:-}'"
}

# The DT_NEEDED entries of an ELF file, one a line.
needed_libs() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

# Checks how `binary` got libmodaltensor: through the shared library of
# `prefix` (kind shared) or linked in (kind static).
check_linkage() {
  local binary=$1 kind=$2 prefix=$3 major=${MT_VERSION%%.*} needed
  needed=$(needed_libs "$binary")
  if [[ $kind == shared ]]; then
    grep -qx "libmodaltensor.so.$major" <<<"$needed" ||
      die "$binary does not need libmodaltensor.so.$major"
    local resolved
    resolved=$(ldd "$binary" | awk '$1 ~ /^libmodaltensor\.so/ {print $3}')
    [[ $resolved == "$prefix/$MT_LIBDIR/"* ]] ||
      die "$binary loads libmodaltensor from '$resolved', not from $prefix"
  else
    if grep -q '^libmodaltensor' <<<"$needed"; then
      die "$binary needs a shared libmodaltensor although it was linked statically"
    fi
  fi
}

cmd_install() {
  local build=$1 prefix=$2 source_header=$3
  need_version
  local major=${MT_VERSION%%.*} lib="$prefix/$MT_LIBDIR"

  rm -rf "$prefix"
  echo "+ $CMAKE --install $build --prefix $prefix"
  "$CMAKE" --install "$build" --prefix "$prefix"

  cmp -s "$source_header" "$prefix/include/modaltensor.h" ||
    die "installed header differs from $source_header"
  [[ -f $lib/libmodaltensor.so.$MT_VERSION ]] || die "no $lib/libmodaltensor.so.$MT_VERSION"
  [[ $(readlink "$lib/libmodaltensor.so.$major") == "libmodaltensor.so.$MT_VERSION" ]] ||
    die "libmodaltensor.so.$major is not a link to libmodaltensor.so.$MT_VERSION"
  [[ $(readlink "$lib/libmodaltensor.so") == "libmodaltensor.so.$major" ]] ||
    die "libmodaltensor.so is not a link to libmodaltensor.so.$major"
  local soname
  soname=$(readelf -d "$lib/libmodaltensor.so.$MT_VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [[ $soname == "libmodaltensor.so.$major" ]] || die "SONAME is '$soname'"
  [[ -f $lib/libmodaltensor.a ]] || die "no $lib/libmodaltensor.a"
  local archive_symbols
  archive_symbols=$(nm --defined-only "$lib/libmodaltensor.a" 2>/dev/null)
  grep -qw 'T mt_add' <<<"$archive_symbols" || die "libmodaltensor.a does not define mt_add"
  local f
  for f in modaltensorConfig.cmake modaltensorConfigVersion.cmake modaltensorTargets.cmake; do
    [[ -f $lib/cmake/modaltensor/$f ]] || die "no $lib/cmake/modaltensor/$f"
  done
  [[ -f $lib/pkgconfig/modaltensor.pc ]] || die "no $lib/pkgconfig/modaltensor.pc"
  local pc_version
  pc_version=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --modversion modaltensor)
  [[ $pc_version == "$MT_VERSION" ]] || die "pkg-config reports version '$pc_version'"
  echo "installed libmodaltensor $MT_VERSION into $prefix"
}

cmd_cmake() {
  local prefix=$1 work=$2 kind=$3
  need_version
  rm -rf "$work"
  local configure=("$CMAKE" -S "$here/consumer"
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$MT_CONSUMER_FLAGS"
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DMT_CONSUMER_LINK="$kind")
  echo "+ ${configure[*]} -B $work/build -DMT_REQUEST_VERSION=$MT_VERSION"
  "${configure[@]}" -B "$work/build" -DMT_REQUEST_VERSION="$MT_VERSION"
  local cache="$work/build/CMakeCache.txt"
  grep -qx "modaltensor_DIR:PATH=$prefix/$MT_LIBDIR/cmake/modaltensor" "$cache" ||
    die "find_package did not take modaltensor from $prefix"
  "$CMAKE" --build "$work/build"
  check_linkage "$work/build/consumer" "$kind" "$prefix"
  "$work/build/consumer"

  if [[ $kind == shared ]]; then
    # SameMajorVersion: a request for the next major version must fail.
    local next_major=$((${MT_VERSION%%.*} + 1)).0
    "${configure[@]}" -B "$work/next-major" -DMT_REQUEST_VERSION="$next_major" \
      >"$work/next-major.log" 2>&1 &&
      die "find_package(modaltensor $next_major) accepted version $MT_VERSION"
    grep -q "compatible with requested version \"$next_major\"" "$work/next-major.log" ||
      die "failed for another reason: $(cat "$work/next-major.log")"
    echo "find_package(modaltensor $next_major) is refused, as it should be"
  fi
}

cmd_pkgconfig() {
  local prefix=$1 work=$2 kind=$3
  need_version
  rm -rf "$work"
  mkdir -p "$work"
  export PKG_CONFIG_PATH="$prefix/$MT_LIBDIR/pkgconfig"
  local flags cflags libs
  read -ra flags <<<"$MT_CONSUMER_FLAGS"
  read -ra cflags <<<"$(pkg-config --cflags modaltensor)"
  if [[ $kind == shared ]]; then
    read -ra libs <<<"$(pkg-config --libs modaltensor)"
  else
    read -ra libs <<<"$(pkg-config --static --libs modaltensor)"
    # pkg-config names the library -lmodaltensor, which the linker resolves
    # to the .so when both are there: ask for the archive by file name.
    local i found=0
    for i in "${!libs[@]}"; do
      if [[ ${libs[i]} == -lmodaltensor ]]; then
        libs[i]=-l:libmodaltensor.a
        found=1
      fi
    done
    ((found)) || die "pkg-config --static --libs gives '${libs[*]}'"
  fi
  local compile=("$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror "${flags[@]}" "${cflags[@]}"
    "$here/consumer/main.c" -o "$work/consumer" "${libs[@]}")
  echo "+ ${compile[*]}"
  "${compile[@]}"
  LD_LIBRARY_PATH="$prefix/$MT_LIBDIR" check_linkage "$work/consumer" "$kind" "$prefix"
  LD_LIBRARY_PATH="$prefix/$MT_LIBDIR" "$work/consumer"
}

cmd_exports() {
  local library=$1 header=$2
  local symbols bad undeclared=()
  symbols=$(nm -D --defined-only "$library" | awk 'NF >= 3 {print $3}' | sed 's/@.*//' | sort -u)
  [[ -n $symbols ]] || die "$library exports nothing"
  bad=$(grep -v '^mt_' <<<"$symbols" || true)
  [[ -z $bad ]] || die "$library exports symbols outside the mt_ namespace:"$'\n'"$bad"
  local s
  for s in $symbols; do
    grep -Eq "[^A-Za-z0-9_]${s}[[:space:]]*\\(" "$header" || undeclared+=("$s")
  done
  ((${#undeclared[@]} == 0)) ||
    die "$library exports mt_ functions that $header does not declare: ${undeclared[*]}"
  echo "$(wc -l <<<"$symbols") exported symbols, all mt_ and declared in $(basename "$header")"
}

case ${1:-} in
  install) cmd_install "${@:2}" ;;
  cmake) cmd_cmake "${@:2}" ;;
  pkgconfig) cmd_pkgconfig "${@:2}" ;;
  exports) cmd_exports "${@:2}" ;;
  *)
    echo "usage: $0 install|cmake|pkgconfig|exports ARGS..." >&2
    exit 2
    ;;
esac
