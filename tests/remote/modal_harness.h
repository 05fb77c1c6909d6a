/*
 * modal_harness.h - what the client-level remote suites share: a worker of
 * their own, pointing the library at it, the worker's counters, and the
 * fork-mode runner.
 *
 * The library reads its configuration (MODALTENSOR_*) once per process, up to
 * mt_shutdown. So every test runs in its own process (Check's fork mode,
 * checked by mh_run_suite) and sets the environment at its start, before its
 * first library call.
 */
#ifndef MODAL_HARNESS_H
#define MODAL_HARNESS_H

#include <check.h>
#include <stdint.h>
#include <sys/types.h>

#include "modaltensor.h"
#include "wire_client.h"
#include "worker_proc.h"

#define MH_CPU ((mt_device){MT_DEVICE_CPU, 0})
#define MH_MODAL ((mt_device){MT_DEVICE_MODAL, 0})

/* Per-test Check timeout: generous, for sanitizer builds on 2 cores. */
#define MH_TEST_TIMEOUT_S 300

/* A worker started for one test, and a channel for its Stats. */
typedef struct mh_worker {
  wt_worker proc;
  wc_channel *stats;
} mh_worker;

/* Starts a worker on a free loopback port (args and env as for
 * wt_worker_start; NULL for none) and opens a Stats channel to it carrying
 * token (NULL: none). Fails the test when the worker does not come up. */
void mh_worker_start(mh_worker *w, const char *const *args, const char *const *env,
                     const char *token);

/* Sets MODALTENSOR_WORKER to w's address: call before the test's first
 * library call. */
void mh_point_at(const mh_worker *w);

/* The common case: a plain worker, and the library pointed at it. */
void mh_worker_use(mh_worker *w);

/* mt_shutdown, then stops the worker with SIGTERM and checks that it exited
 * cleanly (status 0): a worker that crashed under the test fails it. */
void mh_worker_finish(mh_worker *w);

/* Stops the worker without checking how it ended (after SIGKILL and the like). */
void mh_worker_discard(mh_worker *w);

/* The worker's total counters (live_* are current) and open sessions. */
typedef struct mh_counters {
  uint64_t graphs, nodes, syncs, bytes_in, bytes_out, live_tensors, live_bytes, messages;
  uint32_t open_sessions;
} mh_counters;

/* One Stats call; fails the test when it fails. */
mh_counters mh_stats(const mh_worker *w);

/* Polls Stats until open_sessions == want (sessions end asynchronously after
 * their stream does); fails the test after timeout_ms. Returns the counters
 * seen last. */
mh_counters mh_wait_sessions(const mh_worker *w, uint32_t want, int timeout_ms);

/* Monotonic milliseconds. */
int64_t mh_now_ms(void);

/* Sleeps ms milliseconds. */
void mh_sleep_ms(int ms);

/* Sets a MODALTENSOR_* variable for this process (the test's own). */
void mh_setenv(const char *name, const char *value);

/* The pid of this process's child whose command name is comm (as in
 * /proc/PID/comm), or -1 when there is none. */
pid_t mh_find_child(const char *comm);

/* Fails the test when status is not want, or when the thread's message
 * lacks one of the (up to two, NULL to skip) needles. */
void mh_expect_at(const char *file, int line, const char *expr, mt_status got, mt_status want,
                  const char *needle1, const char *needle2);
#define MH_EXPECT(expr, want, needle1, needle2)                                               \
  do {                                                                                      \
    mt_clear_error();                                                                       \
    mt_status mh_got_ = (expr);                                                             \
    mh_expect_at(__FILE__, __LINE__, #expr, mh_got_, want, needle1, needle2);               \
  } while (0)
/* expr makes a tensor, which must fail with want. */
#define MH_EXPECT_NULL(expr, want, needle1, needle2)                                          \
  do {                                                                                      \
    mt_clear_error();                                                                       \
    mt_tensor *mh_t_ = (expr);                                                              \
    ck_assert_msg(mh_t_ == NULL, "%s:%d: %s succeeded, expected %s", __FILE__, __LINE__,     \
                  #expr, mt_status_name(want));                                             \
    mh_expect_at(__FILE__, __LINE__, #expr, mt_last_status(), want, needle1, needle2);      \
  } while (0)

/* expr must return MT_OK. */
#define MH_OK(expr)                                                                         \
  do {                                                                                      \
    mt_status mh_st_ = (expr);                                                              \
    ck_assert_msg(mh_st_ == MT_OK, "%s:%d: %s returned %s (%s)", __FILE__, __LINE__, #expr,  \
                  mt_status_name(mh_st_), mt_last_error());                                 \
  } while (0)

/* expr makes a tensor, which must succeed; evaluates to it. */
mt_tensor *mh_made_at(const char *file, int line, const char *expr, mt_tensor *t);
#define MH_MADE(expr) mh_made_at(__FILE__, __LINE__, #expr, (expr))

/* Runs every test of s in a process of its own (fork mode, forced and
 * checked); returns the process exit status. */
int mh_run_suite(Suite *s);

#endif
