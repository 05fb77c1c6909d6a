/*
 * test_modal_faults.c - the worker dies or hangs under the client.
 *
 * A killed worker turns into MT_ERR_UNAVAILABLE (a hung one into
 * MT_ERR_TIMEOUT) within MODALTENSOR_TIMEOUT: a call may fail, but never
 * hangs. Tensors of the lost session then report that they were lost, while
 * new tensors work as soon as a worker answers again (a new one at the same
 * address, or the local worker, which the library starts again itself).
 * Also: a worker out of memory (a deferred error; the session goes on) and
 * a session the worker ends after its idle timeout.
 * The bounds checked are the deadlines the library promises, with room for
 * slow (sanitizer) builds; they are not performance figures.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modal_harness.h"

#define TIMEOUT_S 5
#define SLACK_MS 10000 /* beyond the library's deadline: process and sanitizer overheads */
#define WORKER_COMM "modaltensor-wor"

static mh_worker worker;

/* A chain of big matmuls recorded on modal: seconds of work for the
 * worker once a sync sends it. */
static mt_tensor *big_graph(int layers) {
  const int64_t shape[2] = {1024, 1024};
  mt_tensor *x = MH_MADE(mt_randn(2, shape, MT_FLOAT32, MH_MODAL, 1));
  mt_tensor *w = MH_MADE(mt_randn(2, shape, MT_FLOAT32, MH_MODAL, 2));
  for (int i = 0; i < layers; i++) {
    mt_tensor *y = MH_MADE(mt_matmul(x, w));
    mt_tensor_free(x);
    x = MH_MADE(mt_tanh(y)); /* keeps the values finite */
    mt_tensor_free(y);
  }
  mt_tensor_free(w);
  return x;
}

typedef struct delayed_signal {
  pid_t pid;
  int sig;
  int after_ms;
  pthread_t thread;
} delayed_signal;

static void *send_later(void *arg) {
  delayed_signal *d = arg;
  mh_sleep_ms(d->after_ms);
  kill(d->pid, d->sig);
  return NULL;
}

static void signal_later(delayed_signal *d, pid_t pid, int sig, int after_ms) {
  d->pid = pid;
  d->sig = sig;
  d->after_ms = after_ms;
  ck_assert_int_eq(pthread_create(&d->thread, NULL, send_later, d), 0);
}

/* Port of a "127.0.0.1:PORT" address. */
/* Stops pid and waits until the kernel reports it stopped: kill() returns
 * before the signal takes effect, and a worker thread may still answer. */
static void stop_process(pid_t pid) {
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  char path[64], stat[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int64_t until = mh_now_ms() + 5000;
  for (;;) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f) fclose(f);
    stat[n] = '\0';
    const char *state = strrchr(stat, ')');
    if (state && state[1] == ' ' && (state[2] == 'T' || state[2] == 't')) return;
    ck_assert_msg(mh_now_ms() < until, "worker %d did not stop", (int)pid);
    mh_sleep_ms(5);
  }
}

static const char *port_of(const char *addr) { return strrchr(addr, ':') + 1; }

/* Reaps the killed worker (it is this process's child). */
static void reap(mh_worker *w) {
  int status;
  ck_assert_int_eq(waitpid(w->proc.pid, &status, 0), w->proc.pid);
  ck_assert(WIFSIGNALED(status));
  w->proc.pid = 0;
}

START_TEST(test_worker_killed_during_a_graph) {
  mh_setenv("MODALTENSOR_TIMEOUT", "5");
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "2");
  mh_worker_use(&worker);
  char addr[512], listen[64];
  snprintf(addr, sizeof addr, "%s", worker.proc.addr);
  snprintf(listen, sizeof listen, "127.0.0.1:%s", port_of(addr));

  float small[4] = {1, 2, 3, 4}, got[4];
  const int64_t four = 4;
  mt_tensor *old = MH_MADE(mt_from_data(small, 1, &four, MT_FLOAT32, MH_MODAL));
  delayed_signal kill9;
  signal_later(&kill9, worker.proc.pid, SIGKILL, 500);
  /* Big graphs one after another until the kill lands in one (a fast
   * machine may finish the first before it). */
  mt_tensor *result = NULL;
  mt_status st = MT_OK;
  for (int round = 0; round < 50 && st == MT_OK; round++) {
    mt_tensor_free(result);
    result = big_graph(40);
    int64_t start = mh_now_ms();
    st = mt_synchronize(MH_MODAL);
    int64_t took = mh_now_ms() - start;
    ck_assert_msg(took < TIMEOUT_S * 1000 + SLACK_MS, "mt_synchronize took %lld ms",
                  (long long)took);
  }
  pthread_join(kill9.thread, NULL);
  ck_assert_msg(st == MT_ERR_UNAVAILABLE || st == MT_ERR_TIMEOUT,
                "mt_synchronize gave %s (%s), expected MT_ERR_UNAVAILABLE or MT_ERR_TIMEOUT",
                mt_status_name(st), mt_last_error());
  ck_assert_msg(strstr(mt_last_error(), addr), "the message \"%s\" does not name %s",
                mt_last_error(), addr);
  reap(&worker);

  /* The session's tensors are lost, whatever comes next. */
  MH_EXPECT(mt_to_host(old, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  /* No worker: new tensors fail within the connect timeout. */
  int64_t start = mh_now_ms();
  MH_EXPECT_NULL(mt_from_data(small, 1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, addr,
                 NULL);
  ck_assert_int_lt(mh_now_ms() - start, 2000 + SLACK_MS);

  /* A new worker at the same address: new tensors work, old ones stay lost. */
  mh_worker_discard(&worker);
  const char *const args[] = {"--listen", listen, NULL};
  mh_worker_start(&worker, args, NULL, NULL);
  ck_assert_str_eq(worker.proc.addr, addr);
  mt_tensor *fresh = MH_MADE(mt_from_data(small, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *twice = MH_MADE(mt_add(fresh, fresh));
  MH_OK(mt_to_host(twice, got, sizeof got));
  ck_assert(got[0] == 2.0f && got[3] == 8.0f);
  MH_EXPECT(mt_to_host(old, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  float corner;
  mt_tensor *one = MH_MADE(mt_slice(result, 0, 0, 1, 1));
  mt_tensor *first = MH_MADE(mt_slice(one, 1, 0, 1, 1));
  MH_EXPECT(mt_to_host(first, &corner, sizeof corner), MT_ERR_UNAVAILABLE, "lost", NULL);
  MH_EXPECT_NULL(mt_add(old, fresh), MT_ERR_UNAVAILABLE, "lost", NULL);
  mt_tensor_free(first);
  mt_tensor_free(one);
  mt_tensor_free(twice);
  mt_tensor_free(fresh);
  mt_tensor_free(result);
  mt_tensor_free(old);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
  mh_worker_finish(&worker);
}
END_TEST

/* Killed while a large upload streams in. */
START_TEST(test_worker_killed_during_an_upload) {
  mh_setenv("MODALTENSOR_TIMEOUT", "5");
  mh_worker_use(&worker);
  const int64_t n = 64 << 20;      /* 256 MiB of float32 */
  float *big = calloc((size_t)n, sizeof *big);
  ck_assert_ptr_nonnull(big);
  delayed_signal kill9;
  signal_later(&kill9, worker.proc.pid, SIGKILL, 100);
  /* Upload until the kill lands (a fast machine may finish one first). */
  mt_status st = MT_OK;
  for (int i = 0; i < 20 && st == MT_OK; i++) {
    mt_clear_error();
    int64_t start = mh_now_ms();
    mt_tensor *t = mt_from_data(big, 1, &n, MT_FLOAT32, MH_MODAL);
    st = t ? mt_synchronize(MH_MODAL) : mt_last_status();
    int64_t took = mh_now_ms() - start;
    ck_assert_msg(took < TIMEOUT_S * 1000 + SLACK_MS, "an upload took %lld ms", (long long)took);
    mt_tensor_free(t);
  }
  pthread_join(kill9.thread, NULL);
  ck_assert_msg(st == MT_ERR_UNAVAILABLE || st == MT_ERR_TIMEOUT, "gave %s (%s)",
                mt_status_name(st), mt_last_error());
  free(big);
  reap(&worker);
  mh_worker_discard(&worker);
}
END_TEST

START_TEST(test_hung_worker_times_out) {
  mh_setenv("MODALTENSOR_TIMEOUT", "2");
  mh_worker_use(&worker);
  float v[4] = {1, 2, 3, 4}, got[4];
  const int64_t four = 4;
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL)); /* the session is open */
  stop_process(worker.proc.pid);
  mt_tensor *b = MH_MADE(mt_add(a, a));
  int64_t start = mh_now_ms();
  MH_EXPECT(mt_to_host(b, got, sizeof got), MT_ERR_TIMEOUT, worker.proc.addr,
            "MODALTENSOR_TIMEOUT");
  int64_t took = mh_now_ms() - start;
  ck_assert_msg(took < 2000 + SLACK_MS, "timed out after %lld ms, expected ~2000",
                (long long)took);
  /* The session gave up: its tensors are lost. */
  MH_EXPECT(mt_to_host(a, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  /* Once the worker runs again, a new session works. */
  ck_assert_int_eq(kill(worker.proc.pid, SIGCONT), 0);
  mt_tensor *c = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_to_host(c, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  mt_tensor_free(c);
  mt_tensor_free(b);
  mt_tensor_free(a);
  mh_worker_finish(&worker);
}
END_TEST

/* A stopped worker never answers a sync either; the deadline ends it. */
START_TEST(test_hung_worker_sync_times_out) {
  mh_setenv("MODALTENSOR_TIMEOUT", "2");
  mh_worker_use(&worker);
  /* A session exists once a tensor was made (a sync before that has
   * nothing to wait for and asks the worker nothing). */
  mt_tensor *a = MH_MADE(mt_zeros(1, (const int64_t[]){4}, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  stop_process(worker.proc.pid);
  /* Work sent since the last sync: this sync waits for the worker. */
  mt_tensor *b = MH_MADE(mt_mul(a, a));
  int64_t start = mh_now_ms();
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_TIMEOUT, "mt_synchronize", NULL);
  ck_assert_int_lt(mh_now_ms() - start, 2000 + SLACK_MS);
  mt_tensor_free(b);
  mt_tensor_free(a);
  kill(worker.proc.pid, SIGKILL);
  reap(&worker);
  mh_worker_discard(&worker);
}
END_TEST

/* The local worker (MODALTENSOR_WORKER unset) is started again after it
 * was killed: the first call that meets the dead session reports it, the
 * next ones run on a new worker. */
START_TEST(test_local_worker_respawns) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  mh_setenv("MODALTENSOR_TIMEOUT", "5");
  float v[4] = {1, 2, 3, 4}, got[4];
  const int64_t four = 4;
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_to_host(a, got, sizeof got));
  pid_t first = mh_find_child(WORKER_COMM);
  ck_assert_int_gt(first, 0);
  ck_assert_int_eq(kill(first, SIGKILL), 0);
  /* Wait until it is dead (a zombie): the library reaps it. */
  int64_t until = mh_now_ms() + 30000;
  while (mh_find_child(WORKER_COMM) == first) {
    ck_assert(mh_now_ms() < until);
    mh_sleep_ms(10);
  }
  /* A read always asks the worker (a sync with nothing sent would not). */
  MH_EXPECT(mt_to_host(a, got, sizeof got), MT_ERR_UNAVAILABLE, NULL, NULL);
  mt_tensor *b = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *c = MH_MADE(mt_mul(b, b));
  MH_OK(mt_to_host(c, got, sizeof got));
  ck_assert(got[3] == 16.0f);
  pid_t second = mh_find_child(WORKER_COMM);
  ck_assert_int_gt(second, 0);
  ck_assert_int_ne(second, first);
  MH_EXPECT(mt_to_host(a, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  mt_tensor_free(c);
  mt_tensor_free(b);
  mt_tensor_free(a);
  mt_shutdown();
  ck_assert_int_eq(mh_find_child(WORKER_COMM), -1);
}
END_TEST

/* Killed between calls (nothing in flight): the next sync point reports
 * the lost session, the one after works on the restarted local worker. */
START_TEST(test_local_worker_killed_while_idle) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  ck_assert_int_eq(mt_modal_is_available(), 1);
  pid_t first = mh_find_child(WORKER_COMM);
  ck_assert_int_gt(first, 0);
  ck_assert_int_eq(kill(first, SIGKILL), 0);
  mh_sleep_ms(100);
  float got[2];
  mt_tensor *a = MH_MADE(mt_ones(1, (const int64_t[]){2}, MT_FLOAT32, MH_MODAL));
  mt_status st = mt_to_host(a, got, sizeof got);
  if (st != MT_OK) { /* the session that a was recorded into is the dead one */
    mh_expect_at(__FILE__, __LINE__, "mt_to_host(a)", st, MT_ERR_UNAVAILABLE, NULL, NULL);
    mt_tensor_free(a);
    a = MH_MADE(mt_ones(1, (const int64_t[]){2}, MT_FLOAT32, MH_MODAL));
    MH_OK(mt_to_host(a, got, sizeof got));
  }
  ck_assert(got[1] == 1.0f);
  mt_tensor_free(a);
  mt_shutdown();
}
END_TEST

/* A worker out of tensor memory fails the upload or op that overflows it;
 * the client hears of it at the next sync (deferred, as every worker-side
 * failure), the session goes on, and memory freed is usable again. */
START_TEST(test_worker_out_of_memory) {
  static const char *const args[] = {"--max-memory", "1M", NULL};
  mh_worker_start(&worker, args, NULL, NULL);
  mh_point_at(&worker);
  const int64_t n = 1 << 20; /* 4 MiB of float32 */
  float *big = calloc((size_t)n, sizeof *big);
  ck_assert_ptr_nonnull(big);
  mt_tensor *t = MH_MADE(mt_from_data(big, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_OUT_OF_MEMORY, "mt_synchronize", NULL);
  float first;
  mt_tensor *head = MH_MADE(mt_slice(t, 0, 0, 1, 1));
  MH_EXPECT(mt_to_host(head, &first, sizeof first), MT_ERR_OUT_OF_MEMORY, NULL, NULL);
  mt_tensor *zeros = MH_MADE(mt_zeros(1, &n, MT_FLOAT32, MH_MODAL)); /* an op's output */
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_OUT_OF_MEMORY, NULL, NULL);
  mt_tensor_free(zeros);
  mt_tensor_free(head);
  mt_tensor_free(t);
  /* Small tensors fit, in the same session. */
  const int64_t four = 4;
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *b = MH_MADE(mt_add(a, a));
  MH_OK(mt_to_host(b, got, sizeof got));
  ck_assert(got[3] == 8.0f);
  mt_tensor_free(b);
  mt_tensor_free(a);
  free(big);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_bytes, 0);
  mh_worker_finish(&worker);
}
END_TEST

/* The worker ends a session that stays silent past its --idle-timeout: the
 * next call that talks to it says so, the session's tensors are lost, and
 * new ones work in a new session. */
START_TEST(test_idle_session_is_ended_by_the_worker) {
  static const char *const args[] = {"--idle-timeout", "1", NULL};
  mh_worker_start(&worker, args, NULL, NULL);
  mh_point_at(&worker);
  float v[4] = {1, 2, 3, 4}, got[4];
  const int64_t four = 4;
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_to_host(a, got, sizeof got));
  mh_wait_sessions(&worker, 0, 30000); /* the worker gave up on it */
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
  mt_tensor *b = MH_MADE(mt_add(a, a)); /* recorded into the ended session */
  mt_clear_error();
  mt_status st = mt_to_host(b, got, sizeof got);
  ck_assert_msg(st == MT_ERR_UNAVAILABLE || st == MT_ERR_TIMEOUT, "gave %s (%s)",
                mt_status_name(st), mt_last_error());
  ck_assert_msg(strstr(mt_last_error(), "idle"), "the message \"%s\" does not say why",
                mt_last_error());
  MH_EXPECT(mt_to_host(a, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", "idle");
  mt_tensor *c = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_to_host(c, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  mt_tensor_free(c);
  mt_tensor_free(b);
  mt_tensor_free(a);
  mh_worker_finish(&worker);
}
END_TEST

static Suite *faults_suite(void) {
  Suite *s = suite_create("modal_faults");
  TCase *tc = tcase_create("faults");
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_worker_killed_during_a_graph);
  tcase_add_test(tc, test_worker_killed_during_an_upload);
  tcase_add_test(tc, test_hung_worker_times_out);
  tcase_add_test(tc, test_hung_worker_sync_times_out);
  tcase_add_test(tc, test_local_worker_respawns);
  tcase_add_test(tc, test_local_worker_killed_while_idle);
  tcase_add_test(tc, test_worker_out_of_memory);
  tcase_add_test(tc, test_idle_session_is_ended_by_the_worker);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(faults_suite()); }
