/*
 * backend_cpu.c - the cpu backend: host memory and the kernels of src/cpu.
 *
 * The same mti_cpu_run the library calls in-process, so there is one copy
 * of every kernel. A "stream" is only a handle here: a session's ops run on
 * its own thread, in order, and are done when run returns.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "core/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/threads.h"

#define CPU_ALIGN 64 /* a cache line; enough for every dtype and AVX loads */

typedef struct cpu_backend {
  mtw_backend base;
  uint64_t max_memory;
  _Atomic int64_t live_bytes; /* of blocks alloc handed out, as allocated */
} cpu_backend;

struct mtw_stream {
  cpu_backend *backend;
};

static int cpu_device_count(mtw_backend *b) {
  (void)b;
  return 1;
}

static int64_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (int64_t)pages * page : 0;
}

static void cpu_device_props(mtw_backend *b, int device, mtw_device_props *out) {
  cpu_backend *cb = (cpu_backend *)b;
  (void)device;
  memset(out, 0, sizeof *out);
  int threads = mti_cpu_threads();
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  snprintf(out->name, sizeof out->name, "cpu (%d threads)", threads);
  /* An explicit limit wins, even above the RAM size (there may be swap). */
  out->total_memory = cb->max_memory
                          ? (int64_t)(cb->max_memory > INT64_MAX ? INT64_MAX : cb->max_memory)
                          : physical_memory();
  out->multiprocessors = cpus > 0 ? (int32_t)cpus : 1;
  /* free() hands blocks back to the C library: nothing is cached. */
  out->used_memory = out->reserved_memory = atomic_load(&cb->live_bytes);
}

static mt_status cpu_stream_create(mtw_backend *b, int device, mtw_stream **out) {
  (void)device;
  mtw_stream *s = malloc(sizeof *s);
  if (!s) return mti_error_oom("stream", sizeof *s);
  s->backend = (cpu_backend *)b;
  *out = s;
  return MT_OK;
}

static void cpu_stream_destroy(mtw_stream *s) { free(s); }

/* Large tensors go on 2 MiB pages where the kernel offers them: filling a
 * fresh gigabyte then takes 512 page faults instead of 262144, which
 * otherwise cost more than copying the bytes in. */
#define HUGE_PAGE (2u << 20)
#define HUGE_MIN (4u << 20)

static size_t block_align(size_t nbytes) { return nbytes >= HUGE_MIN ? HUGE_PAGE : CPU_ALIGN; }

/* Bytes really allocated for an nbytes (> 0) block, which used_memory
 * counts as the cuda allocator counts its rounded blocks; 0 on overflow. */
static size_t block_size(size_t nbytes) {
  size_t align = block_align(nbytes);
  size_t rounded = (nbytes + align - 1) & ~(size_t)(align - 1);
  return rounded < nbytes ? 0 : rounded;
}

static void *cpu_alloc(mtw_stream *s, size_t nbytes) {
  void *p = NULL;
  size_t align = block_align(nbytes), size = block_size(nbytes);
  if (!size || posix_memalign(&p, align, size)) {
    mti_error_oom("alloc", nbytes);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  if (align == HUGE_PAGE) madvise(p, size, MADV_HUGEPAGE); /* advice only */
#endif
  atomic_fetch_add(&s->backend->live_bytes, (int64_t)size);
  return p;
}

static void cpu_release(mtw_backend *b, int device, void *ptr, size_t nbytes) {
  (void)device;
  free(ptr);
  atomic_fetch_sub(&((cpu_backend *)b)->live_bytes, (int64_t)block_size(nbytes));
}

static const void *cpu_host_address(mtw_backend *b, const void *ptr) {
  (void)b;
  return ptr;
}

static mt_status cpu_copy(mtw_stream *s, void *dst, const void *src, size_t nbytes) {
  (void)s;
  if (nbytes) memcpy(dst, src, nbytes);
  return MT_OK;
}

static mt_status cpu_run(mtw_stream *s, mti_op op, const mti_view *in, int n,
                         const mti_attrs *at, const mti_view *out) {
  (void)s;
  return mti_cpu_run(op, in, n, at, out);
}

static mt_status cpu_synchronize(mtw_stream *s) {
  (void)s;
  return MT_OK;
}

static const char *cpu_lost(mtw_backend *b) {
  (void)b;
  return NULL;
}

static void cpu_destroy(mtw_backend *b) { free(b); }

static const mtw_backend_ops cpu_ops = {
    cpu_device_count, cpu_device_props, cpu_stream_create, cpu_stream_destroy,
    cpu_alloc,        cpu_release,      cpu_host_address,  cpu_copy,
    cpu_copy,         cpu_run,          cpu_synchronize,   cpu_lost,
    cpu_destroy,
};

mt_status mtw_backend_cpu_open(uint64_t max_memory, mtw_backend **out) {
  cpu_backend *b = calloc(1, sizeof *b);
  if (!b) return mti_error_oom("backend", sizeof *b);
  b->base.ops = &cpu_ops;
  b->base.name = "cpu";
  b->max_memory = max_memory;
  atomic_init(&b->live_bytes, 0);
  *out = &b->base;
  return MT_OK;
}
