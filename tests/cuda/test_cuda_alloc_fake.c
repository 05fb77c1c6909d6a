/*
 * test_cuda_alloc_fake.c - the cuda backend's caching allocator
 * (remote_worker/cuda/cuda_alloc.c) on a fake device layer, without a GPU.
 *
 * The allocator file is included whole and linked against the fakes below
 * instead of the CUDA runtime: cudaMalloc hands out addresses of a fake
 * device of fake_capacity bytes (nothing is dereferenced), events remember
 * their stream, and every call counts itself and checks that the pool's
 * lock is not held (CUDA calls stay outside it). What this cannot show: the
 * real runtime's timing and errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_alloc.c"

/* ---- the fake device layer ---- */

static int64_t fake_capacity, fake_in_use;
static uintptr_t fake_next = 0x10000000u;
static cudaError_t fake_last_error = cudaSuccess;
static cudaError_t fake_free_result = cudaSuccess; /* what cudaFree answers */
static int n_malloc, n_free, n_record, n_device_wait, n_host_wait, n_locked_calls;
static unsigned last_event_flags;
static mtw_cuda_pool *watched; /* the pool whose lock must be free in every call */

typedef struct fake_event {
  cudaStream_t stream;
} fake_event;

/* Counts a CUDA call made while the watched pool's lock is held. */
static void check_unlocked(void) {
  if (!watched) return;
  if (pthread_mutex_trylock(&watched->lock) == EBUSY) n_locked_calls++;
  else pthread_mutex_unlock(&watched->lock);
}

static cudaError_t fail(cudaError_t e) {
  fake_last_error = e;
  return e;
}

/* The fake device's allocations, for cudaFree to give their bytes back. */
enum { MAX_FAKE_BLOCKS = 64 };
static struct {
  uintptr_t ptr;
  size_t size;
} fake_blocks[MAX_FAKE_BLOCKS];

cudaError_t cudaMalloc(void **ptr, size_t size) {
  check_unlocked();
  if (fake_in_use + (int64_t)size > fake_capacity) return fail(cudaErrorMemoryAllocation);
  int slot = 0;
  while (slot < MAX_FAKE_BLOCKS && fake_blocks[slot].ptr) slot++;
  if (slot == MAX_FAKE_BLOCKS) return fail(cudaErrorMemoryAllocation);
  n_malloc++;
  fake_in_use += (int64_t)size;
  fake_blocks[slot].ptr = fake_next;
  fake_blocks[slot].size = size;
  *ptr = (void *)fake_next;
  fake_next += size;
  return cudaSuccess;
}

/* Frees the memory even when told to answer an error (fake_free_result),
 * as a failing cleanup call may. */
cudaError_t cudaFree(void *ptr) {
  check_unlocked();
  n_free++;
  for (int i = 0; i < MAX_FAKE_BLOCKS; i++)
    if (fake_blocks[i].ptr == (uintptr_t)ptr) {
      fake_in_use -= (int64_t)fake_blocks[i].size;
      fake_blocks[i].ptr = 0;
    }
  return fake_free_result == cudaSuccess ? cudaSuccess : fail(fake_free_result);
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = fake_last_error;
  fake_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaSetDevice(int device) {
  (void)device;
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  check_unlocked();
  last_event_flags = flags;
  *event = (cudaEvent_t)calloc(1, sizeof(fake_event));
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  free(event);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  check_unlocked();
  n_record++;
  ((fake_event *)event)->stream = stream;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  (void)event;
  check_unlocked();
  n_host_wait++;
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  (void)stream, (void)event, (void)flags;
  check_unlocked();
  n_device_wait++;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
  (void)ptr;
  return cudaSuccess;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  (void)handle;
  return CUBLAS_STATUS_SUCCESS;
}

/* cuda_backend.c's error translation, reduced to what alloc reports. */
mt_status mtw_cuda_error(mtw_cuda_backend *b, const char *fn, cudaError_t err) {
  (void)b;
  return mti_error(MT_ERR_INTERNAL, "%s: cuda: error %d", fn, (int)err);
}

/* ---- checks ---- */

static int failures;

#define EXPECT(cond, ...)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      failures++;                                                                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      printf(__VA_ARGS__);                                                                 \
      printf("\n");                                                                        \
    }                                                                                      \
  } while (0)

#define MIB ((size_t)1 << 20)

/* A fake backend with one device of capacity bytes and budget limit, and
 * two streams on it. */
typedef struct rig {
  mtw_cuda_backend backend;
  mtw_cuda_pool *pool;
  mtw_stream a, b;
} rig;

static void rig_init(rig *r, int64_t capacity, int64_t limit) {
  memset(r, 0, sizeof *r);
  fake_capacity = capacity;
  fake_in_use = 0;
  n_malloc = n_free = n_record = n_device_wait = n_host_wait = n_locked_calls = 0;
  fake_free_result = cudaSuccess;
  r->pool = mtw_cuda_pool_new(0, limit);
  r->backend.pools = &r->pool;
  r->backend.count = 1;
  r->a.backend = r->b.backend = &r->backend;
  r->a.stream = (cudaStream_t)(uintptr_t)0xa;
  r->b.stream = (cudaStream_t)(uintptr_t)0xb;
  watched = r->pool;
}

static void rig_done(rig *r) {
  watched = NULL;
  mtw_cuda_pool_destroy(r->pool);
  memset(fake_blocks, 0, sizeof fake_blocks);
}

/* A stream takes its own released block back at once; events are made to
 * be waited for by sleeping (item 4), and no CUDA call runs under the lock
 * (item 10). */
static void test_same_stream_reuse(void) {
  rig r;
  rig_init(&r, 1 << 30, 0);
  void *x = mtw_cuda_pool_alloc(r.pool, &r.a, 4 * MIB, MTW_CUDA_STORAGE);
  mtw_cuda_pool_release(r.pool, x);
  void *y = mtw_cuda_pool_alloc(r.pool, &r.a, 4 * MIB, MTW_CUDA_STORAGE);
  EXPECT(x == y && n_malloc == 1, "own block reused (mallocs %d)", n_malloc);
  EXPECT(n_device_wait == 0 && n_host_wait == 0, "no wait for own block");
  EXPECT(n_record == 1, "release recorded one event (%d)", n_record);
  EXPECT(last_event_flags & cudaEventBlockingSync, "release events block, not spin");
  EXPECT(n_locked_calls == 0, "%d CUDA calls ran under the pool lock", n_locked_calls);
  mtw_cuda_pool_release(r.pool, y);
  rig_done(&r);
}

/* Another session's freed block is not handed over while memory is
 * plentiful (item 5); under pressure it is, ordered on the device. */
static void test_other_stream_blocks(void) {
  rig r;
  rig_init(&r, 20 * MIB, 0);
  void *x = mtw_cuda_pool_alloc(r.pool, &r.a, 8 * MIB, MTW_CUDA_STORAGE);
  mtw_cuda_pool_release(r.pool, x);
  void *y = mtw_cuda_pool_alloc(r.pool, &r.b, 8 * MIB, MTW_CUDA_STORAGE);
  EXPECT(y && y != x && n_device_wait == 0, "b got new memory, not a's queued block");
  void *z = mtw_cuda_pool_alloc(r.pool, &r.b, 8 * MIB, MTW_CUDA_STORAGE);
  EXPECT(z == x && n_device_wait == 1 && n_host_wait == 0,
         "device full: b takes a's block after a device-side wait (waits %d/%d)", n_device_wait,
         n_host_wait);
  EXPECT(n_locked_calls == 0, "%d CUDA calls ran under the pool lock", n_locked_calls);
  mtw_cuda_pool_release(r.pool, y);
  mtw_cuda_pool_release(r.pool, z);
  rig_done(&r);
}

/* Regions go back to the cache after each op, the out-of-memory retry
 * frees them, scratch is charged to the budget and the cache is trimmed
 * to it (item 2). */
static void test_regions_and_budget(void) {
  rig r;
  rig_init(&r, 64 * MIB, 48 * MIB);
  void *scratch = mtw_cuda_region_get(&r.a, &r.a.scratch, 32 * MIB);
  mtw_cuda_region_free(&r.a, &r.a.scratch);
  int64_t used, reserved;
  mtw_cuda_pool_usage(r.pool, &used, &reserved);
  EXPECT(scratch && used == 0 && reserved == 32 * (int64_t)MIB,
         "a region is cached after its op (used %lld)", (long long)used);
  void *t = mtw_cuda_pool_alloc(r.pool, &r.b, 40 * MIB, MTW_CUDA_STORAGE);
  mtw_cuda_pool_usage(r.pool, &used, &reserved);
  EXPECT(t && n_free == 1 && reserved == 40 * (int64_t)MIB,
         "the cached region was freed for a tensor (frees %d, reserved %lld)", n_free,
         (long long)reserved);
  void *big = mtw_cuda_region_get(&r.a, &r.a.scratch, 16 * MIB);
  EXPECT(!big && mt_last_status() == MT_ERR_OUT_OF_MEMORY && strstr(mt_last_error(), "limit"),
         "scratch past the budget is refused: %s", mt_last_error());
  mtw_cuda_pool_release(r.pool, t);
  rig_done(&r);
}

/* A failed cleanup call leaves no error for the next op to take as its
 * own (item 10). */
static void test_cleanup_errors_cleared(void) {
  rig r;
  rig_init(&r, 16 * MIB, 0);
  void *x = mtw_cuda_pool_alloc(r.pool, &r.a, 12 * MIB, MTW_CUDA_STORAGE);
  mtw_cuda_pool_release(r.pool, x);
  fake_free_result = cudaErrorInvalidValue;
  void *y = mtw_cuda_pool_alloc(r.pool, &r.a, 14 * MIB, MTW_CUDA_STORAGE);
  EXPECT(y && n_free == 1, "the cache was emptied for a larger block");
  EXPECT(fake_last_error == cudaSuccess, "the failed cudaFree left error %d",
         (int)fake_last_error);
  fake_free_result = cudaSuccess;
  mtw_cuda_pool_release(r.pool, y);
  rig_done(&r);
}

int main(void) {
  test_same_stream_reuse();
  test_other_stream_blocks();
  test_regions_and_budget();
  test_cleanup_errors_cleared();
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
