/*
 * threads.c - how many threads the cpu kernels and BLAS use.
 *
 * Every parallel region of src/cpu names its thread count from here
 * (num_threads(...)), so the count belongs to the library and not to
 * libgomp's per-thread setting: another libgomp user in the process
 * (PyTorch sets it to 1 on import) does not change it.
 *
 * One pool: the build links OpenBLAS's OpenMP flavour where it is installed
 * (CMakeLists.txt), whose threads are libgomp's, the kernels' own team. It
 * sizes each call by the calling thread's omp_get_max_threads(), so the
 * count is set around the call and the caller's setting restored. A
 * pthreads OpenBLAS keeps a pool of its own, told the count with
 * openblas_set_num_threads (and then two pools share the cores: see
 * docs/ARCHITECTURE.md, "Threads").
 */
#define _GNU_SOURCE
#include "cpu/threads.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* openblas_get_parallel(): 1 for its pthreads build, 2 for OpenMP. */
#define OPENBLAS_PARALLEL_OPENMP 2

static atomic_int chosen;              /* set with mti_cpu_set_threads; 0: default */
static atomic_int defaulted;           /* the default, once computed; 0: not yet */
static atomic_int blas_pthreads_count; /* last count given to a pthreads OpenBLAS */

/* The first number of OMP_NUM_THREADS ("4" or "4,2"); 0 when unset or bad. */
static int env_threads(void) {
  const char *s = getenv("OMP_NUM_THREADS");
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || (*end && *end != ',') || v < 1) return 0;
  return v < MTI_CPU_THREADS_MAX ? (int)v : MTI_CPU_THREADS_MAX;
}

/* CPUs in this process's affinity mask (a container or taskset may allow
 * fewer than the machine has). */
static int cpus_available(void) {
  cpu_set_t set;
  int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n < MTI_CPU_THREADS_MAX ? n : MTI_CPU_THREADS_MAX;
}

/* libgomp keeps idle workers spinning (300000 pauses, milliseconds) after
 * each region unless OMP_WAIT_POLICY or GOMP_SPINCOUNT say otherwise, and it
 * reads them before any code of ours runs. On cores that other work also
 * wants, a spinning thread takes the core from the one with work: measured
 * here 4-7x slower than OMP_WAIT_POLICY=passive on a BERT forward. libgomp
 * spins only 100 times while it manages more threads than there are CPUs;
 * a team of `cpus` threads parked on a thread of ours, asleep for good,
 * makes that so. Done once, and only when the user set neither variable. */
static void *park_team(void *arg) {
  int size = *(const int *)arg;
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  volatile int team = 0; /* an empty region could be compiled away */
#pragma omp parallel num_threads(size)
  if (omp_get_thread_num() == 0) team = omp_get_num_threads();
  (void)team;
  pthread_mutex_lock(&m);
  for (;;) pthread_cond_wait(&c, &m); /* never signalled */
  return NULL;
}

static void park_once(void) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  static int size;
  size = cpus_available() < 2 ? 2 : cpus_available();
  pthread_attr_t attr;
  pthread_t t;
  if (pthread_attr_init(&attr)) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  (void)pthread_create(&t, &attr, park_team, &size); /* failure: libgomp spins, still correct */
  pthread_attr_destroy(&attr);
}

static int default_threads(void) {
  int d = atomic_load_explicit(&defaulted, memory_order_relaxed);
  if (d) return d;
  d = env_threads();
  if (!d) d = cpus_available();
  atomic_store_explicit(&defaulted, d, memory_order_relaxed);
  return d;
}

int mti_cpu_threads(void) {
  static pthread_once_t park = PTHREAD_ONCE_INIT;
  pthread_once(&park, park_once);
  int n = atomic_load_explicit(&chosen, memory_order_relaxed);
  return n ? n : default_threads();
}

void mti_cpu_set_threads(int n) {
  atomic_store_explicit(&chosen, n < MTI_CPU_THREADS_MAX ? n : MTI_CPU_THREADS_MAX,
                        memory_order_relaxed);
}

int mti_cpu_threads_for(int64_t work, int64_t min_per_thread) {
  if (work < 2 * min_per_thread || omp_in_parallel()) return 1;
  int64_t most = work / min_per_thread;
  int max = mti_cpu_threads();
  return most < max ? (int)most : max;
}

int mti_cpu_blas_enter(void) {
  int n = mti_cpu_threads();
  if (openblas_get_parallel() == OPENBLAS_PARALLEL_OPENMP) {
    int prev = omp_get_max_threads();
    if (prev != n) omp_set_num_threads(n);
    return prev;
  }
  if (atomic_exchange_explicit(&blas_pthreads_count, n, memory_order_relaxed) != n)
    openblas_set_num_threads(n);
  return 0;
}

void mti_cpu_blas_leave(int saved) {
  if (saved > 0 && saved != omp_get_max_threads()) omp_set_num_threads(saved);
}
