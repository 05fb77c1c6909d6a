/*
 * cuda_alloc.c - the cuda backend's caching allocator: cudaMalloc only when
 * the cache has no fitting block, cudaFree only when the GPU is full.
 *
 * Blocks are rounded (512 B below 1 MiB, 2 MiB above) and kept per device
 * after release. A block belongs to the stream that last used it: that
 * stream may reuse it at once (its work is ordered), another stream first
 * waits on the device for an event recorded on the owner at release
 * (cudaStreamWaitEvent: the host never waits). When a stream is destroyed
 * it has finished its work, so its blocks lose their owner and are free for
 * everyone. One mutex per device guards the lists; cudaMalloc and cudaFree
 * run outside it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "cuda/cuda_internal.h"

#define SMALL_LIMIT ((size_t)1 << 20)
#define SMALL_ROUND ((size_t)512)
#define LARGE_ROUND ((size_t)2 << 20)
#define LIVE_BUCKETS 4096
#define STASH 16 /* finished streams' pinned buffers and handles kept */

typedef struct block {
  void *ptr;
  size_t size;
  const mtw_stream *owner; /* may use it without waiting; NULL: every stream */
  cudaEvent_t done;        /* recorded on owner at release (made on first use) */
  int pending;             /* done holds the owner's work up to the release */
  struct block *prev, *next; /* the free list, or the live bucket */
} block;

struct mtw_cuda_pool {
  int device;
  pthread_mutex_t lock;
  block *free_list;
  block *live[LIVE_BUCKETS];
  int64_t used, reserved;
  void *pinned[STASH];
  int n_pinned;
  cublasHandle_t blas[STASH];
  int n_blas;
};

/* ------------------------------------------------------------- lists */

static void list_push(block **head, block *b) {
  b->prev = NULL;
  b->next = *head;
  if (*head) (*head)->prev = b;
  *head = b;
}

static void list_remove(block **head, block *b) {
  if (b->prev) b->prev->next = b->next;
  else *head = b->next;
  if (b->next) b->next->prev = b->prev;
  b->prev = b->next = NULL;
}

static block **live_bucket(mtw_cuda_pool *p, const void *ptr) {
  uintptr_t k = (uintptr_t)ptr >> 9; /* blocks are at least 512 B apart */
  return &p->live[(k ^ (k >> 12)) % LIVE_BUCKETS];
}

static block *live_find(mtw_cuda_pool *p, const void *ptr) {
  for (block *b = *live_bucket(p, ptr); b; b = b->next)
    if (b->ptr == ptr) return b;
  return NULL;
}

/* ------------------------------------------------------------- pool */

mtw_cuda_pool *mtw_cuda_pool_new(int device) {
  mtw_cuda_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->device = device;
  pthread_mutex_init(&p->lock, NULL);
  return p;
}

/* Frees one block that no stream uses: waits for the work of its last
 * owner, then gives the memory back to CUDA. */
static void block_free(block *b) {
  if (b->pending) cudaEventSynchronize(b->done);
  if (b->done) cudaEventDestroy(b->done);
  cudaFree(b->ptr);
  free(b);
}

void mtw_cuda_pool_destroy(mtw_cuda_pool *p) {
  if (!p) return;
  cudaSetDevice(p->device);
  while (p->free_list) {
    block *b = p->free_list;
    list_remove(&p->free_list, b);
    block_free(b);
  }
  for (int i = 0; i < LIVE_BUCKETS; i++)
    while (p->live[i]) {
      block *b = p->live[i];
      list_remove(&p->live[i], b);
      block_free(b);
    }
  while (p->n_pinned) cudaFreeHost(p->pinned[--p->n_pinned]);
  while (p->n_blas) cublasDestroy(p->blas[--p->n_blas]);
  cudaGetLastError(); /* after a sticky error these fail; nothing to do */
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* Gives every cached block back to CUDA (before a retry of cudaMalloc). */
static void empty_cache(mtw_cuda_pool *p) {
  pthread_mutex_lock(&p->lock);
  block *list = p->free_list;
  p->free_list = NULL;
  for (block *b = list; b; b = b->next) p->reserved -= (int64_t)b->size;
  pthread_mutex_unlock(&p->lock);
  while (list) {
    block *b = list;
    list = b->next;
    block_free(b);
  }
}

static size_t round_size(size_t n) {
  size_t r = n <= SMALL_LIMIT ? SMALL_ROUND : LARGE_ROUND;
  return n > SIZE_MAX - r ? 0 : (n + r - 1) & ~(r - 1);
}

/* Whether s may take cached block b: it is s's own, or its owner is gone,
 * or s can wait for the owner's release event. */
static int usable_by(const block *b, const mtw_stream *s) {
  return !b->owner || b->owner == s || b->pending;
}

/* The smallest cached block of at least size bytes and not much more
 * (a quarter) that s may take, preferring s's own among equals. */
static block *best_fit(mtw_cuda_pool *p, const mtw_stream *s, size_t size) {
  block *best = NULL;
  for (block *b = p->free_list; b; b = b->next) {
    if (b->size < size || b->size - size > size / 4 || !usable_by(b, s)) continue;
    if (!best || b->size < best->size || (b->size == best->size && b->owner == s)) best = b;
  }
  return best;
}

/* Hands a cached block to s, ordering s after its last owner's work. */
static void *take(mtw_cuda_pool *p, mtw_stream *s, block *b) {
  list_remove(&p->free_list, b);
  if (b->owner != s && b->pending && cudaStreamWaitEvent(s->stream, b->done, 0) != cudaSuccess) {
    /* cannot order on the device: wait on the host instead */
    cudaGetLastError();
    cudaEventSynchronize(b->done);
  }
  b->owner = s;
  b->pending = 0;
  list_push(live_bucket(p, b->ptr), b);
  p->used += (int64_t)b->size;
  return b->ptr;
}

static void *out_of_memory(mtw_cuda_pool *p, size_t nbytes) {
  int64_t used, reserved;
  mtw_cuda_pool_usage(p, &used, &reserved);
  mti_error(MT_ERR_OUT_OF_MEMORY,
            "alloc: out of memory on cuda:%d: requested %zu bytes, used %lld, reserved %lld",
            p->device, nbytes, (long long)used, (long long)reserved);
  return NULL;
}

/* cudaMalloc, and once more after emptying the cache when the GPU is full.
 * Any other failure (a poisoned context) is no shortage of memory: it is
 * reported as itself, which marks the backend lost when it is sticky. */
static cudaError_t device_malloc(mtw_cuda_pool *p, size_t size, void **ptr) {
  cudaError_t e = cudaMalloc(ptr, size);
  if (e != cudaErrorMemoryAllocation) return e;
  cudaGetLastError(); /* out of memory is not sticky: clear it */
  empty_cache(p);
  e = cudaMalloc(ptr, size);
  if (e == cudaErrorMemoryAllocation) cudaGetLastError();
  return e;
}

void *mtw_cuda_pool_alloc(mtw_cuda_pool *p, mtw_stream *s, size_t nbytes) {
  size_t size = round_size(nbytes);
  if (!size) return out_of_memory(p, nbytes);
  pthread_mutex_lock(&p->lock);
  block *b = best_fit(p, s, size);
  void *ptr = b ? take(p, s, b) : NULL;
  pthread_mutex_unlock(&p->lock);
  if (ptr) return ptr;

  cudaError_t e = device_malloc(p, size, &ptr);
  if (e == cudaErrorMemoryAllocation) return out_of_memory(p, nbytes);
  if (e != cudaSuccess) {
    mtw_cuda_error(s->backend, "alloc", e);
    return NULL;
  }
  b = calloc(1, sizeof *b);
  if (!b) {
    cudaFree(ptr);
    mti_error_oom("alloc", sizeof *b);
    return NULL;
  }
  b->ptr = ptr;
  b->size = size;
  b->owner = s;
  pthread_mutex_lock(&p->lock);
  list_push(live_bucket(p, ptr), b);
  p->used += (int64_t)size;
  p->reserved += (int64_t)size;
  pthread_mutex_unlock(&p->lock);
  return ptr;
}

/* Marks where the owner's use of b ends, so that another stream can wait
 * for it. When that fails (a poisoned context) only the owner may take the
 * block again until the owner is gone (usable_by). */
static void record_release(mtw_cuda_pool *p, block *b) {
  if (!b->owner) return;
  cudaSetDevice(p->device);
  if (!b->done && cudaEventCreateWithFlags(&b->done, cudaEventDisableTiming) != cudaSuccess) {
    b->done = NULL;
    cudaGetLastError();
    return;
  }
  if (cudaEventRecord(b->done, b->owner->stream) == cudaSuccess) b->pending = 1;
  else cudaGetLastError();
}

void mtw_cuda_pool_release(mtw_cuda_pool *p, void *ptr) {
  pthread_mutex_lock(&p->lock);
  block *b = live_find(p, ptr);
  if (b) {
    list_remove(live_bucket(p, ptr), b);
    p->used -= (int64_t)b->size;
    record_release(p, b);
    list_push(&p->free_list, b);
  }
  pthread_mutex_unlock(&p->lock);
}

void mtw_cuda_pool_forget_stream(mtw_cuda_pool *p, const mtw_stream *s) {
  pthread_mutex_lock(&p->lock);
  for (block *b = p->free_list; b; b = b->next)
    if (b->owner == s) b->owner = NULL, b->pending = 0;
  for (int i = 0; i < LIVE_BUCKETS; i++)
    for (block *b = p->live[i]; b; b = b->next)
      if (b->owner == s) b->owner = NULL, b->pending = 0;
  pthread_mutex_unlock(&p->lock);
}

void mtw_cuda_pool_usage(mtw_cuda_pool *p, int64_t *used, int64_t *reserved) {
  pthread_mutex_lock(&p->lock);
  *used = p->used;
  *reserved = p->reserved;
  pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------- stash */

void *mtw_cuda_pool_take_pinned(mtw_cuda_pool *p) {
  pthread_mutex_lock(&p->lock);
  void *buf = p->n_pinned ? p->pinned[--p->n_pinned] : NULL;
  pthread_mutex_unlock(&p->lock);
  return buf;
}

void mtw_cuda_pool_keep_pinned(mtw_cuda_pool *p, void *buf) {
  pthread_mutex_lock(&p->lock);
  int kept = p->n_pinned < STASH;
  if (kept) p->pinned[p->n_pinned++] = buf;
  pthread_mutex_unlock(&p->lock);
  if (!kept) cudaFreeHost(buf);
}

cublasHandle_t mtw_cuda_pool_take_blas(mtw_cuda_pool *p) {
  pthread_mutex_lock(&p->lock);
  cublasHandle_t h = p->n_blas ? p->blas[--p->n_blas] : NULL;
  pthread_mutex_unlock(&p->lock);
  return h;
}

void mtw_cuda_pool_keep_blas(mtw_cuda_pool *p, cublasHandle_t h) {
  pthread_mutex_lock(&p->lock);
  int kept = p->n_blas < STASH;
  if (kept) p->blas[p->n_blas++] = h;
  pthread_mutex_unlock(&p->lock);
  if (!kept) cublasDestroy(h);
}

/* ------------------------------------------------------------- regions */

void *mtw_cuda_region_get(mtw_stream *s, mtw_cuda_region *r, size_t nbytes) {
  if (r->ptr && nbytes <= r->size) return r->ptr;
  mtw_cuda_region_free(s, r);
  r->ptr = mtw_cuda_pool_alloc(s->backend->pools[s->device], s, nbytes ? nbytes : 1);
  r->size = r->ptr ? nbytes : 0;
  return r->ptr;
}

void mtw_cuda_region_free(mtw_stream *s, mtw_cuda_region *r) {
  if (r->ptr) mtw_cuda_pool_release(s->backend->pools[s->device], r->ptr);
  r->ptr = NULL;
  r->size = 0;
}
