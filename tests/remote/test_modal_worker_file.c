/*
 * test_modal_worker_file.c - MODALTENSOR_WORKER_FILE: the library reads the
 * worker's address from a file at first use and again whenever it has to
 * reconnect, so that a program goes on after `python -m modaltensor.modal
 * up` gives the worker a new address; a missing or empty file (`down`) and
 * a dead address say what to do.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modal_harness.h"

static const int64_t four = 4;

/* A path for this test's worker file, in a fresh private directory. */
static void file_path(char *path, size_t len) {
  char dir[] = "/tmp/modaltensor-wfile-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, len, "%s/modal-worker", dir);
}

/* Replaces the file's content at once, as `up` does (a temporary file
 * renamed over it), so that the library never reads half of it. */
static void write_file(const char *path, const char *content) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_ge(fputs(content, f), 0);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, path), 0);
}

/* Removes the file and its directory. */
static void remove_file(const char *path) {
  unlink(path);
  char dir[600];
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  rmdir(dir);
}

/* Kills w with SIGKILL (a preempted worker says nothing) and reaps it. */
static void kill_worker(mh_worker *w) {
  ck_assert_int_eq(kill(w->proc.pid, SIGKILL), 0);
  int status;
  ck_assert_int_eq(waitpid(w->proc.pid, &status, 0), w->proc.pid);
  w->proc.pid = 0;
}

/* A tensor holding 1..4 times k on modal:0, checked by a round trip. */
static mt_tensor *made_and_read(float k) {
  float v[4] = {k, 2 * k, 3 * k, 4 * k}, got[4];
  mt_tensor *t = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *twice = MH_MADE(mt_add(t, t));
  MH_OK(mt_to_host(twice, got, sizeof got));
  ck_assert(got[0] == 2 * k && got[3] == 8 * k);
  mt_tensor_free(twice);
  return t;
}

/* The worker goes away (idle shutdown, preemption); while the file still
 * names it, new work fails with a message naming the file and `up`; `down`
 * empties the file; a new `up` writes another address, and the same
 * process goes on there. The old worker's tensors stay lost. */
START_TEST(test_follows_the_file_to_a_new_worker) {
  mh_setenv("MODALTENSOR_TIMEOUT", "5");
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  mh_worker a, b;
  mh_worker_start(&a, NULL, NULL, NULL);
  mh_worker_start(&b, NULL, NULL, NULL);
  char path[512], line[600];
  file_path(path, sizeof path);
  snprintf(line, sizeof line, "%s\n", a.proc.addr);
  write_file(path, line);
  mh_setenv("MODALTENSOR_WORKER_FILE", path);
  mt_tensor *old = made_and_read(1);
  ck_assert_uint_eq(mh_stats(&a).open_sessions, 1);
  kill_worker(&a);

  /* The first use after the kill finds the session gone. */
  float got[4];
  mt_clear_error();
  mt_status st = mt_to_host(old, got, sizeof got);
  ck_assert_msg(st == MT_ERR_UNAVAILABLE || st == MT_ERR_TIMEOUT, "gave %s (%s)",
                mt_status_name(st), mt_last_error());
  /* The file still names the dead worker: say so, and what to do. */
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, path,
                 "python -m modaltensor.modal up");
  ck_assert(strstr(mt_last_error(), a.proc.addr));
  /* `down` empties the file. */
  write_file(path, "");
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, "is empty",
                 "python -m modaltensor.modal up");
  /* `up` again: a new address, blank lines and spaces around it. */
  snprintf(line, sizeof line, "\n  %s  \n", b.proc.addr);
  write_file(path, line);
  mt_tensor *fresh = made_and_read(10);
  ck_assert_int_eq(mt_modal_device_count(), 1);
  mh_counters cb = mh_stats(&b);
  ck_assert_uint_eq(cb.open_sessions, 1);
  ck_assert_uint_ge(cb.live_tensors, 1);
  mt_device_properties p;
  MH_OK(mt_modal_get_device_properties(0, &p));
  ck_assert_int_gt(p.total_memory, 0);
  /* Tensors of the lost session stay lost; new ones mix with each other. */
  MH_EXPECT(mt_to_host(old, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  MH_EXPECT_NULL(mt_add(old, fresh), MT_ERR_UNAVAILABLE, "lost", NULL);
  mt_tensor *sum = MH_MADE(mt_add(fresh, fresh));
  MH_OK(mt_to_host(sum, got, sizeof got));
  ck_assert(got[3] == 80.0f);
  mt_tensor_free(sum);
  mt_tensor_free(fresh);
  mt_tensor_free(old);
  mh_worker_finish(&b);
  mh_worker_discard(&a);
  remove_file(path);
}
END_TEST

/* A program started before `up`: a missing file says so, and the next use
 * after the file appears connects, without a restart. */
START_TEST(test_missing_file_then_up) {
  char path[512], line[600];
  file_path(path, sizeof path);
  mh_setenv("MODALTENSOR_WORKER_FILE", path);
  ck_assert_int_eq(mt_modal_is_available(), 0);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, "does not exist",
                 "python -m modaltensor.modal up");
  ck_assert(strstr(mt_last_error(), path));
  ck_assert_int_eq(mt_modal_device_count(), 0);
  write_file(path, "   \n\n");
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, "is empty", path);
  mh_worker w;
  mh_worker_start(&w, NULL, NULL, NULL);
  snprintf(line, sizeof line, "%s\n", w.proc.addr);
  write_file(path, line);
  ck_assert_int_eq(mt_modal_device_count(), 1);
  mt_tensor *t = made_and_read(3);
  mt_tensor_free(t);
  mh_worker_finish(&w);
  remove_file(path);
}
END_TEST

/* Nothing answers at the file's address at first use: the message names
 * the address, the file and `up`. */
START_TEST(test_dead_address_in_file) {
  char path[512], line[600];
  file_path(path, sizeof path);
  snprintf(line, sizeof line, "unix:/tmp/modaltensor-test-%d-nobody/worker.sock\n",
           (int)getpid());
  write_file(path, line);
  mh_setenv("MODALTENSOR_WORKER_FILE", path);
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, "nobody", path);
  ck_assert(strstr(mt_last_error(), "python -m modaltensor.modal up"));
  mt_shutdown();
  remove_file(path);
}
END_TEST

/* MODALTENSOR_WORKER wins over the file, which is then not read at all. */
START_TEST(test_worker_variable_wins) {
  mh_worker w;
  mh_worker_use(&w);
  mh_setenv("MODALTENSOR_WORKER_FILE", "/nonexistent/modal-worker");
  mt_tensor *t = made_and_read(2);
  mt_tensor_free(t);
  mh_worker_finish(&w);
}
END_TEST

/* Several workers as a comma list: one device each; after the first one
 * is replaced, its device follows the file and the other keeps its
 * session. The file may not change how many workers there are. */
START_TEST(test_list_of_workers) {
  mh_setenv("MODALTENSOR_TIMEOUT", "5");
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  mh_worker a, b, c;
  mh_worker_start(&a, NULL, NULL, NULL);
  mh_worker_start(&b, NULL, NULL, NULL);
  mh_worker_start(&c, NULL, NULL, NULL);
  char path[512], line[1700];
  file_path(path, sizeof path);
  snprintf(line, sizeof line, "%s, %s\n", a.proc.addr, b.proc.addr);
  write_file(path, line);
  mh_setenv("MODALTENSOR_WORKER_FILE", path);
  ck_assert_int_eq(mt_modal_device_count(), 2);
  const mt_device d0 = {MT_DEVICE_MODAL, 0}, d1 = {MT_DEVICE_MODAL, 1};
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *on_a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, d0));
  mt_tensor *on_b = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, d1));
  MH_OK(mt_synchronize(d0));
  MH_OK(mt_synchronize(d1));
  kill_worker(&a);
  mt_clear_error();
  ck_assert_int_ne(mt_to_host(on_a, got, sizeof got), MT_OK);
  /* Three workers where the program has two: refused. */
  snprintf(line, sizeof line, "%s,%s,%s\n", c.proc.addr, b.proc.addr, a.proc.addr);
  write_file(path, line);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, d0), MT_ERR_UNAVAILABLE, "names 3 workers",
                 "started with 2");
  snprintf(line, sizeof line, "%s,%s\n", c.proc.addr, b.proc.addr);
  write_file(path, line);
  mt_tensor *on_c = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, d0));
  MH_OK(mt_to_host(on_c, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  ck_assert_uint_eq(mh_stats(&c).open_sessions, 1);
  /* modal:1's session on b went on throughout. */
  MH_OK(mt_to_host(on_b, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  ck_assert_uint_eq(mh_stats(&b).open_sessions, 1);
  mt_tensor_free(on_c);
  mt_tensor_free(on_b);
  mt_tensor_free(on_a);
  mh_worker_finish(&c);
  mh_worker_finish(&b);
  mh_worker_discard(&a);
  remove_file(path);
}
END_TEST

static Suite *worker_file_suite(void) {
  Suite *s = suite_create("modal_worker_file");
  TCase *tc = tcase_create("worker_file");
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_follows_the_file_to_a_new_worker);
  tcase_add_test(tc, test_missing_file_then_up);
  tcase_add_test(tc, test_dead_address_in_file);
  tcase_add_test(tc, test_worker_variable_wins);
  tcase_add_test(tc, test_list_of_workers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(worker_file_suite()); }
