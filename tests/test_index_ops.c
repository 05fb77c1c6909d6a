/*
 * test_index_ops.c - the indexing, shape, creation and sampling ops on the
 * cpu against literals (worked out by hand from PyTorch's documented
 * semantics) and plain reference loops.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define F32 MT_FLOAT32
#define I64 MT_INT64

static mt_tensor *idx_tensor(const int64_t *v, int ndim, const int64_t *shape) {
  return TU_OK(mt_from_data(v, ndim, shape, MT_INT64, TU_CPU));
}

/* ------------------------------------------------------------ creation */

START_TEST(test_eye) {
  mt_tensor *t = TU_OK(mt_eye(2, 3, F32, TU_CPU));
  TU_CHECK_META(t, F32, 2, TU_SHAPE(2, 3));
  TU_CHECK_VALUES(t, TU_VALS(1, 0, 0, 0, 1, 0), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_eye(3, 2, MT_BOOL, TU_CPU));
  TU_CHECK_VALUES(t, TU_VALS(1, 0, 0, 1, 0, 0), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_eye(0, 4, I64, TU_CPU));
  TU_CHECK_META(t, I64, 2, TU_SHAPE(0, 4));
  mt_tensor_free(t);
  TU_FAILS(mt_eye(-1, 2, F32, TU_CPU), MT_ERR_SHAPE, "mt_eye");
  TU_FAILS(mt_eye(2, 2, (mt_dtype)42, TU_CPU), MT_ERR_DTYPE, "mt_eye");
}
END_TEST

START_TEST(test_linspace) {
  mt_tensor *t = TU_OK(mt_linspace(0, 1, 5, F32, TU_CPU));
  TU_CHECK_VALUES(t, TU_VALS(0, 0.25, 0.5, 0.75, 1), 5);
  mt_tensor_free(t);
  t = TU_OK(mt_linspace(0, 10, 5, I64, TU_CPU)); /* truncated as torch */
  TU_CHECK_VALUES(t, TU_VALS(0, 2, 5, 7, 10), 5);
  mt_tensor_free(t);
  t = TU_OK(mt_linspace(3, -3, 1, MT_FLOAT64, TU_CPU));
  TU_CHECK_VALUES(t, TU_VALS(3), 1);
  mt_tensor_free(t);
  t = TU_OK(mt_linspace(0.1, 0.7, 7, MT_FLOAT64, TU_CPU)); /* both ends exact */
  double *v = TU_READ(t);
  ck_assert(v[0] == 0.1 && v[6] == 0.7);
  free(v);
  mt_tensor_free(t);
  t = TU_OK(mt_linspace(0, 1, 0, F32, TU_CPU));
  TU_CHECK_META(t, F32, 1, TU_SHAPE(0));
  mt_tensor_free(t);
  TU_FAILS(mt_linspace(0, INFINITY, 3, F32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_linspace");
  TU_FAILS(mt_linspace(0, 1, -2, F32, TU_CPU), MT_ERR_SHAPE, "mt_linspace");
}
END_TEST

START_TEST(test_randint) {
  enum { N = 10001 };
  mt_tensor *a = TU_OK(mt_randint(-3, 4, 1, TU_SHAPE(N), I64, TU_CPU, 7));
  mt_tensor *b = TU_OK(mt_randint(-3, 4, 1, TU_SHAPE(N), MT_INT8, TU_CPU, 7));
  mt_tensor *c = TU_OK(mt_randint(-3, 4, 1, TU_SHAPE(N), I64, TU_CPU, 8));
  double *va = TU_READ(a), *vb = TU_READ(b), *vc = TU_READ(c);
  int seen[7] = {0}, differ = 0;
  for (int i = 0; i < N; i++) {
    TU_EXPECT(va[i] >= -3 && va[i] < 4 && va[i] == floor(va[i]), "element %d: %g", i, va[i]);
    TU_EXPECT(va[i] == vb[i], "element %d: int64 %g, int8 %g", i, va[i], vb[i]);
    seen[(int)va[i] + 3]++;
    differ += va[i] != vc[i];
  }
  for (int k = 0; k < 7; k++) ck_assert_int_gt(seen[k], N / 7 - 200); /* every value, evenly */
  ck_assert_int_gt(differ, N / 2);
  free(va), free(vb), free(vc);
  mt_tensor_free(a), mt_tensor_free(b), mt_tensor_free(c);
  a = TU_OK(mt_randint(INT64_MIN, INT64_MAX, 0, NULL, I64, TU_CPU, 1)); /* the widest range */
  mt_tensor_free(a);
  TU_FAILS(mt_randint(2, 2, 1, TU_SHAPE(3), I64, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT, "mt_randint");
  TU_FAILS(mt_randint(0, 300, 1, TU_SHAPE(3), MT_UINT8, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT,
           "mt_randint");
  TU_FAILS(mt_randint(-1, 1, 1, TU_SHAPE(3), MT_BOOL, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT,
           "mt_randint");
}
END_TEST

/* ------------------------------------------------------------ indexing */

START_TEST(test_gather) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5, 6), 2, TU_SHAPE(2, 3), F32);
  mt_tensor *i = idx_tensor((int64_t[]){2, 0, 1, 1}, 2, TU_SHAPE(2, 2));
  mt_tensor *t = TU_OK(mt_gather(a, 1, i));
  TU_CHECK_META(t, F32, 2, TU_SHAPE(2, 2));
  TU_CHECK_VALUES(t, TU_VALS(3, 1, 5, 5), 4);
  mt_tensor_free(t);
  TU_FAILS(mt_gather(a, -2, i), MT_ERR_INVALID_ARGUMENT, "mt_gather"); /* 2 >= size 2 */
  mt_tensor *j = idx_tensor((int64_t[]){1, 0, 0, 1}, 2, TU_SHAPE(2, 2));
  t = TU_OK(mt_gather(a, 0, j));
  TU_CHECK_VALUES(t, TU_VALS(4, 2, 1, 5), 4);
  mt_tensor_free(t);
  /* a transposed view: [[1, 4], [2, 5], [3, 6]] */
  mt_tensor *at = TU_OK(mt_transpose(a, 0, 1));
  t = TU_OK(mt_gather(at, 1, j));
  TU_CHECK_VALUES(t, TU_VALS(4, 1, 2, 5), 4);
  mt_tensor_free(t);
  mt_tensor *bad = idx_tensor((int64_t[]){0, 3, 0, 0}, 2, TU_SHAPE(2, 2));
  TU_FAILS(mt_gather(a, 1, bad), MT_ERR_INVALID_ARGUMENT, "mt_gather");
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "3 is out of range for dim 1 of size 3"));
  mt_tensor *neg = idx_tensor((int64_t[]){-1}, 2, TU_SHAPE(1, 1));
  TU_FAILS(mt_gather(a, 1, neg), MT_ERR_INVALID_ARGUMENT, "mt_gather");
  mt_tensor *flat = idx_tensor((int64_t[]){0}, 1, TU_SHAPE(1));
  TU_FAILS(mt_gather(a, 1, flat), MT_ERR_SHAPE, "mt_gather");
  mt_tensor *fi = TU_TENSOR(TU_VALS(0), 2, TU_SHAPE(1, 1), F32);
  TU_FAILS(mt_gather(a, 1, fi), MT_ERR_DTYPE, "mt_gather");
  TU_FAILS(mt_gather(a, 2, i), MT_ERR_SHAPE, "mt_gather");
  mt_tensor *wide = idx_tensor((int64_t[]){0, 0, 0, 0, 0, 0, 0, 0}, 2, TU_SHAPE(1, 8));
  t = TU_OK(mt_gather(a, 1, wide)); /* along dim the index may be longer */
  TU_CHECK_VALUES(t, TU_VALS(1, 1, 1, 1, 1, 1, 1, 1), 8);
  mt_tensor_free(t);
  mt_tensor *tall = idx_tensor((int64_t[]){0, 0, 0}, 2, TU_SHAPE(3, 1));
  TU_FAILS(mt_gather(a, 1, tall), MT_ERR_SHAPE, "mt_gather");
  mt_tensor *objs[] = {a, i, j, at, bad, neg, flat, fi, wide, tall};
  for (int k = 0; k < TU_COUNT(objs); k++) mt_tensor_free(objs[k]);
}
END_TEST

START_TEST(test_scatter_duplicates) {
  mt_tensor *a = TU_TENSOR(TU_VALS(0, 0, 0, 0), 1, TU_SHAPE(4), MT_INT32);
  mt_tensor *src = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5), 1, TU_SHAPE(5), MT_INT32);
  mt_tensor *i = idx_tensor((int64_t[]){1, 3, 1, 0, 1}, 1, TU_SHAPE(5));
  mt_tensor *t = TU_OK(mt_scatter(a, 0, i, src)); /* last write in index order */
  TU_CHECK_VALUES(t, TU_VALS(4, 5, 0, 2), 4);
  mt_tensor_free(t);
  t = TU_OK(mt_scatter_add(a, 0, i, src));
  TU_CHECK_VALUES(t, TU_VALS(4, 9, 0, 2), 4);
  mt_tensor_free(t);
  t = TU_OK(mt_index_add(a, 0, i, src));
  TU_CHECK_VALUES(t, TU_VALS(4, 9, 0, 2), 4);
  mt_tensor_free(t);
  mt_tensor *fsrc = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5), 1, TU_SHAPE(5), F32);
  TU_FAILS(mt_scatter(a, 0, i, fsrc), MT_ERR_DTYPE, "mt_scatter");
  TU_FAILS(mt_index_add(a, 0, i, fsrc), MT_ERR_DTYPE, "mt_index_add");
  mt_tensor *bad = idx_tensor((int64_t[]){4}, 1, TU_SHAPE(1));
  TU_FAILS(mt_scatter_add(a, 0, bad, src), MT_ERR_INVALID_ARGUMENT, "mt_scatter_add");
  TU_FAILS(mt_index_add(a, 0, bad, src), MT_ERR_SHAPE, "mt_index_add"); /* src len 5 != 1 */
  mt_tensor *objs[] = {a, src, i, fsrc, bad};
  for (int k = 0; k < TU_COUNT(objs); k++) mt_tensor_free(objs[k]);
}
END_TEST

/* scatter_add on 2-d float data along each dim against a reference loop. */
START_TEST(test_scatter_add_2d) {
  enum { R = 37, C = 41 };
  double av[R * C], sv[R * C];
  int64_t iv[R * C];
  for (int k = 0; k < R * C; k++) {
    av[k] = tu_value((uint64_t)k, -4, 4);
    sv[k] = tu_value((uint64_t)k + 99, -4, 4);
  }
  mt_tensor *a = TU_TENSOR(av, 2, TU_SHAPE(R, C), MT_FLOAT64);
  mt_tensor *s = TU_TENSOR(sv, 2, TU_SHAPE(R, C), MT_FLOAT64);
  for (int dim = 0; dim < 2; dim++) {
    int size = dim ? C : R;
    for (int k = 0; k < R * C; k++) iv[k] = (int64_t)((k * 7919u) % (unsigned)size);
    mt_tensor *i = idx_tensor(iv, 2, TU_SHAPE(R, C));
    mt_tensor *t = TU_OK(mt_scatter_add(a, dim, i, s));
    double expect[R * C];
    memcpy(expect, av, sizeof expect);
    for (int r = 0; r < R; r++)
      for (int c = 0; c < C; c++) {
        int64_t v = iv[r * C + c];
        expect[dim ? r * C + v : v * C + c] += sv[r * C + c];
      }
    TU_CHECK_VALUES(t, expect, R * C);
    mt_tensor_free(t);
    mt_tensor_free(i);
  }
  mt_tensor_free(a);
  mt_tensor_free(s);
}
END_TEST

START_TEST(test_index_add_dim1) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 1, 1, 1, 1, 1), 2, TU_SHAPE(2, 3), MT_FLOAT16);
  mt_tensor *src = TU_TENSOR(TU_VALS(1, 2, 3, 4), 2, TU_SHAPE(2, 2), MT_FLOAT16);
  mt_tensor *i = idx_tensor((int64_t[]){2, 2}, 1, TU_SHAPE(2));
  mt_tensor *t = TU_OK(mt_index_add(a, 1, i, src));
  TU_CHECK_VALUES(t, TU_VALS(1, 1, 4, 1, 1, 8), 6);
  mt_tensor_free(t);
  mt_tensor *b = TU_TENSOR(TU_VALS(0, 1, 0), 1, TU_SHAPE(3), MT_BOOL);
  mt_tensor *bs = TU_TENSOR(TU_VALS(1, 0), 1, TU_SHAPE(2), MT_BOOL);
  mt_tensor *j = idx_tensor((int64_t[]){0, 1}, 1, TU_SHAPE(2));
  t = TU_OK(mt_index_add(b, 0, j, bs));
  TU_CHECK_VALUES(t, TU_VALS(1, 1, 0), 3);
  mt_tensor_free(t);
  mt_tensor *objs[] = {a, src, i, b, bs, j};
  for (int k = 0; k < TU_COUNT(objs); k++) mt_tensor_free(objs[k]);
}
END_TEST

START_TEST(test_embedding_one_hot) {
  mt_tensor *w = TU_TENSOR(TU_VALS(0, 1, 10, 11, 20, 21), 2, TU_SHAPE(3, 2), F32);
  mt_tensor *i = idx_tensor((int64_t[]){2, 0, 1, 2}, 2, TU_SHAPE(2, 2));
  mt_tensor *t = TU_OK(mt_embedding(w, i));
  TU_CHECK_META(t, F32, 3, TU_SHAPE(2, 2, 2));
  TU_CHECK_VALUES(t, TU_VALS(20, 21, 0, 1, 10, 11, 20, 21), 8);
  mt_tensor_free(t);
  mt_tensor *wt = TU_OK(mt_transpose(w, 0, 1)); /* [2, 3]: rows (0, 10, 20), (1, 11, 21) */
  mt_tensor *it = TU_OK(mt_transpose(i, 0, 1)); /* [[2, 1], [0, 2]] */
  mt_tensor *i01 = idx_tensor((int64_t[]){1, 1, 0, 1}, 2, TU_SHAPE(2, 2));
  mt_tensor *i01t = TU_OK(mt_transpose(i01, 0, 1)); /* [[1, 0], [1, 1]] */
  t = TU_OK(mt_embedding(wt, i01t));
  TU_CHECK_VALUES(t, TU_VALS(1, 11, 21, 0, 10, 20, 1, 11, 21, 1, 11, 21), 12);
  mt_tensor_free(t);
  mt_tensor *bad = idx_tensor((int64_t[]){3}, 0, NULL);
  TU_FAILS(mt_embedding(w, bad), MT_ERR_INVALID_ARGUMENT, "mt_embedding");
  t = TU_OK(mt_one_hot(it, 3));
  TU_CHECK_META(t, I64, 3, TU_SHAPE(2, 2, 3));
  TU_CHECK_VALUES(t, TU_VALS(0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1), 12);
  mt_tensor_free(t);
  TU_FAILS(mt_one_hot(it, 2), MT_ERR_INVALID_ARGUMENT, "mt_one_hot");
  TU_FAILS(mt_one_hot(it, -1), MT_ERR_INVALID_ARGUMENT, "mt_one_hot");
  TU_FAILS(mt_one_hot(w, 3), MT_ERR_DTYPE, "mt_one_hot");
  TU_FAILS(mt_embedding(bad, i), MT_ERR_SHAPE, "mt_embedding"); /* weight must be 2-d */
  mt_tensor *objs[] = {w, i, wt, it, bad, i01, i01t};
  for (int k = 0; k < TU_COUNT(objs); k++) mt_tensor_free(objs[k]);
}
END_TEST

/* ------------------------------------------------------------ shape */

START_TEST(test_flip_roll) {
  mt_tensor *a = TU_TENSOR(TU_VALS(0, 1, 2, 3, 4, 5), 2, TU_SHAPE(2, 3), MT_INT16);
  mt_tensor *t = TU_OK(mt_flip(a, 1, (int[]){-1}));
  TU_CHECK_VALUES(t, TU_VALS(2, 1, 0, 5, 4, 3), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_flip(a, 2, (int[]){0, 1}));
  TU_CHECK_VALUES(t, TU_VALS(5, 4, 3, 2, 1, 0), 6);
  mt_tensor_free(t);
  mt_tensor *at = TU_OK(mt_transpose(a, 0, 1)); /* [[0, 3], [1, 4], [2, 5]] */
  t = TU_OK(mt_flip(at, 1, (int[]){0}));
  TU_CHECK_VALUES(t, TU_VALS(2, 5, 1, 4, 0, 3), 6);
  mt_tensor_free(t);
  TU_FAILS(mt_flip(a, 2, (int[]){1, -1}), MT_ERR_SHAPE, "mt_flip");
  TU_FAILS(mt_flip(a, 1, (int[]){2}), MT_ERR_SHAPE, "mt_flip");
  t = TU_OK(mt_roll(a, 1, (int64_t[]){1}, NULL)); /* flattened, as torch.roll */
  TU_CHECK_META(t, MT_INT16, 2, TU_SHAPE(2, 3));
  TU_CHECK_VALUES(t, TU_VALS(5, 0, 1, 2, 3, 4), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_roll(a, 2, (int64_t[]){-1, 7}, (int[]){1, 0}));
  TU_CHECK_VALUES(t, TU_VALS(4, 5, 3, 1, 2, 0), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_roll(at, 1, (int64_t[]){1}, (int[]){0}));
  TU_CHECK_VALUES(t, TU_VALS(2, 5, 0, 3, 1, 4), 6);
  mt_tensor_free(t);
  TU_FAILS(mt_roll(a, 2, (int64_t[]){1, 1}, (int[]){0, -2}), MT_ERR_SHAPE, "mt_roll");
  TU_FAILS(mt_roll(a, 2, (int64_t[]){1, 1}, NULL), MT_ERR_INVALID_ARGUMENT, "mt_roll");
  mt_tensor_free(at);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_repeat) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), F32);
  mt_tensor *t = TU_OK(mt_repeat(a, 2, TU_SHAPE(2, 2)));
  TU_CHECK_META(t, F32, 2, TU_SHAPE(2, 4));
  TU_CHECK_VALUES(t, TU_VALS(1, 2, 1, 2, 1, 2, 1, 2), 8);
  mt_tensor_free(t);
  mt_tensor *b = TU_TENSOR(TU_VALS(1, 2, 3, 4), 2, TU_SHAPE(2, 2), MT_UINT8);
  mt_tensor *bt = TU_OK(mt_transpose(b, 0, 1)); /* [[1, 3], [2, 4]] */
  t = TU_OK(mt_repeat(bt, 3, TU_SHAPE(1, 2, 1)));
  TU_CHECK_META(t, MT_UINT8, 3, TU_SHAPE(1, 4, 2));
  TU_CHECK_VALUES(t, TU_VALS(1, 3, 2, 4, 1, 3, 2, 4), 8);
  mt_tensor_free(t);
  t = TU_OK(mt_repeat(a, 1, TU_SHAPE(0)));
  TU_CHECK_META(t, F32, 1, TU_SHAPE(0));
  mt_tensor_free(t);
  TU_FAILS(mt_repeat(b, 1, TU_SHAPE(2)), MT_ERR_SHAPE, "mt_repeat");
  TU_FAILS(mt_repeat(a, 1, TU_SHAPE(-1)), MT_ERR_INVALID_ARGUMENT, "mt_repeat");
  mt_tensor_free(a), mt_tensor_free(b), mt_tensor_free(bt);
}
END_TEST

START_TEST(test_pad) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), F32);
  mt_tensor *t = TU_OK(mt_pad(a, 2, TU_SHAPE(1, 2), MT_PAD_CONSTANT, 9));
  TU_CHECK_VALUES(t, TU_VALS(9, 1, 2, 3, 9, 9), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_pad(a, 2, TU_SHAPE(2, 1), MT_PAD_REFLECT, 0));
  TU_CHECK_VALUES(t, TU_VALS(3, 2, 1, 2, 3, 2), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_pad(a, 2, TU_SHAPE(2, 1), MT_PAD_REPLICATE, 0));
  TU_CHECK_VALUES(t, TU_VALS(1, 1, 1, 2, 3, 3), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_pad(a, 2, TU_SHAPE(-1, 1), MT_PAD_CONSTANT, 0)); /* negative crops */
  TU_CHECK_VALUES(t, TU_VALS(2, 3, 0), 3);
  mt_tensor_free(t);
  mt_tensor *m = TU_TENSOR(TU_VALS(1, 2, 3, 4), 2, TU_SHAPE(2, 2), MT_INT32);
  t = TU_OK(mt_pad(m, 4, TU_SHAPE(1, 0, 0, 1), MT_PAD_CONSTANT, -1)); /* last dim first */
  TU_CHECK_META(t, MT_INT32, 2, TU_SHAPE(3, 3));
  TU_CHECK_VALUES(t, TU_VALS(-1, 1, 2, -1, 3, 4, -1, -1, -1), 9);
  mt_tensor_free(t);
  t = TU_OK(mt_pad(m, 4, TU_SHAPE(1, 1, 1, 0), MT_PAD_REFLECT, 0));
  TU_CHECK_VALUES(t, TU_VALS(4, 3, 4, 3, 2, 1, 2, 1, 4, 3, 4, 3), 12);
  mt_tensor_free(t);
  TU_FAILS(mt_pad(a, 2, TU_SHAPE(3, 0), MT_PAD_REFLECT, 0), MT_ERR_INVALID_ARGUMENT, "mt_pad");
  TU_FAILS(mt_pad(a, 2, TU_SHAPE(-1, 0), MT_PAD_REPLICATE, 0), MT_ERR_INVALID_ARGUMENT, "mt_pad");
  TU_FAILS(mt_pad(a, 4, TU_SHAPE(1, 1, 1, 1), MT_PAD_CONSTANT, 0), MT_ERR_INVALID_ARGUMENT,
           "mt_pad");
  TU_FAILS(mt_pad(a, 2, TU_SHAPE(-2, -2), MT_PAD_CONSTANT, 0), MT_ERR_SHAPE, "mt_pad");
  TU_FAILS(mt_pad(a, 2, TU_SHAPE(1, 1), (mt_pad_mode)5, 0), MT_ERR_INVALID_ARGUMENT, "mt_pad");
  mt_tensor_free(a), mt_tensor_free(m);
}
END_TEST

START_TEST(test_tril_triu) {
  double v[12];
  for (int k = 0; k < 12; k++) v[k] = k + 1;
  mt_tensor *a = TU_TENSOR(v, 3, TU_SHAPE(2, 2, 3), MT_FLOAT64);
  mt_tensor *t = TU_OK(mt_tril(a, 0));
  TU_CHECK_VALUES(t, TU_VALS(1, 0, 0, 4, 5, 0, 7, 0, 0, 10, 11, 0), 12);
  mt_tensor_free(t);
  t = TU_OK(mt_triu(a, 1));
  TU_CHECK_VALUES(t, TU_VALS(0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12), 12);
  mt_tensor_free(t);
  t = TU_OK(mt_tril(a, -1));
  TU_CHECK_VALUES(t, TU_VALS(0, 0, 0, 4, 0, 0, 0, 0, 0, 10, 0, 0), 12);
  mt_tensor_free(t);
  t = TU_OK(mt_triu(a, -5));
  TU_CHECK_VALUES(t, v, 12);
  mt_tensor_free(t);
  mt_tensor *at = TU_OK(mt_transpose(a, 1, 2)); /* [2, 3, 2]: [[1, 4], [2, 5], [3, 6]] ... */
  t = TU_OK(mt_triu(at, 0));
  TU_CHECK_VALUES(t, TU_VALS(1, 4, 0, 5, 0, 0, 7, 10, 0, 11, 0, 0), 12);
  mt_tensor_free(t);
  mt_tensor *r = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), F32);
  TU_FAILS(mt_tril(r, 0), MT_ERR_SHAPE, "mt_tril");
  mt_tensor_free(a), mt_tensor_free(at), mt_tensor_free(r);
}
END_TEST

/* ------------------------------------------------------------ sampling */

START_TEST(test_multinomial) {
  enum { N = 20000 };
  mt_tensor *p = TU_TENSOR(TU_VALS(0, 1, 0, 0, 2, 0, 8, 0), 2, TU_SHAPE(2, 4), F32);
  mt_tensor *t = TU_OK(mt_multinomial(p, N, 1, 5));
  TU_CHECK_META(t, I64, 2, TU_SHAPE(2, N));
  double *v = TU_READ(t);
  int count6 = 0;
  for (int s = 0; s < N; s++) {
    TU_EXPECT(v[s] == 1, "row 0 sample %d: %g", s, v[s]);
    TU_EXPECT(v[N + s] == 0 || v[N + s] == 2, "row 1 sample %d: %g", s, v[N + s]);
    count6 += v[N + s] == 2;
  }
  ck_assert_int_gt(count6, N * 8 / 10 - 400); /* 2 has probability 0.8 */
  ck_assert_int_lt(count6, N * 8 / 10 + 400);
  free(v);
  mt_tensor_free(t);
  mt_tensor *q = TU_TENSOR(TU_VALS(1, 2, 3, 4, 0), 1, TU_SHAPE(5), MT_FLOAT64);
  t = TU_OK(mt_multinomial(q, 4, 0, 9));
  v = TU_READ(t);
  int seen = 0;
  for (int s = 0; s < 4; s++) seen |= 1 << (int)v[s];
  ck_assert_int_eq(seen, 0xf); /* a permutation of the non-zero categories */
  mt_tensor *again = TU_OK(mt_multinomial(q, 4, 0, 9)); /* the same seed draws the same */
  TU_CHECK_VALUES(again, v, 4);
  free(v);
  mt_tensor_free(t), mt_tensor_free(again);
  TU_FAILS(mt_multinomial(q, 5, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  TU_FAILS(mt_multinomial(q, 6, 0, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  TU_FAILS(mt_multinomial(q, 0, 1, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  mt_tensor *neg = TU_TENSOR(TU_VALS(1, -1), 1, TU_SHAPE(2), F32);
  TU_FAILS(mt_multinomial(neg, 1, 1, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  mt_tensor *zero = TU_TENSOR(TU_VALS(1, 1, 0, 0), 2, TU_SHAPE(2, 2), F32);
  TU_FAILS(mt_multinomial(zero, 1, 1, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "row 1 sums to 0"));
  mt_tensor *nan = TU_TENSOR(TU_VALS(NAN, 1), 1, TU_SHAPE(2), F32);
  TU_FAILS(mt_multinomial(nan, 1, 1, 1), MT_ERR_INVALID_ARGUMENT, "mt_multinomial");
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 1), 1, TU_SHAPE(2), I64);
  TU_FAILS(mt_multinomial(ints, 1, 1, 1), MT_ERR_DTYPE, "mt_multinomial");
  mt_tensor *objs[] = {p, q, neg, zero, nan, ints};
  for (int k = 0; k < TU_COUNT(objs); k++) mt_tensor_free(objs[k]);
}
END_TEST

START_TEST(test_dropout) {
  enum { N = 10000 };
  double v[N];
  for (int k = 0; k < N; k++) v[k] = tu_value((uint64_t)k, 1, 4); /* never 0 */
  v[3] = NAN;
  mt_tensor *a = TU_TENSOR(v, 1, TU_SHAPE(N), F32);
  mt_tensor *a64 = TU_TENSOR(v, 1, TU_SHAPE(N), MT_FLOAT64);
  mt_tensor *t = TU_OK(mt_dropout(a, 0.25, 11)), *t64 = TU_OK(mt_dropout(a64, 0.25, 11));
  double *x = TU_READ(t), *y = TU_READ(t64);
  int zeros = 0;
  for (int k = 0; k < N; k++) {
    if (k == 3) {
      TU_EXPECT(isnan(x[k]), "NaN must stay NaN, got %g", x[k]);
      continue;
    }
    TU_EXPECT((x[k] == 0) == (y[k] == 0), "element %d: masks differ between dtypes", k);
    TU_EXPECT(x[k] == 0 || fabs(x[k] - v[k] / 0.75) < 1e-5 * v[k], "element %d: %g", k, x[k]);
    zeros += x[k] == 0;
  }
  ck_assert_int_gt(zeros, N / 4 - 300);
  ck_assert_int_lt(zeros, N / 4 + 300);
  free(x), free(y);
  mt_tensor_free(t), mt_tensor_free(t64);
  t = TU_OK(mt_dropout(a, 0, 1));
  TU_CHECK_VALUES(t, v, N);
  mt_tensor_free(t);
  t = TU_OK(mt_dropout(a64, 1, 1));
  x = TU_READ(t);
  for (int k = 0; k < N; k++) TU_EXPECT(k == 3 || x[k] == 0, "p = 1: element %d is %g", k, x[k]);
  free(x);
  mt_tensor_free(t);
  TU_FAILS(mt_dropout(a, 1.5, 1), MT_ERR_INVALID_ARGUMENT, "mt_dropout");
  TU_FAILS(mt_dropout(a, NAN, 1), MT_ERR_INVALID_ARGUMENT, "mt_dropout");
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 1), 1, TU_SHAPE(2), I64);
  TU_FAILS(mt_dropout(ints, 0.5, 1), MT_ERR_DTYPE, "mt_dropout");
  mt_tensor_free(a), mt_tensor_free(a64), mt_tensor_free(ints);
}
END_TEST

static Suite *index_suite(void) {
  Suite *s = suite_create("index_ops");
  TCase *tc = tcase_create("creation");
  tcase_add_test(tc, test_eye);
  tcase_add_test(tc, test_linspace);
  tcase_add_test(tc, test_randint);
  suite_add_tcase(s, tc);
  tc = tcase_create("indexing");
  tcase_add_test(tc, test_gather);
  tcase_add_test(tc, test_scatter_duplicates);
  tcase_add_test(tc, test_scatter_add_2d);
  tcase_add_test(tc, test_index_add_dim1);
  tcase_add_test(tc, test_embedding_one_hot);
  suite_add_tcase(s, tc);
  tc = tcase_create("shape");
  tcase_add_test(tc, test_flip_roll);
  tcase_add_test(tc, test_repeat);
  tcase_add_test(tc, test_pad);
  tcase_add_test(tc, test_tril_triu);
  suite_add_tcase(s, tc);
  tc = tcase_create("sampling");
  tcase_add_test(tc, test_multinomial);
  tcase_add_test(tc, test_dropout);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(index_suite()); }
