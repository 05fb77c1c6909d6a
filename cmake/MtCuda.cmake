# Decides whether the worker gets its CUDA backend (remote_worker/cuda) and
# enables the CUDA language for it. Sets MT_CUDA (TRUE/FALSE).
#
# MT_ENABLE_CUDA: AUTO builds it when nvcc and the CUDA toolkit are found,
# ON requires them, OFF never builds it. The sanitizer build never compiles
# CUDA (nvcc does not take ASan flags and the ASan CI pass has no GPU).
# Architectures default to 80;90 (A100, H100/H200): they must be set before
# enable_language(CUDA), and `native` fails on a machine without a GPU.
set(MT_CUDA FALSE)
if(MT_SANITIZE)
  if(MT_ENABLE_CUDA STREQUAL "ON")
    message(WARNING "MT_ENABLE_CUDA=ON is ignored with MT_SANITIZE=ON: the CUDA backend is off")
  endif()
elseif(NOT MT_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_EXTENSIONS OFF)
    set(MT_CUDA TRUE)
  elseif(MT_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MT_ENABLE_CUDA=ON, but nvcc or the CUDA toolkit was not found "
                        "(set CMAKE_CUDA_COMPILER, or MT_ENABLE_CUDA=AUTO/OFF)")
  endif()
endif()
# MT_CUDA_WERROR: whether MT_WERROR also makes nvcc's warnings errors
# (cmake/MtWarnings.cmake). Only for the nvcc major version CI builds with
# (13): each release adds warnings, and the Modal image's CUDA 12.8 cannot
# be tried in CI (PyPI's nvidia-cuda-nvcc-cu12 12.8 wheel holds only ptxas
# and libnvvm, no nvcc driver, cudafe++ or cicc; Debian has no 12.8
# toolkit), so a warning new to another version is shown, not fatal.
set(MT_CUDA_WERROR FALSE)
if(MT_CUDA AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 13
   AND CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 14)
  set(MT_CUDA_WERROR TRUE)
endif()
if(MT_CUDA)
  message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES})")
  if(MT_WERROR AND NOT MT_CUDA_WERROR)
    message(STATUS "MT_WERROR: nvcc ${CMAKE_CUDA_COMPILER_VERSION}'s warnings stay warnings "
                   "(only nvcc 13, which CI builds with, makes them errors)")
  endif()
else()
  message(STATUS "CUDA backend: off")
endif()
