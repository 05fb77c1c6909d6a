/*
 * threads.h - the thread count of the cpu kernels and of BLAS (threads.c).
 */
#ifndef MTI_CPU_THREADS_H
#define MTI_CPU_THREADS_H

#include <stdint.h>

/* Counts above this are taken as this. */
#define MTI_CPU_THREADS_MAX 1024

/* Threads a parallel region of the kernels uses: the count set with
 * mti_cpu_set_threads, or the default. Always >= 1. */
int mti_cpu_threads(void);

/* Sets the count; 0 returns to the default (OMP_NUM_THREADS's first number
 * when set, else the CPUs this process may run on). n must be >= 0. */
void mti_cpu_set_threads(int n);

/* Threads for `work` units of which each thread should get at least
 * min_per_thread (where a region starts to pay, measured per kernel kind):
 * 1 below twice that, or inside a parallel region. */
int mti_cpu_threads_for(int64_t work, int64_t min_per_thread);

/* Around BLAS calls: makes the next calls on this thread use
 * mti_cpu_threads() threads; returns what mti_cpu_blas_leave restores. */
int mti_cpu_blas_enter(void);
void mti_cpu_blas_leave(int saved);

#endif
