/*
 * backend.h - what the worker needs from a device family.
 *
 * The session layer (validation, ids, the wire) is the same for every
 * backend; a backend only owns memory and runs ops on views of it. The
 * interface is shaped for a GPU: memory is addressed by device pointers the
 * worker never dereferences itself, bytes move with explicit upload and
 * download of ranges, and each session runs on its own stream (a CUDA
 * stream: ops of one session stay ordered, sessions overlap). The cpu
 * backend (backend_cpu.c) implements it with malloc, memcpy and mti_cpu_run;
 * a cuda backend implements the same table with cudaMalloc (or a caching
 * allocator), cudaMemcpyAsync, cuBLAS and its kernels.
 *
 * Threads: alloc, release and the device queries may be called from any
 * thread; a stream is used by one thread at a time (its session's).
 */
#ifndef MTW_BACKEND_H
#define MTW_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/op_table.h"
#include "core/shape.h"

typedef struct mtw_device_props {
  char name[128];
  int64_t total_memory; /* bytes tensors may use on this device */
  int32_t major, minor; /* compute capability; 0 for cpu */
  int32_t multiprocessors;
  /* The backend's own memory, as allocated (rounded): bytes of live blocks
   * and of all blocks it holds, live and cached (equal where it keeps no
   * cache: cpu). Hello sends both as DeviceInfo.used/reserved_memory. */
  int64_t used_memory, reserved_memory;
} mtw_device_props;

typedef struct mtw_backend mtw_backend;
typedef struct mtw_stream mtw_stream; /* per session: ordering and scratch */

typedef struct mtw_backend_ops {
  int (*device_count)(mtw_backend *b);
  void (*device_props)(mtw_backend *b, int device, mtw_device_props *out);

  /* A stream on device for one session; sets the error and returns its
   * status on failure. stream_destroy waits for the stream's work. stop
   * (never NULL) rises when nobody waits for the stream's work any more
   * (the session's call ended): run may then stop a long op early, at the
   * next piece of its work, and fail with MT_ERR_UNAVAILABLE; its outputs
   * are then unspecified. */
  mt_status (*stream_create)(mtw_backend *b, int device, const atomic_int *stop,
                             mtw_stream **out);
  void (*stream_destroy)(mtw_stream *s);

  /* nbytes (> 0) of device memory on the stream's device, aligned for every
   * dtype; NULL with the error set on failure. release may run on any
   * thread, after the stream that allocated is gone. */
  void *(*alloc)(mtw_stream *s, size_t nbytes);
  void (*release)(mtw_backend *b, int device, void *ptr, size_t nbytes);

  /* A host address of device memory when the host can read it in place
   * (cpu: ptr itself), else NULL and bytes go through download. Lets the
   * cpu backend send downloads without a staging copy. */
  const void *(*host_address)(mtw_backend *b, const void *ptr);

  /* Copies nbytes between host memory and device memory (ranges of one
   * allocation). upload may return before the copy is done only if it has
   * taken its own copy of src; download returns with dst filled. */
  mt_status (*upload)(mtw_stream *s, void *dst, const void *src, size_t nbytes);
  mt_status (*download)(mtw_stream *s, void *dst, const void *src, size_t nbytes);

  /* Runs op as mti_cpu_run specifies (cpu_backend.h), on views whose data
   * are device pointers, already validated by the worker. Data-dependent
   * failures may surface here or at the next synchronize. */
  mt_status (*run)(mtw_stream *s, mti_op op, const mti_view *in, int n, const mti_attrs *at,
                   const mti_view *out);

  /* Waits for the stream's work; reports an asynchronous failure, if any. */
  mt_status (*synchronize)(mtw_stream *s);

  /* NULL while the backend can go on; else why it cannot (a GPU error that
   * poisons the context for the process's life). The session layer then
   * ends its session and stops the worker, which exits non-zero. */
  const char *(*lost)(mtw_backend *b);

  void (*destroy)(mtw_backend *b);
} mtw_backend_ops;

struct mtw_backend {
  const mtw_backend_ops *ops;
  const char *name; /* "cpu", "cuda": DeviceInfo.backend */
};

/* Opens the backend called name ("cpu", "cuda" or "auto"). max_memory (0:
 * the device's size) caps total_memory of every device. On failure returns
 * a status with the error set, e.g. MT_ERR_UNSUPPORTED for "cuda" in a build
 * without CUDA. */
mt_status mtw_backend_open(const char *name, uint64_t max_memory, mtw_backend **out);

/* The cpu backend: one device, host memory, the kernels of src/cpu. */
mt_status mtw_backend_cpu_open(uint64_t max_memory, mtw_backend **out);

/* The cuda backend (built with MTW_HAVE_CUDA): one device per visible GPU;
 * MT_ERR_DEVICE when none is visible. */
mt_status mtw_backend_cuda_open(uint64_t max_memory, mtw_backend **out);

#endif
