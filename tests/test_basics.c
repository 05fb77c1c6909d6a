/*
 * test_basics.c - status names, the error API, version, dtypes, device
 * parsing, and the modal device both without a worker and in-process.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* ------------------------------------------------------------ status names */

START_TEST(test_status_names) {
  static const struct { mt_status s; const char *name; } names[] = {
      {MT_OK, "MT_OK"},
      {MT_ERR_INVALID_ARGUMENT, "MT_ERR_INVALID_ARGUMENT"},
      {MT_ERR_SHAPE, "MT_ERR_SHAPE"},
      {MT_ERR_DTYPE, "MT_ERR_DTYPE"},
      {MT_ERR_DEVICE, "MT_ERR_DEVICE"},
      {MT_ERR_OUT_OF_MEMORY, "MT_ERR_OUT_OF_MEMORY"},
      {MT_ERR_UNSUPPORTED, "MT_ERR_UNSUPPORTED"},
      {MT_ERR_REMOTE, "MT_ERR_REMOTE"},
      {MT_ERR_UNAVAILABLE, "MT_ERR_UNAVAILABLE"},
      {MT_ERR_TIMEOUT, "MT_ERR_TIMEOUT"},
      {MT_ERR_UNAUTHENTICATED, "MT_ERR_UNAUTHENTICATED"},
      {MT_ERR_INTERNAL, "MT_ERR_INTERNAL"},
  };
  for (int i = 0; i < TU_COUNT(names); i++) {
    const char *got = mt_status_name(names[i].s);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, names[i].name);
    ck_assert_int_eq((int)names[i].s, i); /* the documented numbering */
  }
  ck_assert_str_eq(mt_status_name((mt_status)12), "MT_ERR_UNKNOWN");
  ck_assert_str_eq(mt_status_name((mt_status)99), "MT_ERR_UNKNOWN");
  ck_assert_str_eq(mt_status_name((mt_status)-1), "MT_ERR_UNKNOWN");
}
END_TEST

/* --------------------------------------------------------------- error API */

START_TEST(test_error_initially_clear) {
  ck_assert_int_eq(mt_last_status(), MT_OK);
  ck_assert_ptr_nonnull(mt_last_error());
  ck_assert_str_eq(mt_last_error(), "");
}
END_TEST

START_TEST(test_error_set_kept_and_cleared) {
  mt_device d;
  ck_assert_int_eq(mt_device_parse("gpu", &d), MT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  const char *msg = mt_last_error();
  ck_assert_msg(strncmp(msg, "mt_device_parse: s:", 19) == 0,
                "message \"%s\" does not name the function and argument", msg);
  char saved[512];
  snprintf(saved, sizeof saved, "%s", msg);

  /* Successful calls leave the last error unchanged. */
  ck_assert_int_eq(mt_device_parse("cpu", &d), MT_OK);
  mt_tensor *t = TU_OK(mt_zeros(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU));
  mt_tensor_free(t);
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  ck_assert_str_eq(mt_last_error(), saved);

  /* A later failure replaces it. */
  ck_assert_ptr_null(mt_zeros(-1, NULL, MT_FLOAT32, TU_CPU));
  ck_assert_int_eq(mt_last_status(), MT_ERR_SHAPE);
  ck_assert_msg(strncmp(mt_last_error(), "mt_zeros:", 9) == 0, "message \"%s\"", mt_last_error());

  mt_clear_error();
  ck_assert_int_eq(mt_last_status(), MT_OK);
  ck_assert_str_eq(mt_last_error(), "");
}
END_TEST

START_TEST(test_error_names_argument) {
  mt_tensor *a = TU_OK(mt_zeros(1, TU_SHAPE(2), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_add(NULL, a), MT_ERR_INVALID_ARGUMENT, "mt_add");
  ck_assert_msg(strncmp(mt_last_error(), "mt_add: a:", 10) == 0, "\"%s\"", mt_last_error());
  TU_FAILS(mt_add(a, NULL), MT_ERR_INVALID_ARGUMENT, "mt_add");
  ck_assert_msg(strncmp(mt_last_error(), "mt_add: b:", 10) == 0, "\"%s\"", mt_last_error());
  TU_FAILS(mt_zeros(2, NULL, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_zeros");
  ck_assert_msg(strncmp(mt_last_error(), "mt_zeros: shape:", 16) == 0, "\"%s\"", mt_last_error());
  TU_FAILS(mt_transpose(a, 0, 5), MT_ERR_SHAPE, "mt_transpose");
  ck_assert_msg(strstr(mt_last_error(), "dim") != NULL, "\"%s\"", mt_last_error());
  mt_tensor_free(a);
}
END_TEST

typedef struct thread_result {
  mt_status initial, after;
  char message[256];
} thread_result;

static void *error_thread(void *arg) {
  thread_result *r = arg;
  r->initial = mt_last_status();
  mt_tensor *t = mt_zeros(1, TU_SHAPE(2), (mt_dtype)42, TU_CPU);
  mt_tensor_free(t);
  r->after = mt_last_status();
  snprintf(r->message, sizeof r->message, "%s", mt_last_error());
  return NULL;
}

START_TEST(test_error_per_thread) {
  mt_device d;
  ck_assert_int_eq(mt_device_parse("nope", &d), MT_ERR_INVALID_ARGUMENT);
  thread_result r;
  memset(&r, 0, sizeof r);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, error_thread, &r), 0);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(r.initial, MT_OK);
  ck_assert_int_eq(r.after, MT_ERR_DTYPE);
  ck_assert_msg(strncmp(r.message, "mt_zeros:", 9) == 0, "\"%s\"", r.message);
  /* This thread's error is untouched by the other thread's. */
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strncmp(mt_last_error(), "mt_device_parse:", 16) == 0, "\"%s\"", mt_last_error());
}
END_TEST

/* ------------------------------------------------------- version, dtypes */

START_TEST(test_version) {
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", MT_VERSION_MAJOR, MT_VERSION_MINOR, MT_VERSION_PATCH);
  ck_assert_ptr_nonnull(mt_version());
  ck_assert_str_eq(mt_version(), want);
  ck_assert_int_eq(MT_MAX_DIMS, 8);
}
END_TEST

START_TEST(test_dtype_size_name) {
  static const struct { mt_dtype d; size_t size; const char *name; } dts[] = {
      {MT_BOOL, 1, "bool"},       {MT_UINT8, 1, "uint8"},       {MT_INT8, 1, "int8"},
      {MT_INT16, 2, "int16"},     {MT_INT32, 4, "int32"},       {MT_INT64, 8, "int64"},
      {MT_FLOAT16, 2, "float16"}, {MT_BFLOAT16, 2, "bfloat16"}, {MT_FLOAT32, 4, "float32"},
      {MT_FLOAT64, 8, "float64"},
  };
  for (int i = 0; i < TU_COUNT(dts); i++) {
    ck_assert_int_eq((int)dts[i].d, i);
    ck_assert_uint_eq(mt_dtype_size(dts[i].d), dts[i].size);
    ck_assert_str_eq(mt_dtype_name(dts[i].d), dts[i].name);
  }
  ck_assert_uint_eq(mt_dtype_size((mt_dtype)10), 0);
  ck_assert_uint_eq(mt_dtype_size((mt_dtype)42), 0);
  ck_assert_uint_eq(mt_dtype_size((mt_dtype)-1), 0);
  ck_assert_str_eq(mt_dtype_name((mt_dtype)10), "invalid");
  ck_assert_str_eq(mt_dtype_name((mt_dtype)-3), "invalid");
}
END_TEST

/* ---------------------------------------------------------- device parsing */

START_TEST(test_device_parse_good) {
  static const struct { const char *s; int type, index; } good[] = {
      {"cpu", MT_DEVICE_CPU, 0},         {"cpu:0", MT_DEVICE_CPU, 0},
      {"modal", MT_DEVICE_MODAL, 0},     {"modal:0", MT_DEVICE_MODAL, 0},
      {"modal:3", MT_DEVICE_MODAL, 3},   {"modal:17", MT_DEVICE_MODAL, 17},
      {"modal:2147483647", MT_DEVICE_MODAL, 2147483647},
  };
  for (int i = 0; i < TU_COUNT(good); i++) {
    mt_device d = {-5, -5};
    mt_status s = mt_device_parse(good[i].s, &d);
    ck_assert_msg(s == MT_OK, "\"%s\": %s (%s)", good[i].s, mt_status_name(s), mt_last_error());
    ck_assert_msg(d.type == good[i].type && d.index == good[i].index, "\"%s\" -> {%d, %d}",
                  good[i].s, (int)d.type, (int)d.index);
  }
}
END_TEST

START_TEST(test_device_parse_bad) {
  static const char *bad[] = {"",        "gpu",     "cuda:0",   "cpu:",    "cpu:1",
                              "modal:",  "modal:-1", "modal:+1", "modal:x", "modal:1x",
                              " cpu",    "cpu ",    "modal:99999999999", "modality", "cpux",
                              "modal:0:1", "modal::0"};
  for (int i = 0; i < TU_COUNT(bad); i++) {
    mt_device d;
    mt_clear_error();
    mt_status s = mt_device_parse(bad[i], &d);
    ck_assert_msg(s == MT_ERR_INVALID_ARGUMENT, "\"%s\" gave %s", bad[i], mt_status_name(s));
    tu_check_error_at(__FILE__, __LINE__, bad[i], MT_ERR_INVALID_ARGUMENT, "mt_device_parse");
  }
  mt_device d;
  TU_STATUS(mt_device_parse(NULL, &d), MT_ERR_INVALID_ARGUMENT, "mt_device_parse");
  TU_STATUS(mt_device_parse("cpu", NULL), MT_ERR_INVALID_ARGUMENT, "mt_device_parse");
}
END_TEST

/* ------------------------------------------------------------ modal device */

START_TEST(test_remote_execution_switch) {
  ck_assert_int_eq(mt_remote_execution_enabled(), 1); /* the default */
  mt_set_remote_execution(0);
  ck_assert_int_eq(mt_remote_execution_enabled(), 0);
  mt_set_remote_execution(5);
  ck_assert_int_eq(mt_remote_execution_enabled(), 1);
  TU_CHECK_OK(mt_synchronize(TU_CPU));
  mt_shutdown();
  mt_shutdown(); /* safe more than once */
}
END_TEST

/* With remote execution on, either a worker answers (and says so
 * consistently) or every modal call fails cleanly with MT_ERR_UNAVAILABLE. */
START_TEST(test_modal_without_worker) {
  ck_assert_int_eq(mt_remote_execution_enabled(), 1);
  mt_device_properties p;
  TU_STATUS(mt_modal_get_device_properties(0, NULL), MT_ERR_INVALID_ARGUMENT,
            "mt_modal_get_device_properties");
  if (mt_modal_is_available()) {
    ck_assert_int_ge(mt_modal_device_count(), 1);
    TU_CHECK_OK(mt_modal_get_device_properties(0, &p));
    ck_assert_ptr_nonnull(memchr(p.name, '\0', sizeof p.name));
    ck_assert_int_gt((int)strlen(p.name), 0);
    TU_STATUS(mt_modal_get_device_properties(mt_modal_device_count(), &p), MT_ERR_DEVICE,
              "mt_modal_get_device_properties");
    mt_shutdown();
    return;
  }
  ck_assert_int_eq(mt_modal_device_count(), 0);
  TU_STATUS(mt_modal_get_device_properties(0, &p), MT_ERR_UNAVAILABLE,
            "mt_modal_get_device_properties");
  /* Making a modal tensor fails now or at the first sync point. */
  mt_clear_error();
  mt_tensor *t = mt_zeros(1, TU_SHAPE(4), MT_FLOAT32, TU_MODAL);
  if (t) {
    float buf[4];
    ck_assert_int_eq(mt_to_host(t, buf, sizeof buf), MT_ERR_UNAVAILABLE);
    mt_tensor_free(t);
  } else {
    tu_check_error_at(__FILE__, __LINE__, "mt_zeros(modal)", MT_ERR_UNAVAILABLE, "mt_zeros");
  }
  mt_tensor *c = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  mt_clear_error();
  mt_tensor *m = mt_to(c, TU_MODAL, MT_FLOAT32, 0);
  if (m) {
    float buf[4];
    ck_assert_int_eq(mt_to_host(m, buf, sizeof buf), MT_ERR_UNAVAILABLE);
    mt_tensor_free(m);
  } else {
    tu_check_error_at(__FILE__, __LINE__, "mt_to(modal)", MT_ERR_UNAVAILABLE, "mt_to");
  }
  mt_tensor_free(c);
  mt_shutdown();
}
END_TEST

/* Moves a cpu tensor to the in-process modal device and back. */
static mt_tensor *to_modal(const mt_tensor *t) {
  mt_tensor *m = TU_OK(mt_to(t, TU_MODAL, mt_tensor_dtype(t), 0));
  mt_device d = mt_tensor_device(m);
  ck_assert_int_eq(d.type, MT_DEVICE_MODAL);
  ck_assert_int_eq(d.index, 0);
  return m;
}

/* The in-process modal result r must equal the cpu result c exactly. */
static void check_same(const mt_tensor *r, const mt_tensor *c) {
  mt_device d = mt_tensor_device(r);
  ck_assert_int_eq(d.type, MT_DEVICE_MODAL);
  mt_tensor *back = TU_OK(mt_to(r, TU_CPU, mt_tensor_dtype(r), 0));
  ck_assert_int_eq(mt_tensor_device(back).type, MT_DEVICE_CPU);
  ck_assert_int_eq(mt_tensor_dtype(back), mt_tensor_dtype(c));
  ck_assert_int_eq(mt_ndim(back), mt_ndim(c));
  for (int i = 0; i < mt_ndim(c); i++) ck_assert_int_eq(mt_shape(back, i), mt_shape(c, i));
  double *want = TU_READ(c);
  TU_CHECK_CLOSE(back, want, mt_numel(c), 0, 0);
  TU_CHECK_CLOSE(r, want, mt_numel(c), 0, 0); /* mt_to_host works on modal too */
  free(want);
  mt_tensor_free(back);
}

START_TEST(test_modal_in_process) {
  mt_set_remote_execution(0);
  ck_assert_int_eq(mt_remote_execution_enabled(), 0);
  double av[12], bv[12];
  for (int i = 0; i < 12; i++) {
    av[i] = tu_value((uint64_t)i, -3, 3);
    bv[i] = tu_value((uint64_t)i + 100, -3, 3);
  }
  mt_tensor *a = TU_TENSOR(av, 2, TU_SHAPE(3, 4), MT_FLOAT32);
  mt_tensor *b = TU_TENSOR(bv, 2, TU_SHAPE(4, 3), MT_FLOAT32);
  mt_tensor *ma = to_modal(a), *mb = to_modal(b);

  mt_tensor *c, *r;
  c = TU_OK(mt_matmul(a, b));
  r = TU_OK(mt_matmul(ma, mb));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  mt_tensor *bt = TU_OK(mt_transpose(b, 0, 1)), *mbt = TU_OK(mt_transpose(mb, 0, 1));
  c = TU_OK(mt_add(a, bt));
  r = TU_OK(mt_add(ma, mbt));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  int dims[1] = {1};
  c = TU_OK(mt_sum(a, 1, dims, 0));
  r = TU_OK(mt_sum(ma, 1, dims, 0));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  c = TU_OK(mt_softmax(a, -1));
  r = TU_OK(mt_softmax(ma, -1));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  c = TU_OK(mt_cast(a, MT_INT8));
  r = TU_OK(mt_cast(ma, MT_INT8));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  /* Creation on the modal device; rand is bit-identical across devices. */
  c = TU_OK(mt_rand(1, TU_SHAPE(100), MT_FLOAT32, TU_CPU, 7));
  r = TU_OK(mt_rand(1, TU_SHAPE(100), MT_FLOAT32, TU_MODAL, 7));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);
  c = TU_OK(mt_arange(0, 10, 1, MT_INT32, TU_CPU));
  r = TU_OK(mt_arange(0, 10, 1, MT_INT32, TU_MODAL));
  check_same(r, c);
  mt_tensor_free(c);
  mt_tensor_free(r);

  double x;
  mt_tensor *s = TU_OK(mt_sum(ma, 0, NULL, 0));
  TU_CHECK_OK(mt_item(s, &x));
  double sum = 0;
  for (int i = 0; i < 12; i++) sum += av[i];
  ck_assert_double_eq_tol(x, sum, 1e-4);
  mt_tensor_free(s);
  TU_CHECK_OK(mt_synchronize(TU_MODAL));

  /* Mixing the devices is refused. */
  TU_FAILS(mt_add(a, ma), MT_ERR_DEVICE, "mt_add");
  /* No host pointer for modal tensors. */
  mt_clear_error();
  ck_assert_ptr_null(mt_data_ptr(ma));
  ck_assert_int_eq(mt_last_status(), MT_ERR_DEVICE);

  mt_tensor_free(bt);
  mt_tensor_free(mbt);
  mt_tensor_free(ma);
  mt_tensor_free(mb);
  mt_tensor_free(a);
  mt_tensor_free(b);
  mt_shutdown();
}
END_TEST

static Suite *basics_suite(void) {
  Suite *s = suite_create("basics");
  TCase *tc = tcase_create("status");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_status_names);
  tcase_add_test(tc, test_error_initially_clear);
  tcase_add_test(tc, test_error_set_kept_and_cleared);
  tcase_add_test(tc, test_error_names_argument);
  tcase_add_test(tc, test_error_per_thread);
  tcase_add_test(tc, test_version);
  tcase_add_test(tc, test_dtype_size_name);
  suite_add_tcase(s, tc);

  tc = tcase_create("devices");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_device_parse_good);
  tcase_add_test(tc, test_device_parse_bad);
  tcase_add_test(tc, test_remote_execution_switch);
  tcase_add_test(tc, test_modal_without_worker);
  tcase_add_test(tc, test_modal_in_process);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(basics_suite()); }
