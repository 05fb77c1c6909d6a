/*
 * test_optim.c - mt_sgd, mt_adamw, mt_optimizer_* and mt_clip_grad_norm on
 * the cpu, against updates computed by hand and against a reference written
 * here from torch.optim's documented algorithms (in double, with the state
 * and the param rounded to their dtype after each step, as the tensors
 * hold them).
 *
 * Gradients are made by the backward of sum(p * G), which gives p exactly
 * the gradient G.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "test_util.h"

static const mt_dtype float_dtypes[] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};

/* A leaf that requires grad, holding v. */
static mt_tensor *param_of(const double *v, int64_t n, mt_dtype dt) {
  mt_tensor *p = TU_TENSOR(v, 1, (int64_t[]){n}, dt);
  TU_CHECK_OK(mt_set_requires_grad(p, 1));
  return p;
}

/* Makes G (n values, p's dtype) p's gradient: drops the old one, then the
 * backward of sum(p * G). */
static void set_grad(mt_tensor *p, const double *g, int64_t n) {
  TU_CHECK_OK(mt_zero_grad(p));
  mt_tensor *G = TU_TENSOR(g, 1, (int64_t[]){n}, mt_tensor_dtype(p));
  mt_tensor *prod = TU_OK(mt_mul(p, G));
  mt_tensor *loss = TU_OK(mt_sum(prod, 0, NULL, 0));
  TU_CHECK_OK(mt_backward(loss, NULL));
  mt_tensor_free(loss);
  mt_tensor_free(prod);
  mt_tensor_free(G);
}

/* ------------------------------------------------------------ by hand */

START_TEST(test_sgd_by_hand) {
  const double p0[] = {1, -2}, g[] = {0.5, 0.25};
  /* plain: p - lr * g */
  mt_tensor *p = param_of(p0, 2, MT_FLOAT64);
  mt_optimizer *opt = mt_sgd(1, &p, 0.1, 0, 0, 0);
  ck_assert_ptr_nonnull(opt);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.95, -2.025), 2, 1e-15, 1e-15);
  mt_optimizer_free(opt);
  mt_tensor_free(p);

  /* weight decay: d = g + wd * p */
  p = param_of(p0, 2, MT_FLOAT64);
  opt = mt_sgd(1, &p, 0.1, 0, 0.1, 0);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.94, -2.005), 2, 1e-15, 1e-15);
  mt_optimizer_free(opt);
  mt_tensor_free(p);

  /* momentum 0.9: buf = g on the first step, then 0.9 buf + g */
  p = param_of(p0, 2, MT_FLOAT64);
  opt = mt_sgd(1, &p, 0.1, 0.9, 0, 0);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.95, -2.025), 2, 1e-15, 1e-15);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.855, -2.0725), 2, 1e-15, 1e-15);
  mt_optimizer_free(opt);
  mt_tensor_free(p);

  /* nesterov: d = g + 0.9 buf (buf = g on the first step: 1.9 g) */
  p = param_of(p0, 2, MT_FLOAT64);
  opt = mt_sgd(1, &p, 0.1, 0.9, 0, 1);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.905, -2.0475), 2, 1e-15, 1e-15);
  /* second step: buf = 0.9 g + g = 1.9 g, d = g + 0.9 * 1.9 g = 2.71 g */
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(p, TU_VALS(0.905 - 0.1 * 2.71 * 0.5, -2.0475 - 0.1 * 2.71 * 0.25), 2, 1e-15,
                 1e-15);
  mt_optimizer_free(opt);
  mt_tensor_free(p);
}
END_TEST

START_TEST(test_adamw_by_hand) {
  const double p0[] = {1, -2}, g[] = {0.5, 0.25};
  mt_tensor *p = param_of(p0, 2, MT_FLOAT64);
  mt_optimizer *opt = mt_adamw(1, &p, 0.1, 0.9, 0.999, 1e-8, 0.01);
  ck_assert_ptr_nonnull(opt);
  set_grad(p, g, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  /* step 1: p (1 - 0.001); m = 0.1 g, v = 0.001 g^2; bc1 = 0.1, bc2 = 0.001:
   * p - (0.1 / 0.1) * 0.1 g / (|g| + eps) */
  double e0 = 0.999 - 0.05 / (0.5 + 1e-8), e1 = -1.998 - 0.025 / (0.25 + 1e-8);
  TU_CHECK_CLOSE(p, TU_VALS(e0, e1), 2, 1e-14, 1e-14);
  /* step 2 with gradient -g: m = 0.09 g - 0.1 g = -0.01 g, v = 0.000999 g^2 +
   * 0.001 g^2 = 0.001999 g^2; bc1 = 0.19, bc2 = 1 - 0.999^2 = 0.001999 */
  const double ng[] = {-0.5, -0.25};
  set_grad(p, ng, 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  double bc2 = 1 - 0.999 * 0.999;
  double f0 = e0 * 0.999 - (0.1 / 0.19) * (-0.005) / (sqrt(0.001999 * 0.25) / sqrt(bc2) + 1e-8);
  double f1 = e1 * 0.999 - (0.1 / 0.19) * (-0.0025) /
                               (sqrt(0.001999 * 0.0625) / sqrt(bc2) + 1e-8);
  TU_CHECK_CLOSE(p, TU_VALS(f0, f1), 2, 1e-12, 1e-13);
  mt_optimizer_free(opt);
  mt_tensor_free(p);
}
END_TEST

/* ------------------------------------------------------------ reference */

#define N 37

typedef struct ref_state {
  double p[N], buf[N], m[N], v[N];
  int step;
} ref_state;

static double grad_value(int step, int i) {
  return tu_value((uint64_t)(step * N + i), -2, 2) + (i % 3 == 0 ? 0.0625 : 0);
}

/* torch.optim.SGD (dampening 0), in double, state rounded to dt. */
static void ref_sgd(ref_state *s, const double *g, double lr, double mom, double wd, int nest,
                    mt_dtype dt) {
  for (int i = 0; i < N; i++) {
    double d = g[i] + wd * s->p[i];
    if (mom > 0) {
      s->buf[i] = ref_round_to(s->step == 0 ? d : s->buf[i] * mom + d, dt);
      d = nest ? d + mom * s->buf[i] : s->buf[i];
    }
    s->p[i] = ref_round_to(s->p[i] - lr * d, dt);
  }
  s->step++;
}

/* torch.optim.AdamW, in double, state rounded to dt. */
static void ref_adamw(ref_state *s, const double *g, double lr, double b1, double b2, double eps,
                      double wd, mt_dtype dt) {
  s->step++;
  double bc1 = 1 - pow(b1, s->step), bc2 = 1 - pow(b2, s->step);
  for (int i = 0; i < N; i++) {
    s->m[i] = ref_round_to(b1 * s->m[i] + (1 - b1) * g[i], dt);
    s->v[i] = ref_round_to(b2 * s->v[i] + (1 - b2) * g[i] * g[i], dt);
    double p = s->p[i] * (1 - lr * wd);
    s->p[i] = ref_round_to(p - lr / bc1 * s->m[i] / (sqrt(s->v[i]) / sqrt(bc2) + eps), dt);
  }
}

/* The param after each of 4 steps against the reference, every dtype. */
static void run_reference(int adamw, double mom, double wd, int nest) {
  for (int k = 0; k < TU_COUNT(float_dtypes); k++) {
    mt_dtype dt = float_dtypes[k];
    ref_state s = {{0}, {0}, {0}, {0}, 0};
    for (int i = 0; i < N; i++) s.p[i] = ref_round_to(tu_value((uint64_t)i + 1000, -3, 3), dt);
    mt_tensor *p = param_of(s.p, N, dt);
    const double lr = adamw ? 0.01 : 0.05;
    mt_optimizer *opt = adamw ? mt_adamw(1, &p, lr, 0.9, 0.99, 1e-6, wd)
                              : mt_sgd(1, &p, lr, mom, wd, nest);
    ck_assert_ptr_nonnull(opt);
    for (int step = 0; step < 4; step++) {
      double g[N];
      for (int i = 0; i < N; i++) g[i] = ref_round_to(grad_value(step, i), dt);
      set_grad(p, g, N);
      TU_CHECK_OK(mt_optimizer_step(opt));
      if (adamw)
        ref_adamw(&s, g, lr, 0.9, 0.99, 1e-6, wd, dt);
      else
        ref_sgd(&s, g, lr, mom, wd, nest, dt);
      double rtol, atol;
      tu_tol(dt, &rtol, &atol);
      /* float32 math rounds a float16/bfloat16 state once per step where the
       * reference's double may round it the other way: two of its units */
      if (dt == MT_FLOAT16) rtol = 2e-3, atol = 2e-3;
      if (dt == MT_BFLOAT16) rtol = 1.6e-2, atol = 1.6e-2;
      TU_CHECK_CLOSE(p, s.p, N, rtol, atol);
    }
    mt_optimizer_free(opt);
    mt_tensor_free(p);
  }
}

START_TEST(test_sgd_reference) {
  run_reference(0, 0, 0, 0);
  run_reference(0, 0, 0.01, 0);
  run_reference(0, 0.9, 0, 0);
  run_reference(0, 0.8, 0.05, 0);
  run_reference(0, 0.9, 0.01, 1);
}
END_TEST

START_TEST(test_adamw_reference) {
  run_reference(1, 0, 0, 0);
  run_reference(1, 0, 0.1, 0);
}
END_TEST

/* ------------------------------------------------------------ behaviour */

/* A param without a gradient is left alone, and its AdamW step count does
 * not advance: its first update later is a step 1 (bias corrections). */
START_TEST(test_param_without_grad_skipped) {
  const double v[] = {1, 2, 3};
  mt_tensor *a = param_of(v, 3, MT_FLOAT64), *b = param_of(v, 3, MT_FLOAT64);
  mt_tensor *ps[2] = {a, b};
  mt_optimizer *opt = mt_adamw(2, ps, 0.1, 0.9, 0.999, 1e-8, 0);
  ck_assert_ptr_nonnull(opt);
  const double g[] = {0.5, -0.5, 1};
  for (int step = 0; step < 3; step++) {
    set_grad(a, g, 3);
    TU_CHECK_OK(mt_optimizer_step(opt));
  }
  TU_CHECK_RAW(b, TU_VALS(1, 2, 3), 3);
  /* b's first step: (lr / bc1) m / (sqrt(v / bc2) + eps) = lr * g / (|g| + eps) */
  TU_CHECK_OK(mt_optimizer_zero_grad(opt));
  set_grad(b, g, 3);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_CLOSE(b, TU_VALS(1 - 0.1 * 0.5 / (0.5 + 1e-8), 2 + 0.1 * 0.5 / (0.5 + 1e-8),
                            3 - 0.1 / (1 + 1e-8)), 3, 1e-14, 1e-14);
  mt_optimizer_free(opt);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* The step writes into the caller's tensor (the same storage), survives the
 * caller freeing its handle, and bumps the version: a backward through
 * values kept before the step fails. set_lr applies to the next step. */
START_TEST(test_step_in_place_and_set_lr) {
  const double v[] = {1, 2};
  mt_tensor *p = param_of(v, 2, MT_FLOAT32);
  mt_tensor *view = TU_OK(mt_to(p, TU_CPU, MT_FLOAT32, 0));
  mt_optimizer *opt = mt_sgd(1, &p, 0.5, 0, 0, 0);
  ck_assert_ptr_nonnull(opt);
  set_grad(p, TU_VALS(1, 1), 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_RAW(view, ((const float[]){0.5f, 1.5f}), 2);
  TU_CHECK_OK(mt_optimizer_set_lr(opt, 0.25));
  set_grad(p, TU_VALS(1, 1), 2);
  mt_tensor_free(p); /* the optimizer keeps its own handle */
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_RAW(view, ((const float[]){0.25f, 1.25f}), 2);
  /* zero_grad drops the gradient the caller's handle sees */
  TU_CHECK_OK(mt_optimizer_zero_grad(opt));
  mt_tensor *g = NULL;
  TU_CHECK_OK(mt_grad(view, &g));
  ck_assert_ptr_null(g);
  /* a graph that kept view's values, then a step that writes them */
  mt_tensor *sq = TU_OK(mt_mul(view, view));
  mt_tensor *loss = TU_OK(mt_sum(sq, 0, NULL, 0));
  set_grad(view, TU_VALS(1, 1), 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_STATUS(mt_backward(loss, NULL), MT_ERR_INVALID_ARGUMENT, "mt_backward");
  mt_tensor_free(sq);
  mt_tensor_free(loss);
  mt_optimizer_free(opt);
  mt_tensor_free(view);
}
END_TEST

/* The step runs with grad mode off and restores the caller's mode; its
 * results require no grad. */
START_TEST(test_step_restores_grad_mode) {
  mt_tensor *p = param_of(TU_VALS(1, 2), 2, MT_FLOAT32);
  mt_optimizer *opt = mt_sgd(1, &p, 0.1, 0.9, 0, 0);
  ck_assert_ptr_nonnull(opt);
  set_grad(p, TU_VALS(1, 1), 2);
  TU_CHECK_OK(mt_optimizer_step(opt));
  ck_assert_int_eq(mt_grad_enabled(), 1);
  mt_set_grad_enabled(0);
  TU_CHECK_OK(mt_optimizer_step(opt));
  ck_assert_int_eq(mt_grad_enabled(), 0);
  mt_set_grad_enabled(1);
  ck_assert_int_eq(mt_requires_grad(p), 1); /* still the leaf */
  /* 1 - 0.1 * 1, then buf = 1.9: 0.9 - 0.19 */
  TU_CHECK_CLOSE(p, TU_VALS(0.71, 1.71), 2, 1e-6, 1e-6);
  mt_optimizer_free(opt);
  mt_tensor_free(p);
}
END_TEST

START_TEST(test_bad_arguments) {
  mt_tensor *p = param_of(TU_VALS(1, 2), 2, MT_FLOAT32);
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_INT32);
  mt_tensor *two = TU_OK(mt_mul_scalar(p, 2)); /* made by a recorded op */
  mt_tensor *ps[1] = {p};
#define OPT_FAILS(expr, st, fn)                                   \
  do {                                                            \
    mt_clear_error();                                             \
    mt_optimizer *o_ = (expr);                                    \
    ck_assert_msg(o_ == NULL, "%s succeeded", #expr);            \
    tu_check_error_at(__FILE__, __LINE__, #expr, st, fn);         \
  } while (0)
  OPT_FAILS(mt_sgd(0, ps, 0.1, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, NULL, 0.1, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, (mt_tensor *[]){NULL}, 0.1, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, &ints, 0.1, 0, 0, 0), MT_ERR_DTYPE, "mt_sgd");
  OPT_FAILS(mt_sgd(1, &two, 0.1, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, ps, -0.1, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, ps, NAN, 0, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, ps, 0.1, -0.5, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, ps, 0.1, 0, -1, 0), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_sgd(1, ps, 0.1, 0, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_sgd");
  OPT_FAILS(mt_adamw(1, ps, -1, 0.9, 0.999, 1e-8, 0), MT_ERR_INVALID_ARGUMENT, "mt_adamw");
  OPT_FAILS(mt_adamw(1, ps, 0.1, 1.0, 0.999, 1e-8, 0), MT_ERR_INVALID_ARGUMENT, "mt_adamw");
  OPT_FAILS(mt_adamw(1, ps, 0.1, 0.9, -0.1, 1e-8, 0), MT_ERR_INVALID_ARGUMENT, "mt_adamw");
  OPT_FAILS(mt_adamw(1, ps, 0.1, 0.9, 0.999, -1, 0), MT_ERR_INVALID_ARGUMENT, "mt_adamw");
  OPT_FAILS(mt_adamw(1, ps, 0.1, 0.9, 0.999, 1e-8, INFINITY), MT_ERR_INVALID_ARGUMENT,
            "mt_adamw");
  OPT_FAILS(mt_adamw(1, &ints, 0.1, 0.9, 0.999, 1e-8, 0), MT_ERR_DTYPE, "mt_adamw");
#undef OPT_FAILS
  TU_STATUS(mt_optimizer_step(NULL), MT_ERR_INVALID_ARGUMENT, "mt_optimizer_step");
  TU_STATUS(mt_optimizer_zero_grad(NULL), MT_ERR_INVALID_ARGUMENT, "mt_optimizer_zero_grad");
  TU_STATUS(mt_optimizer_set_lr(NULL, 0.1), MT_ERR_INVALID_ARGUMENT, "mt_optimizer_set_lr");
  mt_optimizer *opt = mt_sgd(1, ps, 0.1, 0, 0, 0);
  ck_assert_ptr_nonnull(opt);
  TU_STATUS(mt_optimizer_set_lr(opt, -1), MT_ERR_INVALID_ARGUMENT, "mt_optimizer_set_lr");
  TU_STATUS(mt_optimizer_set_lr(opt, INFINITY), MT_ERR_INVALID_ARGUMENT, "mt_optimizer_set_lr");
  /* no gradient yet: nothing changes */
  TU_CHECK_OK(mt_optimizer_step(opt));
  TU_CHECK_RAW(p, ((const float[]){1, 2}), 2);
  mt_optimizer_free(opt);
  mt_optimizer_free(NULL);
  mt_tensor *total = NULL;
  TU_STATUS(mt_clip_grad_norm(1, ps, 0, &total), MT_ERR_INVALID_ARGUMENT, "mt_clip_grad_norm");
  TU_STATUS(mt_clip_grad_norm(1, ps, -1, &total), MT_ERR_INVALID_ARGUMENT, "mt_clip_grad_norm");
  TU_STATUS(mt_clip_grad_norm(1, ps, NAN, &total), MT_ERR_INVALID_ARGUMENT, "mt_clip_grad_norm");
  TU_STATUS(mt_clip_grad_norm(-1, ps, 1, &total), MT_ERR_INVALID_ARGUMENT, "mt_clip_grad_norm");
  TU_STATUS(mt_clip_grad_norm(1, NULL, 1, &total), MT_ERR_INVALID_ARGUMENT, "mt_clip_grad_norm");
  ck_assert_ptr_null(total);
  mt_tensor_free(p);
  mt_tensor_free(ints);
  mt_tensor_free(two);
}
END_TEST

/* ------------------------------------------------------------ clipping */

START_TEST(test_clip_grad_norm) {
  for (int k = 0; k < TU_COUNT(float_dtypes); k++) {
    mt_dtype dt = float_dtypes[k];
    mt_tensor *a = param_of(TU_VALS(1, 1), 2, dt), *b = param_of(TU_VALS(1), 1, dt);
    mt_tensor *c = param_of(TU_VALS(5), 1, dt); /* no gradient */
    mt_tensor *ps[3] = {a, c, b};
    set_grad(a, TU_VALS(3, 4), 2);
    set_grad(b, TU_VALS(12), 1);
    mt_tensor *total = NULL;
    /* total 13: no clipping under max_norm 100 */
    TU_CHECK_OK(mt_clip_grad_norm(3, ps, 100, &total));
    TU_CHECK_META(total, MT_FLOAT32, 0, NULL);
    TU_CHECK_CLOSE(total, TU_VALS(13), 1, 1e-6, 0);
    mt_tensor_free(total);
    mt_tensor *g = NULL;
    TU_CHECK_OK(mt_grad(a, &g));
    TU_CHECK_VALUES(g, TU_VALS(3, 4), 2);
    mt_tensor_free(g);
    /* max_norm 6.5: factor 6.5 / (13 + 1e-6) */
    double f = 6.5 / (13 + 1e-6);
    TU_CHECK_OK(mt_clip_grad_norm(3, ps, 6.5, &total));
    TU_CHECK_CLOSE(total, TU_VALS(13), 1, 1e-6, 0);
    TU_CHECK_OK(mt_grad(a, &g));
    TU_CHECK_VALUES(g, TU_VALS(3 * f, 4 * f), 2);
    mt_tensor_free(g);
    TU_CHECK_OK(mt_grad(b, &g));
    TU_CHECK_VALUES(g, TU_VALS(12 * f), 1);
    mt_tensor_free(g);
    mt_tensor_free(total);
    /* total_norm NULL is allowed; an infinite max_norm clips nothing */
    TU_CHECK_OK(mt_clip_grad_norm(3, ps, INFINITY, NULL));
    /* no gradients: total 0 */
    TU_CHECK_OK(mt_clip_grad_norm(1, &c, 1, &total));
    TU_CHECK_META(total, MT_FLOAT32, 0, NULL);
    TU_CHECK_RAW(total, ((const float[]){0}), 1);
    mt_tensor_free(total);
    TU_CHECK_OK(mt_clip_grad_norm(0, NULL, 1, &total));
    TU_CHECK_RAW(total, ((const float[]){0}), 1);
    mt_tensor_free(total);
    mt_tensor_free(a), mt_tensor_free(b), mt_tensor_free(c);
  }
}
END_TEST

/* Leaves whose gradients came from one add (the same gradient values for
 * both): each counts in the total, and each ends up scaled once. */
START_TEST(test_clip_shared_gradient) {
  mt_tensor *a = param_of(TU_VALS(1, 2), 2, MT_FLOAT32), *b = param_of(TU_VALS(3, 4), 2,
                                                                        MT_FLOAT32);
  mt_tensor *w = TU_TENSOR(TU_VALS(3, 4), 1, TU_SHAPE(2), MT_FLOAT32);
  mt_tensor *sum = TU_OK(mt_add(a, b)), *prod = TU_OK(mt_mul(sum, w));
  mt_tensor *loss = TU_OK(mt_sum(prod, 0, NULL, 0));
  TU_CHECK_OK(mt_backward(loss, NULL));
  mt_tensor *ps[2] = {a, b}, *total = NULL, *g = NULL;
  TU_CHECK_OK(mt_clip_grad_norm(2, ps, 1, &total));
  double norm = sqrt(50), f = 1 / (norm + 1e-6);
  TU_CHECK_CLOSE(total, TU_VALS(norm), 1, 1e-6, 0);
  for (int k = 0; k < 2; k++) {
    TU_CHECK_OK(mt_grad(ps[k], &g));
    TU_CHECK_VALUES(g, TU_VALS(3 * f, 4 * f), 2);
    mt_tensor_free(g);
  }
  mt_tensor_free(total), mt_tensor_free(loss), mt_tensor_free(prod), mt_tensor_free(sum);
  mt_tensor_free(w), mt_tensor_free(a), mt_tensor_free(b);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("updates");
  tcase_add_test(tc, test_sgd_by_hand);
  tcase_add_test(tc, test_adamw_by_hand);
  tcase_add_test(tc, test_sgd_reference);
  tcase_add_test(tc, test_adamw_reference);
  suite_add_tcase(s, tc);
  tc = tcase_create("behaviour");
  tcase_add_test(tc, test_param_without_grad_skipped);
  tcase_add_test(tc, test_step_in_place_and_set_lr);
  tcase_add_test(tc, test_step_restores_grad_mode);
  tcase_add_test(tc, test_bad_arguments);
  tcase_add_test(tc, test_clip_grad_norm);
  tcase_add_test(tc, test_clip_shared_gradient);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(optim_suite()); }
