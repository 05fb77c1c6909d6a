/*
 * modal_harness.c - workers, counters and the runner of the client-level
 * remote suites (see modal_harness.h).
 */
#include "modal_harness.h"

#include <dirent.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t mh_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void mh_sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}

void mh_setenv(const char *name, const char *value) {
  ck_assert_msg(setenv(name, value, 1) == 0, "setenv %s failed", name);
}

/* A worker with a token reads its counters with an admin token (only an
 * admin sees the worker's totals), given to it in its environment. */
#define MH_ADMIN_TOKEN "harness-admin-token"

void mh_worker_start(mh_worker *w, const char *const *args, const char *const *env,
                     const char *token) {
  memset(w, 0, sizeof *w);
  const char *with_admin[16];
  size_t n = 0;
  for (; env && env[n]; n++) {
    ck_assert_uint_lt(n, 14);
    with_admin[n] = env[n];
  }
  with_admin[n++] = "MODALTENSOR_WORKER_ADMIN_TOKEN=" MH_ADMIN_TOKEN;
  with_admin[n] = NULL;
  ck_assert_msg(wt_worker_start(&w->proc, args, token ? with_admin : env) == 0,
                "the worker did not start");
  grpc_init(); /* for the Stats channel; the library keeps its own reference */
  w->stats = wc_connect(w->proc.addr, token ? MH_ADMIN_TOKEN : NULL);
  ck_assert_ptr_nonnull(w->stats);
}

void mh_point_at(const mh_worker *w) { mh_setenv("MODALTENSOR_WORKER", w->proc.addr); }

void mh_worker_use(mh_worker *w) {
  mh_worker_start(w, NULL, NULL, NULL);
  mh_point_at(w);
}

static void close_stats(mh_worker *w) {
  wc_channel_free(w->stats);
  w->stats = NULL;
}

void mh_worker_finish(mh_worker *w) {
  mt_shutdown();
  close_stats(w);
  ck_assert_msg(wt_worker_stop(&w->proc) == 0, "the worker did not exit cleanly on SIGTERM");
}

void mh_worker_discard(mh_worker *w) {
  close_stats(w);
  if (w->proc.pid > 0) wt_worker_stop(&w->proc);
}

mh_counters mh_stats(const mh_worker *w) {
  Modaltensor__V1__StatsReply *r = wc_stats(w->stats, 0);
  ck_assert_msg(r != NULL, "the Stats call failed");
  ck_assert_msg(r->total != NULL, "Stats sent no totals");
  const Modaltensor__V1__Counters *t = r->total;
  mh_counters c = {t->graphs,     t->nodes,      t->syncs,    t->bytes_in, t->bytes_out,
                   t->live_tensors, t->live_bytes, t->messages, r->open_sessions};
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return c;
}

mh_counters mh_wait_sessions(const mh_worker *w, uint32_t want, int timeout_ms) {
  int64_t until = mh_now_ms() + timeout_ms;
  for (;;) {
    mh_counters c = mh_stats(w);
    if (c.open_sessions == want) return c;
    ck_assert_msg(mh_now_ms() < until, "the worker has %u open sessions, expected %u",
                  c.open_sessions, want);
    mh_sleep_ms(10);
  }
}

pid_t mh_find_child(const char *comm) {
  DIR *proc = opendir("/proc");
  if (!proc) return -1;
  pid_t found = -1, self = getpid();
  struct dirent *e;
  while (found < 0 && (e = readdir(proc))) {
    char path[300], line[512];
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces, so split at the
     * last ')'. */
    char *open = strchr(line, '('), *close = strrchr(line, ')');
    if (!open || !close || close < open) continue;
    char state;
    int ppid;
    if (sscanf(close + 1, " %c %d", &state, &ppid) != 2 || ppid != self || state == 'Z') continue;
    *close = '\0';
    if (strcmp(open + 1, comm) == 0) found = (pid_t)atoi(e->d_name);
  }
  closedir(proc);
  return found;
}

void mh_expect_at(const char *file, int line, const char *expr, mt_status got, mt_status want,
                  const char *needle1, const char *needle2) {
  const char *msg = mt_last_error();
  ck_assert_msg(got == want, "%s:%d: %s gave %s, expected %s (message: \"%s\")", file, line, expr,
                mt_status_name(got), mt_status_name(want), msg);
  if (want == MT_OK) return;
  ck_assert_msg(mt_last_status() == want, "%s:%d: %s: mt_last_status() is %s, expected %s", file,
                line, expr, mt_status_name(mt_last_status()), mt_status_name(want));
  const char *needles[2] = {needle1, needle2};
  for (int i = 0; i < 2; i++)
    ck_assert_msg(!needles[i] || strstr(msg, needles[i]),
                  "%s:%d: %s: the message \"%s\" does not mention \"%s\"", file, line, expr, msg,
                  needles[i]);
}

mt_tensor *mh_made_at(const char *file, int line, const char *expr, mt_tensor *t) {
  ck_assert_msg(t != NULL, "%s:%d: %s failed: %s (%s)", file, line, expr,
                mt_status_name(mt_last_status()), mt_last_error());
  return t;
}

int mh_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  /* CK_FORK=no in the environment would run every test in this one
   * process, where the library's configuration is read only once. */
  srunner_set_fork_status(sr, CK_FORK);
  if (srunner_fork_status(sr) != CK_FORK) {
    fprintf(stderr, "these suites need Check's fork mode (one process per test)\n");
    srunner_free(sr);
    return EXIT_FAILURE;
  }
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
