/*
 * test_autograd.c - what the autograd engine promises beyond each op's
 * rule (those are in test_gradcheck.c): accumulation into leaves, tensors
 * used twice, broadcasting summed back, views and non-contiguous leaves,
 * dtypes, explicit gradients, grad mode, detach, long chains, and the
 * errors (integer leaves, non-scalar roots, values written in place after
 * they were kept, a second backward through a freed graph).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static mt_tensor *leaf(const double *v, int ndim, const int64_t *shape, mt_dtype dt) {
  mt_tensor *t = TU_TENSOR(v, ndim, shape, dt);
  ck_assert_int_eq(mt_set_requires_grad(t, 1), MT_OK);
  return t;
}

/* t's gradient, which must exist (the caller frees it). */
static mt_tensor *grad_of(const mt_tensor *t) {
  mt_tensor *g = NULL;
  ck_assert_int_eq(mt_grad(t, &g), MT_OK);
  ck_assert_msg(g != NULL, "no gradient");
  return g;
}

static void check_grad(const mt_tensor *t, const double *expected, int64_t n) {
  mt_tensor *g = grad_of(t);
  TU_CHECK_CLOSE(g, expected, n, 1e-12, 1e-12);
  mt_tensor_free(g);
}

static void backward_sum(const mt_tensor *y) {
  mt_tensor *s = TU_OK(mt_sum(y, 0, NULL, 0));
  ck_assert_msg(mt_backward(s, NULL) == MT_OK, "%s", mt_last_error());
  mt_tensor_free(s);
}

START_TEST(test_used_twice_and_accumulated) {
  mt_tensor *x = leaf(TU_VALS(1, -2, 3), 1, TU_SHAPE(3), MT_FLOAT64);
  for (int round = 1; round <= 2; round++) {
    mt_tensor *sq = TU_OK(mt_mul(x, x));
    mt_tensor *y = TU_OK(mt_add(sq, x)); /* d/dx = 2x + 1 */
    backward_sum(y);
    mt_tensor_free(sq);
    mt_tensor_free(y);
    check_grad(x, round == 1 ? TU_VALS(3, -3, 7) : TU_VALS(6, -6, 14), 3);
  }
  ck_assert_int_eq(mt_zero_grad(x), MT_OK);
  mt_tensor *g = (mt_tensor *)1;
  ck_assert_int_eq(mt_grad(x, &g), MT_OK);
  ck_assert_ptr_null(g);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_each_leaf_owns_its_gradient) {
  /* an add hands one gradient to both inputs: writing one leaf's in place
   * must not change the other's */
  mt_tensor *a = leaf(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *b = leaf(TU_VALS(3, 4), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_add(a, b));
  mt_tensor *gy = TU_TENSOR(TU_VALS(5, 6), 1, TU_SHAPE(2), MT_FLOAT64);
  ck_assert_int_eq(mt_backward(y, gy), MT_OK);
  mt_tensor *ga = grad_of(a);
  mt_tensor *zero = TU_TENSOR(TU_VALS(0, 0), 1, TU_SHAPE(2), MT_FLOAT64);
  ck_assert_int_eq(mt_copy_(ga, zero), MT_OK);
  ck_assert_int_eq(mt_copy_(gy, zero), MT_OK); /* nor the caller's grad */
  check_grad(a, TU_VALS(0, 0), 2);
  check_grad(b, TU_VALS(5, 6), 2);
  mt_tensor_free(zero), mt_tensor_free(ga), mt_tensor_free(gy), mt_tensor_free(y);
  mt_tensor_free(b), mt_tensor_free(a);
}
END_TEST

START_TEST(test_broadcast_summed_back) {
  mt_tensor *a = leaf(TU_VALS(1, 2, 3), 2, TU_SHAPE(3, 1), MT_FLOAT64);
  mt_tensor *b = leaf(TU_VALS(10, 20, 30, 40), 1, TU_SHAPE(4), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_mul(a, b)); /* [3, 4] */
  backward_sum(y);
  check_grad(a, TU_VALS(100, 100, 100), 3); /* sum of b */
  check_grad(b, TU_VALS(6, 6, 6, 6), 4);    /* sum of a */
  mt_tensor_free(y), mt_tensor_free(a), mt_tensor_free(b);
}
END_TEST

START_TEST(test_non_contiguous_leaf_and_views) {
  mt_tensor *base = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5, 6), 2, TU_SHAPE(2, 3), MT_FLOAT64);
  mt_tensor *x = TU_OK(mt_transpose(base, 0, 1)); /* [3, 2], strides (1, 3) */
  ck_assert_int_eq(mt_set_requires_grad(x, 1), MT_OK);
  mt_tensor *row = TU_OK(mt_slice(x, 0, 1, 3, 1)); /* rows 1, 2 */
  mt_tensor *w = TU_TENSOR(TU_VALS(1, 2, 3, 4), 2, TU_SHAPE(2, 2), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_mul(row, w));
  backward_sum(y);
  mt_tensor *g = grad_of(x);
  TU_CHECK_META(g, MT_FLOAT64, 2, TU_SHAPE(3, 2));
  TU_CHECK_CLOSE(g, TU_VALS(0, 0, 1, 2, 3, 4), 6, 0, 0);
  ck_assert(mt_is_contiguous(g));
  mt_tensor_free(g), mt_tensor_free(y), mt_tensor_free(w), mt_tensor_free(row);
  mt_tensor_free(x), mt_tensor_free(base);
}
END_TEST

START_TEST(test_gradient_keeps_the_leaf_dtype) {
  mt_tensor *x = leaf(TU_VALS(0.5, 1.5), 1, TU_SHAPE(2), MT_FLOAT32);
  mt_tensor *d = TU_OK(mt_cast(x, MT_FLOAT64));
  mt_tensor *y = TU_OK(mt_mul_scalar(d, 3));
  backward_sum(y);
  mt_tensor *g = grad_of(x);
  TU_CHECK_META(g, MT_FLOAT32, 1, TU_SHAPE(2));
  TU_CHECK_CLOSE(g, TU_VALS(3, 3), 2, 0, 0);
  mt_tensor_free(g), mt_tensor_free(y), mt_tensor_free(d), mt_tensor_free(x);
}
END_TEST

START_TEST(test_explicit_gradient) {
  mt_tensor *x = leaf(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_exp(x));
  mt_tensor *gy = TU_TENSOR(TU_VALS(1, 0, -2), 1, TU_SHAPE(3), MT_FLOAT64);
  ck_assert_int_eq(mt_backward(y, gy), MT_OK);
  check_grad(x, TU_VALS(exp(1), 0, -2 * exp(3)), 3);
  mt_tensor *bad = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *y2 = TU_OK(mt_exp(x));
  ck_assert_int_eq(mt_backward(y2, bad), MT_ERR_SHAPE);
  ck_assert_int_eq(mt_backward(y2, NULL), MT_ERR_SHAPE); /* 3 elements, no gradient */
  mt_tensor_free(y2), mt_tensor_free(bad), mt_tensor_free(gy), mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_grad_mode_and_detach) {
  mt_tensor *x = leaf(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  ck_assert(mt_grad_enabled());
  mt_set_grad_enabled(0);
  mt_tensor *off = TU_OK(mt_mul(x, x));
  mt_set_grad_enabled(1);
  ck_assert(!mt_requires_grad(off));
  ck_assert_int_eq(mt_backward(off, NULL), MT_ERR_INVALID_ARGUMENT);
  mt_tensor *d = TU_OK(mt_detach(x));
  ck_assert(!mt_requires_grad(d));
  mt_tensor *y = TU_OK(mt_mul(x, d)); /* d is a constant: dy/dx = d */
  backward_sum(y);
  check_grad(x, TU_VALS(1, 2), 2);
  mt_tensor *g = (mt_tensor *)1;
  ck_assert_int_eq(mt_grad(y, &g), MT_OK); /* not a leaf: no gradient kept */
  ck_assert_ptr_null(g);
  mt_tensor_free(y), mt_tensor_free(d), mt_tensor_free(off), mt_tensor_free(x);
}
END_TEST

START_TEST(test_requires_grad_errors) {
  mt_tensor *i = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_INT64);
  ck_assert_int_eq(mt_set_requires_grad(i, 1), MT_ERR_DTYPE);
  ck_assert(!mt_requires_grad(i));
  mt_tensor *x = leaf(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_exp(x));
  ck_assert(mt_requires_grad(y));
  ck_assert_int_eq(mt_set_requires_grad(y, 0), MT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mt_set_requires_grad(NULL, 1), MT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mt_backward(NULL, NULL), MT_ERR_INVALID_ARGUMENT);
  /* a comparison has no gradient: its result requires none */
  mt_tensor *c = TU_OK(mt_gt(x, y));
  ck_assert(!mt_requires_grad(c));
  mt_tensor_free(c), mt_tensor_free(y), mt_tensor_free(x), mt_tensor_free(i);
}
END_TEST

START_TEST(test_in_place_write_after_keep) {
  mt_tensor *x = leaf(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *w = TU_TENSOR(TU_VALS(3, 4), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_mul(x, w)); /* mul keeps w for x's gradient */
  mt_tensor *z = TU_TENSOR(TU_VALS(5, 5), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *w_view = TU_OK(mt_slice(w, 0, 1, 2, 1));
  mt_tensor *z1 = TU_OK(mt_slice(z, 0, 0, 1, 1));
  ck_assert_int_eq(mt_copy_(w_view, z1), MT_OK); /* a write through a view counts too */
  mt_tensor_free(z1);
  mt_tensor *s = TU_OK(mt_sum(y, 0, NULL, 0));
  mt_clear_error();
  ck_assert_int_eq(mt_backward(s, NULL), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "mt_mul"));
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "modified in place"));
  mt_tensor *g = (mt_tensor *)1;
  ck_assert_int_eq(mt_grad(x, &g), MT_OK); /* nothing accumulated */
  ck_assert_ptr_null(g);
  /* writes into or from a tensor that requires grad need grad mode off */
  ck_assert_int_eq(mt_copy_(x, z), MT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mt_copy_(y, z), MT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mt_copy_(z, y), MT_ERR_INVALID_ARGUMENT);
  mt_set_grad_enabled(0);
  ck_assert_int_eq(mt_copy_(x, z), MT_OK);
  mt_set_grad_enabled(1);
  mt_tensor_free(s), mt_tensor_free(w_view), mt_tensor_free(z), mt_tensor_free(y);
  mt_tensor_free(w), mt_tensor_free(x);
}
END_TEST

START_TEST(test_second_backward_is_refused) {
  mt_tensor *x = leaf(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_mul(x, x));
  mt_tensor *s = TU_OK(mt_sum(y, 0, NULL, 0));
  ck_assert_int_eq(mt_backward(s, NULL), MT_OK);
  mt_clear_error();
  ck_assert_int_eq(mt_backward(s, NULL), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "already freed"));
  check_grad(x, TU_VALS(2, 4), 2); /* the first one's gradient only */
  /* an op that keeps nothing can be walked again, as in torch */
  mt_tensor *t = TU_OK(mt_add(x, x));
  mt_tensor *st = TU_OK(mt_sum(t, 0, NULL, 0));
  ck_assert_int_eq(mt_backward(st, NULL), MT_OK);
  ck_assert_int_eq(mt_backward(st, NULL), MT_OK);
  check_grad(x, TU_VALS(6, 8), 2);
  mt_tensor_free(st), mt_tensor_free(t), mt_tensor_free(s), mt_tensor_free(y), mt_tensor_free(x);
}
END_TEST

START_TEST(test_cat_of_many_inputs) {
  /* every one of 40 inputs gets its slice of the gradient */
  mt_tensor *parts[40];
  for (int i = 0; i < 40; i++) parts[i] = leaf(TU_VALS(1), 1, TU_SHAPE(1), MT_FLOAT64);
  mt_tensor *all = TU_OK(mt_cat(40, (const mt_tensor *const *)parts, 0));
  mt_tensor *w = TU_OK(mt_arange(0, 40, 1, MT_FLOAT64, TU_CPU));
  mt_tensor *y = TU_OK(mt_mul(all, w));
  backward_sum(y);
  for (int i = 0; i < 40; i++) {
    check_grad(parts[i], (const double[]){(double)i}, 1);
    mt_tensor_free(parts[i]);
  }
  mt_tensor_free(y), mt_tensor_free(w), mt_tensor_free(all);
}
END_TEST

START_TEST(test_long_chain) {
  /* 20000 nodes deep: the walk and the freeing use no recursion */
  mt_tensor *x = leaf(TU_VALS(0.5), 0, NULL, MT_FLOAT64);
  mt_tensor *y = TU_OK(mt_mul_scalar(x, 1.0));
  for (int k = 0; k < 20000; k++) {
    mt_tensor *next = TU_OK(mt_add_scalar(y, 1e-4));
    mt_tensor_free(y);
    y = next;
  }
  ck_assert_int_eq(mt_backward(y, NULL), MT_OK);
  check_grad(x, TU_VALS(1), 1);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_outputs_outlive_inputs) {
  /* The tape keeps what it needs even after the caller frees its inputs. */
  mt_tensor *x = leaf(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), MT_FLOAT64);
  mt_tensor *a = TU_OK(mt_mul_scalar(x, 2));
  mt_tensor *b = TU_OK(mt_mul(a, a)); /* 4 x^2 */
  mt_tensor_free(a);
  backward_sum(b);
  check_grad(x, TU_VALS(8, 16, 24), 3);
  mt_tensor_free(b);
  mt_tensor_free(x);
}
END_TEST

static Suite *autograd_suite(void) {
  Suite *s = suite_create("autograd");
  TCase *tc = tcase_create("autograd");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_used_twice_and_accumulated);
  tcase_add_test(tc, test_each_leaf_owns_its_gradient);
  tcase_add_test(tc, test_broadcast_summed_back);
  tcase_add_test(tc, test_non_contiguous_leaf_and_views);
  tcase_add_test(tc, test_gradient_keeps_the_leaf_dtype);
  tcase_add_test(tc, test_explicit_gradient);
  tcase_add_test(tc, test_grad_mode_and_detach);
  tcase_add_test(tc, test_requires_grad_errors);
  tcase_add_test(tc, test_in_place_write_after_keep);
  tcase_add_test(tc, test_second_backward_is_refused);
  tcase_add_test(tc, test_cat_of_many_inputs);
  tcase_add_test(tc, test_long_chain);
  tcase_add_test(tc, test_outputs_outlive_inputs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(autograd_suite()); }
