/*
 * backend_cpu.c - the cpu backend: host memory and the kernels of src/cpu.
 *
 * The same mti_cpu_run the library calls in-process, so there is one copy
 * of every kernel. A "stream" is only a handle here: a session's ops run on
 * its own thread, in order, and are done when run returns. The stream's
 * stop flag is named for the kernels while they run (cpu/stop.h), so a
 * long op stops at its next piece of work once the session's call ended.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "core/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/host_cache.h"
#include "cpu/stop.h"
#include "cpu/threads.h"

typedef struct cpu_backend {
  mtw_backend base;
  uint64_t max_memory;
  _Atomic int64_t live_bytes; /* of blocks alloc handed out, as allocated */
} cpu_backend;

struct mtw_stream {
  cpu_backend *backend;
  const atomic_int *stop;
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
  out->used_memory = atomic_load(&cb->live_bytes);
  out->reserved_memory = out->used_memory + (int64_t)mti_host_cached_bytes();
}

static mt_status cpu_stream_create(mtw_backend *b, int device, const atomic_int *stop,
                                   mtw_stream **out) {
  (void)device;
  mtw_stream *s = malloc(sizeof *s);
  if (!s) return mti_error_oom("stream", sizeof *s);
  s->backend = (cpu_backend *)b;
  s->stop = stop;
  *out = s;
  return MT_OK;
}

static void cpu_stream_destroy(mtw_stream *s) { free(s); }

/* Blocks come from the host buffer cache (cpu/host_cache.h), as the
 * library's cpu tensors do; live_bytes counts their capacities, as the
 * cuda allocator counts its rounded blocks. */
static void *cpu_alloc(mtw_stream *s, size_t nbytes) {
  size_t size = mti_host_capacity(nbytes);
  void *p = size ? mti_host_alloc(nbytes) : NULL;
  if (!p) {
    mti_error_oom("alloc", nbytes);
    return NULL;
  }
  atomic_fetch_add(&s->backend->live_bytes, (int64_t)size);
  return p;
}

static void cpu_release(mtw_backend *b, int device, void *ptr, size_t nbytes) {
  (void)device;
  mti_host_free(ptr, nbytes);
  atomic_fetch_sub(&((cpu_backend *)b)->live_bytes, (int64_t)mti_host_capacity(nbytes));
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
  const atomic_int *before = mti_cpu_stop_set(s->stop);
  mt_status status = mti_cpu_run(op, in, n, at, out);
  mti_cpu_stop_set(before);
  if (status == MT_OK && mti_cpu_stop_raised(s->stop))
    return mti_error(MT_ERR_UNAVAILABLE, "mt_%s: stopped: the session's call ended",
                     mti_op_get((int)op)->name);
  return status;
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
