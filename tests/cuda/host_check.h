/*
 * host_check.h - the checks of the cuda host tests: CHECK(cond, fmt, ...)
 * counts every check and prints the first failures with their source line;
 * host_check_report() prints the totals and gives main's exit status.
 */
#ifndef MT_TESTS_CUDA_HOST_CHECK_H
#define MT_TESTS_CUDA_HOST_CHECK_H

#include <stdio.h>

static int host_check_count, host_check_failures;

#define HOST_CHECK_SHOWN 40 /* failures printed; the rest are only counted */

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    host_check_count++;                                                 \
    if (!(cond) && ++host_check_failures <= HOST_CHECK_SHOWN) {         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
      fprintf(stderr, __VA_ARGS__);                                     \
      fputc('\n', stderr);                                              \
    }                                                                   \
  } while (0)

static inline int host_check_report(void) {
  printf("%d checks, %d failures\n", host_check_count, host_check_failures);
  return host_check_failures ? 1 : 0;
}

#endif
