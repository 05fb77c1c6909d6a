/*
 * test_modal_cache.c - content-addressed uploads through the library: a
 * second run of an upload sends (almost) nothing, with the worker's cache
 * directory or a live storage as the source; a corrupted cache file is
 * dropped and its bytes asked for again; the size limit evicts the least
 * recently used file; a restarted worker serves from the same directory; a
 * worker without a directory still works; a lying Need is a clear error;
 * a repeated step's graph is sent once, then by reference (Invoke); the
 * progress callback sees every transfer it should, in order, and no other.
 * The library's counters (mt_modal_get_stats) are the witnesses; no timing
 * is asserted.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modal_fake_worker.h"
#include "modal_harness.h"

#define MIB (1024 * 1024)

static mh_worker worker;
static char cache_dir[256];

static void make_cache_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(cache_dir, sizeof cache_dir, "%s/mt-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(cache_dir));
}

static void remove_cache_dir(void) {
  DIR *d = opendir(cache_dir);
  if (!d) return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
      unlink(path);
    }
  closedir(d);
  rmdir(cache_dir);
}

static void start_cached(const char *max_bytes) {
  const char *const args[] = {"--cache-dir", cache_dir, "--cache-max-bytes", max_bytes, NULL};
  mh_worker_start(&worker, args, NULL, NULL);
  mh_point_at(&worker);
}

static void setup(void) { make_cache_dir(); }
static void teardown(void) {
  if (worker.proc.pid > 0) mh_worker_finish(&worker);
  remove_cache_dir();
}

/* n float32 values that depend on seed. */
static float *pattern(size_t bytes, unsigned seed) {
  size_t n = bytes / sizeof(float);
  float *v = malloc(bytes);
  for (size_t i = 0; i < n; i++) v[i] = (float)((i * 2654435761u + seed) % 100003u);
  return v;
}

static void file_of(const void *data, size_t len, char *path, size_t cap) {
  uint8_t d[32];
  unsigned n;
  EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
  int k = snprintf(path, cap, "%s/", cache_dir);
  for (int i = 0; i < 32; i++) k += snprintf(path + k, cap - (size_t)k, "%02x", d[i]);
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* The worker writes cache files in the background: waits (up to a minute)
 * until path holds len bytes. */
static void wait_file(const char *path, size_t len) {
  struct stat sb;
  for (int64_t end = mh_now_ms() + 60000; mh_now_ms() < end; mh_sleep_ms(20))
    if (stat(path, &sb) == 0 && (size_t)sb.st_size == len) return;
  ck_abort_msg("no cache file %s of %zu bytes", path, len);
}

/* Uploads the bytes, syncs, checks the values come back, and returns this
 * run's counters. */
static mt_modal_stats upload_run(const float *v, size_t bytes) {
  mt_modal_stats_reset();
  const int64_t n = (int64_t)(bytes / sizeof(float));
  mt_tensor *t = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  mt_modal_stats s;
  MH_OK(mt_modal_get_stats(&s));
  float *back = malloc(bytes);
  MH_OK(mt_to_host(t, back, bytes));
  ck_assert_msg(memcmp(back, v, bytes) == 0, "the values did not come back");
  free(back);
  mt_tensor_free(t);
  return s;
}

/* Ends the session and waits until the worker has freed its tensors, so
 * that only the cache directory can serve a next run. */
static void end_session(void) {
  mt_shutdown();
  mh_wait_sessions(&worker, 0, 60000);
}

START_TEST(test_second_run_sends_under_one_percent) {
  start_cached("1G");
  size_t bytes = 8 * MIB;
  float *v = pattern(bytes, 1);
  mt_modal_stats first = upload_run(v, bytes);
  ck_assert_uint_ge(first.bytes_up, bytes);
  ck_assert_uint_eq(first.uploads_skipped, 0);
  char path[512];
  file_of(v, bytes, path, sizeof path);
  wait_file(path, bytes);
  end_session();
  mt_modal_stats second = upload_run(v, bytes);
  ck_assert_msg(second.bytes_up * 100 < first.bytes_up, "second run sent %llu bytes, first %llu",
                (unsigned long long)second.bytes_up, (unsigned long long)first.bytes_up);
  ck_assert_uint_eq(second.uploads_skipped, 1);
  ck_assert_uint_eq(second.bytes_skipped, bytes);
  ck_assert_uint_eq(second.round_trips, 1); /* the run's one sync: no extra round trip */
  free(v);
}
END_TEST

START_TEST(test_corrupted_file_is_dropped_and_bytes_asked_again) {
  start_cached("1G");
  size_t bytes = 4 * MIB;
  float *v = pattern(bytes, 2);
  upload_run(v, bytes);
  end_session();
  char path[512];
  file_of(v, bytes, path, sizeof path);
  wait_file(path, bytes);
  int fd = open(path, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  const unsigned char orig = ((const unsigned char *)v)[bytes / 2], bad = (unsigned char)~orig;
  ck_assert_int_eq(pwrite(fd, &bad, 1, (off_t)(bytes / 2)), 1);
  close(fd);
  mt_modal_stats again = upload_run(v, bytes); /* the values come back right */
  ck_assert_uint_ge(again.bytes_up, bytes);
  ck_assert_uint_eq(again.uploads_skipped, 0);
  /* the file was replaced by the checked bytes */
  for (int64_t end = mh_now_ms() + 60000; mh_now_ms() < end; mh_sleep_ms(20)) {
    int f = open(path, O_RDONLY);
    unsigned char at = bad;
    int done = f >= 0 && pread(f, &at, 1, (off_t)(bytes / 2)) == 1 && at == orig;
    if (f >= 0) close(f);
    if (done) break;
  }
  float *disk = malloc(bytes);
  fd = open(path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(read(fd, disk, bytes), (ssize_t)bytes);
  close(fd);
  ck_assert_int_eq(memcmp(disk, v, bytes), 0);
  free(disk);
  free(v);
}
END_TEST

START_TEST(test_size_limit_evicts_least_recently_used) {
  start_cached("5M");
  size_t bytes = 2 * MIB;
  float *a = pattern(bytes, 3), *b = pattern(bytes, 4), *c = pattern(bytes, 5);
  char pa[512], pb[512], pc[512];
  file_of(a, bytes, pa, sizeof pa);
  file_of(b, bytes, pb, sizeof pb);
  file_of(c, bytes, pc, sizeof pc);
  upload_run(a, bytes);
  wait_file(pa, bytes);
  upload_run(b, bytes);
  wait_file(pb, bytes);
  mt_modal_stats reuse = upload_run(a, bytes); /* read from the cache: a is now the newest */
  ck_assert_uint_eq(reuse.uploads_skipped, 1);
  upload_run(c, bytes); /* 6 MiB > 5 MiB: b goes */
  wait_file(pc, bytes);
  ck_assert_msg(file_exists(pa), "a was evicted");
  ck_assert_msg(!file_exists(pb), "b, the least recently used, is still there");
  ck_assert_msg(file_exists(pc), "c was not kept");
  free(a);
  free(b);
  free(c);
}
END_TEST

START_TEST(test_restarted_worker_serves_from_the_directory) {
  start_cached("1G");
  size_t bytes = 8 * MIB;
  float *v = pattern(bytes, 6);
  mt_modal_stats first = upload_run(v, bytes);
  mh_worker_finish(&worker);
  start_cached("1G");
  mt_modal_stats second = upload_run(v, bytes);
  ck_assert_msg(second.bytes_up * 100 < first.bytes_up, "after the restart %llu bytes were sent",
                (unsigned long long)second.bytes_up);
  ck_assert_uint_eq(second.uploads_skipped, 1);
  free(v);
}
END_TEST

START_TEST(test_worker_without_cache_dir) {
  mh_worker_use(&worker);
  size_t bytes = 2 * MIB;
  float *v = pattern(bytes, 7);
  const int64_t n = (int64_t)(bytes / sizeof(float));
  mt_tensor *keep = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  /* a live storage serves the same bytes */
  mt_modal_stats live = upload_run(v, bytes);
  ck_assert_uint_eq(live.uploads_skipped, 1);
  /* a strided source is named by its row-major values */
  const int64_t shape[2] = {512, (int64_t)(bytes / sizeof(float) / 512)};
  mt_tensor *cpu = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_CPU));
  mt_tensor *tr = MH_MADE(mt_transpose(cpu, 0, 1));
  mt_tensor *remote = MH_MADE(mt_to(tr, MH_MODAL, MT_FLOAT32, 0));
  float *back = malloc(bytes);
  MH_OK(mt_to_host(remote, back, bytes));
  for (int64_t i = 0; i < shape[1]; i++)
    for (int64_t j = 0; j < shape[0]; j++)
      ck_assert(back[i * shape[0] + j] == v[j * shape[1] + i]);
  free(back);
  mt_tensor *ts[] = {remote, tr, cpu, keep};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mt_tensor_free(ts[i]);
  end_session();
  /* nothing holds the bytes any more: they are sent again */
  mt_modal_stats again = upload_run(v, bytes);
  ck_assert_uint_ge(again.bytes_up, bytes);
  ck_assert_uint_eq(again.uploads_skipped, 0);
  free(v);
}
END_TEST

START_TEST(test_lying_need_is_a_clear_error) {
  char addr[64];
  mh_fake *f = mh_fake_liar_start(addr, sizeof addr);
  ck_assert_ptr_nonnull(f);
  mh_setenv("MODALTENSOR_WORKER", addr);
  size_t bytes = 2 * MIB;
  float *v = pattern(bytes, 8);
  const int64_t n = (int64_t)(bytes / sizeof(float));
  mt_tensor *t = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_REMOTE, "424242", "malformed");
  mt_tensor_free(t);
  mt_shutdown();
  mh_fake_stop(f);
  free(v);
}
END_TEST

/* One step: loss = sum(relu(x @ w + b)) for a new x; returns the loss. */
static double step(const mt_tensor *w, const mt_tensor *b, float fill) {
  float xv[4 * 8];
  for (int i = 0; i < 4 * 8; i++) xv[i] = fill - (float)(i % 5);
  const int64_t xs[2] = {4, 8};
  mt_tensor *x = MH_MADE(mt_from_data(xv, 2, xs, MT_FLOAT32, MH_MODAL));
  mt_tensor *h = MH_MADE(mt_matmul(x, w));
  mt_tensor *hb = MH_MADE(mt_add(h, b));
  mt_tensor *r = MH_MADE(mt_relu(hb));
  mt_tensor *loss = MH_MADE(mt_sum(r, 0, NULL, 0));
  double v;
  MH_OK(mt_item(loss, &v));
  mt_tensor *ts[] = {loss, r, hb, h, x};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mt_tensor_free(ts[i]);
  return v;
}

/* The same on the cpu, for the expected value. */
static double step_cpu(float fill) {
  double loss = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 16; j++) {
      double acc = 0.25;
      for (int k = 0; k < 8; k++) acc += (double)(fill - (float)((i * 8 + k) % 5)) * 0.5;
      loss += acc > 0 ? acc : 0;
    }
  return loss;
}

START_TEST(test_repeated_step_sends_under_ten_percent) {
  mh_worker_use(&worker);
  float wv[8 * 16], bv[16];
  for (int i = 0; i < 8 * 16; i++) wv[i] = 0.5f;
  for (int i = 0; i < 16; i++) bv[i] = 0.25f;
  const int64_t ws[2] = {8, 16}, bs = 16;
  mt_tensor *w = MH_MADE(mt_from_data(wv, 2, ws, MT_FLOAT32, MH_MODAL));
  mt_tensor *b = MH_MADE(mt_from_data(bv, 1, &bs, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  mt_modal_stats_reset();
  ck_assert(step(w, b, 1.0f) == step_cpu(1.0f));
  mt_modal_stats first;
  MH_OK(mt_modal_get_stats(&first));
  ck_assert_uint_gt(first.graph_bytes, 0);
  ck_assert_uint_eq(first.graphs_reused, 0);
  for (int k = 2; k <= 5; k++) {
    mt_modal_stats_reset();
    double got = step(w, b, (float)k);
    ck_assert_msg(got == step_cpu((float)k), "step %d: %g, expected %g", k, got, step_cpu((float)k));
    mt_modal_stats again;
    MH_OK(mt_modal_get_stats(&again));
    ck_assert_uint_eq(again.graphs_reused, 1);
    ck_assert_msg(again.graph_bytes * 10 < first.graph_bytes,
                  "step %d sent %llu graph bytes, the first %llu", k,
                  (unsigned long long)again.graph_bytes, (unsigned long long)first.graph_bytes);
  }
  /* another graph is sent whole */
  mt_modal_stats_reset();
  mt_tensor *y = MH_MADE(mt_mul_scalar(w, 3.0));
  double v;
  mt_tensor *s = MH_MADE(mt_sum(y, 0, NULL, 0));
  MH_OK(mt_item(s, &v));
  ck_assert(v == 8 * 16 * 1.5);
  mt_modal_stats other;
  MH_OK(mt_modal_get_stats(&other));
  ck_assert_uint_eq(other.graphs_reused, 0);
  mt_tensor *ts[] = {s, y, b, w};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mt_tensor_free(ts[i]);
}
END_TEST

/* What mt_modal_set_progress's function was told. */
typedef struct progress_log {
  int calls, starts, ends, out_of_order;
  mt_modal_transfer kind;
  int device;
  uint64_t last_done, total;
} progress_log;

static void log_progress(void *ctx, mt_modal_transfer kind, int device, uint64_t done,
                         uint64_t total) {
  progress_log *l = ctx;
  if (done == 0) {
    l->starts++;
    l->kind = kind;
    l->device = device;
    l->total = total;
  } else if (done < l->last_done || done > total || kind != l->kind || total != l->total) {
    l->out_of_order++;
  }
  if (done == total) l->ends++;
  l->last_done = done;
  l->calls++;
}

START_TEST(test_progress_reports_transfers) {
  mh_worker_start(&worker, NULL, NULL, NULL);
  mh_point_at(&worker);
  progress_log log = {0};
  MH_OK(mt_modal_set_progress(log_progress, &log, MIB));
  size_t bytes = 4 * MIB;
  float *v = pattern(bytes, 7);
  const int64_t n = (int64_t)(bytes / sizeof(float));
  /* a session's first large upload goes by reference; the worker's Need
   * sends the bytes within the sync, and they are reported then */
  mt_tensor *t = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_int_eq(log.starts, 1);
  ck_assert_int_eq(log.ends, 1);
  ck_assert_int_eq(log.out_of_order, 0);
  ck_assert_int_eq(log.kind, MT_MODAL_UPLOAD);
  ck_assert_int_eq(log.device, 0);
  ck_assert_uint_eq(log.total, bytes);
  ck_assert_int_eq(log.calls, 1 + 4); /* the start and one per 1 MiB chunk */
  /* a download of the same size */
  log = (progress_log){0};
  float *back = malloc(bytes);
  MH_OK(mt_to_host(t, back, bytes));
  ck_assert(memcmp(back, v, bytes) == 0);
  ck_assert_int_eq(log.kind, MT_MODAL_DOWNLOAD);
  ck_assert_int_eq(log.starts, 1);
  ck_assert_int_eq(log.ends, 1);
  ck_assert_int_eq(log.out_of_order, 0);
  ck_assert_uint_eq(log.total, bytes);
  /* bytes the worker holds are not sent, so not reported; nor is what is
   * under min_bytes */
  log = (progress_log){0};
  mt_tensor *again = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  const int64_t small = 1024;
  mt_tensor *little = MH_MADE(mt_from_data(v, 1, &small, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_int_eq(log.calls, 0);
  /* min_bytes 0: a strided (transposed) upload is reported as its row-major bytes */
  MH_OK(mt_modal_set_progress(log_progress, &log, 0));
  const int64_t shape[2] = {256, 512};
  mt_tensor *host = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_CPU));
  mt_tensor *tr = MH_MADE(mt_transpose(host, 0, 1));
  mt_tensor *moved = MH_MADE(mt_to(tr, MH_MODAL, MT_FLOAT32, 0));
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_int_eq(log.starts, 1);
  ck_assert_int_eq(log.ends, 1);
  ck_assert_int_eq(log.out_of_order, 0);
  ck_assert_uint_eq(log.total, 256 * 512 * sizeof(float));
  /* switched off */
  MH_OK(mt_modal_set_progress(NULL, NULL, 0));
  log = (progress_log){0};
  MH_OK(mt_to_host(t, back, bytes));
  ck_assert_int_eq(log.calls, 0);
  mt_tensor *ts[] = {t, again, little, host, tr, moved};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mt_tensor_free(ts[i]);
  free(back);
  free(v);
}
END_TEST

static Suite *cache_suite(void) {
  Suite *s = suite_create("modal_cache");
  TCase *tc = tcase_create("cache");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_second_run_sends_under_one_percent);
  tcase_add_test(tc, test_corrupted_file_is_dropped_and_bytes_asked_again);
  tcase_add_test(tc, test_size_limit_evicts_least_recently_used);
  tcase_add_test(tc, test_restarted_worker_serves_from_the_directory);
  tcase_add_test(tc, test_worker_without_cache_dir);
  tcase_add_test(tc, test_lying_need_is_a_clear_error);
  tcase_add_test(tc, test_repeated_step_sends_under_ten_percent);
  tcase_add_test(tc, test_progress_reports_transfers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(cache_suite()); }
