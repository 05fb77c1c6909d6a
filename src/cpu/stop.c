/*
 * stop.c - the calling thread's stop flag (stop.h).
 */
#include "cpu/stop.h"

#include <stddef.h>

static _Thread_local const atomic_int *thread_flag;

const atomic_int *mti_cpu_stop_set(const atomic_int *flag) {
  const atomic_int *before = thread_flag;
  thread_flag = flag;
  return before;
}

const atomic_int *mti_cpu_stop_flag(void) { return thread_flag; }
