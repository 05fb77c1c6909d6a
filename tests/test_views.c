/*
 * test_views.c - views and storage sharing: reshape, permute, transpose,
 * slice, expand, squeeze, unsqueeze; contiguous/clone/copy_/to/item/to_host;
 * mt_from_blob and DLPack interop.
 */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* A float32 tensor [0, 1, ..., n-1] reshaped to (ndim, shape). */
static mt_tensor *iota(int ndim, const int64_t *shape) {
  int64_t n = ref_numel(ndim, shape);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = (double)i;
  mt_tensor *t = TU_TENSOR(v, ndim, shape, MT_FLOAT32);
  free(v);
  return t;
}

static void check_strides(const mt_tensor *t, int ndim, const int64_t *strides) {
  ck_assert_int_eq(mt_ndim(t), ndim);
  for (int d = 0; d < ndim; d++)
    ck_assert_msg(mt_stride(t, d) == strides[d], "stride[%d] = %lld, expected %lld", d,
                  (long long)mt_stride(t, d), (long long)strides[d]);
}

/* Element address of t at byte offset `elems` elements from base's data. */
static void *elem_ptr(const mt_tensor *base, int64_t elems) {
  return (char *)mt_data_ptr(base) + elems * (int64_t)mt_dtype_size(mt_tensor_dtype(base));
}

/* -------------------------------------------------------------- reshape */

START_TEST(test_reshape_views) {
  mt_tensor *t = iota(3, TU_SHAPE(2, 3, 4));
  double want[24];
  for (int i = 0; i < 24; i++) want[i] = i;
  static const struct { int ndim; int64_t shape[4]; int64_t out[4]; } cases[] = {
      {2, {6, 4}, {6, 4}},     {2, {4, -1}, {4, 6}},        {1, {-1}, {24}},
      {3, {2, -1, 2}, {2, 6, 2}}, {4, {1, 24, 1, 1}, {1, 24, 1, 1}}, {3, {-1, 1, 3}, {8, 1, 3}},
  };
  for (int i = 0; i < TU_COUNT(cases); i++) {
    mt_tensor *r = TU_OK(mt_reshape(t, cases[i].ndim, cases[i].shape));
    TU_CHECK_META(r, MT_FLOAT32, cases[i].ndim, cases[i].out);
    ck_assert_ptr_eq(mt_data_ptr(r), mt_data_ptr(t)); /* a view */
    ck_assert_int_eq(mt_is_contiguous(r), 1);
    TU_CHECK_VALUES(r, want, 24);
    mt_tensor_free(r);
  }
  /* one element to 0-d and back */
  mt_tensor *one = iota(3, TU_SHAPE(1, 1, 1));
  mt_tensor *s = TU_OK(mt_reshape(one, 0, NULL));
  ck_assert_int_eq(mt_ndim(s), 0);
  mt_tensor *back = TU_OK(mt_reshape(s, 2, TU_SHAPE(-1, 1)));
  TU_CHECK_META(back, MT_FLOAT32, 2, TU_SHAPE(1, 1));
  mt_tensor_free(back);
  mt_tensor_free(s);
  mt_tensor_free(one);
  /* empty */
  mt_tensor *e = TU_OK(mt_zeros(2, TU_SHAPE(0, 3), MT_INT8, TU_CPU));
  mt_tensor *er = TU_OK(mt_reshape(e, 3, TU_SHAPE(3, 0, 5)));
  TU_CHECK_META(er, MT_INT8, 3, TU_SHAPE(3, 0, 5));
  mt_tensor_free(er);
  mt_tensor_free(e);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_reshape_copies_when_needed) {
  mt_tensor *t = iota(2, TU_SHAPE(3, 4));
  mt_tensor *tt = TU_OK(mt_transpose(t, 0, 1)); /* [4, 3], strides [1, 4] */
  mt_tensor *r = TU_OK(mt_reshape(tt, 1, TU_SHAPE(12)));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(12));
  TU_CHECK_VALUES(r, TU_VALS(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11), 12);
  ck_assert_ptr_ne(mt_data_ptr(r), mt_data_ptr(t));
  /* the copy is independent of t */
  mt_tensor *nine = TU_OK(mt_full(0, NULL, 99, MT_FLOAT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(r, nine));
  double *tv = TU_READ(t);
  for (int i = 0; i < 12; i++) ck_assert(tv[i] == i);
  free(tv);
  mt_tensor_free(r);

  /* Splitting an outer dim of a column slice needs no copy. */
  mt_tensor *wide = iota(2, TU_SHAPE(4, 6));
  mt_tensor *cols = TU_OK(mt_slice(wide, 1, 0, 6, 2)); /* [4, 3], strides [6, 2] */
  mt_tensor *split = TU_OK(mt_reshape(cols, 3, TU_SHAPE(2, 2, 3)));
  check_strides(split, 3, TU_SHAPE(12, 6, 2));
  ck_assert_ptr_eq(mt_data_ptr(split), mt_data_ptr(wide));
  TU_CHECK_OK(mt_copy_(split, nine));
  double *wv = TU_READ(wide);
  for (int i = 0; i < 24; i++) ck_assert_msg(wv[i] == (i % 2 ? i : 99), "[%d] = %g", i, wv[i]);
  free(wv);
  mt_tensor_free(split);
  mt_tensor_free(cols);
  mt_tensor_free(wide);
  mt_tensor_free(nine);
  mt_tensor_free(tt);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_reshape_errors) {
  mt_tensor *t = iota(2, TU_SHAPE(3, 4));
  TU_FAILS(mt_reshape(t, 2, TU_SHAPE(5, 5)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 2, TU_SHAPE(-1, -1)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 2, TU_SHAPE(-1, 5)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 2, TU_SHAPE(-2, -6)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 0, NULL), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 9, TU_SHAPE(12, 1, 1, 1, 1, 1, 1, 1, 1)), MT_ERR_SHAPE, "mt_reshape");
  TU_FAILS(mt_reshape(t, 1, NULL), MT_ERR_INVALID_ARGUMENT, "mt_reshape");
  mt_tensor_free(t);
}
END_TEST

/* ------------------------------------------------- permute and transpose */

START_TEST(test_permute_transpose) {
  mt_tensor *t = iota(3, TU_SHAPE(2, 3, 4));
  mt_tensor *p = TU_OK(mt_permute(t, (const int[]){2, 0, 1}));
  TU_CHECK_META(p, MT_FLOAT32, 3, TU_SHAPE(4, 2, 3));
  check_strides(p, 3, TU_SHAPE(1, 12, 4));
  ck_assert_int_eq(mt_is_contiguous(p), 0);
  ck_assert_ptr_eq(mt_data_ptr(p), mt_data_ptr(t));
  double want[24];
  for (int k = 0, n = 0; k < 4; k++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++) want[n++] = i * 12 + j * 4 + k;
  TU_CHECK_VALUES(p, want, 24);
  mt_tensor *pn = TU_OK(mt_permute(t, (const int[]){-1, 0, -2}));
  TU_CHECK_VALUES(pn, want, 24);
  mt_tensor_free(pn);
  mt_tensor_free(p);

  mt_tensor *tr = TU_OK(mt_transpose(t, 0, -1));
  TU_CHECK_META(tr, MT_FLOAT32, 3, TU_SHAPE(4, 3, 2));
  check_strides(tr, 3, TU_SHAPE(1, 4, 12));
  for (int k = 0, n = 0; k < 4; k++)
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < 2; i++) want[n++] = i * 12 + j * 4 + k;
  TU_CHECK_VALUES(tr, want, 24);
  mt_tensor_free(tr);

  mt_tensor *same = TU_OK(mt_transpose(t, 1, 1));
  ck_assert_int_eq(mt_is_contiguous(same), 1);
  check_strides(same, 3, TU_SHAPE(12, 4, 1));
  mt_tensor_free(same);

  TU_FAILS(mt_permute(t, (const int[]){0, 0, 1}), MT_ERR_SHAPE, "mt_permute");
  TU_FAILS(mt_permute(t, (const int[]){0, 1, 3}), MT_ERR_SHAPE, "mt_permute");
  TU_FAILS(mt_permute(t, (const int[]){0, 1, -4}), MT_ERR_SHAPE, "mt_permute");
  TU_FAILS(mt_permute(t, NULL), MT_ERR_INVALID_ARGUMENT, "mt_permute");
  TU_FAILS(mt_transpose(t, 0, 3), MT_ERR_SHAPE, "mt_transpose");
  TU_FAILS(mt_transpose(t, -4, 0), MT_ERR_SHAPE, "mt_transpose");
  mt_tensor_free(t);
}
END_TEST

/* ------------------------------------------------------------------ slice */

START_TEST(test_slice_python_rules) {
  mt_tensor *t = iota(1, TU_SHAPE(10));
  static const struct { int64_t start, end, step; int n; double v[10]; } cases[] = {
      {2, 8, 1, 6, {2, 3, 4, 5, 6, 7}},
      {-3, 10, 1, 3, {7, 8, 9}},
      {-100, 3, 1, 3, {0, 1, 2}},
      {5, 100, 2, 3, {5, 7, 9}},
      {8, 2, 1, 0, {0}},
      {1, 10, 3, 3, {1, 4, 7}},
      {0, -1, 4, 3, {0, 4, 8}},
      {-2, -1, 1, 1, {8}},
      {INT64_MIN, INT64_MAX, 1, 10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {20, 30, 1, 0, {0}},
      {0, 10, 100, 1, {0}},
      {-1, INT64_MAX, 5, 1, {9}},
  };
  for (int i = 0; i < TU_COUNT(cases); i++) {
    mt_tensor *s = TU_OK(mt_slice(t, 0, cases[i].start, cases[i].end, cases[i].step));
    ck_assert_msg(mt_shape(s, 0) == cases[i].n, "slice(%lld, %lld, %lld): length %lld, expected %d",
                  (long long)cases[i].start, (long long)cases[i].end, (long long)cases[i].step,
                  (long long)mt_shape(s, 0), cases[i].n);
    TU_CHECK_VALUES(s, cases[i].v, cases[i].n);
    if (cases[i].n > 1) ck_assert_int_eq(mt_stride(s, 0), cases[i].step);
    if (cases[i].n > 0) {
      ck_assert_ptr_eq(mt_data_ptr(s), elem_ptr(t, (int64_t)cases[i].v[0]));
    }
    mt_tensor_free(s);
  }
  TU_FAILS(mt_slice(t, 0, 0, 5, 0), MT_ERR_INVALID_ARGUMENT, "mt_slice");
  TU_FAILS(mt_slice(t, 0, 5, 0, -1), MT_ERR_INVALID_ARGUMENT, "mt_slice");
  TU_FAILS(mt_slice(t, 1, 0, 5, 1), MT_ERR_SHAPE, "mt_slice");
  TU_FAILS(mt_slice(t, -2, 0, 5, 1), MT_ERR_SHAPE, "mt_slice");
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_slice_2d) {
  mt_tensor *t = iota(2, TU_SHAPE(4, 6));
  mt_tensor *s = TU_OK(mt_slice(t, -1, 1, 6, 2)); /* columns 1, 3, 5 */
  TU_CHECK_META(s, MT_FLOAT32, 2, TU_SHAPE(4, 3));
  check_strides(s, 2, TU_SHAPE(6, 2));
  ck_assert_int_eq(mt_is_contiguous(s), 0);
  TU_CHECK_VALUES(s, TU_VALS(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23), 12);
  mt_tensor *ss = TU_OK(mt_slice(s, 0, 1, 4, 2)); /* rows 1, 3 */
  TU_CHECK_META(ss, MT_FLOAT32, 2, TU_SHAPE(2, 3));
  check_strides(ss, 2, TU_SHAPE(12, 2));
  TU_CHECK_VALUES(ss, TU_VALS(7, 9, 11, 19, 21, 23), 6);
  ck_assert_ptr_eq(mt_data_ptr(ss), elem_ptr(t, 7));
  mt_tensor *row = TU_OK(mt_slice(t, 0, 2, 3, 1)); /* one row: contiguous */
  ck_assert_int_eq(mt_is_contiguous(row), 1);
  mt_tensor_free(row);
  mt_tensor_free(ss);
  mt_tensor_free(s);
  mt_tensor_free(t);
}
END_TEST

/* ---------------------------------------------- expand, squeeze, unsqueeze */

START_TEST(test_expand) {
  mt_tensor *t = iota(2, TU_SHAPE(3, 1));
  mt_tensor *e = TU_OK(mt_expand(t, 2, TU_SHAPE(3, 4)));
  TU_CHECK_META(e, MT_FLOAT32, 2, TU_SHAPE(3, 4));
  ck_assert_int_eq(mt_stride(e, 1), 0);
  ck_assert_int_eq(mt_stride(e, 0), 1);
  ck_assert_ptr_eq(mt_data_ptr(e), mt_data_ptr(t));
  ck_assert_int_eq(mt_is_contiguous(e), 0);
  TU_CHECK_VALUES(e, TU_VALS(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2), 12);
  mt_tensor *e2 = TU_OK(mt_expand(t, 3, TU_SHAPE(2, -1, 2)));
  TU_CHECK_META(e2, MT_FLOAT32, 3, TU_SHAPE(2, 3, 2));
  check_strides(e2, 3, TU_SHAPE(0, 1, 0));
  TU_CHECK_VALUES(e2, TU_VALS(0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2), 12);
  mt_tensor *same = TU_OK(mt_expand(t, 2, TU_SHAPE(-1, -1)));
  TU_CHECK_META(same, MT_FLOAT32, 2, TU_SHAPE(3, 1));
  mt_tensor *zero = TU_OK(mt_expand(t, 2, TU_SHAPE(3, 0)));
  ck_assert_int_eq(mt_numel(zero), 0);
  TU_FAILS(mt_expand(t, 2, TU_SHAPE(4, 4)), MT_ERR_SHAPE, "mt_expand");
  TU_FAILS(mt_expand(t, 1, TU_SHAPE(3)), MT_ERR_SHAPE, "mt_expand");
  TU_FAILS(mt_expand(t, 9, TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 3, 1)), MT_ERR_SHAPE, "mt_expand");
  TU_FAILS(mt_expand(t, 2, NULL), MT_ERR_INVALID_ARGUMENT, "mt_expand");

  mt_tensor *s = TU_OK(mt_full(0, NULL, 7, MT_INT16, TU_CPU));
  mt_tensor *se = TU_OK(mt_expand(s, 2, TU_SHAPE(2, 2)));
  TU_CHECK_META(se, MT_INT16, 2, TU_SHAPE(2, 2));
  TU_CHECK_VALUES(se, TU_VALS(7, 7, 7, 7), 4);
  mt_tensor_free(se);
  mt_tensor_free(s);
  mt_tensor_free(zero);
  mt_tensor_free(same);
  mt_tensor_free(e2);
  mt_tensor_free(e);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_squeeze_unsqueeze) {
  mt_tensor *t = iota(3, TU_SHAPE(1, 3, 1));
  mt_tensor *a = TU_OK(mt_squeeze(t, 0));
  TU_CHECK_META(a, MT_FLOAT32, 2, TU_SHAPE(3, 1));
  mt_tensor *b = TU_OK(mt_squeeze(t, -1));
  TU_CHECK_META(b, MT_FLOAT32, 2, TU_SHAPE(1, 3));
  ck_assert_ptr_eq(mt_data_ptr(b), mt_data_ptr(t));
  TU_CHECK_VALUES(b, TU_VALS(0, 1, 2), 3);
  TU_FAILS(mt_squeeze(t, 1), MT_ERR_SHAPE, "mt_squeeze");
  TU_FAILS(mt_squeeze(t, 3), MT_ERR_SHAPE, "mt_squeeze");
  mt_tensor_free(a);
  mt_tensor_free(b);

  mt_tensor *v = iota(1, TU_SHAPE(3));
  static const struct { int dim; int64_t shape[2]; } u[] = {
      {0, {1, 3}}, {1, {3, 1}}, {-1, {3, 1}}, {-2, {1, 3}}};
  for (int i = 0; i < 4; i++) {
    mt_tensor *r = TU_OK(mt_unsqueeze(v, u[i].dim));
    TU_CHECK_META(r, MT_FLOAT32, 2, u[i].shape);
    TU_CHECK_VALUES(r, TU_VALS(0, 1, 2), 3);
    ck_assert_ptr_eq(mt_data_ptr(r), mt_data_ptr(v));
    mt_tensor_free(r);
  }
  TU_FAILS(mt_unsqueeze(v, 2), MT_ERR_SHAPE, "mt_unsqueeze");
  TU_FAILS(mt_unsqueeze(v, -3), MT_ERR_SHAPE, "mt_unsqueeze");
  mt_tensor *s = TU_OK(mt_full(0, NULL, 4, MT_FLOAT32, TU_CPU));
  mt_tensor *s1 = TU_OK(mt_unsqueeze(s, 0));
  TU_CHECK_META(s1, MT_FLOAT32, 1, TU_SHAPE(1));
  mt_tensor *s0 = TU_OK(mt_squeeze(s1, 0));
  ck_assert_int_eq(mt_ndim(s0), 0);
  mt_tensor_free(s0);
  mt_tensor_free(s1);
  mt_tensor_free(s);
  /* 8 dims cannot grow */
  int64_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  mt_tensor *full8 = TU_OK(mt_zeros(8, ones, MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_unsqueeze(full8, 0), MT_ERR_SHAPE, "mt_unsqueeze");
  mt_tensor_free(full8);
  mt_tensor_free(v);
  mt_tensor_free(t);
}
END_TEST

/* -------------------------------------------------------- shared storage */

START_TEST(test_views_share_storage) {
  mt_tensor *base = TU_OK(mt_zeros(2, TU_SHAPE(4, 5), MT_FLOAT32, TU_CPU));
  mt_tensor *cols = TU_OK(mt_slice(base, 1, 1, 4, 1)); /* [4, 3] */
  mt_tensor *tr = TU_OK(mt_transpose(base, 0, 1));     /* [5, 4] */
  mt_tensor *one = TU_OK(mt_ones(0, NULL, MT_INT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(cols, one));
  double want[20];
  for (int i = 0; i < 20; i++) want[i] = (i % 5 >= 1 && i % 5 <= 3) ? 1 : 0;
  TU_CHECK_VALUES(base, want, 20);
  /* the transposed view sees the write too */
  double wt[20];
  for (int j = 0; j < 5; j++)
    for (int i = 0; i < 4; i++) wt[j * 4 + i] = want[i * 5 + j];
  TU_CHECK_VALUES(tr, wt, 20);

  /* Freeing the base first leaves the views working. */
  mt_tensor_free(base);
  mt_tensor *two = TU_OK(mt_full(1, TU_SHAPE(3), 2, MT_FLOAT64, TU_CPU));
  TU_CHECK_OK(mt_copy_(cols, two)); /* broadcast [3] over [4, 3] */
  for (int i = 0; i < 20; i++) want[i] = (i % 5 >= 1 && i % 5 <= 3) ? 2 : 0;
  for (int j = 0; j < 5; j++)
    for (int i = 0; i < 4; i++) wt[j * 4 + i] = want[i * 5 + j];
  TU_CHECK_VALUES(tr, wt, 20);
  mt_tensor_free(cols);
  TU_CHECK_VALUES(tr, wt, 20);
  mt_tensor_free(tr);
  mt_tensor_free(one);
  mt_tensor_free(two);
}
END_TEST

START_TEST(test_contiguous_clone) {
  mt_tensor *t = iota(2, TU_SHAPE(3, 4));
  mt_tensor *c = TU_OK(mt_contiguous(t));
  ck_assert_ptr_eq(mt_data_ptr(c), mt_data_ptr(t));
  mt_tensor *tr = TU_OK(mt_transpose(t, 0, 1));
  mt_tensor *ct = TU_OK(mt_contiguous(tr));
  ck_assert_ptr_ne(mt_data_ptr(ct), mt_data_ptr(t));
  ck_assert_int_eq(mt_is_contiguous(ct), 1);
  TU_CHECK_META(ct, MT_FLOAT32, 2, TU_SHAPE(4, 3));
  check_strides(ct, 2, TU_SHAPE(3, 1));
  TU_CHECK_VALUES(ct, TU_VALS(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11), 12);

  mt_tensor *cl = TU_OK(mt_clone(t));
  ck_assert_ptr_ne(mt_data_ptr(cl), mt_data_ptr(t));
  mt_tensor *clt = TU_OK(mt_clone(tr));
  ck_assert_int_eq(mt_is_contiguous(clt), 1);
  TU_CHECK_VALUES(clt, TU_VALS(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11), 12);
  mt_tensor *z = TU_OK(mt_zeros(0, NULL, MT_FLOAT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(cl, z));
  double *tv = TU_READ(t);
  for (int i = 0; i < 12; i++) ck_assert(tv[i] == i); /* the clone owns its storage */
  free(tv);
  /* a large strided copy (threaded path) */
  mt_tensor *big = iota(2, TU_SHAPE(300, 257));
  mt_tensor *bigt = TU_OK(mt_transpose(big, 0, 1));
  mt_tensor *bigc = TU_OK(mt_contiguous(bigt));
  double *bv = TU_READ(bigc);
  for (int j = 0; j < 257; j++)
    for (int i = 0; i < 300; i++)
      TU_EXPECT(bv[j * 300 + i] == i * 257 + j, "[%d, %d] = %g", j, i, bv[j * 300 + i]);
  free(bv);
  mt_tensor_free(bigc);
  mt_tensor_free(bigt);
  mt_tensor_free(big);
  mt_tensor_free(z);
  mt_tensor_free(clt);
  mt_tensor_free(cl);
  mt_tensor_free(ct);
  mt_tensor_free(tr);
  mt_tensor_free(c);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_copy_into_strided_views) {
  /* broadcast + conversion into a stepped slice */
  mt_tensor *dst = TU_OK(mt_zeros(1, TU_SHAPE(10), MT_INT8, TU_CPU));
  mt_tensor *every2 = TU_OK(mt_slice(dst, 0, 1, 10, 2)); /* 1, 3, 5, 7, 9 */
  mt_tensor *src = TU_TENSOR(TU_VALS(1.7, -2.9, 300.5, NAN, -1e9), 1, TU_SHAPE(5), MT_FLOAT64);
  TU_CHECK_OK(mt_copy_(every2, src));
  TU_CHECK_VALUES(dst, TU_VALS(0, 1, 0, -2, 0, 127, 0, 0, 0, -128), 10);

  /* [3] broadcast into a transposed [4, 3] view of a [3, 4] float16 */
  mt_tensor *h = TU_OK(mt_zeros(2, TU_SHAPE(3, 4), MT_FLOAT16, TU_CPU));
  mt_tensor *ht = TU_OK(mt_transpose(h, 0, 1));
  mt_tensor *row = TU_TENSOR(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), MT_INT32);
  TU_CHECK_OK(mt_copy_(ht, row));
  TU_CHECK_VALUES(h, TU_VALS(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), 12);

  /* 0-d into 0-d, and 0-d broadcast */
  mt_tensor *s = TU_OK(mt_zeros(0, NULL, MT_BFLOAT16, TU_CPU));
  mt_tensor *v = TU_OK(mt_full(0, NULL, 3.140625, MT_FLOAT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(s, v));
  TU_CHECK_VALUES(s, TU_VALS(3.140625), 1);
  TU_CHECK_OK(mt_copy_(ht, v));
  double w[12];
  for (int i = 0; i < 12; i++) w[i] = ref_round_to(3.140625, MT_FLOAT16);
  TU_CHECK_VALUES(h, w, 12);

  /* src overlapping dst in the same storage reads as if copied first */
  mt_tensor *line = iota(1, TU_SHAPE(6));
  mt_tensor *head = TU_OK(mt_slice(line, 0, 0, 5, 1)), *tail = TU_OK(mt_slice(line, 0, 1, 6, 1));
  TU_CHECK_OK(mt_copy_(tail, head));
  TU_CHECK_VALUES(line, TU_VALS(0, 0, 1, 2, 3, 4), 6);
  mt_tensor *lt = TU_OK(mt_reshape(line, 2, TU_SHAPE(2, 3)));
  mt_tensor *ltt = TU_OK(mt_transpose(lt, 0, 1));
  mt_tensor *sq = TU_OK(mt_slice(ltt, 0, 0, 2, 1)); /* [2, 2] view, transposed */
  mt_tensor *sq0 = TU_OK(mt_slice(lt, 1, 0, 2, 1)); /* [2, 2] rows of the same storage */
  TU_CHECK_OK(mt_copy_(sq0, sq));                     /* in-place transpose of a 2x2 block */
  TU_CHECK_VALUES(line, TU_VALS(0, 2, 1, 0, 3, 4), 6);
  mt_tensor_free(sq0);
  mt_tensor_free(sq);
  mt_tensor_free(ltt);
  mt_tensor_free(lt);
  mt_tensor_free(head);
  mt_tensor_free(tail);
  mt_tensor_free(line);

  /* refusals */
  mt_tensor *four = TU_OK(mt_zeros(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  TU_STATUS(mt_copy_(every2, four), MT_ERR_SHAPE, "mt_copy_");
  TU_STATUS(mt_copy_(s, four), MT_ERR_SHAPE, "mt_copy_"); /* src bigger than dst */
  mt_tensor *col = TU_OK(mt_zeros(2, TU_SHAPE(3, 1), MT_FLOAT32, TU_CPU));
  mt_tensor *expanded = TU_OK(mt_expand(col, 2, TU_SHAPE(3, 4)));
  TU_STATUS(mt_copy_(expanded, four), MT_ERR_INVALID_ARGUMENT, "mt_copy_");
  mt_tensor_free(expanded);
  mt_tensor_free(col);
  mt_tensor_free(four);
  mt_tensor_free(v);
  mt_tensor_free(s);
  mt_tensor_free(row);
  mt_tensor_free(ht);
  mt_tensor_free(h);
  mt_tensor_free(src);
  mt_tensor_free(every2);
  mt_tensor_free(dst);
}
END_TEST

/* -------------------------------------------------- to, item, to_host */

START_TEST(test_to_dtype_and_copy_flag) {
  mt_tensor *t = TU_TENSOR(TU_VALS(1.5, -2.5, 300, 7), 1, TU_SHAPE(4), MT_FLOAT32);
  mt_tensor *i = TU_OK(mt_to(t, TU_CPU, MT_INT16, 0));
  TU_CHECK_META(i, MT_INT16, 1, TU_SHAPE(4));
  TU_CHECK_VALUES(i, TU_VALS(1, -2, 300, 7), 4);
  mt_tensor *u = TU_OK(mt_to(t, TU_CPU, MT_UINT8, 1));
  TU_CHECK_VALUES(u, TU_VALS(1, 0, 255, 7), 4);

  /* copy=1 never shares */
  mt_tensor *c = TU_OK(mt_to(t, TU_CPU, MT_FLOAT32, 1));
  ck_assert_ptr_ne(mt_data_ptr(c), mt_data_ptr(t));
  mt_tensor *z = TU_OK(mt_zeros(0, NULL, MT_FLOAT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(c, z));
  TU_CHECK_VALUES(t, TU_VALS(1.5, -2.5, 300, 7), 4);
  /* copy=0 with nothing to change: same values, its own handle */
  mt_tensor *s = TU_OK(mt_to(t, TU_CPU, MT_FLOAT32, 0));
  ck_assert_ptr_ne(s, t);
  mt_tensor_free(t);
  TU_CHECK_VALUES(s, TU_VALS(1.5, -2.5, 300, 7), 4);
  /* of a view: row-major values */
  mt_tensor *m = iota(2, TU_SHAPE(2, 3));
  mt_tensor *mt = TU_OK(mt_transpose(m, 0, 1));
  mt_tensor *md = TU_OK(mt_to(mt, TU_CPU, MT_FLOAT64, 0));
  ck_assert_int_eq(mt_is_contiguous(md), 1);
  TU_CHECK_VALUES(md, TU_VALS(0, 3, 1, 4, 2, 5), 6);
  TU_FAILS(mt_to(m, TU_CPU, (mt_dtype)42, 0), MT_ERR_DTYPE, "mt_to");
  TU_FAILS(mt_to(m, ((mt_device){9, 0}), MT_FLOAT32, 1), MT_ERR_DEVICE, "mt_to");
  mt_tensor_free(md);
  mt_tensor_free(mt);
  mt_tensor_free(m);
  mt_tensor_free(s);
  mt_tensor_free(z);
  mt_tensor_free(c);
  mt_tensor_free(u);
  mt_tensor_free(i);
}
END_TEST

START_TEST(test_item) {
  static const struct { mt_dtype d; double v; } cases[] = {
      {MT_FLOAT32, -2.25}, {MT_FLOAT64, 0.1},  {MT_INT64, 9007199254740992.0}, {MT_INT8, -128},
      {MT_UINT8, 255},     {MT_BOOL, 1},       {MT_FLOAT16, 65504},           {MT_BFLOAT16, -3.5},
      {MT_INT16, -32768},  {MT_INT32, 2147483647.0}, {MT_FLOAT32, INFINITY},
  };
  for (int i = 0; i < TU_COUNT(cases); i++) {
    mt_tensor *t = TU_TENSOR(&cases[i].v, 3, TU_SHAPE(1, 1, 1), cases[i].d);
    double x = 0;
    TU_CHECK_OK(mt_item(t, &x));
    ck_assert_msg(x == cases[i].v, "%s item %.17g, expected %.17g", mt_dtype_name(cases[i].d), x,
                  cases[i].v);
    mt_tensor_free(t);
  }
  mt_tensor *n = TU_OK(mt_full(0, NULL, NAN, MT_FLOAT32, TU_CPU));
  double x = 0;
  TU_CHECK_OK(mt_item(n, &x));
  ck_assert(isnan(x));
  TU_STATUS(mt_item(n, NULL), MT_ERR_INVALID_ARGUMENT, "mt_item");
  mt_tensor *two = TU_OK(mt_zeros(1, TU_SHAPE(2), MT_FLOAT32, TU_CPU));
  TU_STATUS(mt_item(two, &x), MT_ERR_SHAPE, "mt_item");
  /* one element of a view */
  mt_tensor *m = iota(2, TU_SHAPE(3, 4));
  mt_tensor *e = TU_OK(mt_slice(m, 1, 2, 3, 1));
  mt_tensor *e2 = TU_OK(mt_slice(e, 0, 1, 2, 1));
  TU_CHECK_OK(mt_item(e2, &x));
  ck_assert(x == 6);
  mt_tensor_free(e2);
  mt_tensor_free(e);
  mt_tensor_free(m);
  mt_tensor_free(two);
  mt_tensor_free(n);
}
END_TEST

START_TEST(test_to_host) {
  mt_tensor *t = iota(2, TU_SHAPE(2, 3));
  float buf[7];
  TU_STATUS(mt_to_host(t, buf, sizeof(float) * 5), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_to_host(t, buf, sizeof(float) * 7), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_to_host(t, buf, 0), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_to_host(t, NULL, sizeof(float) * 6), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  TU_STATUS(mt_to_host(NULL, buf, sizeof(float) * 6), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
  buf[6] = 42;
  TU_CHECK_OK(mt_to_host(t, buf, sizeof(float) * 6));
  for (int i = 0; i < 6; i++) ck_assert(buf[i] == i);
  ck_assert(buf[6] == 42); /* nothing written past nbytes */
  mt_tensor *tr = TU_OK(mt_transpose(t, 0, 1));
  TU_CHECK_OK(mt_to_host(tr, buf, sizeof(float) * 6));
  const float want[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++) ck_assert(buf[i] == want[i]);
  mt_tensor_free(tr);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_data_ptr) {
  mt_tensor *t = iota(2, TU_SHAPE(3, 4));
  float *p = mt_data_ptr(t);
  ck_assert_ptr_nonnull(p);
  for (int i = 0; i < 12; i++) ck_assert(p[i] == i);
  mt_tensor *s = TU_OK(mt_slice(t, 0, 1, 3, 1));
  ck_assert_ptr_eq(mt_data_ptr(s), p + 4);
  mt_tensor *c = TU_OK(mt_slice(t, 1, 3, 4, 1));
  ck_assert_ptr_eq(mt_data_ptr(c), p + 3);
  mt_tensor *e = TU_OK(mt_zeros(2, TU_SHAPE(0, 4), MT_FLOAT32, TU_CPU));
  mt_clear_error();
  ck_assert_ptr_null(mt_data_ptr(e));
  ck_assert_int_eq(mt_last_status(), MT_OK);
  mt_clear_error();
  ck_assert_ptr_null(mt_data_ptr(NULL));
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  mt_tensor_free(e);
  mt_tensor_free(c);
  mt_tensor_free(s);
  mt_tensor_free(t);
}
END_TEST

/* -------------------------------------------------------------- from_blob */

typedef struct deleter_count {
  int calls;
  void *last;
} deleter_count;

static deleter_count g_deleted;

static void count_deleter(void *ctx) {
  g_deleted.calls++;
  g_deleted.last = ctx;
}

START_TEST(test_from_blob) {
  float data[12];
  for (int i = 0; i < 12; i++) data[i] = (float)i;
  memset(&g_deleted, 0, sizeof g_deleted);
  mt_tensor *t = TU_OK(mt_from_blob(data, 2, TU_SHAPE(3, 4), NULL, MT_FLOAT32, count_deleter,
                                    data));
  TU_CHECK_META(t, MT_FLOAT32, 2, TU_SHAPE(3, 4));
  check_strides(t, 2, TU_SHAPE(4, 1));
  ck_assert_ptr_eq(mt_data_ptr(t), data);
  mt_device d = mt_tensor_device(t);
  ck_assert_int_eq(d.type, MT_DEVICE_CPU);
  mt_tensor *v = TU_OK(mt_transpose(t, 0, 1));
  mt_tensor *r = TU_OK(mt_slice(t, 0, 1, 2, 1));
  /* writes land in the caller's memory */
  mt_tensor *nine = TU_OK(mt_full(0, NULL, 9, MT_FLOAT32, TU_CPU));
  TU_CHECK_OK(mt_copy_(r, nine));
  for (int i = 0; i < 12; i++) ck_assert(data[i] == (i >= 4 && i < 8 ? 9.0f : (float)i));
  mt_tensor_free(t);
  ck_assert_int_eq(g_deleted.calls, 0);
  mt_tensor_free(r);
  ck_assert_int_eq(g_deleted.calls, 0);
  TU_CHECK_VALUES(v, TU_VALS(0, 9, 8, 1, 9, 9, 2, 9, 10, 3, 9, 11), 12);
  mt_tensor_free(v);
  ck_assert_int_eq(g_deleted.calls, 1);
  ck_assert_ptr_eq(g_deleted.last, data);
  mt_tensor_free(nine);
}
END_TEST

START_TEST(test_from_blob_zero_dim) {
  /* a 0-d blob: shape and strides NULL */
  double one = 2.5;
  memset(&g_deleted, 0, sizeof g_deleted);
  mt_tensor *s = TU_OK(mt_from_blob(&one, 0, NULL, NULL, MT_FLOAT64, count_deleter, &one));
  ck_assert_int_eq(mt_ndim(s), 0);
  TU_CHECK_VALUES(s, TU_VALS(2.5), 1);
  mt_tensor *e = TU_OK(mt_expand(s, 0, NULL));
  ck_assert_int_eq(mt_ndim(e), 0);
  mt_tensor_free(s);
  mt_tensor_free(e);
  ck_assert_int_eq(g_deleted.calls, 1);
}
END_TEST

START_TEST(test_from_blob_strides) {
  /* column-major [3, 4] int32 */
  int32_t cm[12];
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 3; i++) cm[j * 3 + i] = i * 10 + j;
  memset(&g_deleted, 0, sizeof g_deleted);
  mt_tensor *t = TU_OK(mt_from_blob(cm, 2, TU_SHAPE(3, 4), TU_SHAPE(1, 3), MT_INT32,
                                    count_deleter, NULL));
  check_strides(t, 2, TU_SHAPE(1, 3));
  ck_assert_int_eq(mt_is_contiguous(t), 0);
  TU_CHECK_VALUES(t, TU_VALS(0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23), 12);
  mt_tensor *sum = TU_OK(mt_add(t, t));
  TU_CHECK_VALUES(sum, TU_VALS(0, 2, 4, 6, 20, 22, 24, 26, 40, 42, 44, 46), 12);
  mt_tensor_free(sum);
  mt_tensor_free(t);
  ck_assert_int_eq(g_deleted.calls, 1);

  /* stride 0 (a broadcast blob) and a padded row stride */
  double row[3] = {1, 2, 3};
  mt_tensor *b = TU_OK(mt_from_blob(row, 2, TU_SHAPE(2, 3), TU_SHAPE(0, 1), MT_FLOAT64, NULL, NULL));
  TU_CHECK_VALUES(b, TU_VALS(1, 2, 3, 1, 2, 3), 6);
  mt_tensor_free(b);
  uint8_t pad[2 * 5] = {1, 2, 3, 0, 0, 4, 5, 6, 0, 0};
  mt_tensor *p = TU_OK(mt_from_blob(pad, 2, TU_SHAPE(2, 3), TU_SHAPE(5, 1), MT_UINT8, NULL, NULL));
  TU_CHECK_VALUES(p, TU_VALS(1, 2, 3, 4, 5, 6), 6);
  mt_tensor_free(p);

  /* refusals do not call the deleter */
  memset(&g_deleted, 0, sizeof g_deleted);
  TU_FAILS(mt_from_blob(cm, 2, TU_SHAPE(3, 4), TU_SHAPE(-1, 3), MT_INT32, count_deleter, NULL),
           MT_ERR_INVALID_ARGUMENT, "mt_from_blob");
  TU_FAILS(mt_from_blob(cm, 2, TU_SHAPE(3, 4), NULL, (mt_dtype)42, count_deleter, NULL),
           MT_ERR_DTYPE, "mt_from_blob");
  TU_FAILS(mt_from_blob(cm, 9, TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1), NULL, MT_INT32, count_deleter,
                        NULL),
           MT_ERR_SHAPE, "mt_from_blob");
  TU_FAILS(mt_from_blob(cm, 1, TU_SHAPE(-3), NULL, MT_INT32, count_deleter, NULL), MT_ERR_SHAPE,
           "mt_from_blob");
  TU_FAILS(mt_from_blob(NULL, 1, TU_SHAPE(3), NULL, MT_INT32, count_deleter, NULL),
           MT_ERR_INVALID_ARGUMENT, "mt_from_blob");
  ck_assert_int_eq(g_deleted.calls, 0);
}
END_TEST

/* ----------------------------------------------------------------- DLPack */

static void check_dl_dtype(mt_dtype d, uint8_t code, uint8_t bits) {
  mt_tensor *t = TU_OK(mt_zeros(1, TU_SHAPE(3), d, TU_CPU));
  DLManagedTensor *m = mt_to_dlpack(t);
  ck_assert_msg(m != NULL, "%s: %s", mt_dtype_name(d), mt_last_error());
  ck_assert_msg(m->dl_tensor.dtype.code == code && m->dl_tensor.dtype.bits == bits &&
                    m->dl_tensor.dtype.lanes == 1,
                "%s exported as code %d bits %d lanes %d", mt_dtype_name(d),
                m->dl_tensor.dtype.code, m->dl_tensor.dtype.bits, m->dl_tensor.dtype.lanes);
  m->deleter(m);
  mt_tensor_free(t);
}

START_TEST(test_dlpack_dtypes) {
  check_dl_dtype(MT_UINT8, kDLUInt, 8);
  check_dl_dtype(MT_INT8, kDLInt, 8);
  check_dl_dtype(MT_INT16, kDLInt, 16);
  check_dl_dtype(MT_INT32, kDLInt, 32);
  check_dl_dtype(MT_INT64, kDLInt, 64);
  check_dl_dtype(MT_FLOAT16, kDLFloat, 16);
  check_dl_dtype(MT_BFLOAT16, kDLBfloat, 16);
  check_dl_dtype(MT_FLOAT32, kDLFloat, 32);
  check_dl_dtype(MT_FLOAT64, kDLFloat, 64);
}
END_TEST

/* Address of element [0, ...] of an exported DLTensor. */
static void *dl_first(const DLTensor *t) { return (char *)t->data + t->byte_offset; }

START_TEST(test_dlpack_export) {
  float data[12];
  for (int i = 0; i < 12; i++) data[i] = (float)i;
  memset(&g_deleted, 0, sizeof g_deleted);
  mt_tensor *t = TU_OK(mt_from_blob(data, 2, TU_SHAPE(3, 4), NULL, MT_FLOAT32, count_deleter, NULL));
  DLManagedTensor *m = mt_to_dlpack(t);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(m->deleter);
  DLTensor *dl = &m->dl_tensor;
  ck_assert_int_eq(dl->device.device_type, kDLCPU);
  ck_assert_int_eq(dl->device.device_id, 0);
  ck_assert_int_eq(dl->ndim, 2);
  ck_assert(dl->shape[0] == 3 && dl->shape[1] == 4);
  ck_assert(dl->strides == NULL || (dl->strides[0] == 4 && dl->strides[1] == 1));
  ck_assert_ptr_eq(dl_first(dl), data);
  ck_assert(dl->dtype.code == kDLFloat && dl->dtype.bits == 32 && dl->dtype.lanes == 1);
  /* the export keeps the storage alive after the tensor goes */
  mt_tensor_free(t);
  ck_assert_int_eq(g_deleted.calls, 0);
  ck_assert(((float *)dl_first(dl))[5] == 5.0f);
  m->deleter(m);
  ck_assert_int_eq(g_deleted.calls, 1);

  /* a strided, offset view */
  mt_tensor *base = iota(2, TU_SHAPE(4, 6));
  mt_tensor *v = TU_OK(mt_slice(base, 1, 1, 6, 2));
  mt_tensor *vt = TU_OK(mt_transpose(v, 0, 1)); /* [3, 4] strides [2, 6] */
  m = mt_to_dlpack(vt);
  ck_assert_ptr_nonnull(m);
  dl = &m->dl_tensor;
  ck_assert_int_eq(dl->ndim, 2);
  ck_assert(dl->shape[0] == 3 && dl->shape[1] == 4);
  ck_assert_ptr_nonnull(dl->strides);
  ck_assert(dl->strides[0] == 2 && dl->strides[1] == 6);
  ck_assert_ptr_eq(dl_first(dl), mt_data_ptr(vt));
  ck_assert_ptr_eq(dl_first(dl), elem_ptr(base, 1));
  mt_tensor_free(vt);
  mt_tensor_free(v);
  mt_tensor_free(base);
  ck_assert(((float *)dl_first(dl))[2] == 3.0f);
  m->deleter(m);

  /* 0-d */
  mt_tensor *s = TU_OK(mt_full(0, NULL, 5, MT_INT64, TU_CPU));
  m = mt_to_dlpack(s);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(m->dl_tensor.ndim, 0);
  ck_assert(*(int64_t *)dl_first(&m->dl_tensor) == 5);
  m->deleter(m);
  mt_tensor_free(s);

  mt_clear_error();
  ck_assert_ptr_null(mt_to_dlpack(NULL));
  tu_check_error_at(__FILE__, __LINE__, "mt_to_dlpack(NULL)", MT_ERR_INVALID_ARGUMENT,
                    "mt_to_dlpack");
}
END_TEST

START_TEST(test_dlpack_round_trip) {
  double src[6] = {1, 2, 3, 4, 5, 6};
  memset(&g_deleted, 0, sizeof g_deleted);
  mt_tensor *t = TU_OK(mt_from_blob(src, 2, TU_SHAPE(2, 3), NULL, MT_FLOAT64, count_deleter, src));
  mt_tensor *tt = TU_OK(mt_transpose(t, 0, 1));
  mt_tensor *back = TU_OK(mt_from_dlpack(mt_to_dlpack(tt)));
  TU_CHECK_META(back, MT_FLOAT64, 2, TU_SHAPE(3, 2));
  check_strides(back, 2, TU_SHAPE(1, 3));
  ck_assert_ptr_eq(mt_data_ptr(back), src);
  TU_CHECK_VALUES(back, TU_VALS(1, 4, 2, 5, 3, 6), 6);
  mt_tensor_free(t);
  mt_tensor_free(tt);
  ck_assert_int_eq(g_deleted.calls, 0);
  mt_tensor_free(back);
  ck_assert_int_eq(g_deleted.calls, 1);
  ck_assert_ptr_eq(g_deleted.last, src);
}
END_TEST

/* A DLManagedTensor made the way a foreign producer would. */
typedef struct foreign {
  DLManagedTensor m;
  int64_t shape[3], strides[3];
  int32_t data[16];
  int deleted;
} foreign;

static void foreign_deleter(DLManagedTensor *self) {
  foreign *f = self->manager_ctx;
  f->deleted++;
}

static void foreign_init(foreign *f) {
  memset(f, 0, sizeof *f);
  for (int i = 0; i < 16; i++) f->data[i] = i * 3;
  f->m.manager_ctx = f;
  f->m.deleter = foreign_deleter;
  DLTensor *dl = &f->m.dl_tensor;
  dl->data = f->data;
  dl->byte_offset = 2 * sizeof(int32_t); /* starts at element 2 */
  dl->device.device_type = kDLCPU;
  dl->device.device_id = 0;
  dl->ndim = 2;
  dl->dtype.code = kDLInt;
  dl->dtype.bits = 32;
  dl->dtype.lanes = 1;
  f->shape[0] = 2;
  f->shape[1] = 3;
  f->strides[0] = 5;
  f->strides[1] = 2;
  dl->shape = f->shape;
  dl->strides = f->strides;
}

START_TEST(test_dlpack_import) {
  foreign f;
  foreign_init(&f);
  mt_tensor *t = TU_OK(mt_from_dlpack(&f.m));
  TU_CHECK_META(t, MT_INT32, 2, TU_SHAPE(2, 3));
  check_strides(t, 2, TU_SHAPE(5, 2));
  ck_assert_ptr_eq(mt_data_ptr(t), &f.data[2]);
  /* elements 2, 4, 6 and 7, 9, 11, times 3 */
  TU_CHECK_VALUES(t, TU_VALS(6, 12, 18, 21, 27, 33), 6);
  mt_tensor *v = TU_OK(mt_slice(t, 1, 1, 3, 1));
  mt_tensor_free(t);
  ck_assert_int_eq(f.deleted, 0);
  TU_CHECK_VALUES(v, TU_VALS(12, 18, 27, 33), 4);
  mt_tensor_free(v);
  ck_assert_int_eq(f.deleted, 1);

  /* NULL strides: compact row-major */
  foreign_init(&f);
  f.m.dl_tensor.strides = NULL;
  f.m.dl_tensor.byte_offset = 0;
  t = TU_OK(mt_from_dlpack(&f.m));
  check_strides(t, 2, TU_SHAPE(3, 1));
  TU_CHECK_VALUES(t, TU_VALS(0, 3, 6, 9, 12, 15), 6);
  mt_tensor_free(t);
  ck_assert_int_eq(f.deleted, 1);

  /* float16 and bfloat16 */
  foreign_init(&f);
  uint16_t h[2] = {ref_f16_encode(1.5), ref_f16_encode(-2.0)};
  f.m.dl_tensor.data = h;
  f.m.dl_tensor.byte_offset = 0;
  f.m.dl_tensor.dtype.code = kDLFloat;
  f.m.dl_tensor.dtype.bits = 16;
  f.m.dl_tensor.ndim = 1;
  f.shape[0] = 2;
  f.strides[0] = 1;
  t = TU_OK(mt_from_dlpack(&f.m));
  TU_CHECK_META(t, MT_FLOAT16, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(t, TU_VALS(1.5, -2.0), 2);
  mt_tensor_free(t);
  ck_assert_int_eq(f.deleted, 1);
}
END_TEST

START_TEST(test_dlpack_import_refusals) {
  /* each refusal still calls the producer's deleter exactly once */
  for (int c = 0; c < 5; c++) {
    foreign f;
    foreign_init(&f);
    mt_status want = MT_ERR_INVALID_ARGUMENT;
    switch (c) {
    case 0: f.m.dl_tensor.device.device_type = kDLCUDA; want = MT_ERR_DEVICE; break;
    case 1: f.m.dl_tensor.dtype.code = kDLComplex; f.m.dl_tensor.dtype.bits = 64; want = MT_ERR_DTYPE; break;
    case 2: f.m.dl_tensor.dtype.lanes = 4; want = MT_ERR_DTYPE; break;
    case 3: f.m.dl_tensor.dtype.bits = 24; want = MT_ERR_DTYPE; break;
    case 4: f.m.dl_tensor.ndim = 9; want = MT_ERR_SHAPE; break;
    }
    TU_FAILS(mt_from_dlpack(&f.m), want, "mt_from_dlpack");
    ck_assert_msg(f.deleted == 1, "case %d: deleter called %d times", c, f.deleted);
  }
  TU_FAILS(mt_from_dlpack(NULL), MT_ERR_INVALID_ARGUMENT, "mt_from_dlpack");
}
END_TEST

static Suite *views_suite(void) {
  Suite *s = suite_create("views");
  TCase *tc = tcase_create("views");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_reshape_views);
  tcase_add_test(tc, test_reshape_copies_when_needed);
  tcase_add_test(tc, test_reshape_errors);
  tcase_add_test(tc, test_permute_transpose);
  tcase_add_test(tc, test_slice_python_rules);
  tcase_add_test(tc, test_slice_2d);
  tcase_add_test(tc, test_expand);
  tcase_add_test(tc, test_squeeze_unsqueeze);
  tcase_add_test(tc, test_views_share_storage);
  suite_add_tcase(s, tc);

  tc = tcase_create("copies");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_contiguous_clone);
  tcase_add_test(tc, test_copy_into_strided_views);
  tcase_add_test(tc, test_to_dtype_and_copy_flag);
  tcase_add_test(tc, test_item);
  tcase_add_test(tc, test_to_host);
  tcase_add_test(tc, test_data_ptr);
  suite_add_tcase(s, tc);

  tc = tcase_create("interop");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_from_blob);
  tcase_add_test(tc, test_from_blob_zero_dim);
  tcase_add_test(tc, test_from_blob_strides);
  tcase_add_test(tc, test_dlpack_dtypes);
  tcase_add_test(tc, test_dlpack_export);
  tcase_add_test(tc, test_dlpack_round_trip);
  tcase_add_test(tc, test_dlpack_import);
  tcase_add_test(tc, test_dlpack_import_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(views_suite()); }
