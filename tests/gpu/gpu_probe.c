/*
 * gpu_probe.c - runs a gpu test (argv[1..]) when a CUDA device is visible,
 * else exits 77, which CTest reports as skipped (SKIP_RETURN_CODE).
 */
#include <stdio.h>
#include <unistd.h>

#ifdef MT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#define SKIP_STATUS 77

/* Why no gpu test can run here, or NULL when one can. */
static const char *no_gpu(void) {
#ifdef MT_HAVE_CUDA
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  return count > 0 ? NULL : "no CUDA device is visible";
#else
  return "this build has no CUDA backend (MT_ENABLE_CUDA=OFF, or no CUDA toolkit)";
#endif
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: gpu_probe TEST [ARGS...]\n");
    return 2;
  }
  const char *why = no_gpu();
  if (why) {
    printf("gpu test skipped: %s\n", why);
    return SKIP_STATUS;
  }
  execv(argv[1], argv + 1);
  perror(argv[1]);
  return 1;
}
