/*
 * test_elementwise.c - binary, scalar and unary ops, where, clamp and cast,
 * against the double-precision reference in ref.c: every dtype, promotion,
 * broadcasting, strided inputs, 0-d and empty tensors, and the NaN, rounding
 * and wrap-around rules of the contract.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define DTYPE_I (tu_all_dtypes[_i])

typedef mt_tensor *(*binary_fn)(const mt_tensor *, const mt_tensor *);
typedef mt_tensor *(*unary_fn)(const mt_tensor *);
typedef mt_tensor *(*scalar_fn)(const mt_tensor *, double);

static const struct {
  ref_binop op;
  binary_fn fn;
  const char *name;
} binops[REF_NUM_BINOPS] = {
    {REF_ADD, mt_add, "mt_add"},          {REF_SUB, mt_sub, "mt_sub"},
    {REF_MUL, mt_mul, "mt_mul"},          {REF_DIV, mt_div, "mt_div"},
    {REF_POW, mt_pow, "mt_pow"},          {REF_MAX, mt_maximum, "mt_maximum"},
    {REF_MIN, mt_minimum, "mt_minimum"},  {REF_EQ, mt_eq, "mt_eq"},
    {REF_NE, mt_ne, "mt_ne"},             {REF_LT, mt_lt, "mt_lt"},
    {REF_LE, mt_le, "mt_le"},             {REF_GT, mt_gt, "mt_gt"},
    {REF_GE, mt_ge, "mt_ge"},             {REF_AND, mt_logical_and, "mt_logical_and"},
    {REF_OR, mt_logical_or, "mt_logical_or"},
};

static const struct {
  ref_unop op;
  unary_fn fn;
  const char *name;
} unops[REF_NUM_UNOPS] = {
    {REF_NEG, mt_neg, "mt_neg"},          {REF_ABS, mt_abs, "mt_abs"},
    {REF_EXP, mt_exp, "mt_exp"},          {REF_LOG, mt_log, "mt_log"},
    {REF_SQRT, mt_sqrt, "mt_sqrt"},       {REF_RSQRT, mt_rsqrt, "mt_rsqrt"},
    {REF_SIN, mt_sin, "mt_sin"},          {REF_COS, mt_cos, "mt_cos"},
    {REF_TANH, mt_tanh, "mt_tanh"},       {REF_SIGMOID, mt_sigmoid, "mt_sigmoid"},
    {REF_RELU, mt_relu, "mt_relu"},       {REF_GELU, mt_gelu, "mt_gelu"},
    {REF_SILU, mt_silu, "mt_silu"},       {REF_FLOOR, mt_floor, "mt_floor"},
    {REF_CEIL, mt_ceil, "mt_ceil"},       {REF_ROUND, mt_round, "mt_round"},
    {REF_SIGN, mt_sign, "mt_sign"},       {REF_RECIPROCAL, mt_reciprocal, "mt_reciprocal"},
    {REF_NOT, mt_logical_not, "mt_logical_not"},
};

/* ------------------------------------------------------------ inputs */

enum { DOMAIN_FULL, DOMAIN_SMALL, DOMAIN_EXPONENT };

/* Value number i of a test input of dtype d: integers over (most of) the
 * dtype's range so that arithmetic wraps, floats in [-4, 4) in steps of 1/8
 * (exact in every float dtype). DOMAIN_SMALL keeps integers in [-100, 100]
 * so that they are exact in every dtype; DOMAIN_EXPONENT suits pow. */
static double sample(mt_dtype d, uint64_t i, int domain) {
  if (d == MT_BOOL) return tu_value(i, 0, 2) >= 1.0;
  if (ref_is_float(d)) return domain == DOMAIN_EXPONENT ? tu_value(i, -3, 3) : tu_value(i, -4, 4);
  if (domain == DOMAIN_EXPONENT) return floor(tu_value(i, d == MT_UINT8 ? 0 : -3, 6));
  if (domain == DOMAIN_SMALL) return floor(tu_value(i, d == MT_UINT8 ? 0 : -100, 101));
  switch (d) {
  case MT_UINT8: return floor(tu_value(i, 0, 256));
  case MT_INT8: return floor(tu_value(i, -128, 128));
  case MT_INT16: return floor(tu_value(i, -32768, 32768));
  case MT_INT32: return floor(tu_value(i, -2147483648.0, 2147483648.0));
  default: return floor(tu_value(i, -1048576.0, 1048577.0));
  }
}

enum { LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED, LAYOUT_STEPPED, LAYOUT_EXPANDED };

/* A tensor of logical shape (ndim, shape) with values sample(d, seed + k)
 * laid out as asked: a transposed view, every other column of a wider
 * tensor, or (for LAYOUT_EXPANDED) row 0 expanded over dim 0. */
static mt_tensor *make_input(mt_dtype d, int ndim, const int64_t *shape, uint64_t seed, int domain,
                             int layout) {
  int64_t n = ref_numel(ndim, shape);
  int64_t phys[MT_MAX_DIMS];
  for (int i = 0; i < ndim; i++) phys[i] = shape[i];
  if (ndim < 2 && layout == LAYOUT_TRANSPOSED) layout = LAYOUT_CONTIGUOUS;
  if (ndim < 1) layout = LAYOUT_CONTIGUOUS;
  if (layout == LAYOUT_TRANSPOSED) {
    phys[ndim - 2] = shape[ndim - 1];
    phys[ndim - 1] = shape[ndim - 2];
  } else if (layout == LAYOUT_STEPPED) {
    phys[ndim - 1] = 2 * shape[ndim - 1];
  } else if (layout == LAYOUT_EXPANDED) {
    phys[0] = 1;
  }
  int64_t pn = ref_numel(ndim, phys);
  double *v = malloc(sizeof(double) * (size_t)(pn ? pn : 1));
  for (int64_t k = 0; k < pn; k++) v[k] = sample(d, seed + (uint64_t)k, domain);
  mt_tensor *base = TU_TENSOR(v, ndim, phys, d);
  free(v);
  mt_tensor *t = base;
  if (layout == LAYOUT_TRANSPOSED) t = TU_OK(mt_transpose(base, -1, -2));
  if (layout == LAYOUT_STEPPED) t = TU_OK(mt_slice(base, -1, 0, phys[ndim - 1], 2));
  if (layout == LAYOUT_EXPANDED) t = TU_OK(mt_expand(base, ndim, shape));
  if (t != base) mt_tensor_free(base);
  TU_EXPECT(mt_numel(t) == n, "numel");
  return t;
}

static void describe(char *buf, size_t len, const char *op, const mt_tensor *a, const mt_tensor *b) {
  int used = snprintf(buf, len, "%s(", op);
  const mt_tensor *ts[2] = {a, b};
  for (int k = 0; k < (b ? 2 : 1) && used < (int)len; k++) {
    used += snprintf(buf + used, len - (size_t)used, "%s%s[", k ? ", " : "",
                     mt_dtype_name(mt_tensor_dtype(ts[k])));
    for (int d = 0; d < mt_ndim(ts[k]) && used < (int)len; d++)
      used += snprintf(buf + used, len - (size_t)used, d ? ",%lld" : "%lld",
                       (long long)mt_shape(ts[k], d));
    if (used < (int)len)
      used += snprintf(buf + used, len - (size_t)used, "]%s", mt_is_contiguous(ts[k]) ? "" : "~");
  }
  if (used < (int)len) snprintf(buf + used, len - (size_t)used, ")");
}

/* --------------------------------------------------------- binary harness */

/* Runs binops[k] on a and b and checks dtype, shape and every value. */
static void check_binary(int k, const mt_tensor *a, const mt_tensor *b) {
  char ctx[256];
  describe(ctx, sizeof ctx, binops[k].name, a, b);
  mt_dtype da = mt_tensor_dtype(a), db = mt_tensor_dtype(b), p = ref_promote(da, db);
  ref_binop op = binops[k].op;
  if (p == MT_BOOL && (op == REF_SUB || op == REF_POW)) {
    mt_clear_error();
    mt_tensor *r = binops[k].fn(a, b);
    TU_EXPECT(r == NULL, "%s: bool operands accepted", ctx);
    tu_check_error_at(ctx, __LINE__, binops[k].name, MT_ERR_DTYPE, binops[k].name);
    return;
  }
  mt_dtype o = ref_binary_dtype(op, da, db);
  int ndim;
  int64_t shape[MT_MAX_DIMS], idx[MT_MAX_DIMS];
  int64_t as[MT_MAX_DIMS], bs[MT_MAX_DIMS];
  for (int d = 0; d < mt_ndim(a); d++) as[d] = mt_shape(a, d);
  for (int d = 0; d < mt_ndim(b); d++) bs[d] = mt_shape(b, d);
  TU_EXPECT(ref_broadcast(mt_ndim(a), as, mt_ndim(b), bs, &ndim, shape), "reference broadcast");
  mt_tensor *r = binops[k].fn(a, b);
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  TU_EXPECT(mt_tensor_dtype(r) == o, "%s: dtype %s, expected %s", ctx,
                mt_dtype_name(mt_tensor_dtype(r)), mt_dtype_name(o));
  tu_check_meta_at(ctx, __LINE__, r, o, ndim, shape);
  TU_EXPECT(mt_is_contiguous(r), "result not contiguous");
  double *av = TU_READ(a), *bv = TU_READ(b);
  int64_t n = ref_numel(ndim, shape);
  double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    ref_unravel(i, ndim, shape, idx);
    double x = av[ref_bcast_offset(idx, ndim, mt_ndim(a), as)];
    double y = bv[ref_bcast_offset(idx, ndim, mt_ndim(b), bs)];
    want[i] = ref_round_to(ref_binary(op, ref_round_to(x, p), ref_round_to(y, p), p), o);
  }
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(want);
  free(av);
  free(bv);
  mt_tensor_free(r);
}

/* Builds a and b of the given dtypes, shapes and layouts and checks op k. */
static void run_binary(int k, mt_dtype da, int andim, const int64_t *ashape, int alayout,
                       mt_dtype db, int bndim, const int64_t *bshape, int blayout, int domain) {
  int bdomain = binops[k].op == REF_POW && domain == DOMAIN_FULL ? DOMAIN_EXPONENT : domain;
  mt_tensor *a = make_input(da, andim, ashape, 1000 + (uint64_t)k, domain, alayout);
  mt_tensor *b = make_input(db, bndim, bshape, 5000 + (uint64_t)k, bdomain, blayout);
  check_binary(k, a, b);
  mt_tensor_free(a);
  mt_tensor_free(b);
}

START_TEST(test_binary_every_dtype) {
  mt_dtype d = DTYPE_I;
  for (int k = 0; k < REF_NUM_BINOPS; k++) {
    const int C = LAYOUT_CONTIGUOUS;
    run_binary(k, d, 2, TU_SHAPE(7, 33), C, d, 2, TU_SHAPE(7, 33), C, DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(7, 33), C, d, 1, TU_SHAPE(33), C, DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(3, 1), C, d, 1, TU_SHAPE(4), C, DOMAIN_FULL);
    run_binary(k, d, 3, TU_SHAPE(2, 1, 3), C, d, 3, TU_SHAPE(1, 4, 1), C, DOMAIN_FULL);
    run_binary(k, d, 0, NULL, C, d, 2, TU_SHAPE(2, 5), C, DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(5, 2), C, d, 0, NULL, C, DOMAIN_FULL);
    run_binary(k, d, 0, NULL, C, d, 0, NULL, C, DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(0, 3), C, d, 1, TU_SHAPE(3), C, DOMAIN_FULL);
    run_binary(k, d, 1, TU_SHAPE(1), C, d, 2, TU_SHAPE(4, 0), C, DOMAIN_FULL);
    /* strided operands */
    run_binary(k, d, 2, TU_SHAPE(7, 33), LAYOUT_TRANSPOSED, d, 2, TU_SHAPE(7, 33), LAYOUT_STEPPED,
               DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(9, 17), LAYOUT_EXPANDED, d, 2, TU_SHAPE(9, 17), LAYOUT_TRANSPOSED,
               DOMAIN_FULL);
    run_binary(k, d, 3, TU_SHAPE(4, 5, 6), LAYOUT_STEPPED, d, 1, TU_SHAPE(6), C, DOMAIN_FULL);
    /* long enough for vector loops and threads */
    run_binary(k, d, 1, TU_SHAPE(40003), C, d, 1, TU_SHAPE(40003), C, DOMAIN_FULL);
    run_binary(k, d, 2, TU_SHAPE(201, 170), LAYOUT_TRANSPOSED, d, 1, TU_SHAPE(170), C,
               DOMAIN_FULL);
  }
}
END_TEST

/* Every pair of dtypes: the promoted result dtype and values. */
START_TEST(test_binary_mixed_dtypes) {
  mt_dtype da = DTYPE_I;
  for (int j = 0; j < REF_NUM_DTYPES; j++) {
    mt_dtype db = tu_all_dtypes[j];
    for (int k = 0; k < REF_NUM_BINOPS; k++) {
      run_binary(k, da, 2, TU_SHAPE(3, 7), LAYOUT_CONTIGUOUS, db, 1, TU_SHAPE(7),
                 LAYOUT_CONTIGUOUS, DOMAIN_SMALL);
      run_binary(k, da, 2, TU_SHAPE(5, 9), LAYOUT_TRANSPOSED, db, 2, TU_SHAPE(5, 9),
                 LAYOUT_STEPPED, DOMAIN_SMALL);
      /* past the threading threshold, for a few ops */
      if (binops[k].op == REF_ADD || binops[k].op == REF_LT)
        run_binary(k, da, 1, TU_SHAPE(33001), LAYOUT_CONTIGUOUS, db, 1, TU_SHAPE(33001),
                   LAYOUT_CONTIGUOUS, DOMAIN_SMALL);
    }
  }
}
END_TEST

START_TEST(test_promotion_table) {
  /* Hand-written expectations (PyTorch's lattice), checked on mt_add. */
  static const struct { mt_dtype a, b, want; } table[] = {
      {MT_UINT8, MT_INT8, MT_INT16},        {MT_INT8, MT_UINT8, MT_INT16},
      {MT_UINT8, MT_INT16, MT_INT16},       {MT_UINT8, MT_INT64, MT_INT64},
      {MT_INT8, MT_INT32, MT_INT32},        {MT_INT16, MT_INT64, MT_INT64},
      {MT_INT32, MT_FLOAT16, MT_FLOAT16},   {MT_INT64, MT_BFLOAT16, MT_BFLOAT16},
      {MT_INT64, MT_FLOAT32, MT_FLOAT32},   {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32},
      {MT_BFLOAT16, MT_FLOAT16, MT_FLOAT32}, {MT_FLOAT16, MT_FLOAT32, MT_FLOAT32},
      {MT_BFLOAT16, MT_FLOAT64, MT_FLOAT64}, {MT_FLOAT32, MT_FLOAT64, MT_FLOAT64},
      {MT_BOOL, MT_BOOL, MT_BOOL},          {MT_BOOL, MT_UINT8, MT_UINT8},
      {MT_BOOL, MT_INT8, MT_INT8},          {MT_BOOL, MT_FLOAT16, MT_FLOAT16},
      {MT_UINT8, MT_UINT8, MT_UINT8},       {MT_UINT8, MT_FLOAT16, MT_FLOAT16},
  };
  for (int i = 0; i < TU_COUNT(table); i++) {
    ck_assert_msg(ref_promote(table[i].a, table[i].b) == table[i].want, "reference promote");
    mt_tensor *a = TU_OK(mt_ones(1, TU_SHAPE(2), table[i].a, TU_CPU));
    mt_tensor *b = TU_OK(mt_ones(1, TU_SHAPE(2), table[i].b, TU_CPU));
    mt_tensor *r = TU_OK(mt_add(a, b));
    ck_assert_msg(mt_tensor_dtype(r) == table[i].want, "%s + %s = %s, expected %s",
                  mt_dtype_name(table[i].a), mt_dtype_name(table[i].b),
                  mt_dtype_name(mt_tensor_dtype(r)), mt_dtype_name(table[i].want));
    mt_tensor_free(r);
    /* comparisons are bool; true division of integers is float32 */
    r = TU_OK(mt_lt(a, b));
    ck_assert_int_eq(mt_tensor_dtype(r), MT_BOOL);
    mt_tensor_free(r);
    r = TU_OK(mt_div(a, b));
    mt_dtype want = ref_is_float(table[i].want) ? table[i].want : MT_FLOAT32;
    ck_assert_msg(mt_tensor_dtype(r) == want, "%s / %s = %s", mt_dtype_name(table[i].a),
                  mt_dtype_name(table[i].b), mt_dtype_name(mt_tensor_dtype(r)));
    mt_tensor_free(r);
    mt_tensor_free(a);
    mt_tensor_free(b);
  }
}
END_TEST

/* Operands are converted to the promoted dtype before the op (as in
 * PyTorch): int32 2049 becomes float16 2048, and 257 bfloat16 256. */
START_TEST(test_operands_rounded_to_promoted) {
  mt_tensor *i = TU_TENSOR(TU_VALS(2049, 2051), 1, TU_SHAPE(2), MT_INT32);
  mt_tensor *h = TU_TENSOR(TU_VALS(2048, 2052), 1, TU_SHAPE(2), MT_FLOAT16);
  mt_tensor *r = TU_OK(mt_eq(i, h));
  TU_CHECK_VALUES(r, TU_VALS(1, 1), 2);
  mt_tensor_free(r);
  mt_tensor *half = TU_TENSOR(TU_VALS(0.5, 0.5), 1, TU_SHAPE(2), MT_FLOAT16);
  r = TU_OK(mt_add(i, half)); /* 2048 + 0.5 and 2052 + 0.5 round to even */
  TU_CHECK_META(r, MT_FLOAT16, 1, TU_SHAPE(2));
  TU_CHECK_CLOSE(r, TU_VALS(2048, 2052), 2, 0, 0);
  mt_tensor_free(r);
  mt_tensor *i257 = TU_TENSOR(TU_VALS(257), 1, TU_SHAPE(1), MT_INT32);
  mt_tensor *bh = TU_TENSOR(TU_VALS(0.5), 1, TU_SHAPE(1), MT_BFLOAT16);
  r = TU_OK(mt_add(i257, bh));
  TU_CHECK_META(r, MT_BFLOAT16, 1, TU_SHAPE(1));
  TU_CHECK_CLOSE(r, TU_VALS(256), 1, 0, 0);
  mt_tensor_free(r);
  mt_tensor_free(i257);
  mt_tensor_free(bh);
  mt_tensor_free(half);
  mt_tensor_free(i);
  mt_tensor_free(h);
}
END_TEST

/* --------------------------------------------------------- scalar ops */

static const struct {
  ref_binop op;
  scalar_fn fn;
  const char *name;
} scalar_ops[3] = {
    {REF_ADD, mt_add_scalar, "mt_add_scalar"},
    {REF_MUL, mt_mul_scalar, "mt_mul_scalar"},
    {REF_POW, mt_pow_scalar, "mt_pow_scalar"},
};

START_TEST(test_scalar_every_dtype) {
  mt_dtype d = DTYPE_I;
  static const double scalars[] = {2, 0.5, -3, 0, 2.5, -1.25};
  for (int k = 0; k < 3; k++) {
    for (int si = 0; si < TU_COUNT(scalars); si++) {
      double s = scalars[si];
      int whole = s == floor(s);
      if (d == MT_BOOL && scalar_ops[k].op == REF_POW) continue; /* not specified */
      mt_dtype o = ref_is_float(d) ? d : !whole ? MT_FLOAT32 : d == MT_BOOL ? MT_INT64 : d;
      int layouts[2] = {LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED};
      const int64_t *shapes[2] = {TU_SHAPE(40003, 1), TU_SHAPE(5, 9)};
      for (int l = si < 2 ? 0 : 1; l < 2; l++) { /* the long input for two scalars */
        int domain = scalar_ops[k].op == REF_POW ? DOMAIN_SMALL : DOMAIN_FULL;
        if (scalar_ops[k].op == REF_POW && ref_is_int(d) && !whole) domain = DOMAIN_EXPONENT;
        mt_tensor *a = make_input(d, 2, shapes[l], 77, domain, layouts[l]);
        char ctx[256];
        describe(ctx, sizeof ctx, scalar_ops[k].name, a, NULL);
        snprintf(ctx + strlen(ctx), sizeof ctx - strlen(ctx), " s=%g", s);
        mt_tensor *r = scalar_ops[k].fn(a, s);
        ck_assert_msg(r != NULL, "%s failed: %s", ctx, mt_last_error());
        tu_check_meta_at(ctx, __LINE__, r, o, 2, shapes[l]);
        int64_t n = mt_numel(a);
        double *av = TU_READ(a), *want = malloc(sizeof(double) * (size_t)n);
        /* computed in the output dtype; a whole s joins integer arithmetic
         * as the integer it is (so uint8 + -3 wraps) */
        for (int64_t i = 0; i < n; i++)
          want[i] = ref_round_to(ref_binary(scalar_ops[k].op, ref_round_to(av[i], o), s, o), o);
        double rtol, atol;
        tu_tol(o, &rtol, &atol);
        tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
        free(av);
        free(want);
        mt_tensor_free(r);
        mt_tensor_free(a);
      }
    }
  }
}
END_TEST

START_TEST(test_scalar_literals) {
  mt_tensor *b = TU_TENSOR(TU_VALS(1, 0, 1), 1, TU_SHAPE(3), MT_BOOL);
  mt_tensor *r = TU_OK(mt_add_scalar(b, 1));
  TU_CHECK_META(r, MT_INT64, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(2, 1, 2), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_mul_scalar(b, 0.5));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(0.5, 0, 0.5), 3);
  mt_tensor_free(r);
  mt_tensor_free(b);

  mt_tensor *i8 = TU_TENSOR(TU_VALS(127, -128, 5), 1, TU_SHAPE(3), MT_INT8);
  r = TU_OK(mt_add_scalar(i8, 1));
  TU_CHECK_META(r, MT_INT8, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(-128, -127, 6), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_add_scalar(i8, 0.5));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(127.5, -127.5, 5.5), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_pow_scalar(i8, 2));
  TU_CHECK_META(r, MT_INT8, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(1, 0, 25), 3); /* 127^2 = 16129 wraps to 1; (-128)^2 to 0 */
  mt_tensor_free(r);
  mt_tensor_free(i8);

  mt_tensor *u8 = TU_TENSOR(TU_VALS(200, 1, 0), 1, TU_SHAPE(3), MT_UINT8);
  r = TU_OK(mt_mul_scalar(u8, 2));
  TU_CHECK_VALUES(r, TU_VALS(144, 2, 0), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_add_scalar(u8, -3));
  TU_CHECK_META(r, MT_UINT8, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(197, 254, 253), 3);
  mt_tensor_free(r);
  mt_tensor_free(u8);

  mt_tensor *i32 = TU_TENSOR(TU_VALS(2, -2, 1, -1, 0, 3), 1, TU_SHAPE(6), MT_INT32);
  r = TU_OK(mt_pow_scalar(i32, -1));
  TU_CHECK_META(r, MT_INT32, 1, TU_SHAPE(6));
  TU_CHECK_VALUES(r, TU_VALS(0, 0, 1, -1, 0, 0), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_pow_scalar(i32, -2));
  TU_CHECK_VALUES(r, TU_VALS(0, 0, 1, 1, 0, 0), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_pow_scalar(i32, 0));
  TU_CHECK_VALUES(r, TU_VALS(1, 1, 1, 1, 1, 1), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_pow_scalar(i32, 0.5));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(6));
  TU_CHECK_VALUES(r, TU_VALS(1.4142135623730951, NAN, 1, NAN, 0, 1.7320508075688772), 6);
  mt_tensor_free(r);
  mt_tensor_free(i32);

  mt_tensor *h = TU_TENSOR(TU_VALS(1, 2048, -0.5), 1, TU_SHAPE(3), MT_FLOAT16);
  r = TU_OK(mt_add_scalar(h, 1));
  TU_CHECK_META(r, MT_FLOAT16, 1, TU_SHAPE(3));
  TU_CHECK_CLOSE(r, TU_VALS(2, 2048, 0.5), 3, 0, 0); /* 2049 rounds to even 2048 */
  mt_tensor_free(r);
  r = TU_OK(mt_mul_scalar(h, 1e6));
  TU_CHECK_CLOSE(r, TU_VALS(INFINITY, INFINITY, -INFINITY), 3, 0, 0);
  mt_tensor_free(r);
  mt_tensor_free(h);
}
END_TEST

/* ---------------------------------------------------------- unary ops */

static void check_unary(int k, const mt_tensor *a) {
  char ctx[256];
  describe(ctx, sizeof ctx, unops[k].name, a, NULL);
  mt_dtype d = mt_tensor_dtype(a);
  if (d == MT_BOOL && unops[k].op == REF_NEG) {
    mt_clear_error();
    mt_tensor *r = unops[k].fn(a);
    TU_EXPECT(r == NULL, "%s accepted bool", ctx);
    tu_check_error_at(ctx, __LINE__, unops[k].name, MT_ERR_DTYPE, unops[k].name);
    return;
  }
  mt_dtype o = ref_unary_dtype(unops[k].op, d);
  int ndim = mt_ndim(a);
  int64_t shape[MT_MAX_DIMS];
  for (int i = 0; i < ndim; i++) shape[i] = mt_shape(a, i);
  mt_tensor *r = unops[k].fn(a);
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, ndim, shape);
  TU_EXPECT(mt_is_contiguous(r), "result not contiguous");
  int64_t n = mt_numel(a);
  double *av = TU_READ(a), *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) want[i] = ref_round_to(ref_unary(unops[k].op, av[i], d), o);
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  if (o == MT_FLOAT32) atol = 1e-6;
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(av);
  free(want);
  mt_tensor_free(r);
}

START_TEST(test_unary_every_dtype) {
  mt_dtype d = DTYPE_I;
  for (int k = 0; k < REF_NUM_UNOPS; k++) {
    static const struct { int ndim; int64_t shape[3]; int layout; } cases[] = {
        {2, {7, 33}, LAYOUT_CONTIGUOUS}, {2, {7, 33}, LAYOUT_TRANSPOSED},
        {3, {3, 4, 5}, LAYOUT_STEPPED},  {2, {6, 5}, LAYOUT_EXPANDED},
        {0, {0}, LAYOUT_CONTIGUOUS},     {2, {0, 4}, LAYOUT_CONTIGUOUS},
        {1, {40003}, LAYOUT_CONTIGUOUS}, {2, {200, 170}, LAYOUT_TRANSPOSED},
    };
    for (int c = 0; c < TU_COUNT(cases); c++) {
      int domain = ref_is_int(d) && d != MT_INT8 && d != MT_UINT8 ? DOMAIN_SMALL : DOMAIN_FULL;
      mt_tensor *a = make_input(d, cases[c].ndim, cases[c].shape, 31 + (uint64_t)c, domain,
                                cases[c].layout);
      check_unary(k, a);
      mt_tensor_free(a);
    }
  }
}
END_TEST

/* ------------------------------------------------- NaN, inf, rounding */

/* Runs f on float values of dtype d and checks exact results (NaN = NaN). */
static void unary_literal(unary_fn f, const char *name, mt_dtype d, int n, const double *in,
                          const double *want, double atol) {
  mt_tensor *a = TU_TENSOR(in, 1, TU_SHAPE(n), d);
  mt_tensor *r = f(a);
  char ctx[96];
  snprintf(ctx, sizeof ctx, "%s(%s)", name, mt_dtype_name(d));
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  double *w = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) w[i] = ref_round_to(want[i], d);
  double rtol, tol_a;
  tu_tol(d, &rtol, &tol_a);
  tu_check_close_at(ctx, __LINE__, r, w, n, rtol, atol);
  free(w);
  mt_tensor_free(r);
  mt_tensor_free(a);
}

static void binary_literal(binary_fn f, const char *name, mt_dtype d, int n, const double *x,
                           const double *y, const double *want) {
  mt_tensor *a = TU_TENSOR(x, 1, TU_SHAPE(n), d), *b = TU_TENSOR(y, 1, TU_SHAPE(n), d);
  mt_tensor *r = f(a, b);
  char ctx[96];
  snprintf(ctx, sizeof ctx, "%s(%s)", name, mt_dtype_name(d));
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  double rtol, atol;
  tu_tol(mt_tensor_dtype(r), &rtol, &atol);
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  mt_tensor_free(r);
  mt_tensor_free(a);
  mt_tensor_free(b);
}

static const mt_dtype float_dtypes[4] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};

/* Ops return new tensors: even when the values do not change (a cast to
 * the same dtype, floor of integers, an unbounded clamp), writing to the
 * result leaves the input alone. */
START_TEST(test_results_own_storage) {
  mt_tensor *i = TU_TENSOR(TU_VALS(1, -2, 3), 1, TU_SHAPE(3), MT_INT32);
  mt_tensor *zero = TU_OK(mt_zeros(0, NULL, MT_INT32, TU_CPU));
  mt_tensor *results[8];
  int n = 0;
  results[n++] = TU_OK(mt_cast(i, MT_INT32));
  results[n++] = TU_OK(mt_floor(i));
  results[n++] = TU_OK(mt_round(i));
  results[n++] = TU_OK(mt_clamp(i, -INFINITY, INFINITY));
  results[n++] = TU_OK(mt_add_scalar(i, 0));
  results[n++] = TU_OK(mt_mul_scalar(i, 1));
  results[n++] = TU_OK(mt_maximum(i, i));
  results[n++] = TU_OK(mt_where(i, i, i));
  for (int k = 0; k < n; k++) {
    ck_assert_int_eq(mt_is_contiguous(results[k]), 1);
    ck_assert_ptr_ne(mt_data_ptr(results[k]), mt_data_ptr(i));
    TU_CHECK_OK(mt_copy_(results[k], zero));
    TU_CHECK_VALUES(i, TU_VALS(1, -2, 3), 3);
    mt_tensor_free(results[k]);
  }
  mt_tensor_free(zero);
  mt_tensor_free(i);
}
END_TEST

START_TEST(test_nan_inf_semantics) {
  mt_dtype d = float_dtypes[_i];
  const double nan = NAN, inf = INFINITY;
  binary_literal(mt_maximum, "maximum", d, 5, TU_VALS(nan, 1, nan, -inf, 2),
                 TU_VALS(1, nan, nan, 2, inf), TU_VALS(nan, nan, nan, 2, inf));
  binary_literal(mt_minimum, "minimum", d, 5, TU_VALS(nan, 1, nan, -inf, 2),
                 TU_VALS(1, nan, nan, 2, inf), TU_VALS(nan, nan, nan, -inf, 2));
  const double *x = TU_VALS(nan, 1, nan, inf, -inf), *y = TU_VALS(1, nan, nan, inf, 0);
  binary_literal(mt_eq, "eq", d, 5, x, y, TU_VALS(0, 0, 0, 1, 0));
  binary_literal(mt_ne, "ne", d, 5, x, y, TU_VALS(1, 1, 1, 0, 1));
  binary_literal(mt_lt, "lt", d, 5, x, y, TU_VALS(0, 0, 0, 0, 1));
  binary_literal(mt_le, "le", d, 5, x, y, TU_VALS(0, 0, 0, 1, 1));
  binary_literal(mt_gt, "gt", d, 5, x, y, TU_VALS(0, 0, 0, 0, 0));
  binary_literal(mt_ge, "ge", d, 5, x, y, TU_VALS(0, 0, 0, 1, 0));
  binary_literal(mt_logical_and, "logical_and", d, 4, TU_VALS(nan, 0, -0.0, 2),
                 TU_VALS(1, nan, 1, inf), TU_VALS(1, 0, 0, 1));
  binary_literal(mt_logical_or, "logical_or", d, 4, TU_VALS(nan, 0, -0.0, 0),
                 TU_VALS(0, 0, 0, -inf), TU_VALS(1, 0, 0, 1));
  binary_literal(mt_div, "div", d, 4, TU_VALS(1, -1, 0, inf), TU_VALS(0, 0, 0, inf),
                 TU_VALS(inf, -inf, nan, nan));
  binary_literal(mt_pow, "pow", d, 5, TU_VALS(nan, 1, 0, -8, 2), TU_VALS(0, nan, 0, 0.5, -inf),
                 TU_VALS(1, 1, 1, nan, 0));
  binary_literal(mt_add, "add", d, 3, TU_VALS(inf, inf, nan), TU_VALS(-inf, inf, 1),
                 TU_VALS(nan, inf, nan));

  unary_literal(mt_round, "round", d, 9, TU_VALS(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 2.25, nan),
                TU_VALS(0, 2, 2, -0.0, -2, -2, 4, 2, nan), 0);
  unary_literal(mt_sign, "sign", d, 6, TU_VALS(nan, -3, 0, 2.5, -inf, inf),
                TU_VALS(nan, -1, 0, 1, -1, 1), 0);
  unary_literal(mt_relu, "relu", d, 4, TU_VALS(nan, -1, 2, -inf), TU_VALS(nan, 0, 2, 0), 0);
  unary_literal(mt_abs, "abs", d, 3, TU_VALS(-inf, nan, -0.0), TU_VALS(inf, nan, 0), 0);
  unary_literal(mt_neg, "neg", d, 3, TU_VALS(inf, nan, 2), TU_VALS(-inf, nan, -2), 0);
  unary_literal(mt_floor, "floor", d, 4, TU_VALS(-0.5, 1.5, nan, -inf), TU_VALS(-1, 1, nan, -inf), 0);
  unary_literal(mt_ceil, "ceil", d, 4, TU_VALS(-0.5, 1.5, nan, inf), TU_VALS(0, 2, nan, inf), 0);
  unary_literal(mt_rsqrt, "rsqrt", d, 4, TU_VALS(0, 4, -1, inf), TU_VALS(inf, 0.5, nan, 0), 0);
  unary_literal(mt_sqrt, "sqrt", d, 4, TU_VALS(0, 4, -1, inf), TU_VALS(0, 2, nan, inf), 0);
  unary_literal(mt_log, "log", d, 5, TU_VALS(0, -1, 1, inf, nan), TU_VALS(-inf, nan, 0, inf, nan), 0);
  unary_literal(mt_exp, "exp", d, 4, TU_VALS(-inf, inf, 0, nan), TU_VALS(0, inf, 1, nan), 0);
  unary_literal(mt_reciprocal, "reciprocal", d, 4, TU_VALS(0, -0.0, inf, 4),
                TU_VALS(inf, -inf, 0, 0.25), 0);
  unary_literal(mt_sigmoid, "sigmoid", d, 5, TU_VALS(-1000, 1000, -inf, inf, 0),
                TU_VALS(0, 1, 0, 1, 0.5), 0);
  unary_literal(mt_tanh, "tanh", d, 4, TU_VALS(-1000, 1000, -inf, inf), TU_VALS(-1, 1, -1, 1), 0);
  unary_literal(mt_silu, "silu", d, 3, TU_VALS(-1000, 1000, inf), TU_VALS(0, 1000, inf), 0);
  unary_literal(mt_gelu, "gelu", d, 4, TU_VALS(-10, 10, 0, inf), TU_VALS(0, 10, 0, inf), 1e-6);
  unary_literal(mt_logical_not, "logical_not", d, 4, TU_VALS(nan, 0, -0.0, inf),
                TU_VALS(0, 1, 1, 0), 0);
}
END_TEST

START_TEST(test_round_half_even_f32) {
  /* the largest float below 0.5 must not round up */
  unary_literal(mt_round, "round", MT_FLOAT32, 6,
                TU_VALS(0.49999997019767761, 8388609.0, -8388609.0, 4.5, 5.5, -0.0),
                TU_VALS(0, 8388609.0, -8388609.0, 4, 6, -0.0), 0);
  unary_literal(mt_round, "round", MT_FLOAT64, 3, TU_VALS(0.49999999999999994, 4503599627370497.0, 1e300),
                TU_VALS(0, 4503599627370497.0, 1e300), 0);
}
END_TEST

/* -------------------------------------------------- integer semantics */

START_TEST(test_integer_wraparound) {
  binary_literal(mt_add, "add", MT_INT8, 3, TU_VALS(127, -128, 100), TU_VALS(1, -1, 100),
                 TU_VALS(-128, 127, -56));
  binary_literal(mt_sub, "sub", MT_UINT8, 2, TU_VALS(0, 5), TU_VALS(1, 10), TU_VALS(255, 251));
  binary_literal(mt_mul, "mul", MT_INT16, 2, TU_VALS(300, -300), TU_VALS(300, 300),
                 TU_VALS(24464, -24464));
  binary_literal(mt_add, "add", MT_INT32, 2, TU_VALS(2147483647.0, -2147483648.0), TU_VALS(1, -1),
                 TU_VALS(-2147483648.0, 2147483647.0));
  unary_literal(mt_neg, "neg", MT_INT8, 3, TU_VALS(-128, 127, 0), TU_VALS(-128, -127, 0), 0);
  unary_literal(mt_abs, "abs", MT_INT8, 3, TU_VALS(-128, -127, 5), TU_VALS(-128, 127, 5), 0);
  unary_literal(mt_neg, "neg", MT_UINT8, 3, TU_VALS(1, 0, 255), TU_VALS(255, 0, 1), 0);
  unary_literal(mt_abs, "abs", MT_INT32, 2, TU_VALS(-2147483648.0, -7),
                TU_VALS(-2147483648.0, 7), 0);

  /* int64 exactly, through raw values */
  const int64_t a[4] = {INT64_MAX, INT64_MIN, (int64_t)1 << 62, -3};
  const int64_t b[4] = {1, -1, 4, INT64_MAX};
  mt_tensor *ta = TU_OK(mt_from_data(a, 1, TU_SHAPE(4), MT_INT64, TU_CPU));
  mt_tensor *tb = TU_OK(mt_from_data(b, 1, TU_SHAPE(4), MT_INT64, TU_CPU));
  mt_tensor *r = TU_OK(mt_add(ta, tb));
  const int64_t sum[4] = {INT64_MIN, INT64_MAX, ((int64_t)1 << 62) + 4, INT64_MAX - 3};
  TU_CHECK_RAW(r, sum, 4);
  mt_tensor_free(r);
  r = TU_OK(mt_mul(ta, tb));
  const int64_t prod[4] = {INT64_MAX, INT64_MIN, 0, (int64_t)((uint64_t)-3 * (uint64_t)INT64_MAX)};
  TU_CHECK_RAW(r, prod, 4);
  mt_tensor_free(r);
  r = TU_OK(mt_neg(ta));
  const int64_t neg[4] = {-INT64_MAX, INT64_MIN, -((int64_t)1 << 62), 3};
  TU_CHECK_RAW(r, neg, 4);
  mt_tensor_free(r);
  r = TU_OK(mt_maximum(ta, tb));
  const int64_t mx[4] = {INT64_MAX, -1, (int64_t)1 << 62, INT64_MAX};
  TU_CHECK_RAW(r, mx, 4);
  mt_tensor_free(r);
  /* large int64 values compare exactly (no detour through double) */
  const int64_t c[2] = {INT64_MAX, ((int64_t)1 << 53) + 1};
  const int64_t e[2] = {INT64_MAX - 1, (int64_t)1 << 53};
  mt_tensor *tc = TU_OK(mt_from_data(c, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *te = TU_OK(mt_from_data(e, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  r = TU_OK(mt_gt(tc, te));
  TU_CHECK_VALUES(r, TU_VALS(1, 1), 2);
  mt_tensor_free(r);
  r = TU_OK(mt_eq(tc, te));
  TU_CHECK_VALUES(r, TU_VALS(0, 0), 2);
  mt_tensor_free(r);
  mt_tensor_free(tc);
  mt_tensor_free(te);
  mt_tensor_free(ta);
  mt_tensor_free(tb);
}
END_TEST

/* int64 values beyond 2^53 survive every op that keeps int64 (no detour
 * through double). */
START_TEST(test_int64_exact) {
  const int64_t big = ((int64_t)1 << 53) + 1, root = 3037000499; /* root^2 < 2^63 */
  const int64_t xs[3] = {big, root, INT64_MAX - 2};
  mt_tensor *x = TU_OK(mt_from_data(xs, 1, TU_SHAPE(3), MT_INT64, TU_CPU));
  mt_tensor *r = TU_OK(mt_add_scalar(x, 1));
  const int64_t plus1[3] = {big + 1, root + 1, INT64_MAX - 1};
  TU_CHECK_RAW(r, plus1, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_mul_scalar(x, 3));
  const int64_t times3[3] = {3 * big, 3 * root, (int64_t)((uint64_t)(INT64_MAX - 2) * 3u)};
  TU_CHECK_RAW(r, times3, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_mul(x, x));
  const int64_t sq[3] = {(int64_t)((uint64_t)big * (uint64_t)big), root * root,
                         (int64_t)((uint64_t)(INT64_MAX - 2) * (uint64_t)(INT64_MAX - 2))};
  TU_CHECK_RAW(r, sq, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_pow_scalar(x, 2));
  TU_CHECK_RAW(r, sq, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_clamp(x, 0, INFINITY));
  TU_CHECK_RAW(r, xs, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_abs(x));
  TU_CHECK_RAW(r, xs, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_relu(x));
  TU_CHECK_RAW(r, xs, 3);
  mt_tensor_free(r);
  mt_tensor *zero = TU_OK(mt_zeros(0, NULL, MT_INT64, TU_CPU));
  mt_tensor *cond = TU_TENSOR(TU_VALS(1, 0, 1), 1, TU_SHAPE(3), MT_BOOL);
  r = TU_OK(mt_where(cond, x, zero));
  const int64_t picked[3] = {big, 0, INT64_MAX - 2};
  TU_CHECK_RAW(r, picked, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_minimum(x, zero));
  const int64_t zeros[3] = {0, 0, 0};
  TU_CHECK_RAW(r, zeros, 3);
  mt_tensor_free(r);
  r = TU_OK(mt_sub(x, x));
  TU_CHECK_RAW(r, zeros, 3);
  mt_tensor_free(r);
  const int64_t p2[2] = {3, 3}, e2[2] = {39, 40};
  mt_tensor *b = TU_OK(mt_from_data(p2, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *e = TU_OK(mt_from_data(e2, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  r = TU_OK(mt_pow(b, e));
  const int64_t pw[2] = {4052555153018976267ll, (int64_t)(4052555153018976267ull * 3u)};
  TU_CHECK_RAW(r, pw, 2);
  mt_tensor_free(r);
  mt_tensor_free(b);
  mt_tensor_free(e);
  mt_tensor_free(cond);
  mt_tensor_free(zero);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_integer_pow) {
  binary_literal(mt_pow, "pow", MT_INT32, 11, TU_VALS(2, 0, 1, -1, -1, 3, 0, 2, -2, 5, 0),
                 TU_VALS(-1, 0, -2, -3, -2, 2, 5, 10, 3, 0, -1),
                 TU_VALS(0, 1, 1, -1, 1, 9, 0, 1024, -8, 1, 0));
  binary_literal(mt_pow, "pow", MT_INT8, 3, TU_VALS(2, 3, -2), TU_VALS(7, 5, 7),
                 TU_VALS(-128, -13, -128));
  binary_literal(mt_pow, "pow", MT_INT64, 2, TU_VALS(3, -3), TU_VALS(39, 39),
                 TU_VALS(4052555153018976267.0, -4052555153018976267.0));
  binary_literal(mt_pow, "pow", MT_UINT8, 3, TU_VALS(2, 3, 0), TU_VALS(8, 5, 0), TU_VALS(0, 243, 1));
}
END_TEST

START_TEST(test_bool_arithmetic) {
  const double *x = TU_VALS(1, 1, 0, 0), *y = TU_VALS(1, 0, 1, 0);
  binary_literal(mt_add, "add", MT_BOOL, 4, x, y, TU_VALS(1, 1, 1, 0));
  binary_literal(mt_mul, "mul", MT_BOOL, 4, x, y, TU_VALS(1, 0, 0, 0));
  binary_literal(mt_maximum, "maximum", MT_BOOL, 4, x, y, TU_VALS(1, 1, 1, 0));
  binary_literal(mt_minimum, "minimum", MT_BOOL, 4, x, y, TU_VALS(1, 0, 0, 0));
  binary_literal(mt_logical_and, "logical_and", MT_BOOL, 4, x, y, TU_VALS(1, 0, 0, 0));
  binary_literal(mt_logical_or, "logical_or", MT_BOOL, 4, x, y, TU_VALS(1, 1, 1, 0));
  binary_literal(mt_div, "div", MT_BOOL, 4, x, y, TU_VALS(1, INFINITY, 0, NAN));
  binary_literal(mt_ge, "ge", MT_BOOL, 4, x, y, TU_VALS(1, 1, 0, 1));
  mt_tensor *a = TU_TENSOR(x, 1, TU_SHAPE(4), MT_BOOL), *b = TU_TENSOR(y, 1, TU_SHAPE(4), MT_BOOL);
  mt_tensor *r = TU_OK(mt_add(a, b));
  ck_assert_int_eq(mt_tensor_dtype(r), MT_BOOL);
  mt_tensor_free(r);
  TU_FAILS(mt_sub(a, b), MT_ERR_DTYPE, "mt_sub");
  TU_FAILS(mt_pow(a, b), MT_ERR_DTYPE, "mt_pow");
  TU_FAILS(mt_neg(a), MT_ERR_DTYPE, "mt_neg");
  /* bool tensors in data bytes are 0/1 */
  uint8_t raw[4];
  r = TU_OK(mt_add(a, b));
  TU_CHECK_OK(mt_to_host(r, raw, 4));
  ck_assert(raw[0] == 1 && raw[1] == 1 && raw[2] == 1 && raw[3] == 0);
  mt_tensor_free(r);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* ----------------------------------------------------------- where */

START_TEST(test_where) {
  mt_tensor *cond = TU_TENSOR(TU_VALS(1, 0, 1), 2, TU_SHAPE(3, 1), MT_BOOL);
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2, 3, 4), 2, TU_SHAPE(1, 4), MT_INT32);
  mt_tensor *b = TU_TENSOR(TU_VALS(-0.5), 0, NULL, MT_FLOAT16);
  mt_tensor *r = TU_OK(mt_where(cond, a, b));
  TU_CHECK_META(r, MT_FLOAT16, 2, TU_SHAPE(3, 4));
  TU_CHECK_VALUES(r, TU_VALS(1, 2, 3, 4, -0.5, -0.5, -0.5, -0.5, 1, 2, 3, 4), 12);
  mt_tensor_free(r);

  /* a float condition: NaN counts as true, -0.0 as false */
  mt_tensor *fc = TU_TENSOR(TU_VALS(NAN, -0.0, 0.25, 0), 1, TU_SHAPE(4), MT_FLOAT32);
  mt_tensor *x = TU_TENSOR(TU_VALS(1, 2, 3, 4), 1, TU_SHAPE(4), MT_INT64);
  mt_tensor *y = TU_TENSOR(TU_VALS(-1, -2, -3, -4), 1, TU_SHAPE(4), MT_UINT8);
  r = TU_OK(mt_where(fc, x, y));
  TU_CHECK_META(r, MT_INT64, 1, TU_SHAPE(4));
  TU_CHECK_VALUES(r, TU_VALS(1, 0, 3, 0), 4); /* uint8 -1.. saturate to 0 on the way in */
  mt_tensor_free(r);

  /* uint8 condition, strided operands, and promotion int8/uint8 -> int16 */
  mt_tensor *uc = TU_TENSOR(TU_VALS(0, 7, 255, 0, 1, 0), 2, TU_SHAPE(2, 3), MT_UINT8);
  mt_tensor *p = make_input(MT_INT8, 2, TU_SHAPE(2, 3), 3, DOMAIN_FULL, LAYOUT_TRANSPOSED);
  mt_tensor *q = make_input(MT_UINT8, 2, TU_SHAPE(2, 3), 9, DOMAIN_FULL, LAYOUT_STEPPED);
  r = TU_OK(mt_where(uc, p, q));
  TU_CHECK_META(r, MT_INT16, 2, TU_SHAPE(2, 3));
  double *pv = TU_READ(p), *qv = TU_READ(q), want[6];
  const int take[6] = {0, 1, 1, 0, 1, 0};
  for (int i = 0; i < 6; i++) want[i] = take[i] ? pv[i] : qv[i];
  TU_CHECK_VALUES(r, want, 6);
  free(pv);
  free(qv);
  mt_tensor_free(r);

  /* large, all contiguous float32 */
  mt_tensor *bc = make_input(MT_BOOL, 1, TU_SHAPE(40001), 1, DOMAIN_FULL, LAYOUT_CONTIGUOUS);
  mt_tensor *ba = make_input(MT_FLOAT32, 1, TU_SHAPE(40001), 2, DOMAIN_FULL, LAYOUT_CONTIGUOUS);
  mt_tensor *bb = make_input(MT_FLOAT32, 1, TU_SHAPE(40001), 3, DOMAIN_FULL, LAYOUT_CONTIGUOUS);
  r = TU_OK(mt_where(bc, ba, bb));
  double *cv = TU_READ(bc), *av = TU_READ(ba), *bv = TU_READ(bb);
  double *w = malloc(sizeof(double) * 40001);
  for (int i = 0; i < 40001; i++) w[i] = cv[i] ? av[i] : bv[i];
  TU_CHECK_CLOSE(r, w, 40001, 0, 0);
  free(w);
  free(cv);
  free(av);
  free(bv);
  mt_tensor_free(r);

  mt_tensor *bad = TU_OK(mt_zeros(1, TU_SHAPE(5), MT_BOOL, TU_CPU));
  TU_FAILS(mt_where(bad, x, y), MT_ERR_SHAPE, "mt_where");
  TU_FAILS(mt_where(NULL, x, y), MT_ERR_INVALID_ARGUMENT, "mt_where");
  TU_FAILS(mt_where(fc, x, NULL), MT_ERR_INVALID_ARGUMENT, "mt_where");
  mt_tensor_free(bad);
  mt_tensor_free(bc);
  mt_tensor_free(ba);
  mt_tensor_free(bb);
  mt_tensor_free(uc);
  mt_tensor_free(p);
  mt_tensor_free(q);
  mt_tensor_free(fc);
  mt_tensor_free(x);
  mt_tensor_free(y);
  mt_tensor_free(cond);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* ----------------------------------------------------------- clamp */

START_TEST(test_clamp) {
  mt_tensor *f = TU_TENSOR(TU_VALS(NAN, -5, 0, 5, -INFINITY, INFINITY), 1, TU_SHAPE(6), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_clamp(f, -1, 2));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(6));
  TU_CHECK_VALUES(r, TU_VALS(NAN, -1, 0, 2, -1, 2), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_clamp(f, -INFINITY, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN, -5, 0, 0, -INFINITY, 0), 6);
  mt_tensor_free(r);
  r = TU_OK(mt_clamp(f, 1, INFINITY));
  TU_CHECK_VALUES(r, TU_VALS(NAN, 1, 1, 5, 1, INFINITY), 6);
  mt_tensor_free(r);
  /* lo > hi: min(max(a, lo), hi) is hi */
  r = TU_OK(mt_clamp(f, 3, 1));
  TU_CHECK_VALUES(r, TU_VALS(NAN, 1, 1, 1, 1, 1), 6);
  mt_tensor_free(r);
  TU_FAILS(mt_clamp(f, NAN, 1), MT_ERR_INVALID_ARGUMENT, "mt_clamp");
  TU_FAILS(mt_clamp(f, 0, NAN), MT_ERR_INVALID_ARGUMENT, "mt_clamp");
  TU_FAILS(mt_clamp(NULL, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_clamp");
  mt_tensor_free(f);

  /* every dtype but bool, strided and large */
  for (int i = 1; i < REF_NUM_DTYPES; i++) {
    mt_dtype d = tu_all_dtypes[i];
    static const double bounds[][2] = {{-3, 4}, {-1000, 1000}, {10, 20}, {-INFINITY, 0}};
    for (int b = 0; b < 4; b++) {
      for (int l = 0; l < 2; l++) {
        const int64_t *shape = l ? TU_SHAPE(40003) : TU_SHAPE(9, 13);
        mt_tensor *a = make_input(d, l ? 1 : 2, shape, 11, DOMAIN_FULL,
                                  l ? LAYOUT_CONTIGUOUS : LAYOUT_TRANSPOSED);
        char ctx[128];
        snprintf(ctx, sizeof ctx, "clamp(%s, %g, %g)", mt_dtype_name(d), bounds[b][0], bounds[b][1]);
        r = mt_clamp(a, bounds[b][0], bounds[b][1]);
        ck_assert_msg(r != NULL, "%s: %s", ctx, mt_last_error());
        tu_check_meta_at(ctx, __LINE__, r, d, l ? 1 : 2, shape);
        int64_t n = mt_numel(a);
        double *av = TU_READ(a), *want = malloc(sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++) {
          double v = av[k] < bounds[b][0] ? bounds[b][0] : av[k];
          want[k] = ref_round_to(v > bounds[b][1] ? bounds[b][1] : v, d);
        }
        double rtol, atol;
        tu_tol(d, &rtol, &atol);
        tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
        free(av);
        free(want);
        mt_tensor_free(r);
        mt_tensor_free(a);
      }
    }
  }
  /* float16 bounds are rounded to float16 */
  mt_tensor *h = TU_TENSOR(TU_VALS(0, 0.2, 1), 1, TU_SHAPE(3), MT_FLOAT16);
  r = TU_OK(mt_clamp(h, 0.1, 0.3));
  TU_CHECK_CLOSE(r, TU_VALS(ref_round_to(0.1, MT_FLOAT16), ref_round_to(0.2, MT_FLOAT16),
                            ref_round_to(0.3, MT_FLOAT16)), 3, 0, 0);
  mt_tensor_free(r);
  mt_tensor_free(h);
}
END_TEST

/* ------------------------------------------------------------- cast */

/* Interesting values of dtype d, as raw elements in buf (returns count). */
static int cast_sources(mt_dtype d, unsigned char *buf) {
  static const double floats[] = {0, -0.0, 1, -1, 0.5, -0.5, 1.5, 2.5, -2.7, 100.9, 127.5, 128,
                                  255.9, 256, -129, 300.7, -300.7, 65504, 65520, 1e5, -1e5,
                                  3e9, -3e9, 1e20, -1e20, NAN, INFINITY, -INFINITY, 1e-8,
                                  2147483520.0, -2147483904.0, 9.3e18, -9.3e18, 0.1};
  static const int64_t ints[] = {0, 1, -1, 2, 127, 128, -128, -129, 255, 256, 300, -300,
                                 32767, 32768, -32769, 65504, 65519, 65520, 70000, 2147483647,
                                 -2147483647 - 1, 4294967296ll, 9007199254740993ll, INT64_MAX,
                                 INT64_MIN, 16777217, -16777217};
  size_t es = ref_size(d);
  int n = 0;
  if (ref_is_float(d)) {
    for (int i = 0; i < TU_COUNT(floats); i++) ref_store(buf + es * (size_t)n++, d, floats[i]);
  } else {
    for (int i = 0; i < TU_COUNT(ints); i++) ref_store_i64(buf + es * (size_t)n++, d, ints[i]);
  }
  return n;
}

START_TEST(test_cast_every_pair) {
  mt_dtype sd = DTYPE_I;
  unsigned char src[64 * 8], want[64 * 8];
  int n = cast_sources(sd, src);
  mt_tensor *s = TU_OK(mt_from_data(src, 1, TU_SHAPE(n), sd, TU_CPU));
  for (int j = 0; j < REF_NUM_DTYPES; j++) {
    mt_dtype dd = tu_all_dtypes[j];
    size_t ses = ref_size(sd), des = ref_size(dd);
    for (int i = 0; i < n; i++) ref_convert(src + ses * (size_t)i, sd, want + des * (size_t)i, dd);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "cast %s -> %s", mt_dtype_name(sd), mt_dtype_name(dd));
    mt_tensor *r = mt_cast(s, dd);
    ck_assert_msg(r != NULL, "%s: %s", ctx, mt_last_error());
    tu_check_meta_at(ctx, __LINE__, r, dd, 1, TU_SHAPE(n));
    tu_check_raw_at(ctx, __LINE__, r, want, n);
    mt_tensor_free(r);
    /* the same through mt_to and mt_copy_ */
    r = TU_OK(mt_to(s, TU_CPU, dd, 0));
    tu_check_raw_at(ctx, __LINE__, r, want, n);
    mt_tensor_free(r);
    r = TU_OK(mt_zeros(1, TU_SHAPE(n), dd, TU_CPU));
    TU_CHECK_OK(mt_copy_(r, s));
    tu_check_raw_at(ctx, __LINE__, r, want, n);
    mt_tensor_free(r);
  }
  mt_tensor_free(s);
}
END_TEST

START_TEST(test_cast_strided_large) {
  mt_dtype sd = DTYPE_I;
  mt_tensor *s = make_input(sd, 2, TU_SHAPE(300, 201), 17, DOMAIN_FULL, LAYOUT_TRANSPOSED);
  int64_t n = mt_numel(s);
  double *sv = TU_READ(s);
  for (int j = 0; j < REF_NUM_DTYPES; j++) {
    mt_dtype dd = tu_all_dtypes[j];
    mt_tensor *r = TU_OK(mt_cast(s, dd));
    TU_CHECK_META(r, dd, 2, TU_SHAPE(300, 201));
    double *want = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      if (ref_is_float(sd) || !ref_is_int(dd)) want[i] = ref_round_to(sv[i], dd);
      else want[i] = (double)ref_wrap((int64_t)sv[i], dd);
    }
    char ctx[64];
    snprintf(ctx, sizeof ctx, "cast %s -> %s (strided)", mt_dtype_name(sd), mt_dtype_name(dd));
    tu_check_close_at(ctx, __LINE__, r, want, n, 0, 0);
    free(want);
    mt_tensor_free(r);
  }
  free(sv);
  mt_tensor_free(s);
  TU_FAILS(mt_cast(NULL, MT_FLOAT32), MT_ERR_INVALID_ARGUMENT, "mt_cast");
}
END_TEST

START_TEST(test_cast_literals) {
  /* float -> int truncates toward zero, saturates, NaN -> 0 */
  mt_tensor *f = TU_TENSOR(TU_VALS(2.9, -2.9, 1e10, -1e10, NAN, INFINITY, -INFINITY, -0.5), 1,
                           TU_SHAPE(8), MT_FLOAT64);
  mt_tensor *r = TU_OK(mt_cast(f, MT_INT32));
  TU_CHECK_VALUES(r, TU_VALS(2, -2, 2147483647.0, -2147483648.0, 0, 2147483647.0, -2147483648.0, 0), 8);
  mt_tensor_free(r);
  r = TU_OK(mt_cast(f, MT_UINT8));
  TU_CHECK_VALUES(r, TU_VALS(2, 0, 255, 0, 0, 255, 0, 0), 8);
  mt_tensor_free(r);
  r = TU_OK(mt_cast(f, MT_BOOL));
  TU_CHECK_VALUES(r, TU_VALS(1, 1, 1, 1, 1, 1, 1, 1), 8);
  mt_tensor_free(r);
  r = TU_OK(mt_cast(f, MT_INT64));
  const int64_t w64[8] = {2, -2, 10000000000ll, -10000000000ll, 0, INT64_MAX, INT64_MIN, 0};
  TU_CHECK_RAW(r, w64, 8);
  mt_tensor_free(r);
  mt_tensor_free(f);
  /* int -> int wraps */
  mt_tensor *i = TU_TENSOR(TU_VALS(300, -1, 65536 + 7, -129), 1, TU_SHAPE(4), MT_INT32);
  r = TU_OK(mt_cast(i, MT_INT8));
  TU_CHECK_VALUES(r, TU_VALS(44, -1, 7, 127), 4);
  mt_tensor_free(r);
  r = TU_OK(mt_cast(i, MT_UINT8));
  TU_CHECK_VALUES(r, TU_VALS(44, 255, 7, 127), 4);
  mt_tensor_free(r);
  r = TU_OK(mt_cast(i, MT_INT16));
  TU_CHECK_VALUES(r, TU_VALS(300, -1, 7, -129), 4);
  mt_tensor_free(r);
  mt_tensor_free(i);
  /* bool -> numbers are 0/1 */
  mt_tensor *b = TU_TENSOR(TU_VALS(1, 0), 1, TU_SHAPE(2), MT_BOOL);
  r = TU_OK(mt_cast(b, MT_FLOAT16));
  TU_CHECK_VALUES(r, TU_VALS(1, 0), 2);
  mt_tensor_free(r);
  mt_tensor_free(b);
}
END_TEST

/* f32 values and the exact float16 / bfloat16 bits they round to. */
START_TEST(test_f16_bf16_rounding_bits) {
  static const struct { float x; uint16_t h; } f16[] = {
      {1.0f, 0x3C00},
      {1.0f + 0x1p-11f, 0x3C00},            /* halfway: to even */
      {1.0f + 3 * 0x1p-11f, 0x3C02},        /* halfway: to even, upward */
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01}, /* just above halfway */
      {-1.0f - 0x1p-11f, 0xBC00},
      {65504.0f, 0x7BFF},
      {65519.0f, 0x7BFF},
      {65520.0f, 0x7C00}, /* halfway to the next binade: overflows to inf */
      {1e6f, 0x7C00},
      {-1e6f, 0xFC00},
      {0x1p-24f, 0x0001},             /* smallest subnormal */
      {0x1p-25f, 0x0000},             /* halfway to 0: to even */
      {3 * 0x1p-25f, 0x0002},         /* halfway: to even, upward */
      {0x1p-25f + 0x1p-40f, 0x0001},  /* above halfway */
      {0x1p-14f, 0x0400},             /* smallest normal */
      {0x1p-14f - 0x1p-25f, 0x0400},  /* halfway between largest subnormal and it */
      {0x1p-14f - 0x1p-24f, 0x03FF},  /* largest subnormal */
      {0x1p-26f, 0x0000},
      {-0.0f, 0x8000},
      {2049.0f, 0x6800},              /* 2048 */
      {2051.0f, 0x6802},              /* 2052 */
  };
  static const struct { float x; uint16_t h; } bf16[] = {
      {1.0f, 0x3F80},
      {1.0f + 0x1p-8f, 0x3F80},
      {1.0f + 3 * 0x1p-8f, 0x3F82},
      {1.0f + 0x1p-8f + 0x1p-20f, 0x3F81},
      {FLT_MAX, 0x7F80},               /* rounds past the largest bfloat16 */
      {-FLT_MAX, 0xFF80},
      {0x1.FEp127f, 0x7F7F},           /* the largest bfloat16 */
      {0x1p-133f, 0x0001},             /* smallest subnormal */
      {0x1p-134f, 0x0000},             /* halfway to 0 */
      {3 * 0x1p-134f, 0x0002},
      {0x1p-126f, 0x0080},
      {-0.0f, 0x8000},
      {10000.0f, 0x461C},              /* 9984 */
  };
  for (int pass = 0; pass < 2; pass++) {
    int n = pass ? TU_COUNT(bf16) : TU_COUNT(f16);
    float xs[32];
    uint16_t want[32];
    for (int i = 0; i < n; i++) {
      xs[i] = pass ? bf16[i].x : f16[i].x;
      want[i] = pass ? bf16[i].h : f16[i].h;
      /* the reference agrees with the hand-computed bits */
      uint16_t mine = pass ? ref_bf16_encode(xs[i]) : ref_f16_encode(xs[i]);
      ck_assert_msg(mine == want[i], "reference encodes %a as 0x%04x, not 0x%04x", (double)xs[i],
                    mine, want[i]);
    }
    mt_dtype d = pass ? MT_BFLOAT16 : MT_FLOAT16;
    mt_tensor *s = TU_OK(mt_from_data(xs, 1, TU_SHAPE(n), MT_FLOAT32, TU_CPU));
    mt_tensor *r = TU_OK(mt_cast(s, d));
    uint16_t got[32];
    TU_CHECK_OK(mt_to_host(r, got, sizeof(uint16_t) * (size_t)n));
    for (int i = 0; i < n; i++)
      ck_assert_msg(got[i] == want[i], "%s(%a) = 0x%04x, expected 0x%04x", mt_dtype_name(d),
                    (double)xs[i], got[i], want[i]);
    mt_tensor_free(r);
    /* the same values as float64 sources (all exact in float32) */
    double xd[32];
    for (int i = 0; i < n; i++) xd[i] = xs[i];
    mt_tensor *sd = TU_OK(mt_from_data(xd, 1, TU_SHAPE(n), MT_FLOAT64, TU_CPU));
    r = TU_OK(mt_cast(sd, d));
    TU_CHECK_OK(mt_to_host(r, got, sizeof(uint16_t) * (size_t)n));
    for (int i = 0; i < n; i++)
      ck_assert_msg(got[i] == want[i], "%s(double %a) = 0x%04x, expected 0x%04x",
                    mt_dtype_name(d), xd[i], got[i], want[i]);
    mt_tensor_free(r);
    mt_tensor_free(sd);
    mt_tensor_free(s);
  }
  /* NaN stays NaN */
  float nan = NAN;
  mt_tensor *s = TU_OK(mt_from_data(&nan, 1, TU_SHAPE(1), MT_FLOAT32, TU_CPU));
  for (int pass = 0; pass < 2; pass++) {
    mt_tensor *r = TU_OK(mt_cast(s, pass ? MT_BFLOAT16 : MT_FLOAT16));
    uint16_t h;
    TU_CHECK_OK(mt_to_host(r, &h, 2));
    uint16_t exp_mask = pass ? 0x7F80 : 0x7C00, man_mask = pass ? 0x007F : 0x03FF;
    ck_assert_msg((h & exp_mask) == exp_mask && (h & man_mask) != 0, "NaN became 0x%04x", h);
    mt_tensor_free(r);
  }
  mt_tensor_free(s);
}
END_TEST

/* Every 16-bit pattern decodes as the reference says, and encodes back. */
START_TEST(test_f16_bf16_exhaustive) {
  for (int pass = 0; pass < 2; pass++) {
    mt_dtype d = pass ? MT_BFLOAT16 : MT_FLOAT16;
    uint16_t *bits = malloc(sizeof(uint16_t) * 65536);
    for (int i = 0; i < 65536; i++) bits[i] = (uint16_t)i;
    mt_tensor *h = TU_OK(mt_from_data(bits, 1, TU_SHAPE(65536), d, TU_CPU));
    mt_tensor *f = TU_OK(mt_cast(h, MT_FLOAT32));
    float *fv = malloc(sizeof(float) * 65536);
    TU_CHECK_OK(mt_to_host(f, fv, sizeof(float) * 65536));
    for (int i = 0; i < 65536; i++) {
      double want = pass ? ref_bf16_decode((uint16_t)i) : ref_f16_decode((uint16_t)i);
      TU_EXPECT((isnan(want) && isnan(fv[i])) ||
                        ((double)fv[i] == want && !signbit(fv[i]) == !signbit(want)),
                    "%s 0x%04x -> %a, expected %a", mt_dtype_name(d), i, (double)fv[i], want);
    }
    mt_tensor *back = TU_OK(mt_cast(f, d));
    uint16_t *bv = malloc(sizeof(uint16_t) * 65536);
    TU_CHECK_OK(mt_to_host(back, bv, sizeof(uint16_t) * 65536));
    for (int i = 0; i < 65536; i++) {
      if (isnan(fv[i])) continue;
      TU_EXPECT(bv[i] == i, "%s 0x%04x round trip -> 0x%04x", mt_dtype_name(d), i, bv[i]);
    }
    /* float64 too */
    mt_tensor *g = TU_OK(mt_cast(h, MT_FLOAT64));
    double *gv = malloc(sizeof(double) * 65536);
    TU_CHECK_OK(mt_to_host(g, gv, sizeof(double) * 65536));
    for (int i = 0; i < 65536; i++)
      TU_EXPECT((isnan(gv[i]) && isnan(fv[i])) || gv[i] == (double)fv[i],
                    "%s 0x%04x -> double %a", mt_dtype_name(d), i, gv[i]);
    free(gv);
    mt_tensor_free(g);
    free(bv);
    free(fv);
    free(bits);
    mt_tensor_free(back);
    mt_tensor_free(f);
    mt_tensor_free(h);
  }
}
END_TEST

/* Random float32 bit patterns round to the reference's 16-bit encodings. */
START_TEST(test_f32_to_16bit_sweep) {
  const int n = 200000;
  float *xs = malloc(sizeof(float) * (size_t)n);
  uint64_t z = 12345;
  for (int i = 0; i < n; i++) {
    z = z * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t u = (uint32_t)(z >> 32);
    /* favour exponents around the float16 range and exact halfway cases */
    if (i % 3 == 0) u = (u & 0x80000000u) | ((101u + (u >> 8) % 45u) << 23) | (u & 0x7fffffu);
    if (i % 5 == 0) u = (u & ~0x1fffu) | 0x1000u; /* bits below a float16 ulp: halfway */
    if (i % 7 == 0) u = (u & ~0xffffu) | 0x8000u; /* halfway for bfloat16 */
    memcpy(&xs[i], &u, 4);
  }
  mt_tensor *s = TU_OK(mt_from_data(xs, 1, TU_SHAPE(n), MT_FLOAT32, TU_CPU));
  uint16_t *got = malloc(sizeof(uint16_t) * (size_t)n);
  for (int pass = 0; pass < 2; pass++) {
    mt_dtype d = pass ? MT_BFLOAT16 : MT_FLOAT16;
    mt_tensor *r = TU_OK(mt_cast(s, d));
    TU_CHECK_OK(mt_to_host(r, got, sizeof(uint16_t) * (size_t)n));
    for (int i = 0; i < n; i++) {
      if (isnan(xs[i])) {
        double back = pass ? ref_bf16_decode(got[i]) : ref_f16_decode(got[i]);
        TU_EXPECT(isnan(back), "%s(NaN) = 0x%04x", mt_dtype_name(d), got[i]);
        continue;
      }
      uint16_t want = pass ? ref_bf16_encode(xs[i]) : ref_f16_encode(xs[i]);
      TU_EXPECT(got[i] == want, "%s(%a) = 0x%04x, expected 0x%04x", mt_dtype_name(d),
                    (double)xs[i], got[i], want);
    }
    mt_tensor_free(r);
  }
  free(got);
  free(xs);
  mt_tensor_free(s);
}
END_TEST

static Suite *elementwise_suite(void) {
  Suite *s = suite_create("elementwise");
  TCase *tc = tcase_create("binary");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_binary_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_loop_test(tc, test_binary_mixed_dtypes, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_promotion_table);
  tcase_add_test(tc, test_operands_rounded_to_promoted);
  suite_add_tcase(s, tc);

  tc = tcase_create("scalar_unary");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_scalar_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_scalar_literals);
  tcase_add_loop_test(tc, test_unary_every_dtype, 0, REF_NUM_DTYPES);
  suite_add_tcase(s, tc);

  tc = tcase_create("semantics");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_nan_inf_semantics, 0, 4);
  tcase_add_test(tc, test_round_half_even_f32);
  tcase_add_test(tc, test_integer_wraparound);
  tcase_add_test(tc, test_integer_pow);
  tcase_add_test(tc, test_int64_exact);
  tcase_add_test(tc, test_bool_arithmetic);
  tcase_add_test(tc, test_results_own_storage);
  tcase_add_test(tc, test_where);
  tcase_add_test(tc, test_clamp);
  suite_add_tcase(s, tc);

  tc = tcase_create("cast");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_cast_every_pair, 0, REF_NUM_DTYPES);
  tcase_add_loop_test(tc, test_cast_strided_large, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_cast_literals);
  tcase_add_test(tc, test_f16_bf16_rounding_bits);
  tcase_add_test(tc, test_f16_bf16_exhaustive);
  tcase_add_test(tc, test_f32_to_16bit_sweep);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(elementwise_suite()); }
