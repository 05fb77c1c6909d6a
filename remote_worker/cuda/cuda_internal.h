/*
 * cuda_internal.h - what the host-side files of the cuda backend share:
 * the backend and stream structs, the caching allocator (cuda_alloc.c),
 * cuBLAS matmul (cuda_blas.c) and the CUDA error translation
 * (cuda_backend.c).
 */
#ifndef MTW_CUDA_INTERNAL_H
#define MTW_CUDA_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda/cuda_kernels.h"

/* Host staging of uploads and downloads: pinned slots used in turn, so the
 * copies of some slots overlap the host's memcpy into or out of the next.
 * A slot holds one wire chunk (MTI_CHUNK_BYTES). */
#define MTW_CUDA_STAGING_SLOTS 8
#define MTW_CUDA_STAGING_SLOT ((size_t)1 << 20)

/* cuBLAS workspace per stream: what cuBLAS recommends for Hopper, enough
 * for every kernel it picks on Ampere too. */
#define MTW_CUDA_BLAS_WORKSPACE ((size_t)32 << 20)

typedef struct mtw_cuda_pool mtw_cuda_pool; /* one device's block cache */

typedef struct mtw_cuda_backend {
  mtw_backend base;
  int count;
  mtw_device_props *props; /* static properties, total_memory capped */
  mtw_cuda_pool **pools;   /* one per device */
  atomic_int lost;         /* set once a sticky error poisoned a device */
  char lost_why[256];      /* written before lost is set */
} mtw_cuda_backend;

/* A device region of a stream for the op being enqueued (scratch, matmul
 * staging), given back to the cache when the op is (cuda_run). */
typedef struct mtw_cuda_region {
  void *ptr;
  size_t size;
} mtw_cuda_region;

struct mtw_stream {
  mtw_cuda_backend *backend;
  int device;
  cudaStream_t stream;
  const atomic_int *stop; /* the session's call ended (backend.h) */
  unsigned *fault;      /* device fault word (cuda_kernels.h) */
  unsigned *fault_host; /* pinned (in pinned): where synchronize reads it */
  mtw_cuda_ctx ctx;     /* what the kernels see */
  mtw_cuda_region scratch;
  mtw_cuda_region staging;
  cublasHandle_t blas; /* made on the first matmul */
  void *blas_workspace;
  char *pinned; /* MTW_CUDA_STAGING_SLOTS slots, then the fault word's copy */
  cudaEvent_t slot_free[MTW_CUDA_STAGING_SLOTS];
  int next_slot;
};

/* ---- errors (cuda_backend.c) ---- */

/* Sets the thread's error for a failed CUDA call in fn ("mt_add", "upload")
 * and returns its status. Clears a recoverable error from the runtime; a
 * sticky one (the context is poisoned) marks the backend lost. */
mt_status mtw_cuda_error(mtw_cuda_backend *b, const char *fn, cudaError_t err);

/* The same for a cuBLAS status. */
mt_status mtw_cublas_error(mtw_cuda_backend *b, const char *fn, cublasStatus_t st);

/* ---- the caching allocator (cuda_alloc.c) ---- */

/* The block cache of device, whose budget is limit bytes (its
 * total_memory, which --max-memory caps; 0: none). */
mtw_cuda_pool *mtw_cuda_pool_new(int device, int64_t limit);

/* Frees every cached block; the pool's streams are all gone. */
void mtw_cuda_pool_destroy(mtw_cuda_pool *p);

/* What a block is for: session storages (which the session layer charges
 * to the budget before asking) and a stream's fixed buffers, or scratch,
 * which the allocator itself refuses past the budget. */
typedef enum mtw_cuda_use { MTW_CUDA_STORAGE, MTW_CUDA_SCRATCH } mtw_cuda_use;

/* nbytes of device memory for stream s (usable by s at once); NULL with
 * MT_ERR_OUT_OF_MEMORY (or the CUDA error) set. */
void *mtw_cuda_pool_alloc(mtw_cuda_pool *p, mtw_stream *s, size_t nbytes, mtw_cuda_use use);

/* Gives ptr back to the cache; any thread, even after its stream is gone. */
void mtw_cuda_pool_release(mtw_cuda_pool *p, void *ptr);

/* Called by stream_destroy once s has finished its work: blocks s used
 * become free for every stream without waiting. Waits for releases still
 * recording an event on s. */
void mtw_cuda_pool_forget_stream(mtw_cuda_pool *p, const mtw_stream *s);

/* Bytes in live blocks and in all blocks (live and cached). */
void mtw_cuda_pool_usage(mtw_cuda_pool *p, int64_t *used, int64_t *reserved);

/* What a finished stream leaves for the next one on the device, since
 * making and freeing them costs (cudaFreeHost and cublasDestroy wait for
 * the whole device): its pinned staging buffer (MTW_CUDA_STAGING_SLOTS
 * slots and the fault word) and its cuBLAS handle. take gives NULL when
 * none is kept; keep frees what does not fit. */
void *mtw_cuda_pool_take_pinned(mtw_cuda_pool *p);
void mtw_cuda_pool_keep_pinned(mtw_cuda_pool *p, void *buf);
cublasHandle_t mtw_cuda_pool_take_blas(mtw_cuda_pool *p);
void mtw_cuda_pool_keep_blas(mtw_cuda_pool *p, cublasHandle_t h);

/* A region of at least nbytes for the op being enqueued, regrown (the old
 * one back to the cache, which keeps it safe for work still queued) when
 * too small; region_free gives it back once the op is enqueued. */
void *mtw_cuda_region_get(mtw_stream *s, mtw_cuda_region *r, size_t nbytes);
void mtw_cuda_region_free(mtw_stream *s, mtw_cuda_region *r);

/* ---- cuBLAS (cuda_blas.c) ---- */

/* Whether matmul with output dtype dt goes to cuBLAS. */
int mtw_cuda_blas_serves(mt_dtype dt);

/* out = a @ b as mti_cpu_run's matmul; out's dtype is floating. */
mt_status mtw_cuda_blas_matmul(mtw_stream *s, const mti_view *a, const mti_view *b,
                               const mti_attrs *at, const mti_view *out);

/* Destroys the stream's handle and workspace, if any. */
void mtw_cuda_blas_release(mtw_stream *s);

/* Makes sure s->blas is the stream's handle (cuda_conv.c calls cuBLAS
 * itself); errors name fn. */
mt_status mtw_cuda_blas_ready(mtw_stream *s, const char *fn);

#endif
