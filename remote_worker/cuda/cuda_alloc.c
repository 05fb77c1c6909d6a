/*
 * cuda_alloc.c - the cuda backend's caching allocator: cudaMalloc only when
 * the cache has no fitting block, cudaFree only under memory pressure.
 *
 * Blocks are rounded (512 B below 1 MiB, 2 MiB above) and kept per device
 * after release. A block belongs to the stream that last used it; at
 * release an event is recorded on that stream. A request takes, in order of
 * preference: a cached block of its own stream (its work is ordered: no
 * wait at all), one whose stream is gone, new memory from cudaMalloc, and
 * only when that fails (or the device's budget is reached) another live
 * stream's block, ordered after that stream's event on the device
 * (cudaStreamWaitEvent), so that sessions do not queue behind each other's
 * work while memory is plentiful. Last, the cache is emptied and cudaMalloc
 * tried once more.
 *
 * The budget is the device's total_memory (--max-memory caps it): the
 * cache is trimmed so that live and cached blocks together stay within it,
 * and scratch (MTW_CUDA_SCRATCH: the streams' per-op regions, which no
 * session storage accounts for) is refused when live blocks would pass it.
 *
 * One mutex per device guards the lists and counters, and nothing else:
 * every CUDA call (cudaMalloc, cudaFree, event records and waits) runs
 * outside it, so a call that blocks stalls only its own caller. A failed
 * cleanup call has its (non-sticky) error cleared where it happens, so the
 * next op does not report it as its own.
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
/* Events the host may wait for: it sleeps instead of spinning a core. */
#define BLOCK_EVENT_FLAGS (cudaEventDisableTiming | cudaEventBlockingSync)

typedef struct block {
  void *ptr;
  size_t size;
  const mtw_stream *owner;   /* may use it without waiting; NULL: every stream */
  cudaEvent_t done;          /* recorded on owner at release (made on first use) */
  int pending;               /* done holds the owner's work up to the release */
  struct block *prev, *next; /* the free list, or the live bucket */
} block;

struct mtw_cuda_pool {
  int device;
  int64_t limit; /* the device's budget in bytes; 0: none */
  pthread_mutex_t lock;
  pthread_cond_t recorded; /* a release finished recording its event */
  int recording;           /* releases recording an event outside the lock */
  block *free_list;
  block *live[LIVE_BUCKETS];
  int64_t used, reserved;
  void *pinned[STASH];
  int n_pinned;
  cublasHandle_t blas[STASH];
  int n_blas;
};

/* Clears the thread's last error after a failed call whose failure needs
 * no report (cleanup, or a fallback follows): otherwise the next op's
 * launch check would take it for its own. A sticky error stays whatever
 * is done here, and the next op reports it as what it is. */
static void forget_error(cudaError_t e) {
  if (e != cudaSuccess) cudaGetLastError();
}

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

mtw_cuda_pool *mtw_cuda_pool_new(int device, int64_t limit) {
  mtw_cuda_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->device = device;
  p->limit = limit > 0 ? limit : 0;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->recorded, NULL);
  return p;
}

/* Frees one block that no stream uses: waits for the work of its last
 * owner, then gives the memory back to CUDA. */
static void block_free(block *b) {
  if (b->pending) forget_error(cudaEventSynchronize(b->done));
  if (b->done) forget_error(cudaEventDestroy(b->done));
  forget_error(cudaFree(b->ptr));
  free(b);
}

/* Frees a detached list of blocks (linked by next). */
static void free_blocks(block *list) {
  while (list) {
    block *b = list;
    list = b->next;
    block_free(b);
  }
}

void mtw_cuda_pool_destroy(mtw_cuda_pool *p) {
  if (!p) return;
  forget_error(cudaSetDevice(p->device));
  free_blocks(p->free_list);
  for (int i = 0; i < LIVE_BUCKETS; i++) free_blocks(p->live[i]);
  while (p->n_pinned) forget_error(cudaFreeHost(p->pinned[--p->n_pinned]));
  while (p->n_blas) cublasDestroy(p->blas[--p->n_blas]);
  pthread_cond_destroy(&p->recorded);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* Gives cached blocks back to CUDA until live and cached blocks plus
 * `want` more bytes fit in keep (every one when keep is 0). */
static void trim_cache(mtw_cuda_pool *p, int64_t keep, size_t want) {
  block *victims = NULL;
  pthread_mutex_lock(&p->lock);
  while (p->free_list && (!keep || p->reserved + (int64_t)want > keep)) {
    block *b = p->free_list;
    list_remove(&p->free_list, b);
    p->reserved -= (int64_t)b->size;
    list_push(&victims, b);
  }
  pthread_mutex_unlock(&p->lock);
  free_blocks(victims);
}

static size_t round_size(size_t n) {
  size_t r = n <= SMALL_LIMIT ? SMALL_ROUND : LARGE_ROUND;
  return n > SIZE_MAX - r ? 0 : (n + r - 1) & ~(r - 1);
}

/* How much s would have to wait to take cached block b: 0 (its own, or
 * its owner is gone), 1 (on the device, for its owner's release event), or
 * -1: not at all (the owner's event could not be recorded: only the owner
 * may take it until the owner is gone). */
static int wait_cost(const block *b, const mtw_stream *s) {
  if (!b->owner || b->owner == s) return 0;
  return b->pending ? 1 : -1;
}

/* The cached block s takes for size bytes: the smallest of at least size
 * and not much more (a quarter), among those s can take at no more than
 * max_wait (wait_cost), preferring s's own among equals. */
static block *best_fit(mtw_cuda_pool *p, const mtw_stream *s, size_t size, int max_wait) {
  block *best = NULL;
  for (block *b = p->free_list; b; b = b->next) {
    int cost = wait_cost(b, s);
    if (b->size < size || b->size - size > size / 4 || cost < 0 || cost > max_wait) continue;
    if (!best || b->size < best->size || (b->size == best->size && b->owner == s)) best = b;
  }
  return best;
}

/* Takes a cached block for s (see best_fit), ordering s after its last
 * owner's work when it was another stream's; NULL when none fits. */
static void *take_cached(mtw_cuda_pool *p, mtw_stream *s, size_t size, int max_wait) {
  pthread_mutex_lock(&p->lock);
  block *b = best_fit(p, s, size, max_wait);
  int wait = b && wait_cost(b, s) > 0;
  cudaEvent_t done = b ? b->done : NULL;
  if (b) {
    list_remove(&p->free_list, b);
    b->owner = s;
    b->pending = 0;
    list_push(live_bucket(p, b->ptr), b);
    p->used += (int64_t)b->size;
  }
  pthread_mutex_unlock(&p->lock);
  if (wait && cudaStreamWaitEvent(s->stream, done, 0) != cudaSuccess) {
    cudaGetLastError(); /* cannot order on the device: wait on the host instead */
    forget_error(cudaEventSynchronize(done));
  }
  return b ? b->ptr : NULL;
}

/* New device memory for s, as a live block; NULL with *err set. The cache
 * is trimmed first when the new block would pass the budget. */
static void *take_new(mtw_cuda_pool *p, mtw_stream *s, size_t size, cudaError_t *err) {
  if (p->limit) trim_cache(p, p->limit, size);
  void *ptr = NULL;
  *err = cudaMalloc(&ptr, size);
  if (*err != cudaSuccess) return NULL;
  block *b = calloc(1, sizeof *b);
  if (!b) {
    forget_error(cudaFree(ptr));
    *err = cudaErrorMemoryAllocation;
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

static void *out_of_memory(mtw_cuda_pool *p, size_t nbytes, const char *why) {
  int64_t used, reserved;
  mtw_cuda_pool_usage(p, &used, &reserved);
  mti_error(MT_ERR_OUT_OF_MEMORY,
            "alloc: out of memory on cuda:%d: requested %zu bytes%s, used %lld, reserved %lld",
            p->device, nbytes, why, (long long)used, (long long)reserved);
  return NULL;
}

/* Whether scratch of size bytes would take live blocks past the budget. */
static int scratch_over_budget(mtw_cuda_pool *p, size_t size) {
  if (!p->limit) return 0;
  pthread_mutex_lock(&p->lock);
  int over = p->used + (int64_t)size > p->limit;
  pthread_mutex_unlock(&p->lock);
  return over;
}

/* Memory when the cache had none free for s: new memory, else (the GPU
 * full) another stream's cached block, else new memory once the whole
 * cache is gone. Any failure but a shortage of memory (a poisoned context)
 * is reported as itself, which marks the backend lost when it is sticky. */
static void *alloc_uncached(mtw_cuda_pool *p, mtw_stream *s, size_t size, size_t nbytes) {
  cudaError_t e;
  void *ptr = take_new(p, s, size, &e);
  if (!ptr && e == cudaErrorMemoryAllocation) {
    cudaGetLastError(); /* out of memory is not sticky: clear it */
    ptr = take_cached(p, s, size, 1);
    if (!ptr) {
      trim_cache(p, 0, 0);
      ptr = take_new(p, s, size, &e);
    }
  }
  if (ptr) return ptr;
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return out_of_memory(p, nbytes, "");
  }
  mtw_cuda_error(s->backend, "alloc", e);
  return NULL;
}

void *mtw_cuda_pool_alloc(mtw_cuda_pool *p, mtw_stream *s, size_t nbytes, mtw_cuda_use use) {
  size_t size = round_size(nbytes);
  if (!size) return out_of_memory(p, nbytes, "");
  void *ptr = take_cached(p, s, size, 0);
  if (ptr) return ptr;
  if (use == MTW_CUDA_SCRATCH && scratch_over_budget(p, size))
    return out_of_memory(p, nbytes, " of scratch, past the device's memory limit");
  return alloc_uncached(p, s, size, nbytes);
}

/* Records where owner's use of b ends (outside the lock), so that another
 * stream can wait for it; 1 when recorded. When that fails (a poisoned
 * context) only the owner may take the block again until it is gone. */
static int record_release(mtw_cuda_pool *p, block *b, const mtw_stream *owner) {
  forget_error(cudaSetDevice(p->device));
  if (!b->done) {
    cudaError_t e = cudaEventCreateWithFlags(&b->done, BLOCK_EVENT_FLAGS);
    if (e != cudaSuccess) {
      b->done = NULL;
      cudaGetLastError();
      return 0;
    }
  }
  cudaError_t e = cudaEventRecord(b->done, owner->stream);
  forget_error(e);
  return e == cudaSuccess;
}

void mtw_cuda_pool_release(mtw_cuda_pool *p, void *ptr) {
  pthread_mutex_lock(&p->lock);
  block *b = live_find(p, ptr);
  const mtw_stream *owner = b ? b->owner : NULL;
  if (b) {
    list_remove(live_bucket(p, ptr), b);
    p->used -= (int64_t)b->size;
    p->recording += owner != NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (!b) return;
  int pending = owner ? record_release(p, b, owner) : 0;
  pthread_mutex_lock(&p->lock);
  b->pending = pending;
  list_push(&p->free_list, b);
  if (owner && --p->recording == 0) pthread_cond_broadcast(&p->recorded);
  pthread_mutex_unlock(&p->lock);
}

/* Waits for releases that record on a stream outside the lock, so that
 * none still uses s once s is forgotten (and then destroyed). */
void mtw_cuda_pool_forget_stream(mtw_cuda_pool *p, const mtw_stream *s) {
  pthread_mutex_lock(&p->lock);
  while (p->recording) pthread_cond_wait(&p->recorded, &p->lock);
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
  if (!kept) forget_error(cudaFreeHost(buf));
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

/* Scratch is charged to the device's budget (MTW_CUDA_SCRATCH); regions
 * are given back after every op (mtw_cuda_region_free from the backend's
 * run), so they are cached, reusable at once by the same stream, and freed
 * under pressure like any other block. */
void *mtw_cuda_region_get(mtw_stream *s, mtw_cuda_region *r, size_t nbytes) {
  if (r->ptr && nbytes <= r->size) return r->ptr;
  mtw_cuda_region_free(s, r);
  mtw_cuda_pool *pool = s->backend->pools[s->device];
  r->ptr = mtw_cuda_pool_alloc(pool, s, nbytes ? nbytes : 1, MTW_CUDA_SCRATCH);
  r->size = r->ptr ? nbytes : 0;
  return r->ptr;
}

void mtw_cuda_region_free(mtw_stream *s, mtw_cuda_region *r) {
  if (r->ptr) mtw_cuda_pool_release(s->backend->pools[s->device], r->ptr);
  r->ptr = NULL;
  r->size = 0;
}
