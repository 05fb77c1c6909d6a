# Compiler flags every target of the project gets: warnings on, and the
# sanitizer build when MT_SANITIZE is set. The C flags are for C only: nvcc
# (the worker's .cu files) takes host warnings through -Xcompiler, less
# unknown-pragmas: the host pass sees the device loops' `#pragma unroll`.
set(_mt_c_warnings -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Werror=implicit-function-declaration -Werror=incompatible-pointer-types)
add_compile_options("$<$<COMPILE_LANGUAGE:C>:${_mt_c_warnings}>"
                    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wno-unknown-pragmas>")
if(MT_WERROR)
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-Werror>")
endif()
if(MT_WERROR AND MT_CUDA_WERROR) # nvcc 13 only: see cmake/MtCuda.cmake
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
endif()
if(MT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(MT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MT_FUZZ=ON needs clang (libFuzzer): configure with CC=clang")
  endif()
  # coverage for libFuzzer in every object; only fuzz targets link its main
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link>")
endif()
