/*
 * stop.h - stopping a running kernel from another thread (stop.c).
 *
 * A caller that may lose interest in a result (the worker, whose client
 * went away) names an atomic flag for its thread with mti_cpu_stop_set;
 * another thread raises it. Kernels whose work can be far larger than
 * their output (reductions over broadcast views, matmul's inner dimension)
 * look at it between pieces of about a millisecond of work and return
 * early, leaving their output unspecified; the caller then discards it.
 * The flag belongs to the calling thread: a parallel region reads it
 * before it starts (mti_cpu_stop_flag) and its team threads test that
 * pointer. Without a flag (the library's in-process ops) nothing stops.
 */
#ifndef MTI_CPU_STOP_H
#define MTI_CPU_STOP_H

#include <stdatomic.h>

/* Names the flag the calling thread's kernels test from now on (NULL:
 * none); returns the one named before, to restore. */
const atomic_int *mti_cpu_stop_set(const atomic_int *flag);

/* The calling thread's flag, or NULL. */
const atomic_int *mti_cpu_stop_flag(void);

/* Whether flag (may be NULL) was raised: one relaxed load. */
static inline int mti_cpu_stop_raised(const atomic_int *flag) {
  return flag && atomic_load_explicit(flag, memory_order_relaxed);
}

/* Whether the calling thread's flag was raised. */
static inline int mti_cpu_stopped(void) { return mti_cpu_stop_raised(mti_cpu_stop_flag()); }

#endif
