/*
 * runtime.c - runtime control: the cpu kernels' thread count.
 */
#include "core/error.h"
#include "cpu/threads.h"
#include "modaltensor.h"

void mt_set_num_threads(int n) {
  if (n < 0) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "mt_set_num_threads: n: %d is negative (0 = default)", n);
    return;
  }
  mti_cpu_set_threads(n);
}

int mt_get_num_threads(void) { return mti_cpu_threads(); }
