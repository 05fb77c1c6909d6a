/*
 * test_errors.c - every documented error, provoked through the public API:
 * NULL tensors for each function family, mixed devices, bad dims, shapes
 * that do not fit, bad dtypes, nbytes mismatches and overflowing sizes.
 * Run under AddressSanitizer/LeakSanitizer, it also shows that failing
 * calls leak nothing.
 */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef mt_tensor *(*binary_fn)(const mt_tensor *, const mt_tensor *);
typedef mt_tensor *(*unary_fn)(const mt_tensor *);
typedef mt_tensor *(*scalar_fn)(const mt_tensor *, double);
typedef mt_tensor *(*reduce_fn)(const mt_tensor *, int, const int *, int);

static const struct { binary_fn fn; const char *name; } binary_fns[] = {
    {mt_add, "mt_add"},         {mt_sub, "mt_sub"},         {mt_mul, "mt_mul"},
    {mt_div, "mt_div"},         {mt_pow, "mt_pow"},         {mt_maximum, "mt_maximum"},
    {mt_minimum, "mt_minimum"}, {mt_eq, "mt_eq"},           {mt_ne, "mt_ne"},
    {mt_lt, "mt_lt"},           {mt_le, "mt_le"},           {mt_gt, "mt_gt"},
    {mt_ge, "mt_ge"},           {mt_logical_and, "mt_logical_and"},
    {mt_logical_or, "mt_logical_or"}, {mt_matmul, "mt_matmul"},
};

static const struct { unary_fn fn; const char *name; } unary_fns[] = {
    {mt_neg, "mt_neg"},       {mt_abs, "mt_abs"},       {mt_exp, "mt_exp"},
    {mt_log, "mt_log"},       {mt_sqrt, "mt_sqrt"},     {mt_rsqrt, "mt_rsqrt"},
    {mt_sin, "mt_sin"},       {mt_cos, "mt_cos"},       {mt_tanh, "mt_tanh"},
    {mt_sigmoid, "mt_sigmoid"}, {mt_relu, "mt_relu"},   {mt_gelu, "mt_gelu"},
    {mt_silu, "mt_silu"},     {mt_floor, "mt_floor"},   {mt_ceil, "mt_ceil"},
    {mt_round, "mt_round"},   {mt_sign, "mt_sign"},     {mt_reciprocal, "mt_reciprocal"},
    {mt_logical_not, "mt_logical_not"}, {mt_contiguous, "mt_contiguous"},
    {mt_clone, "mt_clone"},
};

static const struct { scalar_fn fn; const char *name; } scalar_fns[] = {
    {mt_add_scalar, "mt_add_scalar"}, {mt_mul_scalar, "mt_mul_scalar"},
    {mt_pow_scalar, "mt_pow_scalar"},
};

static const struct { reduce_fn fn; const char *name; } reduce_fns[] = {
    {mt_sum, "mt_sum"}, {mt_mean, "mt_mean"}, {mt_prod, "mt_prod"},
    {mt_amax, "mt_amax"}, {mt_amin, "mt_amin"},
};

/* --------------------------------------------------------- NULL tensors */

START_TEST(test_null_tensors_ops) {
  mt_tensor *t = TU_OK(mt_ones(2, TU_SHAPE(2, 2), MT_FLOAT32, TU_CPU));
  for (int i = 0; i < TU_COUNT(binary_fns); i++) {
    TU_FAILS(binary_fns[i].fn(NULL, t), MT_ERR_INVALID_ARGUMENT, binary_fns[i].name);
    TU_FAILS(binary_fns[i].fn(t, NULL), MT_ERR_INVALID_ARGUMENT, binary_fns[i].name);
    TU_FAILS(binary_fns[i].fn(NULL, NULL), MT_ERR_INVALID_ARGUMENT, binary_fns[i].name);
  }
  for (int i = 0; i < TU_COUNT(unary_fns); i++)
    TU_FAILS(unary_fns[i].fn(NULL), MT_ERR_INVALID_ARGUMENT, unary_fns[i].name);
  for (int i = 0; i < TU_COUNT(scalar_fns); i++)
    TU_FAILS(scalar_fns[i].fn(NULL, 2), MT_ERR_INVALID_ARGUMENT, scalar_fns[i].name);
  for (int i = 0; i < TU_COUNT(reduce_fns); i++)
    TU_FAILS(reduce_fns[i].fn(NULL, 0, NULL, 0), MT_ERR_INVALID_ARGUMENT, reduce_fns[i].name);
  TU_FAILS(mt_argmax(NULL, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_argmax");
  TU_FAILS(mt_argmin(NULL, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_argmin");
  TU_FAILS(mt_softmax(NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_softmax");
  TU_FAILS(mt_log_softmax(NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_log_softmax");
  TU_FAILS(mt_layer_norm(NULL, t, t, 1e-5), MT_ERR_INVALID_ARGUMENT, "mt_layer_norm");
  TU_FAILS(mt_where(NULL, t, t), MT_ERR_INVALID_ARGUMENT, "mt_where");
  TU_FAILS(mt_where(t, NULL, t), MT_ERR_INVALID_ARGUMENT, "mt_where");
  TU_FAILS(mt_where(t, t, NULL), MT_ERR_INVALID_ARGUMENT, "mt_where");
  TU_FAILS(mt_clamp(NULL, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_clamp");
  TU_FAILS(mt_cast(NULL, MT_INT8), MT_ERR_INVALID_ARGUMENT, "mt_cast");
  TU_FAILS(mt_index_select(NULL, 0, t), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  TU_FAILS(mt_index_select(t, 0, NULL), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  const mt_tensor *with_null[3] = {t, NULL, t};
  TU_FAILS(mt_cat(3, with_null, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  TU_FAILS(mt_stack(3, with_null, 0), MT_ERR_INVALID_ARGUMENT, "mt_stack");
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_null_tensors_handles) {
  mt_tensor *t = TU_OK(mt_ones(2, TU_SHAPE(2, 2), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_reshape(NULL, 1, TU_SHAPE(4)), MT_ERR_INVALID_ARGUMENT, "mt_reshape");
  TU_FAILS(mt_permute(NULL, (const int[]){1, 0}), MT_ERR_INVALID_ARGUMENT, "mt_permute");
  TU_FAILS(mt_transpose(NULL, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_transpose");
  TU_FAILS(mt_slice(NULL, 0, 0, 1, 1), MT_ERR_INVALID_ARGUMENT, "mt_slice");
  TU_FAILS(mt_expand(NULL, 2, TU_SHAPE(2, 2)), MT_ERR_INVALID_ARGUMENT, "mt_expand");
  TU_FAILS(mt_squeeze(NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_squeeze");
  TU_FAILS(mt_unsqueeze(NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_unsqueeze");
  TU_FAILS(mt_to(NULL, TU_CPU, MT_FLOAT32, 0), MT_ERR_INVALID_ARGUMENT, "mt_to");
  TU_STATUS(mt_copy_(NULL, t), MT_ERR_INVALID_ARGUMENT, "mt_copy_");
  TU_STATUS(mt_copy_(t, NULL), MT_ERR_INVALID_ARGUMENT, "mt_copy_");
  float buf[4];
  double x;
  TU_STATUS(mt_to_host(NULL, buf, sizeof buf), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_item(NULL, &x), MT_ERR_INVALID_ARGUMENT, "mt_item");

  /* accessors return 0 (or a zeroed value) and set the error */
  mt_clear_error();
  ck_assert_int_eq(mt_ndim(NULL), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_ndim(NULL)", MT_ERR_INVALID_ARGUMENT, "mt_ndim");
  mt_clear_error();
  ck_assert_int_eq(mt_shape(NULL, 0), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_shape(NULL)", MT_ERR_INVALID_ARGUMENT, "mt_shape");
  mt_clear_error();
  ck_assert_int_eq(mt_stride(NULL, 0), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_stride(NULL)", MT_ERR_INVALID_ARGUMENT, "mt_stride");
  mt_clear_error();
  ck_assert_int_eq(mt_numel(NULL), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_numel(NULL)", MT_ERR_INVALID_ARGUMENT, "mt_numel");
  mt_clear_error();
  (void)mt_tensor_dtype(NULL);
  tu_check_error_at(__FILE__, __LINE__, "mt_tensor_dtype(NULL)", MT_ERR_INVALID_ARGUMENT,
                    "mt_tensor_dtype");
  mt_clear_error();
  mt_device d = mt_tensor_device(NULL);
  ck_assert(d.type == 0 && d.index == 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_tensor_device(NULL)", MT_ERR_INVALID_ARGUMENT,
                    "mt_tensor_device");
  mt_clear_error();
  ck_assert_int_eq(mt_is_contiguous(NULL), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_is_contiguous(NULL)", MT_ERR_INVALID_ARGUMENT,
                    "mt_is_contiguous");
  mt_clear_error();
  ck_assert_ptr_null(mt_data_ptr(NULL));
  tu_check_error_at(__FILE__, __LINE__, "mt_data_ptr(NULL)", MT_ERR_INVALID_ARGUMENT, "mt_data_ptr");
  mt_clear_error();
  ck_assert_ptr_null(mt_to_dlpack(NULL));
  tu_check_error_at(__FILE__, __LINE__, "mt_to_dlpack(NULL)", MT_ERR_INVALID_ARGUMENT,
                    "mt_to_dlpack");
  TU_FAILS(mt_from_dlpack(NULL), MT_ERR_INVALID_ARGUMENT, "mt_from_dlpack");

  /* freeing NULL is a no-op and no error */
  mt_clear_error();
  mt_tensor_free(NULL);
  ck_assert_int_eq(mt_last_status(), MT_OK);

  /* bad dims to accessors */
  mt_clear_error();
  ck_assert_int_eq(mt_shape(t, 2), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_shape(t, 2)", MT_ERR_SHAPE, "mt_shape");
  mt_clear_error();
  ck_assert_int_eq(mt_stride(t, -3), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_stride(t, -3)", MT_ERR_SHAPE, "mt_stride");
  mt_tensor *s = TU_OK(mt_zeros(0, NULL, MT_FLOAT32, TU_CPU));
  mt_clear_error();
  ck_assert_int_eq(mt_shape(s, 0), 0);
  tu_check_error_at(__FILE__, __LINE__, "mt_shape(0-d, 0)", MT_ERR_SHAPE, "mt_shape");
  mt_tensor_free(s);
  mt_tensor_free(t);
}
END_TEST

/* -------------------------------------------------------- mixed devices */

/* The last error is MT_ERR_DEVICE from fn and names both devices. */
static void check_device_error(const char *what, const char *fn) {
  tu_check_error_at(__FILE__, __LINE__, what, MT_ERR_DEVICE, fn);
  const char *msg = mt_last_error();
  ck_assert_msg(strstr(msg, "cpu") != NULL && strstr(msg, "modal:0") != NULL,
                "%s: message \"%s\" does not name both devices", what, msg);
}

START_TEST(test_mixed_devices) {
  mt_set_remote_execution(0);
  mt_tensor *c = TU_OK(mt_ones(2, TU_SHAPE(2, 2), MT_FLOAT32, TU_CPU));
  mt_tensor *m = TU_OK(mt_ones(2, TU_SHAPE(2, 2), MT_FLOAT32, TU_MODAL));
  mt_tensor *ci = TU_TENSOR(TU_VALS(0, 1), 1, TU_SHAPE(2), MT_INT64);
  mt_tensor *mi = TU_OK(mt_to(ci, TU_MODAL, MT_INT64, 0));
  mt_tensor *w = TU_OK(mt_ones(1, TU_SHAPE(2), MT_FLOAT32, TU_MODAL));
  for (int i = 0; i < TU_COUNT(binary_fns); i++) {
    mt_clear_error();
    ck_assert_ptr_null(binary_fns[i].fn(c, m));
    check_device_error(binary_fns[i].name, binary_fns[i].name);
    mt_clear_error();
    ck_assert_ptr_null(binary_fns[i].fn(m, c));
    check_device_error(binary_fns[i].name, binary_fns[i].name);
  }
  mt_clear_error();
  ck_assert_ptr_null(mt_where(c, m, m));
  check_device_error("where(c, m, m)", "mt_where");
  mt_clear_error();
  ck_assert_ptr_null(mt_where(m, m, c));
  check_device_error("where(m, m, c)", "mt_where");
  const mt_tensor *cm[2] = {c, m};
  mt_clear_error();
  ck_assert_ptr_null(mt_cat(2, cm, 0));
  check_device_error("cat", "mt_cat");
  mt_clear_error();
  ck_assert_ptr_null(mt_stack(2, cm, 0));
  check_device_error("stack", "mt_stack");
  mt_clear_error();
  ck_assert_ptr_null(mt_index_select(c, 0, mi));
  check_device_error("index_select", "mt_index_select");
  mt_clear_error();
  ck_assert_ptr_null(mt_layer_norm(c, w, NULL, 1e-5));
  check_device_error("layer_norm", "mt_layer_norm");
  mt_clear_error();
  ck_assert_int_eq(mt_copy_(c, m), MT_ERR_DEVICE);
  check_device_error("copy_", "mt_copy_");
  /* the same ops on one device work */
  mt_tensor *ok = TU_OK(mt_add(m, m));
  mt_tensor_free(ok);
  ok = TU_OK(mt_index_select(m, 0, mi));
  mt_tensor_free(ok);
  mt_tensor_free(w);
  mt_tensor_free(mi);
  mt_tensor_free(ci);
  mt_tensor_free(m);
  mt_tensor_free(c);
}
END_TEST

START_TEST(test_bad_devices) {
  const mt_device nowhere = {7, 0}, cpu1 = {MT_DEVICE_CPU, 1};
  TU_STATUS(mt_synchronize(nowhere), MT_ERR_DEVICE, "mt_synchronize");
  TU_STATUS(mt_synchronize(cpu1), MT_ERR_DEVICE, "mt_synchronize");
  mt_tensor *t = TU_OK(mt_ones(1, TU_SHAPE(2), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_to(t, nowhere, MT_FLOAT32, 0), MT_ERR_DEVICE, "mt_to");
  TU_FAILS(mt_to(t, cpu1, MT_FLOAT32, 1), MT_ERR_DEVICE, "mt_to");
  TU_FAILS(mt_zeros(1, TU_SHAPE(2), MT_FLOAT32, nowhere), MT_ERR_DEVICE, "mt_zeros");
  mt_set_remote_execution(0);
  mt_device_properties p;
  TU_STATUS(mt_modal_get_device_properties(-1, &p), MT_ERR_DEVICE, "mt_modal_get_device_properties");
  TU_STATUS(mt_modal_get_device_properties(mt_modal_device_count(), &p), MT_ERR_DEVICE,
            "mt_modal_get_device_properties");
  mt_tensor *m = TU_OK(mt_to(t, TU_MODAL, MT_FLOAT32, 0));
  mt_clear_error();
  ck_assert_ptr_null(mt_data_ptr(m));
  ck_assert_int_eq(mt_last_status(), MT_ERR_DEVICE);
  mt_clear_error();
  ck_assert_ptr_null(mt_to_dlpack(m));
  ck_assert_int_eq(mt_last_status(), MT_ERR_DEVICE);
  mt_tensor_free(m);
  mt_tensor_free(t);
}
END_TEST

/* ------------------------------------------------- dims, shapes, dtypes */

START_TEST(test_bad_dims_and_shapes) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(2, 3), MT_FLOAT32, TU_CPU));
  mt_tensor *b = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  for (int i = 0; i < TU_COUNT(binary_fns); i++)
    TU_FAILS(binary_fns[i].fn(a, b), MT_ERR_SHAPE, binary_fns[i].name);
  TU_FAILS(mt_transpose(a, 0, 2), MT_ERR_SHAPE, "mt_transpose");
  TU_FAILS(mt_squeeze(a, -3), MT_ERR_SHAPE, "mt_squeeze");
  TU_FAILS(mt_softmax(a, 5), MT_ERR_SHAPE, "mt_softmax");
  TU_FAILS(mt_argmax(a, -3, 0), MT_ERR_SHAPE, "mt_argmax");
  TU_FAILS(mt_sum(a, 1, (const int[]){2}, 0), MT_ERR_SHAPE, "mt_sum");
  TU_FAILS(mt_reshape(a, 1, TU_SHAPE(7)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_expand(a, 2, TU_SHAPE(3, 3)), MT_ERR_SHAPE, "mt_expand");
  TU_FAILS(mt_slice(a, 2, 0, 1, 1), MT_ERR_SHAPE, "mt_slice");
  TU_FAILS(mt_unsqueeze(a, 3), MT_ERR_SHAPE, "mt_unsqueeze");
  TU_STATUS(mt_copy_(b, a), MT_ERR_SHAPE, "mt_copy_");
  float buf[6];
  TU_STATUS(mt_to_host(a, buf, sizeof buf - 1), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_to_host(a, buf, sizeof buf + 4), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  double x;
  TU_STATUS(mt_item(a, &x), MT_ERR_SHAPE, "mt_item");
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

START_TEST(test_bad_dtypes) {
  mt_tensor *a = TU_OK(mt_ones(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU));
  mt_tensor *bo = TU_OK(mt_ones(1, TU_SHAPE(3), MT_BOOL, TU_CPU));
  const mt_dtype bad[] = {(mt_dtype)42, (mt_dtype)10, (mt_dtype)-1};
  static double blob[1];
  for (int i = 0; i < 3; i++) {
    TU_FAILS(mt_cast(a, bad[i]), MT_ERR_DTYPE, "mt_cast");
    TU_FAILS(mt_to(a, TU_CPU, bad[i], 1), MT_ERR_DTYPE, "mt_to");
    TU_FAILS(mt_full(1, TU_SHAPE(1), 0, bad[i], TU_CPU), MT_ERR_DTYPE, "mt_full");
    TU_FAILS(mt_from_blob(blob, 1, TU_SHAPE(1), NULL, bad[i], NULL, NULL), MT_ERR_DTYPE,
             "mt_from_blob");
  }
  TU_FAILS(mt_sub(bo, bo), MT_ERR_DTYPE, "mt_sub");
  TU_FAILS(mt_pow(bo, bo), MT_ERR_DTYPE, "mt_pow");
  TU_FAILS(mt_neg(bo), MT_ERR_DTYPE, "mt_neg");
  TU_FAILS(mt_rand(1, TU_SHAPE(3), MT_INT32, TU_CPU, 1), MT_ERR_DTYPE, "mt_rand");
  TU_FAILS(mt_index_select(a, 0, a), MT_ERR_DTYPE, "mt_index_select");
  mt_tensor_free(bo);
  mt_tensor_free(a);
}
END_TEST

/* ------------------------------------------------------ oversized sizes */

START_TEST(test_overflowing_sizes) {
  const int64_t huge = (int64_t)1 << 40;
  TU_FAILS(mt_empty(2, TU_SHAPE(huge, huge), MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_empty");
  TU_FAILS(mt_zeros(3, TU_SHAPE(huge, 2, huge), MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_zeros");
  TU_FAILS(mt_arange(0, 1e19, 1, MT_INT8, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  /* a view whose element count overflows is refused */
  mt_tensor *one = TU_OK(mt_ones(2, TU_SHAPE(1, 1), MT_INT8, TU_CPU));
  mt_clear_error();
  mt_tensor *e = mt_expand(one, 2, TU_SHAPE(huge, huge));
  ck_assert_msg(e == NULL, "expand to [2^40, 2^40] accepted");
  ck_assert_msg(mt_last_status() == MT_ERR_INVALID_ARGUMENT || mt_last_status() == MT_ERR_SHAPE,
                "expand overflow: %s", mt_status_name(mt_last_status()));
  /* joining two large (stride 0) views overflows the result size */
  const int64_t big = (int64_t)1 << 62;
  mt_tensor *v = TU_OK(mt_expand(one, 2, TU_SHAPE(big, 1)));
  ck_assert_int_eq(mt_numel(v), big);
  const mt_tensor *vv[2] = {v, v};
  TU_FAILS(mt_cat(2, vv, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  mt_clear_error();
  mt_tensor *st = mt_stack(2, vv, 0);
  ck_assert_msg(st == NULL, "stack of two [2^62, 1] accepted");
  ck_assert_msg(mt_last_status() == MT_ERR_INVALID_ARGUMENT, "stack overflow: %s",
                mt_status_name(mt_last_status()));
  /* a reshape cannot reach an overflowing element count either */
  TU_FAILS(mt_reshape(one, 2, TU_SHAPE(huge, huge)), MT_ERR_SHAPE, "mt_reshape");
  mt_tensor_free(v);
  mt_tensor_free(one);
}
END_TEST

/* Failing calls in a loop: under LeakSanitizer any leak on an error path
 * shows up at exit, multiplied. */
START_TEST(test_error_paths_do_not_leak) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(2, 3), MT_FLOAT32, TU_CPU));
  mt_tensor *b = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  mt_tensor *idx = TU_TENSOR(TU_VALS(0, 9), 1, TU_SHAPE(2), MT_INT64);
  mt_tensor *e = TU_OK(mt_zeros(1, TU_SHAPE(0), MT_FLOAT32, TU_CPU));
  for (int i = 0; i < 50; i++) {
    ck_assert_ptr_null(mt_add(a, b));
    ck_assert_ptr_null(mt_matmul(a, b));
    ck_assert_ptr_null(mt_index_select(a, 1, idx)); /* fails in the kernel, after allocating */
    ck_assert_ptr_null(mt_amax(e, 0, NULL, 0));
    ck_assert_ptr_null(mt_reshape(a, 1, TU_SHAPE(5)));
    ck_assert_ptr_null(mt_from_dlpack(NULL));
    ck_assert_ptr_null(mt_cast(a, (mt_dtype)99));
    ck_assert_ptr_null(mt_layer_norm(a, b, NULL, 1e-5));
    ck_assert_ptr_null(mt_full(9, TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1), 0, MT_FLOAT32, TU_CPU));
  }
  ck_assert_int_eq(mt_last_status(), MT_ERR_SHAPE);
  mt_tensor_free(e);
  mt_tensor_free(idx);
  mt_tensor_free(b);
  mt_tensor_free(a);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_null_tensors_ops);
  tcase_add_test(tc, test_null_tensors_handles);
  tcase_add_test(tc, test_mixed_devices);
  tcase_add_test(tc, test_bad_devices);
  tcase_add_test(tc, test_bad_dims_and_shapes);
  tcase_add_test(tc, test_bad_dtypes);
  tcase_add_test(tc, test_overflowing_sizes);
  tcase_add_test(tc, test_error_paths_do_not_leak);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(errors_suite()); }
