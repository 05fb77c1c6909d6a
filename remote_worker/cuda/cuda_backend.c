/*
 * cuda_backend.c - the cuda backend: one device per visible GPU, a CUDA
 * stream per session, the caching allocator (cuda_alloc.c), cuBLAS for
 * floating matmul (cuda_blas.c) and the custom kernels (cuda_kernels.h)
 * for every other op.
 *
 * Nothing here waits for the GPU except synchronize, download and the
 * reuse of a pinned staging slot: ops are only enqueued on the session's
 * stream. Kernels report data-dependent failures in the stream's fault
 * word, read back by synchronize in the same wait. A sticky CUDA error
 * (the context is poisoned: every later call fails) marks the backend lost;
 * the session layer then ends the worker (backend.h, lost).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cuda/cuda_internal.h"
#include "log.h"

/* ------------------------------------------------------------ errors */

/* Errors after which the context is unusable for the process's life: those
 * driver_types.h says leave the process in an inconsistent state (the two
 * added in CUDA 12.8 only where the headers have them). */
static int is_sticky(cudaError_t e) {
  switch (e) {
#if CUDART_VERSION >= 12080
  case cudaErrorContained:
  case cudaErrorTensorMemoryLeak:
#endif
  case cudaErrorMpsClientTerminated:
  case cudaErrorExternalDevice:
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchFailure:
  case cudaErrorLaunchTimeout:
  case cudaErrorAssert:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorECCUncorrectable:
  case cudaErrorNvlinkUncorrectable: return 1;
  default: return 0;
  }
}

/* Records the first sticky error as the reason the backend is lost. */
static void mark_lost(mtw_cuda_backend *b, const char *fn, cudaError_t e) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&b->lost, &expected, -1)) return;
  snprintf(b->lost_why, sizeof b->lost_why, "%s: cuda: %s (%s)", fn, cudaGetErrorName(e),
           cudaGetErrorString(e));
  mtw_log(MTW_LOG_ERROR, "the GPU context is poisoned: %s", b->lost_why);
  atomic_store(&b->lost, 1);
}

mt_status mtw_cuda_error(mtw_cuda_backend *b, const char *fn, cudaError_t err) {
  cudaGetLastError(); /* a recoverable error must not surface again later */
  if (is_sticky(err)) {
    mark_lost(b, fn, err);
    return mti_error(MT_ERR_UNAVAILABLE, "%s: cuda: %s (%s): the GPU is unusable, the worker exits",
                     fn, cudaGetErrorName(err), cudaGetErrorString(err));
  }
  mt_status status = err == cudaErrorMemoryAllocation ? MT_ERR_OUT_OF_MEMORY : MT_ERR_INTERNAL;
  return mti_error(status, "%s: cuda: %s (%s)", fn, cudaGetErrorName(err), cudaGetErrorString(err));
}

static const char *cublas_name(cublasStatus_t st) {
  switch (st) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

mt_status mtw_cublas_error(mtw_cuda_backend *b, const char *fn, cublasStatus_t st) {
  /* a failed launch inside cuBLAS may have poisoned the context */
  cudaError_t e = cudaGetLastError();
  if (is_sticky(e)) return mtw_cuda_error(b, fn, e);
  mt_status status = st == CUBLAS_STATUS_ALLOC_FAILED   ? MT_ERR_OUT_OF_MEMORY
                     : st == CUBLAS_STATUS_NOT_SUPPORTED ? MT_ERR_UNSUPPORTED
                                                         : MT_ERR_INTERNAL;
  return mti_error(status, "%s: cublas: %s", fn, cublas_name(st));
}

/* The error every call gets once the backend is lost. */
static mt_status lost_error(mtw_cuda_backend *b, const char *fn) {
  return mti_error(MT_ERR_UNAVAILABLE, "%s: the GPU failed earlier (%s): the worker exits", fn,
                   b->lost_why);
}

/* Makes s's device current on this thread; fails once the backend is lost. */
static mt_status enter(mtw_stream *s, const char *fn) {
  if (atomic_load(&s->backend->lost) == 1) return lost_error(s->backend, fn);
  cudaError_t e = cudaSetDevice(s->device);
  return e == cudaSuccess ? MT_OK : mtw_cuda_error(s->backend, fn, e);
}

/* ------------------------------------------------------------ devices */

static int cuda_device_count(mtw_backend *b) { return ((mtw_cuda_backend *)b)->count; }

static void cuda_device_props(mtw_backend *b, int device, mtw_device_props *out) {
  mtw_cuda_backend *cb = (mtw_cuda_backend *)b;
  *out = cb->props[device];
  mtw_cuda_pool_usage(cb->pools[device], &out->used_memory, &out->reserved_memory);
}

static const char *cuda_lost(mtw_backend *b) {
  mtw_cuda_backend *cb = (mtw_cuda_backend *)b;
  return atomic_load(&cb->lost) == 1 ? cb->lost_why : NULL;
}

/* ------------------------------------------------------------ streams */

static void *stream_scratch(const mtw_cuda_ctx *ctx, size_t nbytes) {
  mtw_stream *s = ctx->owner;
  return mtw_cuda_region_get(s, &s->scratch, nbytes);
}

/* Releases what stream_create made, in reverse; s's work must be done. */
static void stream_teardown(mtw_stream *s) {
  mtw_cuda_pool *pool = s->backend->pools[s->device];
  mtw_cuda_blas_release(s);
  mtw_cuda_region_free(s, &s->scratch);
  mtw_cuda_region_free(s, &s->staging);
  if (s->fault) mtw_cuda_pool_release(pool, s->fault);
  mtw_cuda_pool_forget_stream(pool, s);
  for (int i = 0; i < MTW_CUDA_STAGING_SLOTS; i++)
    if (s->slot_free[i]) cudaEventDestroy(s->slot_free[i]);
  if (s->pinned) mtw_cuda_pool_keep_pinned(pool, s->pinned);
  if (s->stream) cudaStreamDestroy(s->stream);
  cudaGetLastError(); /* after a sticky error these fail; nothing to do */
  free(s);
}

/* The pinned staging slots and fault word copy (a finished stream's, or
 * new), and the slots' events. */
static cudaError_t make_staging(mtw_stream *s) {
  size_t slots = (size_t)MTW_CUDA_STAGING_SLOTS * MTW_CUDA_STAGING_SLOT;
  cudaError_t e = cudaSuccess;
  s->pinned = mtw_cuda_pool_take_pinned(s->backend->pools[s->device]);
  if (!s->pinned) e = cudaMallocHost((void **)&s->pinned, slots + sizeof(unsigned));
  if (e != cudaSuccess) {
    s->pinned = NULL;
    return e;
  }
  s->fault_host = (unsigned *)(s->pinned + slots);
  for (int i = 0; i < MTW_CUDA_STAGING_SLOTS && e == cudaSuccess; i++)
    e = cudaEventCreateWithFlags(&s->slot_free[i],
                                 cudaEventDisableTiming | cudaEventBlockingSync);
  return e;
}

static mt_status cuda_stream_create(mtw_backend *b, int device, const atomic_int *stop,
                                    mtw_stream **out) {
  mtw_cuda_backend *cb = (mtw_cuda_backend *)b;
  mtw_stream *s = calloc(1, sizeof *s);
  if (!s) return mti_error_oom("stream", sizeof *s);
  s->backend = cb;
  s->device = device;
  s->stop = stop;
  mt_status status = enter(s, "stream");
  cudaError_t e = cudaSuccess;
  if (status == MT_OK) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
  if (status == MT_OK && e == cudaSuccess) e = make_staging(s);
  if (status == MT_OK && e != cudaSuccess) status = mtw_cuda_error(cb, "stream", e);
  if (status == MT_OK) {
    s->fault = mtw_cuda_pool_alloc(cb->pools[device], s, sizeof(unsigned), MTW_CUDA_STORAGE);
    if (!s->fault) status = mt_last_status();
    else if ((e = cudaMemsetAsync(s->fault, 0, sizeof(unsigned), s->stream)) != cudaSuccess)
      status = mtw_cuda_error(cb, "stream", e);
  }
  if (status != MT_OK) {
    if (s->stream) cudaStreamSynchronize(s->stream);
    stream_teardown(s);
    return status;
  }
  s->ctx.stream = s->stream;
  s->ctx.device = device;
  s->ctx.multiprocessors = cb->props[device].multiprocessors;
  s->ctx.fault = s->fault;
  s->ctx.scratch = stream_scratch;
  s->ctx.owner = s;
  *out = s;
  return MT_OK;
}

static void cuda_stream_destroy(mtw_stream *s) {
  cudaSetDevice(s->device);
  cudaStreamSynchronize(s->stream);
  stream_teardown(s);
}

/* ------------------------------------------------------------ memory */

static void *cuda_alloc(mtw_stream *s, size_t nbytes) {
  if (enter(s, "alloc") != MT_OK) return NULL;
  return mtw_cuda_pool_alloc(s->backend->pools[s->device], s, nbytes, MTW_CUDA_STORAGE);
}

static void cuda_release(mtw_backend *b, int device, void *ptr, size_t nbytes) {
  (void)nbytes;
  mtw_cuda_pool_release(((mtw_cuda_backend *)b)->pools[device], ptr);
}

static const void *cuda_host_address(mtw_backend *b, const void *ptr) {
  (void)b, (void)ptr;
  return NULL;
}

/* ------------------------------------------------------------ transfers */

static char *slot_data(mtw_stream *s, int slot) {
  return s->pinned + (size_t)slot * MTW_CUDA_STAGING_SLOT;
}

/* Copies src into the next pinned slot (once its last copy is done) and
 * enqueues the copy from there, so the caller's buffer is free on return. */
static mt_status cuda_upload(mtw_stream *s, void *dst, const void *src, size_t nbytes) {
  mt_status status = enter(s, "upload");
  for (size_t off = 0; status == MT_OK && off < nbytes; off += MTW_CUDA_STAGING_SLOT) {
    size_t n = nbytes - off < MTW_CUDA_STAGING_SLOT ? nbytes - off : MTW_CUDA_STAGING_SLOT;
    int slot = s->next_slot;
    s->next_slot = (slot + 1) % MTW_CUDA_STAGING_SLOTS;
    cudaError_t e = cudaEventSynchronize(s->slot_free[slot]);
    if (e == cudaSuccess) {
      memcpy(slot_data(s, slot), (const char *)src + off, n);
      e = cudaMemcpyAsync((char *)dst + off, slot_data(s, slot), n, cudaMemcpyHostToDevice,
                          s->stream);
    }
    if (e == cudaSuccess) e = cudaEventRecord(s->slot_free[slot], s->stream);
    if (e != cudaSuccess) status = mtw_cuda_error(s->backend, "upload", e);
  }
  return status;
}

/* Enqueues the copy of piece k of a download into its slot. */
static cudaError_t download_issue(mtw_stream *s, int base, size_t k, const char *src,
                                  size_t nbytes) {
  int slot = (int)((base + k) % MTW_CUDA_STAGING_SLOTS);
  size_t off = k * MTW_CUDA_STAGING_SLOT;
  size_t n = nbytes - off < MTW_CUDA_STAGING_SLOT ? nbytes - off : MTW_CUDA_STAGING_SLOT;
  cudaError_t e = cudaEventSynchronize(s->slot_free[slot]);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(slot_data(s, slot), src + off, n, cudaMemcpyDeviceToHost, s->stream);
  if (e == cudaSuccess) e = cudaEventRecord(s->slot_free[slot], s->stream);
  return e;
}

/* Pieces of a slot each: up to all slots in flight, drained in order, each
 * drained slot taking the next piece while the host copies the others. */
static mt_status cuda_download(mtw_stream *s, void *dst, const void *src, size_t nbytes) {
  mt_status status = enter(s, "download");
  if (status != MT_OK) return status;
  size_t pieces = (nbytes + MTW_CUDA_STAGING_SLOT - 1) / MTW_CUDA_STAGING_SLOT, issued = 0;
  int base = s->next_slot;
  cudaError_t e = cudaSuccess;
  for (size_t k = 0; k < pieces && e == cudaSuccess; k++) {
    while (e == cudaSuccess && issued < pieces && issued < k + MTW_CUDA_STAGING_SLOTS)
      e = download_issue(s, base, issued++, src, nbytes);
    int slot = (int)((base + k) % MTW_CUDA_STAGING_SLOTS);
    if (e == cudaSuccess) e = cudaEventSynchronize(s->slot_free[slot]);
    if (e == cudaSuccess) {
      size_t off = k * MTW_CUDA_STAGING_SLOT;
      size_t n = nbytes - off < MTW_CUDA_STAGING_SLOT ? nbytes - off : MTW_CUDA_STAGING_SLOT;
      memcpy((char *)dst + off, slot_data(s, slot), n);
    }
  }
  s->next_slot = (int)((base + pieces) % MTW_CUDA_STAGING_SLOTS);
  return e == cudaSuccess ? MT_OK : mtw_cuda_error(s->backend, "download", e);
}

/* ------------------------------------------------------------ running */

static mt_status cuda_run(mtw_stream *s, mti_op op, const mti_view *in, int n,
                          const mti_attrs *at, const mti_view *out) {
  const mti_op_info *info = mti_op_get((int)op);
  char fn[64];
  snprintf(fn, sizeof fn, "mt_%s", info ? info->name : "op");
  mt_status status = enter(s, fn);
  if (status != MT_OK) return status;
  s->ctx.device = s->device;
  if (info && info->kind == MTI_KIND_MATMUL && mtw_cuda_blas_serves(out[0].dtype))
    status = mtw_cuda_blas_matmul(s, &in[0], &in[1], at, &out[0]);
  else
    status = mtw_cuda_run_kernel(&s->ctx, op, in, n, at, out);
  /* the op's regions back to the cache: reusable at once by this stream,
   * and freed under pressure instead of living as long as the session */
  mtw_cuda_region_free(s, &s->scratch);
  mtw_cuda_region_free(s, &s->staging);
  if (status != MT_OK) {
    /* a failed launch may have been a poisoned context: look once. A busy
     * stream answers cudaErrorNotReady, which the runtime also keeps as the
     * thread's last error: cleared, or the next op's launch check
     * (cudaGetLastError) would take it for its own failure. */
    cudaError_t e = cudaStreamQuery(s->stream);
    if (is_sticky(e)) mark_lost(s->backend, fn, e);
    else cudaGetLastError();
  }
  return status;
}

/* A kernel's fault word as the session error it stands for. */
static mt_status fault_error(unsigned fault) {
  const mti_op_info *info = mti_op_get((int)(fault >> 8));
  const char *name = info ? info->name : "op";
  if ((fault & 0xffu) == MTW_CUDA_FAULT_INDEX_RANGE)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "mt_%s: index: an entry is out of range for the dim it indexes", name);
  if ((fault & 0xffu) == MTW_CUDA_FAULT_ZERO_DIVISOR) /* the cpu's words (elementwise.c) */
    return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_%s: b: integer division by zero", name);
  if ((fault & 0xffu) == MTW_CUDA_FAULT_INVALID_PROBS)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "mt_%s: probs: a row has a negative, infinite or NaN entry, sums to 0, or "
                     "(without replacement) has fewer non-zero entries than num_samples", name);
  return mti_error(MT_ERR_INTERNAL, "mt_%s: the GPU kernel reported fault %u", name,
                   fault & 0xffu);
}

/* Reads and clears the fault word within the same wait for the stream. */
static mt_status cuda_synchronize(mtw_stream *s) {
  mt_status status = enter(s, "sync");
  if (status != MT_OK) return status;
  cudaError_t e = cudaMemcpyAsync(s->fault_host, s->fault, sizeof(unsigned),
                                  cudaMemcpyDeviceToHost, s->stream);
  if (e == cudaSuccess) e = cudaMemsetAsync(s->fault, 0, sizeof(unsigned), s->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s->stream);
  if (e != cudaSuccess) return mtw_cuda_error(s->backend, "sync", e);
  unsigned fault = *s->fault_host;
  *s->fault_host = 0;
  return fault ? fault_error(fault) : MT_OK;
}

/* ------------------------------------------------------------ backend */

static void cuda_destroy(mtw_backend *b) {
  mtw_cuda_backend *cb = (mtw_cuda_backend *)b;
  for (int i = 0; i < cb->count && cb->pools; i++) mtw_cuda_pool_destroy(cb->pools[i]);
  free(cb->pools);
  free(cb->props);
  free(cb);
}

static const mtw_backend_ops cuda_ops = {
    cuda_device_count, cuda_device_props, cuda_stream_create, cuda_stream_destroy,
    cuda_alloc,        cuda_release,      cuda_host_address,  cuda_upload,
    cuda_download,     cuda_run,          cuda_synchronize,   cuda_lost,
    cuda_destroy,
};

/* Makes the host sleep, not spin, while it waits for device i (stream and
 * event synchronization): a waiting session would otherwise keep a core
 * busy. A failure costs only that, so it is logged and the worker goes on. */
static void wait_by_blocking(int i) {
  cudaError_t e = cudaSetDevice(i);
  if (e == cudaSuccess) e = cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync);
  if (e == cudaSuccess) return;
  cudaGetLastError();
  mtw_log(MTW_LOG_WARN, "cuda:%d: waits spin a core (cudaDeviceScheduleBlockingSync: %s)", i,
          cudaGetErrorName(e));
}

/* Device i's properties, total_memory capped by max_memory (0: none). */
static mt_status read_props(int i, uint64_t max_memory, mtw_device_props *out) {
  struct cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, i);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return mti_error(MT_ERR_DEVICE, "--backend cuda: device %d: %s", i, cudaGetErrorString(e));
  }
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%.*s", (int)sizeof out->name - 1, p.name);
  out->total_memory = (int64_t)p.totalGlobalMem;
  if (max_memory && max_memory < (uint64_t)out->total_memory)
    out->total_memory = (int64_t)max_memory;
  out->major = p.major;
  out->minor = p.minor;
  out->multiprocessors = p.multiProcessorCount;
  return MT_OK;
}

mt_status mtw_backend_cuda_open(uint64_t max_memory, mtw_backend **out) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count < 1) {
    cudaGetLastError();
    return mti_error(MT_ERR_DEVICE, "--backend cuda: no CUDA device is visible (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
  }
  mtw_cuda_backend *b = calloc(1, sizeof *b);
  if (!b) return mti_error_oom("backend", sizeof *b);
  b->base.ops = &cuda_ops;
  b->base.name = "cuda";
  b->count = count;
  atomic_init(&b->lost, 0);
  b->props = calloc((size_t)count, sizeof *b->props);
  b->pools = calloc((size_t)count, sizeof *b->pools);
  mt_status status = b->props && b->pools ? MT_OK : mti_error_oom("backend", sizeof *b->props);
  for (int i = 0; i < count && status == MT_OK; i++) {
    status = read_props(i, max_memory, &b->props[i]);
    if (status == MT_OK) wait_by_blocking(i);
    if (status == MT_OK && !(b->pools[i] = mtw_cuda_pool_new(i, b->props[i].total_memory)))
      status = mti_error_oom("backend", sizeof *b);
  }
  if (status != MT_OK) {
    cuda_destroy(&b->base);
    return status;
  }
  *out = &b->base;
  return MT_OK;
}
