/*
 * test_elementwise_ops.c - the general elementwise ops of 0.2 on cpu,
 * against double-precision libm references and values worked out by hand
 * (checked against PyTorch 1.13): every dtype each op takes, the refused
 * ones, NaN/inf, integer division by zero and INT_MIN / -1, broadcasting,
 * strided and 0-d/empty inputs, and a tensor large enough to be threaded.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define DTYPE_I (tu_all_dtypes[_i])
#define PI 3.14159265358979323846

typedef mt_tensor *(*unary_fn)(const mt_tensor *);
typedef mt_tensor *(*binary_fn)(const mt_tensor *, const mt_tensor *);

static double ref_softplus(double x) { return x > 20 ? x : log1p(exp(x)); }
static double ref_gelu_tanh(double x) {
  return 0.5 * x * (1 + tanh(sqrt(2 / PI) * (x + 0.044715 * x * x * x)));
}
static double ref_mish(double x) { return x * tanh(ref_softplus(x)); }

/* The floating-result unary ops, each with an input range inside its
 * domain (so that the reference is not NaN everywhere). */
static const struct {
  unary_fn fn;
  double (*ref)(double);
  double lo, hi;
  const char *name;
} float_unops[] = {
    {mt_erf, erf, -4, 4, "erf"},          {mt_erfc, erfc, -4, 4, "erfc"},
    {mt_log1p, log1p, -0.875, 8, "log1p"}, {mt_expm1, expm1, -4, 4, "expm1"},
    {mt_log2, log2, 0.125, 16, "log2"},    {mt_log10, log10, 0.125, 16, "log10"},
    {mt_tan, tan, -1.5, 1.5, "tan"},       {mt_asin, asin, -1, 1, "asin"},
    {mt_acos, acos, -1, 1, "acos"},        {mt_atan, atan, -8, 8, "atan"},
    {mt_sinh, sinh, -4, 4, "sinh"},        {mt_cosh, cosh, -4, 4, "cosh"},
    {mt_asinh, asinh, -8, 8, "asinh"},     {mt_acosh, acosh, 1, 9, "acosh"},
    {mt_atanh, atanh, -0.875, 0.875, "atanh"}, {mt_softplus, ref_softplus, -30, 30, "softplus"},
    {mt_gelu_tanh, ref_gelu_tanh, -6, 6, "gelu_tanh"}, {mt_mish, ref_mish, -6, 6, "mish"},
};

/* Checks f(a) against ref applied to a's stored values, in out's dtype. */
static void check_unary_ref(const char *name, unary_fn f, double (*ref)(double), mt_tensor *a,
                            mt_dtype out_dtype) {
  mt_tensor *r = TU_OK(f(a));
  ck_assert_msg(mt_tensor_dtype(r) == out_dtype, "%s(%s): dtype %s", name,
                mt_dtype_name(mt_tensor_dtype(a)), mt_dtype_name(mt_tensor_dtype(r)));
  int64_t n = mt_numel(a);
  double *in = TU_READ(a), *exp = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) exp[i] = ref_round_to(ref(in[i]), out_dtype);
  double rtol, atol;
  tu_tol(out_dtype, &rtol, &atol);
  tu_check_close_at(__FILE__, __LINE__, r, exp, n, 4 * rtol, 4 * atol);
  free(in);
  free(exp);
  mt_tensor_free(r);
}

/* Every float-result op on every dtype (integers and bool give float32),
 * contiguous and as a transposed view. */
START_TEST(test_unary_float_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_dtype out = ref_is_float(d) ? d : MT_FLOAT32;
  for (int k = 0; k < TU_COUNT(float_unops); k++) {
    double v[48];
    for (int i = 0; i < 48; i++) v[i] = tu_value((uint64_t)i, float_unops[k].lo, float_unops[k].hi);
    mt_tensor *a = TU_TENSOR(v, 2, TU_SHAPE(6, 8), d);
    mt_tensor *t = TU_OK(mt_transpose(a, 0, 1));
    check_unary_ref(float_unops[k].name, float_unops[k].fn, float_unops[k].ref, a, out);
    check_unary_ref(float_unops[k].name, float_unops[k].fn, float_unops[k].ref, t, out);
    mt_tensor_free(t);
    mt_tensor_free(a);
  }
}
END_TEST

/* Out-of-domain arguments give NaN, poles give inf, and NaN passes. */
START_TEST(test_unary_float_specials) {
  mt_tensor *a = TU_TENSOR(TU_VALS(-2, 2, NAN, INFINITY, -INFINITY, -1, 1, 0), 1, TU_SHAPE(8),
                           MT_FLOAT32);
  struct {
    unary_fn fn;
    double exp[8];
  } cases[] = {
      {mt_asin, {NAN, NAN, NAN, NAN, NAN, -PI / 2, PI / 2, 0}},
      {mt_acosh, {NAN, acosh(2), NAN, INFINITY, NAN, NAN, 0, NAN}},
      {mt_atanh, {NAN, NAN, NAN, NAN, NAN, -INFINITY, INFINITY, 0}},
      {mt_log1p, {NAN, log1p(2), NAN, INFINITY, NAN, -INFINITY, log1p(1), 0}},
      {mt_log2, {NAN, 1, NAN, INFINITY, NAN, NAN, 0, -INFINITY}},
      {mt_erf, {erf(-2), erf(2), NAN, 1, -1, erf(-1), erf(1), 0}},
      {mt_expm1, {expm1(-2), expm1(2), NAN, INFINITY, -1, expm1(-1), expm1(1), 0}},
      {mt_softplus, {log1p(exp(-2)), log1p(exp(2)), NAN, INFINITY, 0, log1p(exp(-1)),
                     log1p(exp(1)), log(2)}},
      {mt_mish, {ref_mish(-2), ref_mish(2), NAN, INFINITY, NAN, ref_mish(-1), ref_mish(1), 0}},
      {mt_gelu_tanh, {ref_gelu_tanh(-2), ref_gelu_tanh(2), NAN, INFINITY, NAN, ref_gelu_tanh(-1),
                      ref_gelu_tanh(1), 0}},
  };
  for (int k = 0; k < TU_COUNT(cases); k++) {
    mt_tensor *r = TU_OK(cases[k].fn(a));
    TU_CHECK_VALUES(r, cases[k].exp, 8);
    mt_tensor_free(r);
  }
  mt_tensor_free(a);
}
END_TEST

/* trunc rounds toward zero keeping -0; integers and bool are unchanged. */
START_TEST(test_trunc) {
  mt_tensor *a = TU_TENSOR(TU_VALS(-0.5, 2.75, -2.75, NAN, INFINITY, 1e30), 1, TU_SHAPE(6),
                           MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_trunc(a));
  TU_CHECK_VALUES(r, TU_VALS(-0.0, 2, -2, NAN, INFINITY, (double)1e30f), 6);
  double *v = TU_READ(r);
  ck_assert(signbit(v[0]));
  free(v);
  mt_tensor_free(r);
  mt_tensor_free(a);
  for (int k = 0; k < REF_NUM_DTYPES; k++) {
    mt_dtype d = tu_all_dtypes[k];
    mt_tensor *b = TU_TENSOR(TU_VALS(1, 0, 5, 1), 1, TU_SHAPE(4), d);
    r = TU_OK(mt_trunc(b));
    TU_CHECK_META(r, d, 1, TU_SHAPE(4));
    double *want = ref_read(b);
    TU_CHECK_VALUES(r, want, 4);
    free(want);
    mt_tensor_free(r);
    mt_tensor_free(b);
  }
}
END_TEST

/* square keeps the dtype: integers wrap, bool stays bool (x and x). */
START_TEST(test_square) {
  static const struct {
    mt_dtype d;
    double in[3], exp[3];
  } cases[] = {
      {MT_UINT8, {200, 3, 16}, {64, 9, 0}},           /* 40000 mod 256, 256 mod 256 */
      {MT_INT8, {-12, 11, 16}, {-112, 121, 0}},       /* 144 wraps to -112 */
      {MT_INT32, {-46341, 3, 0}, {-2147479015, 9, 0}}, /* 2147488281 wraps */
      {MT_INT64, {-3037000500.0, 7, -1}, {(double)(int64_t)(3037000500ull * 3037000500ull), 49, 1}},
      {MT_BOOL, {1, 0, 1}, {1, 0, 1}},
      {MT_FLOAT32, {-1.5, NAN, -INFINITY}, {2.25, NAN, INFINITY}},
      {MT_FLOAT16, {300, 0.5, -2}, {INFINITY, 0.25, 4}},
  };
  for (int k = 0; k < TU_COUNT(cases); k++) {
    mt_tensor *a = TU_TENSOR(cases[k].in, 1, TU_SHAPE(3), cases[k].d);
    mt_tensor *r = TU_OK(mt_square(a));
    TU_CHECK_META(r, cases[k].d, 1, TU_SHAPE(3));
    TU_CHECK_VALUES(r, cases[k].exp, 3);
    mt_tensor_free(r);
    mt_tensor_free(a);
  }
}
END_TEST

/* bitwise_not: ~x for integers, not for bool; floats are refused. */
START_TEST(test_bitwise_not) {
  mt_tensor *a = TU_TENSOR(TU_VALS(0, 5, 255), 1, TU_SHAPE(3), MT_UINT8);
  mt_tensor *r = TU_OK(mt_bitwise_not(a));
  TU_CHECK_VALUES(r, TU_VALS(255, 250, 0), 3);
  mt_tensor_free(r);
  mt_tensor_free(a);
  a = TU_TENSOR(TU_VALS(0, 5, -128), 1, TU_SHAPE(3), MT_INT8);
  r = TU_OK(mt_bitwise_not(a));
  TU_CHECK_VALUES(r, TU_VALS(-1, -6, 127), 3);
  mt_tensor_free(r);
  mt_tensor_free(a);
  int64_t big[2] = {INT64_MIN, 0x123456789abcdefll};
  a = TU_OK(mt_from_data(big, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  r = TU_OK(mt_bitwise_not(a));
  int64_t exp[2] = {INT64_MAX, ~0x123456789abcdefll};
  TU_CHECK_RAW(r, exp, 2);
  mt_tensor_free(r);
  mt_tensor_free(a);
  uint8_t bytes[3] = {0, 1, 7}; /* bool storage: any non-zero byte is true */
  a = TU_OK(mt_from_data(bytes, 1, TU_SHAPE(3), MT_BOOL, TU_CPU));
  r = TU_OK(mt_bitwise_not(a));
  TU_CHECK_META(r, MT_BOOL, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(1, 0, 0), 3);
  mt_tensor_free(r);
  mt_tensor_free(a);
  a = TU_TENSOR(TU_VALS(1), 1, TU_SHAPE(1), MT_FLOAT32);
  TU_FAILS(mt_bitwise_not(a), MT_ERR_DTYPE, "mt_bitwise_not");
  mt_tensor_free(a);
}
END_TEST

/* isnan / isinf / isfinite give bool for every dtype. */
START_TEST(test_predicates_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_tensor *a = TU_TENSOR(TU_VALS(NAN, INFINITY, -INFINITY, 0, -1, 1), 2, TU_SHAPE(2, 3), d);
  mt_tensor *t = TU_OK(mt_transpose(a, 0, 1));
  int fl = ref_is_float(d);
  mt_tensor *r = TU_OK(mt_isnan(t));
  TU_CHECK_META(r, MT_BOOL, 2, TU_SHAPE(3, 2));
  TU_CHECK_VALUES(r, fl ? TU_VALS(1, 0, 0, 0, 0, 0) : TU_VALS(0, 0, 0, 0, 0, 0), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_isinf(t));
  TU_CHECK_VALUES(r, fl ? TU_VALS(0, 0, 1, 0, 1, 0) : TU_VALS(0, 0, 0, 0, 0, 0), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_isfinite(t));
  TU_CHECK_VALUES(r, fl ? TU_VALS(0, 1, 0, 1, 0, 1) : TU_VALS(1, 1, 1, 1, 1, 1), 6);
  mt_tensor_free(r);
  mt_tensor_free(t);
  mt_tensor_free(a);
}
END_TEST

/* Binary op on two 1-d float64 tensors of n values. */
static void check_binary_f64(binary_fn f, const double *a, const double *b, const double *exp,
                             int n) {
  mt_tensor *x = TU_TENSOR(a, 1, TU_SHAPE(n), MT_FLOAT64);
  mt_tensor *y = TU_TENSOR(b, 1, TU_SHAPE(n), MT_FLOAT64);
  mt_tensor *r = TU_OK(f(x, y));
  TU_CHECK_VALUES(r, exp, n);
  mt_tensor_free(r);
  mt_tensor_free(x);
  mt_tensor_free(y);
}

/* Float division with zero, inf and signs (values from PyTorch). */
START_TEST(test_division_float) {
  const double a[] = {5, -5, 5, INFINITY, 3, -3, 3, 0, -5, NAN};
  const double b[] = {-3, 3, 0, 2, INFINITY, -INFINITY, -INFINITY, 0, 0, 1};
  check_binary_f64(mt_remainder, a, b,
                   TU_VALS(-1, 1, NAN, NAN, 3, -3, -INFINITY, NAN, NAN, NAN), 10);
  check_binary_f64(mt_fmod, a, b, TU_VALS(2, -2, NAN, NAN, 3, -3, 3, NAN, NAN, NAN), 10);
  check_binary_f64(mt_floor_divide, a, b,
                   TU_VALS(-2, -2, INFINITY, NAN, 0, 0, -1, NAN, -INFINITY, NAN), 10);
  /* Python: 0.3 // 0.1 == 2.0 and 0.3 % 0.1 == 0.1 (fmod's exact remainder). */
  check_binary_f64(mt_floor_divide, TU_VALS(0.3, -7.5), TU_VALS(0.1, 2), TU_VALS(2, -4), 2);
  check_binary_f64(mt_remainder, TU_VALS(0.3, -7.5), TU_VALS(0.1, 2),
                   TU_VALS(fmod(0.3, 0.1), 0.5), 2);
  /* A zero quotient keeps the sign of a / b: 1 // 4 is 0, -0 // 4 is -0. */
  mt_tensor *x = TU_TENSOR(TU_VALS(1, -0.0), 1, TU_SHAPE(2), MT_FLOAT32);
  mt_tensor *y = TU_TENSOR(TU_VALS(4), 0, NULL, MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_floor_divide(x, y));
  double *v = TU_READ(r);
  ck_assert(v[0] == 0 && !signbit(v[0]) && v[1] == 0 && signbit(v[1]));
  free(v);
  mt_tensor_free(r);
  mt_tensor_free(x);
  mt_tensor_free(y);
}
END_TEST

/* Python's // and % of small integers, from floor of the exact quotient. */
static int64_t py_floordiv(int64_t a, int64_t b) { return (int64_t)floor((double)a / (double)b); }
static int64_t py_mod(int64_t a, int64_t b) { return a - b * py_floordiv(a, b); }

/* Integer division in every integer dtype against the reference, with a
 * broadcast divisor, and a divisor 0 as an error naming the op. */
START_TEST(test_division_int_every_dtype) {
  mt_dtype d = DTYPE_I;
  if (!ref_is_int(d)) return;
  int uns = d == MT_UINT8;
  double av[12], bv[4] = {3, -4, 7, -1};
  if (uns) bv[1] = 4, bv[3] = 1;
  for (int i = 0; i < 12; i++) av[i] = uns ? i * 9 : i * 9 - 50;
  mt_tensor *a = TU_TENSOR(av, 2, TU_SHAPE(3, 4), d), *b = TU_TENSOR(bv, 1, TU_SHAPE(4), d);
  double fd[12], rm[12], fm[12];
  for (int i = 0; i < 12; i++) {
    int64_t x = (int64_t)av[i], y = (int64_t)bv[i % 4];
    fd[i] = (double)py_floordiv(x, y);
    rm[i] = (double)py_mod(x, y);
    fm[i] = (double)(x - y * (int64_t)trunc((double)x / (double)y));
  }
  binary_fn fns[3] = {mt_floor_divide, mt_remainder, mt_fmod};
  const double *exps[3] = {fd, rm, fm};
  const char *names[3] = {"mt_floor_divide", "mt_remainder", "mt_fmod"};
  mt_tensor *zero = TU_TENSOR(TU_VALS(1, 0, 2, 3), 1, TU_SHAPE(4), d);
  for (int k = 0; k < 3; k++) {
    mt_tensor *r = TU_OK(fns[k](a, b));
    TU_CHECK_META(r, d, 2, TU_SHAPE(3, 4));
    TU_CHECK_VALUES(r, exps[k], 12);
    mt_tensor_free(r);
    TU_FAILS(fns[k](a, zero), MT_ERR_INVALID_ARGUMENT, names[k]);
    ck_assert_msg(strstr(mt_last_error(), "division by zero"), "%s", mt_last_error());
  }
  mt_tensor_free(zero);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* INT_MIN / -1 wraps (no SIGFPE); mixed dtypes promote; two bools and
 * bool with integers follow PyTorch. */
START_TEST(test_division_int_edges) {
  int64_t mn[2] = {INT64_MIN, 7}, m1[2] = {-1, -1};
  mt_tensor *a = TU_OK(mt_from_data(mn, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *b = TU_OK(mt_from_data(m1, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *r = TU_OK(mt_floor_divide(a, b));
  int64_t q[2] = {INT64_MIN, -7}, z[2] = {0, 0};
  TU_CHECK_RAW(r, q, 2);
  mt_tensor_free(r);
  r = TU_OK(mt_remainder(a, b));
  TU_CHECK_RAW(r, z, 2);
  mt_tensor_free(r);
  r = TU_OK(mt_fmod(a, b));
  TU_CHECK_RAW(r, z, 2);
  mt_tensor_free(r);
  mt_tensor_free(a);
  mt_tensor_free(b);
  int32_t mn32 = INT32_MIN, m132 = -1;
  a = TU_OK(mt_from_data(&mn32, 0, NULL, MT_INT32, TU_CPU));
  b = TU_OK(mt_from_data(&m132, 0, NULL, MT_INT32, TU_CPU));
  r = TU_OK(mt_floor_divide(a, b));
  TU_CHECK_RAW(r, &mn32, 1);
  mt_tensor_free(r);
  mt_tensor_free(a);
  mt_tensor_free(b);
  /* int8 with uint8 computes in int16: -7 % 3 == 2 */
  a = TU_TENSOR(TU_VALS(-7), 1, TU_SHAPE(1), MT_INT8);
  b = TU_TENSOR(TU_VALS(3), 1, TU_SHAPE(1), MT_UINT8);
  r = TU_OK(mt_remainder(a, b));
  TU_CHECK_META(r, MT_INT16, 1, TU_SHAPE(1));
  TU_CHECK_VALUES(r, TU_VALS(2), 1);
  mt_tensor_free(r);
  mt_tensor_free(b);
  /* with a float the result is the float: -7 // 2.5 == -3 */
  b = TU_TENSOR(TU_VALS(2.5), 0, NULL, MT_FLOAT32);
  r = TU_OK(mt_floor_divide(a, b));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(1));
  TU_CHECK_VALUES(r, TU_VALS(-3), 1);
  mt_tensor_free(r);
  mt_tensor_free(b);
  mt_tensor_free(a);
  a = TU_TENSOR(TU_VALS(1, 0), 1, TU_SHAPE(2), MT_BOOL);
  TU_FAILS(mt_remainder(a, a), MT_ERR_DTYPE, "mt_remainder");
  TU_FAILS(mt_floor_divide(a, a), MT_ERR_DTYPE, "mt_floor_divide");
  TU_FAILS(mt_fmod(a, a), MT_ERR_DTYPE, "mt_fmod");
  mt_tensor_free(a);
}
END_TEST

/* A divisor 0 deep inside a large strided (threaded) operand is found. */
START_TEST(test_division_large_threaded) {
  int64_t n = 1 << 18;
  int32_t *av = malloc(sizeof(int32_t) * (size_t)n * 2), *bv = malloc(sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < 2 * n; i++) av[i] = (int32_t)(i * 2654435761u) >> 8;
  for (int64_t i = 0; i < n; i++) bv[i] = (int32_t)(i % 97) - 48 + ((i % 97) == 48);
  mt_tensor *base = TU_OK(mt_from_data(av, 1, TU_SHAPE(2 * n), MT_INT32, TU_CPU));
  mt_tensor *a = TU_OK(mt_slice(base, 0, 0, 2 * n, 2));
  mt_tensor *b = TU_OK(mt_from_data(bv, 1, TU_SHAPE(n), MT_INT32, TU_CPU));
  mt_tensor *r = TU_OK(mt_remainder(a, b));
  int32_t *got = malloc(sizeof(int32_t) * (size_t)n);
  TU_CHECK_OK(mt_to_host(r, got, sizeof(int32_t) * (size_t)n));
  for (int64_t i = 0; i < n; i++)
    TU_EXPECT(got[i] == (int32_t)py_mod(av[2 * i], bv[i]), "element %lld: %d %% %d gave %d",
              (long long)i, av[2 * i], bv[i], got[i]);
  mt_tensor_free(r);
  mt_tensor_free(b);
  bv[n - 3] = 0;
  b = TU_OK(mt_from_data(bv, 1, TU_SHAPE(n), MT_INT32, TU_CPU));
  TU_FAILS(mt_floor_divide(a, b), MT_ERR_INVALID_ARGUMENT, "mt_floor_divide");
  mt_tensor_free(b);
  mt_tensor_free(a);
  mt_tensor_free(base);
  free(got);
  free(av);
  free(bv);
}
END_TEST

/* and/or/xor of integers (promoted) and bools; floats refused. */
START_TEST(test_bitwise_binary) {
  mt_tensor *a = TU_TENSOR(TU_VALS(12, -1, 0, 5), 1, TU_SHAPE(4), MT_INT16);
  mt_tensor *b = TU_TENSOR(TU_VALS(10, 255, 7), 2, TU_SHAPE(3, 1), MT_UINT8);
  mt_tensor *r = TU_OK(mt_bitwise_and(a, b));
  TU_CHECK_META(r, MT_INT16, 2, TU_SHAPE(3, 4));
  TU_CHECK_VALUES(r, TU_VALS(8, 10, 0, 0, 12, 255, 0, 5, 4, 7, 0, 5), 12);
  mt_tensor_free(r);
  r = TU_OK(mt_bitwise_or(a, b));
  TU_CHECK_VALUES(r, TU_VALS(14, -1, 10, 15, 255, -1, 255, 255, 15, -1, 7, 7), 12);
  mt_tensor_free(r);
  r = TU_OK(mt_bitwise_xor(a, b));
  TU_CHECK_VALUES(r, TU_VALS(6, -11, 10, 15, 243, -256, 255, 250, 11, -8, 7, 2), 12);
  mt_tensor_free(r);
  mt_tensor *t = TU_TENSOR(TU_VALS(1, 1, 0, 0), 1, TU_SHAPE(4), MT_BOOL);
  mt_tensor *u = TU_TENSOR(TU_VALS(1, 0, 1, 0), 1, TU_SHAPE(4), MT_BOOL);
  binary_fn fns[3] = {mt_bitwise_and, mt_bitwise_or, mt_bitwise_xor};
  const double *exps[3] = {TU_VALS(1, 0, 0, 0), TU_VALS(1, 1, 1, 0), TU_VALS(0, 1, 1, 0)};
  for (int k = 0; k < 3; k++) {
    r = TU_OK(fns[k](t, u));
    TU_CHECK_META(r, MT_BOOL, 1, TU_SHAPE(4));
    TU_CHECK_VALUES(r, exps[k], 4);
    mt_tensor_free(r);
  }
  r = TU_OK(mt_bitwise_and(a, t)); /* bool with int16: int16 */
  TU_CHECK_META(r, MT_INT16, 1, TU_SHAPE(4));
  TU_CHECK_VALUES(r, TU_VALS(0, 1, 0, 0), 4);
  mt_tensor_free(r);
  mt_tensor *f = TU_TENSOR(TU_VALS(1, 2, 3, 4), 1, TU_SHAPE(4), MT_FLOAT32);
  TU_FAILS(mt_bitwise_or(a, f), MT_ERR_DTYPE, "mt_bitwise_or");
  TU_FAILS(mt_bitwise_xor(f, a), MT_ERR_DTYPE, "mt_bitwise_xor");
  mt_tensor_free(f);
  mt_tensor_free(t);
  mt_tensor_free(u);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* logical_xor takes any dtypes (non-zero is true) and gives bool. */
START_TEST(test_logical_xor) {
  mt_tensor *a = TU_TENSOR(TU_VALS(3, -3, 0, 0), 1, TU_SHAPE(4), MT_INT32);
  mt_tensor *b = TU_TENSOR(TU_VALS(0, 1.5, NAN, 0), 1, TU_SHAPE(4), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_logical_xor(a, b));
  TU_CHECK_META(r, MT_BOOL, 1, TU_SHAPE(4));
  TU_CHECK_VALUES(r, TU_VALS(1, 0, 1, 0), 4);
  mt_tensor_free(r);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* atan2 against libm, integers give float32, quadrants and zeros. */
START_TEST(test_atan2) {
  const double y[] = {1, 1, -1, -1, 0, -0.0, 0, INFINITY, NAN};
  const double x[] = {1, -1, 1, -1, -1, -1, 0, INFINITY, 1};
  double exp[9];
  for (int i = 0; i < 9; i++) exp[i] = atan2(y[i], x[i]);
  check_binary_f64(mt_atan2, y, x, exp, 9);
  mt_tensor *a = TU_TENSOR(TU_VALS(3, -3), 1, TU_SHAPE(2), MT_INT32);
  mt_tensor *r = TU_OK(mt_atan2(a, a));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(r, TU_VALS(atan2(3, 3), atan2(-3, -3)), 2);
  mt_tensor_free(r);
  mt_tensor_free(a);
}
END_TEST

/* leaky_relu and elu keep floating dtypes and refuse integers. */
START_TEST(test_leaky_relu_elu) {
  const double v[] = {-2, -0.5, 0, 3, NAN, -INFINITY};
  for (int k = 0; k < REF_NUM_DTYPES; k++) {
    mt_dtype d = tu_all_dtypes[k];
    mt_tensor *a = TU_TENSOR(v, 1, TU_SHAPE(6), d);
    if (!ref_is_float(d)) {
      TU_FAILS(mt_leaky_relu(a, 0.01), MT_ERR_DTYPE, "mt_leaky_relu");
      TU_FAILS(mt_elu(a, 1.0), MT_ERR_DTYPE, "mt_elu");
      mt_tensor_free(a);
      continue;
    }
    mt_tensor *r = TU_OK(mt_leaky_relu(a, 0.25));
    TU_CHECK_META(r, d, 1, TU_SHAPE(6));
    TU_CHECK_VALUES(r, TU_VALS(-0.5, -0.125, 0, 3, NAN, -INFINITY), 6);
    mt_tensor_free(r);
    r = TU_OK(mt_elu(a, 1.5));
    TU_CHECK_VALUES(r, TU_VALS(1.5 * expm1(-2), 1.5 * expm1(-0.5), 0, 3, NAN, -1.5), 6);
    mt_tensor_free(r);
    mt_tensor_free(a);
  }
}
END_TEST

/* nan_to_num replaces each special value; the replacement is converted to
 * the dtype; integers and bool come back unchanged. */
START_TEST(test_nan_to_num) {
  mt_tensor *a = TU_TENSOR(TU_VALS(NAN, INFINITY, -INFINITY, -1.5), 1, TU_SHAPE(4), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_nan_to_num(a, 0, FLT_MAX, -FLT_MAX));
  TU_CHECK_VALUES(r, TU_VALS(0, FLT_MAX, -FLT_MAX, -1.5), 4);
  mt_tensor_free(r);
  r = TU_OK(mt_nan_to_num(a, 7, -8, 9));
  TU_CHECK_VALUES(r, TU_VALS(7, -8, 9, -1.5), 4);
  mt_tensor_free(r);
  mt_tensor_free(a);
  a = TU_TENSOR(TU_VALS(NAN, INFINITY, -INFINITY), 1, TU_SHAPE(3), MT_FLOAT16);
  r = TU_OK(mt_nan_to_num(a, 0, 1e10, -65504));
  TU_CHECK_META(r, MT_FLOAT16, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(0, INFINITY, -65504), 3); /* 1e10 is inf in float16 */
  mt_tensor_free(r);
  mt_tensor_free(a);
  a = TU_TENSOR(TU_VALS(5, -7, 0), 1, TU_SHAPE(3), MT_INT64);
  r = TU_OK(mt_nan_to_num(a, 1, 2, 3));
  TU_CHECK_META(r, MT_INT64, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(5, -7, 0), 3);
  mt_tensor_free(r);
  mt_tensor_free(a);
}
END_TEST

/* masked_fill: a broadcast mask, a strided a, value conversions and the
 * refused masks and values. */
START_TEST(test_masked_fill) {
  mt_tensor *base = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5, 6), 2, TU_SHAPE(3, 2), MT_FLOAT32);
  mt_tensor *a = TU_OK(mt_transpose(base, 0, 1)); /* [[1 3 5] [2 4 6]] */
  mt_tensor *mask = TU_TENSOR(TU_VALS(1, 0, 1), 1, TU_SHAPE(3), MT_BOOL);
  mt_tensor *r = TU_OK(mt_masked_fill(a, mask, NAN));
  TU_CHECK_META(r, MT_FLOAT32, 2, TU_SHAPE(2, 3));
  TU_CHECK_VALUES(r, TU_VALS(NAN, 3, NAN, NAN, 4, NAN), 6);
  mt_tensor_free(r);
  mt_tensor *i8 = TU_TENSOR(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), MT_INT8);
  r = TU_OK(mt_masked_fill(i8, mask, -1.7)); /* toward zero, as a cast */
  TU_CHECK_VALUES(r, TU_VALS(-1, 2, -1), 3);
  mt_tensor_free(r);
  TU_FAILS(mt_masked_fill(i8, mask, 300), MT_ERR_INVALID_ARGUMENT, "mt_masked_fill");
  TU_FAILS(mt_masked_fill(i8, mask, NAN), MT_ERR_INVALID_ARGUMENT, "mt_masked_fill");
  TU_FAILS(mt_masked_fill(a, mask, 1e300), MT_ERR_INVALID_ARGUMENT, "mt_masked_fill");
  mt_tensor *b = TU_TENSOR(TU_VALS(0, 0, 1), 1, TU_SHAPE(3), MT_BOOL);
  r = TU_OK(mt_masked_fill(b, mask, 0.5)); /* non-zero is true */
  TU_CHECK_VALUES(r, TU_VALS(1, 0, 1), 3);
  mt_tensor_free(r);
  mt_tensor *wide = TU_TENSOR(TU_VALS(1, 0, 1, 0, 1, 0), 2, TU_SHAPE(2, 3), MT_BOOL);
  TU_FAILS(mt_masked_fill(i8, wide, 0), MT_ERR_SHAPE, "mt_masked_fill"); /* mask is larger */
  mt_tensor *imask = TU_TENSOR(TU_VALS(1, 0, 1), 1, TU_SHAPE(3), MT_INT32);
  TU_FAILS(mt_masked_fill(i8, imask, 0), MT_ERR_DTYPE, "mt_masked_fill");
  mt_tensor *empty = TU_OK(mt_zeros(2, TU_SHAPE(0, 3), MT_FLOAT64, TU_CPU));
  r = TU_OK(mt_masked_fill(empty, mask, 1));
  TU_CHECK_META(r, MT_FLOAT64, 2, TU_SHAPE(0, 3));
  mt_tensor_free(r);
  TU_FAILS(mt_masked_fill(NULL, mask, 1), MT_ERR_INVALID_ARGUMENT, "mt_masked_fill");
  mt_tensor_free(empty);
  mt_tensor_free(imask);
  mt_tensor_free(wide);
  mt_tensor_free(b);
  mt_tensor_free(i8);
  mt_tensor_free(mask);
  mt_tensor_free(a);
  mt_tensor_free(base);
}
END_TEST

static Suite *elementwise_ops_suite(void) {
  Suite *s = suite_create("elementwise_ops");
  TCase *tc = tcase_create("unary");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_unary_float_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_unary_float_specials);
  tcase_add_test(tc, test_trunc);
  tcase_add_test(tc, test_square);
  tcase_add_test(tc, test_bitwise_not);
  tcase_add_loop_test(tc, test_predicates_every_dtype, 0, REF_NUM_DTYPES);
  suite_add_tcase(s, tc);

  tc = tcase_create("binary");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_division_float);
  tcase_add_loop_test(tc, test_division_int_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_division_int_edges);
  tcase_add_test(tc, test_division_large_threaded);
  tcase_add_test(tc, test_bitwise_binary);
  tcase_add_test(tc, test_logical_xor);
  tcase_add_test(tc, test_atan2);
  suite_add_tcase(s, tc);

  tc = tcase_create("parametric");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_leaky_relu_elu);
  tcase_add_test(tc, test_nan_to_num);
  tcase_add_test(tc, test_masked_fill);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(elementwise_ops_suite()); }
