/*
 * test_modal_conformance.c - every op of the op table runs on cpu and on a
 * worker (modal) with the same inputs and must agree: the same status when
 * it fails, the same dtype and shape, and the same values (integer and bool
 * results equal, floats within the tolerance of their dtype, random tensors
 * bit for bit). Inputs are the same host arrays given to mt_from_data on
 * both devices, then put through the same views (transposed, sliced,
 * expanded) on both; shapes cover broadcasting, 0-d and empty tensors.
 *
 * The op list comes from src/core/ops.def: every op must have a case in
 * `cases` below (test_every_op_has_a_case), and each case runs as its own
 * test against its own worker. Then: views, mt_copy_ into modal views, mt_to
 * between devices, contiguous/clone, item, and the error cases.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op_table.h"
#include "modal_harness.h"
#include "ref.h"

static mh_worker worker;

static void setup(void) { mh_worker_use(&worker); }
static void teardown(void) { mh_worker_finish(&worker); }

static const mt_dtype all_dtypes[] = {MT_BOOL,  MT_UINT8,   MT_INT8,     MT_INT16,
                                      MT_INT32, MT_INT64,   MT_FLOAT16, MT_BFLOAT16,
                                      MT_FLOAT32, MT_FLOAT64};
#define N_DTYPES ((int)(sizeof all_dtypes / sizeof *all_dtypes))
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

/* ------------------------------------------------------------ outcomes */

/* What the case is doing, for failure messages. */
static char where[256];

/* The same tensor on both devices: t[0] on cpu, t[1] on modal. */
typedef struct pair {
  mt_tensor *t[2];
} pair;

static void pair_free(pair p) {
  mt_tensor_free(p.t[0]);
  mt_tensor_free(p.t[1]);
}

/* Inside CHECK_BOTH, ON(p) is p on the side being run. */
#define ON(p) ((p).t[side])

typedef struct outcome {
  mt_tensor *t;
  mt_status st;
  char msg[512];
} outcome;

static void record(outcome *o, mt_tensor *t) {
  o->t = t;
  o->st = t ? MT_OK : mt_last_status();
  snprintf(o->msg, sizeof o->msg, "%s", t ? "" : mt_last_error());
}

static void tolerance(mt_dtype d, double *rtol) {
  switch (d) {
  case MT_FLOAT16: *rtol = 1e-2; break;
  case MT_BFLOAT16: *rtol = 2e-2; break;
  case MT_FLOAT32: *rtol = 1e-5; break;
  default: *rtol = 1e-12; break;
  }
}

static int is_float(mt_dtype d) {
  return d == MT_FLOAT16 || d == MT_BFLOAT16 || d == MT_FLOAT32 || d == MT_FLOAT64;
}

/* Reads t's values; the caller frees. Fails the test when t cannot be read. */
static void *read_all(const char *file, int line, const char *expr, const mt_tensor *t,
                      size_t *nbytes) {
  *nbytes = (size_t)mt_numel(t) * mt_dtype_size(mt_tensor_dtype(t));
  void *buf = malloc(*nbytes ? *nbytes : 1);
  ck_assert_ptr_nonnull(buf);
  mt_status st = mt_to_host(t, buf, *nbytes);
  if (st) free(buf);
  ck_assert_msg(st == MT_OK, "%s:%d: [%s] %s: reading the %s result: %s (%s)", file, line, where,
                expr, mt_tensor_device(t).type == MT_DEVICE_CPU ? "cpu" : "modal",
                mt_status_name(st), mt_last_error());
  return buf;
}

/* Compares the values of two tensors of one dtype and shape. */
static void compare_values(const char *file, int line, const char *expr, const mt_tensor *c,
                           const mt_tensor *m, int exact) {
  mt_dtype d = mt_tensor_dtype(c);
  size_t nbytes;
  unsigned char *a = read_all(file, line, expr, c, &nbytes);
  unsigned char *b = read_all(file, line, expr, m, &nbytes);
  size_t esize = mt_dtype_size(d);
  int64_t n = mt_numel(c);
  double rtol;
  tolerance(d, &rtol);
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; i++) {
    const void *pa = a + (size_t)i * esize, *pb = b + (size_t)i * esize;
    if (exact || !is_float(d)) {
      if (memcmp(pa, pb, esize) != 0) bad = i;
      continue;
    }
    double x = ref_load(pa, d), y = ref_load(pb, d);
    if (isnan(x) || isnan(y)) {
      if (!(isnan(x) && isnan(y))) bad = i;
    } else if (isinf(x) || isinf(y)) {
      if (x != y) bad = i;
    } else if (fabs(x - y) > rtol * fmax(1.0, fmax(fabs(x), fabs(y)))) {
      bad = i;
    }
  }
  double x = bad >= 0 ? ref_load(a + (size_t)bad * esize, d) : 0;
  double y = bad >= 0 ? ref_load(b + (size_t)bad * esize, d) : 0;
  free(a);
  free(b);
  ck_assert_msg(bad < 0, "%s:%d: [%s] %s: %s element %lld: cpu %.17g, modal %.17g", file, line,
                where, expr, mt_dtype_name(d), (long long)bad, x, y);
}

/* Both sides ran expr: they must agree. Frees the results. */
static void agree(const char *file, int line, const char *expr, outcome o[2], int exact) {
  int deferred = o[0].t == NULL && o[1].t != NULL && o[0].st != MT_OK;
  if (deferred) {
    /* An error the worker only finds when it runs (an index out of range)
     * is deferred: reading the tensor reports it. */
    size_t nbytes = (size_t)mt_numel(o[1].t) * mt_dtype_size(mt_tensor_dtype(o[1].t));
    void *buf = malloc(nbytes ? nbytes : 1);
    mt_status st = mt_to_host(o[1].t, buf, nbytes);
    mt_tensor_free(o[1].t);
    record(&o[1], NULL);
    o[1].st = st;
    free(buf);
  }
  ck_assert_msg(o[0].st == o[1].st, "%s:%d: [%s] %s: cpu gave %s (%s), modal %s (%s)", file,
                line, where, expr, mt_status_name(o[0].st), o[0].msg, mt_status_name(o[1].st),
                o[1].msg);
  if (o[0].st != MT_OK) {
    /* Both name the same function ("mt_add: ..."); a deferred error is
     * reported by the sync point ("mt_to_host: ... mt_index_select ..."). */
    char fn[64];
    snprintf(fn, sizeof fn, "%.*s", (int)strcspn(o[0].msg, ":"), o[0].msg);
    int named = deferred ? strstr(o[1].msg, fn) != NULL
                         : strncmp(o[1].msg, fn, strlen(fn)) == 0 && o[1].msg[strlen(fn)] == ':';
    ck_assert_msg(named, "%s:%d: [%s] %s: cpu says \"%s\", modal \"%s\"", file, line, where,
                  expr, o[0].msg, o[1].msg);
    return;
  }
  const mt_tensor *c = o[0].t, *m = o[1].t;
  ck_assert_msg(mt_tensor_dtype(c) == mt_tensor_dtype(m), "%s:%d: [%s] %s: dtype %s vs %s", file,
                line, where, expr, mt_dtype_name(mt_tensor_dtype(c)),
                mt_dtype_name(mt_tensor_dtype(m)));
  ck_assert_msg(mt_ndim(c) == mt_ndim(m), "%s:%d: [%s] %s: ndim %d vs %d", file, line, where,
                expr, mt_ndim(c), mt_ndim(m));
  for (int i = 0; i < mt_ndim(c); i++)
    ck_assert_msg(mt_shape(c, i) == mt_shape(m, i), "%s:%d: [%s] %s: dim %d: %lld vs %lld", file,
                  line, where, expr, i, (long long)mt_shape(c, i), (long long)mt_shape(m, i));
  ck_assert_msg(mt_tensor_device(c).type == MT_DEVICE_CPU &&
                    mt_tensor_device(m).type == MT_DEVICE_MODAL,
                "%s:%d: [%s] %s: results on the wrong devices", file, line, where, expr);
  ck_assert_msg(mt_is_contiguous(c) == mt_is_contiguous(m), "%s:%d: [%s] %s: contiguity differs",
                file, line, where, expr);
  compare_values(file, line, expr, c, m, exact);
  mt_tensor_free(o[0].t);
  mt_tensor_free(o[1].t);
}

/* Runs expr (an expression making a tensor, using ON(...) for its inputs)
 * on cpu and on modal and checks that both agree. */
#define CHECK_GEN(expr, exact)                                                      \
  do {                                                                              \
    outcome out_[2];                                                                \
    for (int side = 0; side < 2; side++) {                                          \
      mt_clear_error();                                                             \
      record(&out_[side], (expr));                                                  \
    }                                                                               \
    agree(__FILE__, __LINE__, #expr, out_, exact);                                  \
  } while (0)
#define CHECK_BOTH(expr) CHECK_GEN(expr, 0)
#define CHECK_EXACT(expr) CHECK_GEN(expr, 1)

/* ------------------------------------------------------------ inputs */

/* Which values an input holds. */
typedef enum values {
  V_GENERAL, /* floats in [-4, 4), integers in [-50, 50] (uint8: [0, 99]) */
  V_SMALL,   /* integers in [-3, 3] (uint8 [0, 3]); floats in [-2, 2): exponents */
  V_SPECIAL, /* V_GENERAL plus NaN, +-inf, +-0 and ties for rounding */
  V_INDEX    /* 0..5: indices into a dim of 6 */
} values;

/* Where an input's elements sit: the logical shapes are given beside. */
typedef enum layout {
  L_CONTIG,     /* [4, 6] */
  L_TRANSPOSED, /* [6, 4] transposed to [4, 6] */
  L_SLICED,     /* [5, 13] sliced to [4, 6]: offset and stride 2 */
  L_EXPANDED,   /* [1, 6] expanded to [4, 6]: stride 0 */
  L_ROW,        /* [6] */
  L_COL,        /* [4, 1] */
  L_SCALAR,     /* [] */
  L_EMPTY,      /* [0, 6] */
  L_3D          /* [2, 1, 6] */
} layout;

static const char *const layout_names[] = {"contig", "transposed", "sliced", "expanded", "row",
                                           "col",    "0-d",        "empty",  "3d"};

static uint64_t rng_state;

static uint64_t rng_next(void) {
  /* splitmix64: a fixed stream, so a failure reproduces */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform(double lo, double hi) {
  return lo + (hi - lo) * (double)(rng_next() >> 11) * 0x1.0p-53;
}

static double draw(mt_dtype d, values v) {
  if (v == V_INDEX) return (double)(rng_next() % 6);
  if (d == MT_BOOL) return (double)(rng_next() & 1);
  if (!is_float(d)) {
    int64_t span = v == V_SMALL ? 3 : 50;
    int64_t lo = d == MT_UINT8 ? 0 : -span, hi = d == MT_UINT8 ? (v == V_SMALL ? 3 : 99) : span;
    return (double)(lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1)));
  }
  if (v == V_SPECIAL && rng_next() % 5 == 0) {
    static const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 0.5, -2.5, 1.5};
    return specials[rng_next() % COUNT(specials)];
  }
  return v == V_SMALL ? uniform(-2, 2) : uniform(-4, 4);
}

/* A host array of n elements of dtype d (the caller frees). */
static void *host_array(int64_t n, mt_dtype d, values v) {
  size_t esize = mt_dtype_size(d);
  unsigned char *p = malloc((size_t)(n ? n : 1) * esize);
  ck_assert_ptr_nonnull(p);
  for (int64_t i = 0; i < n; i++) ref_store(p + (size_t)i * esize, d, draw(d, v));
  return p;
}

/* The same values on both devices, contiguous. */
static pair pair_from(const void *host, int ndim, const int64_t *shape, mt_dtype d) {
  pair p;
  p.t[0] = MH_MADE(mt_from_data(host, ndim, shape, d, MH_CPU));
  p.t[1] = MH_MADE(mt_from_data(host, ndim, shape, d, MH_MODAL));
  return p;
}

static pair pair_values(int ndim, const int64_t *shape, mt_dtype d, values v) {
  void *host = host_array(ref_numel(ndim, shape), d, v);
  pair p = pair_from(host, ndim, shape, d);
  free(host);
  return p;
}

/* An input of dtype d in the given layout (the same views on both sides). */
static pair input(layout l, mt_dtype d, values v) {
  static const int64_t shapes[][3] = {{4, 6}, {6, 4}, {5, 13}, {1, 6}, {6},
                                      {4, 1}, {0},    {0, 6},  {2, 1, 6}};
  static const int ndims[] = {2, 2, 2, 2, 1, 2, 0, 2, 3};
  pair base = pair_values(ndims[l], shapes[l], d, v), p = base;
  static const int64_t full[2] = {4, 6};
  for (int side = 0; side < 2 && (l == L_TRANSPOSED || l == L_SLICED || l == L_EXPANDED);
       side++) {
    mt_tensor *b = base.t[side], *view;
    if (l == L_TRANSPOSED) {
      view = MH_MADE(mt_transpose(b, 0, 1));
    } else if (l == L_SLICED) {
      mt_tensor *rows = MH_MADE(mt_slice(b, 0, 1, 5, 1));
      view = MH_MADE(mt_slice(rows, 1, 1, 13, 2));
      mt_tensor_free(rows);
    } else {
      view = MH_MADE(mt_expand(b, 2, full));
    }
    mt_tensor_free(b);
    p.t[side] = view;
  }
  return p;
}

/* ------------------------------------------------------------ families */

typedef mt_tensor *(*unary_fn)(const mt_tensor *);
typedef mt_tensor *(*binary_fn)(const mt_tensor *, const mt_tensor *);
typedef mt_tensor *(*scalar_fn)(const mt_tensor *, double);
typedef mt_tensor *(*reduce_fn)(const mt_tensor *, int, const int *, int);

static const layout unary_layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED,
                                       L_EXPANDED, L_SCALAR, L_EMPTY};

/* Every dtype in every unary layout; special values included. */
static void check_unary(const char *name, unary_fn f) {
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(unary_layouts); l++) {
      snprintf(where, sizeof where, "%s %s %s", name, mt_dtype_name(all_dtypes[k]),
               layout_names[unary_layouts[l]]);
      pair a = input(unary_layouts[l], all_dtypes[k], V_SPECIAL);
      CHECK_BOTH(f(ON(a)));
      pair_free(a);
    }
}

/* Layout pairs of binary ops: same shapes, views, and broadcasting. */
static const layout binary_layouts[][2] = {
    {L_CONTIG, L_CONTIG}, {L_TRANSPOSED, L_SLICED}, {L_EXPANDED, L_CONTIG}, {L_CONTIG, L_ROW},
    {L_COL, L_SCALAR},    {L_3D, L_TRANSPOSED},     {L_EMPTY, L_ROW},       {L_SLICED, L_3D},
    {L_ROW, L_COL}};

/* Every dtype with itself in every layout pair, then every pair of dtypes. */
static void check_binary(const char *name, binary_fn f, values va, values vb) {
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(binary_layouts); l++) {
      mt_dtype d = all_dtypes[k];
      snprintf(where, sizeof where, "%s %s %s/%s", name, mt_dtype_name(d),
               layout_names[binary_layouts[l][0]], layout_names[binary_layouts[l][1]]);
      pair a = input(binary_layouts[l][0], d, va), b = input(binary_layouts[l][1], d, vb);
      CHECK_BOTH(f(ON(a), ON(b)));
      pair_free(a);
      pair_free(b);
    }
  for (int i = 0; i < N_DTYPES; i++)
    for (int j = 0; j < N_DTYPES; j++) {
      snprintf(where, sizeof where, "%s %s with %s", name, mt_dtype_name(all_dtypes[i]),
               mt_dtype_name(all_dtypes[j]));
      pair a = input(L_CONTIG, all_dtypes[i], va), b = input(L_ROW, all_dtypes[j], vb);
      CHECK_BOTH(f(ON(a), ON(b)));
      pair_free(a);
      pair_free(b);
    }
}

static void check_scalar(const char *name, scalar_fn f, const double *scalars, int n) {
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(unary_layouts); l++)
      for (int s = 0; s < n; s++) {
        snprintf(where, sizeof where, "%s %s %s scalar %g", name, mt_dtype_name(all_dtypes[k]),
                 layout_names[unary_layouts[l]], scalars[s]);
        pair a = input(unary_layouts[l], all_dtypes[k], V_SMALL);
        CHECK_BOTH(f(ON(a), scalars[s]));
        pair_free(a);
      }
}

/* Reductions over no dims (all), one, the last with keepdim, and two, on
 * 2-D layouts and a 3-D tensor; invalid dims must fail alike. */
static void check_reduce(const char *name, reduce_fn f) {
  static const int dims_0[] = {0}, dims_last[] = {-1}, dims_01[] = {0, 1}, dims_bad[] = {5},
                   dims_twice[] = {1, -1};
  static const layout layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED,
                                   L_SCALAR, L_EMPTY,      L_3D};
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(layouts); l++) {
      snprintf(where, sizeof where, "%s %s %s", name, mt_dtype_name(all_dtypes[k]),
               layout_names[layouts[l]]);
      pair a = input(layouts[l], all_dtypes[k], V_GENERAL);
      CHECK_BOTH(f(ON(a), 0, NULL, 0));
      CHECK_BOTH(f(ON(a), 0, NULL, 1));
      CHECK_BOTH(f(ON(a), 1, dims_0, 0));
      CHECK_BOTH(f(ON(a), 1, dims_last, 1));
      CHECK_BOTH(f(ON(a), 2, dims_01, 0));
      CHECK_BOTH(f(ON(a), 1, dims_bad, 0));
      CHECK_BOTH(f(ON(a), 2, dims_twice, 0));
      pair_free(a);
    }
}

typedef mt_tensor *(*dim_fn)(const mt_tensor *, int, int);

static void check_argreduce(const char *name, dim_fn f) {
  static const layout layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED,
                                   L_SCALAR, L_EMPTY,      L_3D};
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(layouts); l++) {
      snprintf(where, sizeof where, "%s %s %s", name, mt_dtype_name(all_dtypes[k]),
               layout_names[layouts[l]]);
      /* Few distinct values, so that ties (first index wins) happen. */
      pair a = input(layouts[l], all_dtypes[k], V_SMALL);
      for (int dim = -2; dim <= 2; dim++) {
        CHECK_BOTH(f(ON(a), dim, 0));
        CHECK_BOTH(f(ON(a), dim, 1));
      }
      pair_free(a);
    }
  snprintf(where, sizeof where, "%s float32 with NaN", name);
  pair a = input(L_CONTIG, MT_FLOAT32, V_SPECIAL);
  CHECK_BOTH(f(ON(a), 1, 0));
  CHECK_BOTH(f(ON(a), 0, 1));
  pair_free(a);
}

typedef mt_tensor *(*softmax_fn)(const mt_tensor *, int);

static void check_softmax(const char *name, softmax_fn f) {
  static const layout layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED, L_EMPTY, L_3D};
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(layouts); l++) {
      snprintf(where, sizeof where, "%s %s %s", name, mt_dtype_name(all_dtypes[k]),
               layout_names[layouts[l]]);
      pair a = input(layouts[l], all_dtypes[k], V_GENERAL);
      for (int dim = -3; dim <= 2; dim++) CHECK_BOTH(f(ON(a), dim));
      pair_free(a);
    }
}

/* ------------------------------------------------------------ cases */

static void case_full(void) {
  static const double fills[] = {0, 1, -1.5, 300.7, -1e10, NAN, INFINITY};
  static const int64_t shapes[][2] = {{4, 6}, {0, 3}, {1, 1}};
  for (int k = 0; k < N_DTYPES; k++) {
    mt_dtype d = all_dtypes[k];
    for (int s = 0; s < COUNT(shapes); s++) {
      snprintf(where, sizeof where, "full %s [%lld, %lld]", mt_dtype_name(d),
               (long long)shapes[s][0], (long long)shapes[s][1]);
      for (int v = 0; v < COUNT(fills); v++)
        CHECK_EXACT(mt_full(2, shapes[s], fills[v], d, side ? MH_MODAL : MH_CPU));
      CHECK_EXACT(mt_zeros(2, shapes[s], d, side ? MH_MODAL : MH_CPU));
      CHECK_EXACT(mt_ones(2, shapes[s], d, side ? MH_MODAL : MH_CPU));
    }
    snprintf(where, sizeof where, "full %s 0-d", mt_dtype_name(d));
    CHECK_EXACT(mt_full(0, NULL, 7.25, d, side ? MH_MODAL : MH_CPU));
    /* mt_empty's values are unspecified: only its meta is compared. */
    snprintf(where, sizeof where, "empty %s", mt_dtype_name(d));
    mt_tensor *e = MH_MADE(mt_empty(2, shapes[0], d, MH_MODAL));
    ck_assert_int_eq(mt_tensor_dtype(e), d);
    ck_assert_int_eq(mt_numel(e), 24);
    ck_assert_int_eq(mt_tensor_device(e).type, MT_DEVICE_MODAL);
    mt_tensor_free(e);
  }
  snprintf(where, sizeof where, "full: bad arguments");
  static const int64_t negative[] = {-1, 2};
  CHECK_BOTH(mt_full(2, negative, 1, MT_FLOAT32, side ? MH_MODAL : MH_CPU));
  CHECK_BOTH(mt_full(MT_MAX_DIMS + 1, shapes[0], 1, MT_FLOAT32, side ? MH_MODAL : MH_CPU));
  CHECK_BOTH(mt_zeros(2, shapes[0], (mt_dtype)42, side ? MH_MODAL : MH_CPU));
}

static void case_arange(void) {
  static const double args[][3] = {{0, 10, 1}, {-3, 5, 0.5}, {5, -5, -1.5}, {0, 0, 1},
                                   {1, 2, 0.1}, {-200, 300, 7}, {0, 1, 0}};
  for (int k = 0; k < N_DTYPES; k++)
    for (int a = 0; a < COUNT(args); a++) {
      snprintf(where, sizeof where, "arange %s (%g, %g, %g)", mt_dtype_name(all_dtypes[k]),
               args[a][0], args[a][1], args[a][2]);
      CHECK_BOTH(mt_arange(args[a][0], args[a][1], args[a][2], all_dtypes[k],
                           side ? MH_MODAL : MH_CPU));
    }
}

/* The generator is counter-based: the same seed gives the same bits on
 * every device. */
static void check_random(const char *name, mt_tensor *(*f)(int, const int64_t *, mt_dtype,
                                                            mt_device, uint64_t)) {
  static const int64_t shapes[][3] = {{4, 6, 1}, {1001, 1, 1}, {0, 1, 1}, {3, 5, 7}};
  static const int ndims[] = {2, 1, 1, 3};
  static const uint64_t seeds[] = {0, 42, UINT64_MAX};
  for (int k = 0; k < N_DTYPES; k++)
    for (int s = 0; s < COUNT(shapes); s++)
      for (int e = 0; e < COUNT(seeds); e++) {
        snprintf(where, sizeof where, "%s %s shape %d seed %llu", name,
                 mt_dtype_name(all_dtypes[k]), s, (unsigned long long)seeds[e]);
        CHECK_EXACT(f(ndims[s], shapes[s], all_dtypes[k], side ? MH_MODAL : MH_CPU, seeds[e]));
      }
  snprintf(where, sizeof where, "%s 0-d", name);
  CHECK_EXACT(f(0, NULL, MT_FLOAT32, side ? MH_MODAL : MH_CPU, 7));
}

static void case_rand(void) { check_random("rand", mt_rand); }
static void case_randn(void) { check_random("randn", mt_randn); }

/* COPY is behind mt_contiguous, mt_clone, mt_to and mt_copy_: every dtype
 * into every dtype, from views and into views. */
static void case_copy(void) {
  for (int i = 0; i < N_DTYPES; i++) {
    for (int l = 0; l < COUNT(unary_layouts); l++) {
      snprintf(where, sizeof where, "copy %s %s", mt_dtype_name(all_dtypes[i]),
               layout_names[unary_layouts[l]]);
      pair a = input(unary_layouts[l], all_dtypes[i], V_SPECIAL);
      CHECK_EXACT(mt_contiguous(ON(a)));
      CHECK_EXACT(mt_clone(ON(a)));
      pair_free(a);
    }
    for (int j = 0; j < N_DTYPES; j++) {
      mt_dtype from = all_dtypes[i], to = all_dtypes[j];
      snprintf(where, sizeof where, "copy %s to %s", mt_dtype_name(from), mt_dtype_name(to));
      pair a = input(L_TRANSPOSED, from, V_SPECIAL);
      CHECK_EXACT(mt_to(ON(a), side ? MH_MODAL : MH_CPU, to, 1));
      /* Into a strided view of a zero tensor, from a sliced view (the
       * broadcasting copy_ has its own test). */
      pair row = input(L_SLICED, from, V_SPECIAL);
      static const int64_t shape[2] = {6, 4};
      pair dst;
      for (int side = 0; side < 2; side++)
        dst.t[side] = MH_MADE(mt_zeros(2, shape, to, side ? MH_MODAL : MH_CPU));
      for (int side = 0; side < 2; side++) {
        mt_tensor *view = MH_MADE(mt_transpose(ON(dst), 0, 1));
        mt_status st = mt_copy_(view, ON(row));
        ck_assert_msg(st == MT_OK, "[%s] mt_copy_: %s", where, mt_last_error());
        mt_tensor_free(view);
      }
      CHECK_EXACT(mt_clone(ON(dst)));
      pair_free(dst);
      pair_free(row);
      pair_free(a);
    }
  }
}

static void case_add(void) { check_binary("add", mt_add, V_GENERAL, V_GENERAL); }
static void case_sub(void) { check_binary("sub", mt_sub, V_GENERAL, V_GENERAL); }
static void case_mul(void) { check_binary("mul", mt_mul, V_GENERAL, V_GENERAL); }
static void case_div(void) { check_binary("div", mt_div, V_SPECIAL, V_GENERAL); }
static void case_pow(void) { check_binary("pow", mt_pow, V_SMALL, V_SMALL); }
static void case_maximum(void) { check_binary("maximum", mt_maximum, V_SPECIAL, V_GENERAL); }
static void case_minimum(void) { check_binary("minimum", mt_minimum, V_SPECIAL, V_GENERAL); }
static void case_eq(void) { check_binary("eq", mt_eq, V_SMALL, V_SMALL); }
static void case_ne(void) { check_binary("ne", mt_ne, V_SMALL, V_SPECIAL); }
static void case_lt(void) { check_binary("lt", mt_lt, V_SMALL, V_SMALL); }
static void case_le(void) { check_binary("le", mt_le, V_SPECIAL, V_SMALL); }
static void case_gt(void) { check_binary("gt", mt_gt, V_SMALL, V_SMALL); }
static void case_ge(void) { check_binary("ge", mt_ge, V_SMALL, V_SPECIAL); }
static void case_logical_and(void) {
  check_binary("logical_and", mt_logical_and, V_SMALL, V_SMALL);
}
static void case_logical_or(void) { check_binary("logical_or", mt_logical_or, V_SMALL, V_SMALL); }

static const double scalars[] = {2, 0.5, -1.5, 0, -3};
static void case_add_scalar(void) { check_scalar("add_scalar", mt_add_scalar, scalars, 5); }
static void case_mul_scalar(void) { check_scalar("mul_scalar", mt_mul_scalar, scalars, 5); }
static void case_pow_scalar(void) { check_scalar("pow_scalar", mt_pow_scalar, scalars, 5); }

static void case_neg(void) { check_unary("neg", mt_neg); }
static void case_abs(void) { check_unary("abs", mt_abs); }
static void case_relu(void) { check_unary("relu", mt_relu); }
static void case_floor(void) { check_unary("floor", mt_floor); }
static void case_ceil(void) { check_unary("ceil", mt_ceil); }
static void case_round(void) { check_unary("round", mt_round); }
static void case_sign(void) { check_unary("sign", mt_sign); }
static void case_exp(void) { check_unary("exp", mt_exp); }
static void case_log(void) { check_unary("log", mt_log); }
static void case_sqrt(void) { check_unary("sqrt", mt_sqrt); }
static void case_rsqrt(void) { check_unary("rsqrt", mt_rsqrt); }
static void case_sin(void) { check_unary("sin", mt_sin); }
static void case_cos(void) { check_unary("cos", mt_cos); }
static void case_tanh(void) { check_unary("tanh", mt_tanh); }
static void case_sigmoid(void) { check_unary("sigmoid", mt_sigmoid); }
static void case_gelu(void) { check_unary("gelu", mt_gelu); }
static void case_silu(void) { check_unary("silu", mt_silu); }
static void case_reciprocal(void) { check_unary("reciprocal", mt_reciprocal); }
static void case_logical_not(void) { check_unary("logical_not", mt_logical_not); }

static void case_where(void) {
  static const mt_dtype conds[] = {MT_BOOL, MT_INT8, MT_FLOAT32};
  static const layout layouts[][3] = {{L_CONTIG, L_CONTIG, L_CONTIG},
                                      {L_COL, L_TRANSPOSED, L_ROW},
                                      {L_3D, L_SLICED, L_SCALAR},
                                      {L_EXPANDED, L_ROW, L_COL},
                                      {L_EMPTY, L_ROW, L_SCALAR}};
  for (int c = 0; c < COUNT(conds); c++)
    for (int k = 0; k < N_DTYPES; k++)
      for (int l = 0; l < COUNT(layouts); l++) {
        mt_dtype d = all_dtypes[k], e = all_dtypes[(k + 3) % N_DTYPES];
        snprintf(where, sizeof where, "where cond %s, %s and %s, layout %d",
                 mt_dtype_name(conds[c]), mt_dtype_name(d), mt_dtype_name(e), l);
        pair cond = input(layouts[l][0], conds[c], V_SMALL);
        pair a = input(layouts[l][1], d, V_SPECIAL), b = input(layouts[l][2], e, V_GENERAL);
        CHECK_BOTH(mt_where(ON(cond), ON(a), ON(b)));
        CHECK_BOTH(mt_where(ON(cond), ON(a), ON(a)));
        pair_free(cond);
        pair_free(a);
        pair_free(b);
      }
}

static void case_clamp(void) {
  static const double bounds[][2] = {{-1, 1}, {-INFINITY, 0.5}, {0, INFINITY}, {2, -2},
                                     {-INFINITY, INFINITY}, {NAN, 1}, {-300, 300}};
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(unary_layouts); l++) {
      snprintf(where, sizeof where, "clamp %s %s", mt_dtype_name(all_dtypes[k]),
               layout_names[unary_layouts[l]]);
      pair a = input(unary_layouts[l], all_dtypes[k], V_SPECIAL);
      for (int b = 0; b < COUNT(bounds); b++)
        CHECK_BOTH(mt_clamp(ON(a), bounds[b][0], bounds[b][1]));
      pair_free(a);
    }
}

static void case_cast(void) {
  for (int i = 0; i < N_DTYPES; i++)
    for (int j = 0; j < N_DTYPES; j++)
      for (int l = 0; l < COUNT(unary_layouts); l++) {
        snprintf(where, sizeof where, "cast %s to %s %s", mt_dtype_name(all_dtypes[i]),
                 mt_dtype_name(all_dtypes[j]), layout_names[unary_layouts[l]]);
        pair a = input(unary_layouts[l], all_dtypes[i], V_SPECIAL);
        CHECK_EXACT(mt_cast(ON(a), all_dtypes[j]));
        pair_free(a);
      }
  /* Saturation and wrapping of values far outside the small ranges. */
  static const double big[] = {1e10, -1e10, 300.5, -129.9, 65535.9, NAN, 4e9, -2.5};
  static const int64_t n = 8;
  for (int j = 0; j < N_DTYPES; j++) {
    snprintf(where, sizeof where, "cast float64 extremes to %s", mt_dtype_name(all_dtypes[j]));
    pair a = pair_from(big, 1, &n, MT_FLOAT64);
    CHECK_EXACT(mt_cast(ON(a), all_dtypes[j]));
    pair_free(a);
  }
  CHECK_BOTH(mt_cast(NULL, (mt_dtype)99));
}

static void case_sum(void) { check_reduce("sum", mt_sum); }
static void case_mean(void) { check_reduce("mean", mt_mean); }
static void case_prod(void) { check_reduce("prod", mt_prod); }
static void case_amax(void) { check_reduce("amax", mt_amax); }
static void case_amin(void) { check_reduce("amin", mt_amin); }
static void case_argmax(void) { check_argreduce("argmax", mt_argmax); }
static void case_argmin(void) { check_argreduce("argmin", mt_argmin); }
static void case_softmax(void) { check_softmax("softmax", mt_softmax); }
static void case_log_softmax(void) { check_softmax("log_softmax", mt_log_softmax); }

static void case_layer_norm(void) {
  static const layout layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED, L_EMPTY, L_3D};
  static const int64_t six = 6, five = 5;
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(layouts); l++) {
      mt_dtype d = all_dtypes[k];
      snprintf(where, sizeof where, "layer_norm %s %s", mt_dtype_name(d),
               layout_names[layouts[l]]);
      pair a = input(layouts[l], d, V_GENERAL);
      pair w = pair_values(1, &six, d, V_GENERAL), b = pair_values(1, &six, d, V_GENERAL);
      pair wrong = pair_values(1, &five, d, V_GENERAL);
      CHECK_BOTH(mt_layer_norm(ON(a), NULL, NULL, 1e-5));
      CHECK_BOTH(mt_layer_norm(ON(a), ON(w), NULL, 1e-5));
      CHECK_BOTH(mt_layer_norm(ON(a), NULL, ON(b), 0.0));
      CHECK_BOTH(mt_layer_norm(ON(a), ON(w), ON(b), 0.5));
      CHECK_BOTH(mt_layer_norm(ON(a), ON(wrong), NULL, 1e-5));
      CHECK_BOTH(mt_layer_norm(ON(a), ON(w), ON(b), -1.0));
      pair_free(a);
      pair_free(w);
      pair_free(b);
      pair_free(wrong);
    }
}

static void case_matmul(void) {
  /* numpy.matmul shapes: matrix, vector on either side, batches that
   * broadcast, empty inner and outer dims, and misfits. */
  static const struct {
    int an, bn;
    int64_t a[4], b[4];
  } shapes[] = {
      {2, 2, {5, 7}, {7, 3}},       {1, 2, {7}, {7, 3}},          {2, 1, {5, 7}, {7}},
      {1, 1, {7}, {7}},             {3, 3, {2, 5, 7}, {2, 7, 3}}, {4, 3, {2, 1, 5, 7}, {3, 7, 4}},
      {2, 2, {5, 0}, {0, 3}},       {2, 2, {0, 7}, {7, 3}},       {2, 2, {5, 7}, {6, 3}},
      {0, 2, {0}, {7, 3}},          {2, 2, {64, 48}, {48, 40}},
  };
  for (int k = 0; k < N_DTYPES; k++)
    for (int s = 0; s < COUNT(shapes); s++) {
      mt_dtype d = all_dtypes[k];
      snprintf(where, sizeof where, "matmul %s shapes %d", mt_dtype_name(d), s);
      pair a = pair_values(shapes[s].an, shapes[s].a, d, V_SMALL);
      pair b = pair_values(shapes[s].bn, shapes[s].b, d, V_SMALL);
      CHECK_BOTH(mt_matmul(ON(a), ON(b)));
      pair_free(a);
      pair_free(b);
    }
  /* Transposed and sliced operands, and mixed dtypes. */
  for (int k = 0; k < N_DTYPES; k++) {
    mt_dtype d = all_dtypes[k], e = all_dtypes[(k + 7) % N_DTYPES];
    snprintf(where, sizeof where, "matmul %s views, with %s", mt_dtype_name(d), mt_dtype_name(e));
    pair a = input(L_TRANSPOSED, d, V_SMALL), b = input(L_SLICED, d, V_SMALL);
    pair c = input(L_CONTIG, e, V_SMALL);
    pair bt;
    for (int side = 0; side < 2; side++) bt.t[side] = MH_MADE(mt_transpose(ON(b), 0, 1));
    CHECK_BOTH(mt_matmul(ON(a), ON(bt)));
    CHECK_BOTH(mt_matmul(ON(bt), ON(c)));
    pair_free(a);
    pair_free(b);
    pair_free(bt);
    pair_free(c);
  }
}

/* linear: x in every layout ([..., 6]), the weight plain or a transposed
 * view, with and without a bias; integer dtypes and misfits fail alike. */
static void case_linear(void) {
  static const layout layouts[] = {L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED, L_EMPTY,
                                   L_3D,     L_ROW};
  static const int64_t w_shape[2] = {5, 6}, wt_shape[2] = {6, 5}, b_shape = 5, wrong = 4;
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(layouts); l++) {
      mt_dtype d = all_dtypes[k];
      snprintf(where, sizeof where, "linear %s %s", mt_dtype_name(d), layout_names[layouts[l]]);
      pair x = input(layouts[l], d, V_SMALL), w = pair_values(2, w_shape, d, V_SMALL);
      pair wt = pair_values(2, wt_shape, d, V_SMALL), b = pair_values(1, &b_shape, d, V_SMALL);
      pair bad = pair_values(1, &wrong, d, V_SMALL), w_view;
      for (int side = 0; side < 2; side++) w_view.t[side] = MH_MADE(mt_transpose(ON(wt), 0, 1));
      CHECK_BOTH(mt_linear(ON(x), ON(w), NULL));
      CHECK_BOTH(mt_linear(ON(x), ON(w), ON(b)));
      CHECK_BOTH(mt_linear(ON(x), ON(w_view), ON(b)));
      CHECK_BOTH(mt_linear(ON(x), ON(w), ON(bad)));
      CHECK_BOTH(mt_linear(ON(x), ON(wt), NULL));
      pair_free(x), pair_free(w), pair_free(wt), pair_free(b), pair_free(bad), pair_free(w_view);
    }
}

/* ON over a list: the tensors of one side, in order. */
static const mt_tensor *const *side_list(const pair *ps, int n, int side, const mt_tensor **buf) {
  for (int i = 0; i < n; i++) buf[i] = ps[i].t[side];
  return buf;
}

static void case_cat(void) {
  enum { N = 6 }; /* more inputs than any inline array on the way */
  static const layout layouts[N] = {L_CONTIG, L_TRANSPOSED, L_SLICED,
                                    L_EXPANDED, L_CONTIG,   L_TRANSPOSED};
  const mt_tensor *buf[N];
  for (int k = 0; k < N_DTYPES; k++) {
    pair ps[N];
    for (int i = 0; i < N; i++) {
      mt_dtype d = i == 4 ? all_dtypes[(k + 5) % N_DTYPES] : all_dtypes[k];
      ps[i] = input(layouts[i], d, V_SPECIAL);
    }
    snprintf(where, sizeof where, "cat %s (one input %s)", mt_dtype_name(all_dtypes[k]),
             mt_dtype_name(all_dtypes[(k + 5) % N_DTYPES]));
    for (int dim = -3; dim <= 2; dim++) {
      for (int n = 1; n <= N; n++) {
        CHECK_BOTH(mt_cat(n, side_list(ps, n, side, buf), dim));
        CHECK_BOTH(mt_stack(n, side_list(ps, n, side, buf), dim));
      }
    }
    pair row = input(L_ROW, all_dtypes[k], V_GENERAL);
    pair empty = input(L_EMPTY, all_dtypes[k], V_GENERAL);
    pair mixed[3] = {ps[0], empty, ps[1]};
    CHECK_BOTH(mt_cat(3, side_list(mixed, 3, side, buf), 0));
    pair misfit[2] = {ps[0], row};
    CHECK_BOTH(mt_cat(2, side_list(misfit, 2, side, buf), 0));
    CHECK_BOTH(mt_cat(0, side_list(misfit, 0, side, buf), 0));
    pair_free(row);
    pair_free(empty);
    for (int i = 0; i < N; i++) pair_free(ps[i]);
  }
}

static void case_index_select(void) {
  static const int64_t idx_shape[] = {5};
  static const int64_t idx_values[] = {0, 3, -1, 2, 0};
  static const int64_t bad_values[] = {0, 6, 1, -7, 2};
  for (int k = 0; k < N_DTYPES; k++)
    for (int l = 0; l < COUNT(unary_layouts); l++) {
      mt_dtype d = all_dtypes[k];
      snprintf(where, sizeof where, "index_select %s %s", mt_dtype_name(d),
               layout_names[unary_layouts[l]]);
      pair a = input(unary_layouts[l], d, V_SPECIAL);
      pair i64 = pair_from(idx_values, 1, idx_shape, MT_INT64);
      pair i32 = input(L_ROW, MT_INT32, V_INDEX);
      int64_t three = 3;
      pair scalar_idx = pair_from(&three, 0, idx_shape, MT_INT64); /* 0-d: shape unread */
      pair float_idx = input(L_ROW, MT_FLOAT32, V_INDEX);
      for (int dim = -2; dim <= 1; dim++) {
        CHECK_BOTH(mt_index_select(ON(a), dim, ON(i64)));
        CHECK_BOTH(mt_index_select(ON(a), dim, ON(i32)));
        CHECK_BOTH(mt_index_select(ON(a), dim, ON(scalar_idx)));
        CHECK_BOTH(mt_index_select(ON(a), dim, ON(float_idx)));
      }
      pair_free(a);
      pair_free(i64);
      pair_free(i32);
      pair_free(scalar_idx);
      pair_free(float_idx);
    }
  /* Out of range: cpu fails at once, modal at the read (agree() reads). */
  snprintf(where, sizeof where, "index_select out of range");
  pair a = input(L_CONTIG, MT_FLOAT32, V_GENERAL);
  pair bad = pair_from(bad_values, 1, idx_shape, MT_INT64);
  CHECK_BOTH(mt_index_select(ON(a), 1, ON(bad)));
  MH_OK(mt_synchronize(MH_MODAL)); /* the read reported it: nothing is left */
  pair_free(a);
  pair_free(bad);
}

/* ------------------------------------------------------------ the table */

typedef struct op_case {
  mti_op op;
  void (*run)(void);
} op_case;

#include "conformance_elementwise.inc" /* general elementwise (0.2) */
#include "conformance_reduce.inc" /* reductions, scans, sorting (0.2) */
#include "conformance_index.inc" /* indexing, shape, creation, sampling (0.2) */
#include "conformance_norm.inc" /* normalisations and losses */
#include "conformance_conv.inc" /* convolution and pooling (0.2) */
#include "conformance_attention.inc" /* neural-network ops: attention (0.2) */
#include "conformance_optim.inc" /* optimizer updates (issue 12) */
#include "conformance_norm_backward.inc" /* fused norm backwards (issue 12) */
#include "conformance_conv_grad.inc" /* convolution backward (issue 12) */

static const op_case cases[] = {
    {MTI_OP_FULL, case_full},
    {MTI_OP_ARANGE, case_arange},
    {MTI_OP_RAND, case_rand},
    {MTI_OP_RANDN, case_randn},
    {MTI_OP_COPY, case_copy},
    {MTI_OP_ADD, case_add},
    {MTI_OP_SUB, case_sub},
    {MTI_OP_MUL, case_mul},
    {MTI_OP_DIV, case_div},
    {MTI_OP_POW, case_pow},
    {MTI_OP_MAXIMUM, case_maximum},
    {MTI_OP_MINIMUM, case_minimum},
    {MTI_OP_EQ, case_eq},
    {MTI_OP_NE, case_ne},
    {MTI_OP_LT, case_lt},
    {MTI_OP_LE, case_le},
    {MTI_OP_GT, case_gt},
    {MTI_OP_GE, case_ge},
    {MTI_OP_LOGICAL_AND, case_logical_and},
    {MTI_OP_LOGICAL_OR, case_logical_or},
    {MTI_OP_ADD_SCALAR, case_add_scalar},
    {MTI_OP_MUL_SCALAR, case_mul_scalar},
    {MTI_OP_POW_SCALAR, case_pow_scalar},
    {MTI_OP_NEG, case_neg},
    {MTI_OP_ABS, case_abs},
    {MTI_OP_RELU, case_relu},
    {MTI_OP_FLOOR, case_floor},
    {MTI_OP_CEIL, case_ceil},
    {MTI_OP_ROUND, case_round},
    {MTI_OP_SIGN, case_sign},
    {MTI_OP_EXP, case_exp},
    {MTI_OP_LOG, case_log},
    {MTI_OP_SQRT, case_sqrt},
    {MTI_OP_RSQRT, case_rsqrt},
    {MTI_OP_SIN, case_sin},
    {MTI_OP_COS, case_cos},
    {MTI_OP_TANH, case_tanh},
    {MTI_OP_SIGMOID, case_sigmoid},
    {MTI_OP_GELU, case_gelu},
    {MTI_OP_SILU, case_silu},
    {MTI_OP_RECIPROCAL, case_reciprocal},
    {MTI_OP_LOGICAL_NOT, case_logical_not},
    {MTI_OP_WHERE, case_where},
    {MTI_OP_CLAMP, case_clamp},
    {MTI_OP_CAST, case_cast},
    {MTI_OP_SUM, case_sum},
    {MTI_OP_MEAN, case_mean},
    {MTI_OP_PROD, case_prod},
    {MTI_OP_AMAX, case_amax},
    {MTI_OP_AMIN, case_amin},
    {MTI_OP_ARGMAX, case_argmax},
    {MTI_OP_ARGMIN, case_argmin},
    {MTI_OP_SOFTMAX, case_softmax},
    {MTI_OP_LOG_SOFTMAX, case_log_softmax},
    {MTI_OP_LAYER_NORM, case_layer_norm},
    {MTI_OP_MATMUL, case_matmul},
    {MTI_OP_CAT, case_cat},
    {MTI_OP_INDEX_SELECT, case_index_select},
    {MTI_OP_LINEAR, case_linear},
    CONFORMANCE_ELEMENTWISE_CASES
    CONFORMANCE_REDUCE_CASES
    CONFORMANCE_INDEX_CASES
    CONFORMANCE_NORM_CASES
    CONFORMANCE_CONV_CASES
    CONFORMANCE_ATTENTION_CASES
    CONFORMANCE_OPTIM_CASES
    CONFORMANCE_NORM_BACKWARD_CASES
    CONFORMANCE_CONV_GRAD_CASES
};

/* Every op of ops.def, by its enum value. */
static const char *const op_names[MTI_OP_COUNT] = {
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, GRAD) [MTI_OP_##NAME] = #name,
#include "core/ops.def"
#undef MT_OP
};

static const op_case *case_of(int op) {
  const op_case *found = NULL;
  for (int i = 0; i < COUNT(cases); i++)
    if ((int)cases[i].op == op) {
      ck_assert_msg(!found, "op %s has two cases", op_names[op]);
      found = &cases[i];
    }
  return found;
}

START_TEST(test_every_op_has_a_case) {
  for (int op = 0; op < MTI_OP_COUNT; op++) {
    ck_assert_msg(op_names[op] != NULL, "op %d is missing from the name list", op);
    ck_assert_msg(case_of(op) != NULL, "op %s (MTI_OP %d) has no conformance case", op_names[op],
                  op);
  }
  for (int i = 0; i < COUNT(cases); i++)
    ck_assert_msg((int)cases[i].op >= 0 && (int)cases[i].op < MTI_OP_COUNT,
                  "case %d names op %d, which ops.def does not have", i, (int)cases[i].op);
}
END_TEST

/* One test per op (loop index = op), each with its own worker. */
START_TEST(test_op) {
  const op_case *c = case_of(_i);
  ck_assert_msg(c != NULL, "op %s has no conformance case", op_names[_i]);
  rng_state = 0x5eed0000u + (uint64_t)_i;
  snprintf(where, sizeof where, "%s", op_names[_i]);
  c->run();
  /* Nothing deferred is left behind by any case. */
  MH_OK(mt_synchronize(MH_MODAL));
}
END_TEST

/* ------------------------------------------------------------ views, copies */

/* The same view on both sides has the same geometry and values. */
#define CHECK_VIEW(expr)                                                              \
  do {                                                                                \
    mt_tensor *v_[2];                                                                 \
    for (int side = 0; side < 2; side++) {                                            \
      mt_clear_error();                                                               \
      v_[side] = (expr);                                                              \
    }                                                                                 \
    ck_assert_msg((v_[0] == NULL) == (v_[1] == NULL), "[%s] %s: succeeded on one side only", \
                  where, #expr);                                                      \
    if (v_[0]) {                                                                      \
      ck_assert_int_eq(mt_ndim(v_[0]), mt_ndim(v_[1]));                               \
      for (int d_ = 0; d_ < mt_ndim(v_[0]); d_++) {                                   \
        ck_assert_int_eq(mt_shape(v_[0], d_), mt_shape(v_[1], d_));                   \
        ck_assert_int_eq(mt_stride(v_[0], d_), mt_stride(v_[1], d_));                 \
      }                                                                               \
      ck_assert_int_eq(mt_is_contiguous(v_[0]), mt_is_contiguous(v_[1]));             \
      compare_values(__FILE__, __LINE__, #expr, v_[0], v_[1], 1);                     \
    }                                                                                 \
    mt_tensor_free(v_[0]);                                                            \
    mt_tensor_free(v_[1]);                                                            \
  } while (0)

START_TEST(test_views) {
  rng_state = 11;
  static const int64_t shape[3] = {3, 4, 5};
  static const int perm[3] = {2, 0, 1};
  static const int64_t flat[2] = {12, 5}, inferred[3] = {5, -1, 3}, bad[2] = {7, 7};
  static const int64_t expanded[4] = {2, 3, 4, 5}, keep[3] = {-1, 4, -1};
  for (int k = 0; k < N_DTYPES; k++) {
    snprintf(where, sizeof where, "views of %s", mt_dtype_name(all_dtypes[k]));
    pair a = pair_values(3, shape, all_dtypes[k], V_SPECIAL);
    CHECK_VIEW(mt_reshape(ON(a), 2, flat));
    CHECK_VIEW(mt_reshape(ON(a), 3, inferred));
    CHECK_VIEW(mt_reshape(ON(a), 2, bad));
    CHECK_VIEW(mt_permute(ON(a), perm));
    CHECK_VIEW(mt_transpose(ON(a), 0, -1));
    CHECK_VIEW(mt_slice(ON(a), 1, 1, 100, 2));
    CHECK_VIEW(mt_slice(ON(a), -1, -3, -1, 1));
    CHECK_VIEW(mt_slice(ON(a), 0, 2, 1, 1));
    CHECK_VIEW(mt_slice(ON(a), 0, 0, 3, 0));
    CHECK_VIEW(mt_expand(ON(a), 4, expanded));
    CHECK_VIEW(mt_expand(ON(a), 3, keep));
    CHECK_VIEW(mt_unsqueeze(ON(a), 1));
    CHECK_VIEW(mt_unsqueeze(ON(a), -1));
    CHECK_VIEW(mt_squeeze(ON(a), 0));
    /* Views of views: a transposed slice reshaped (which must copy). */
    pair t;
    for (int side = 0; side < 2; side++) {
      mt_tensor *s = MH_MADE(mt_slice(ON(a), 2, 1, 5, 1));
      t.t[side] = MH_MADE(mt_transpose(s, 0, 2));
      mt_tensor_free(s);
    }
    CHECK_VIEW(mt_reshape(ON(t), 2, (const int64_t[]){4, 12}));
    CHECK_VIEW(mt_reshape(ON(t), 1, (const int64_t[]){-1}));
    CHECK_VIEW(mt_permute(ON(t), perm));
    CHECK_VIEW(mt_contiguous(ON(t)));
    pair_free(t);
    pair_free(a);
  }
}
END_TEST

START_TEST(test_copy_into_modal_views) {
  rng_state = 12;
  static const int64_t shape[2] = {6, 8};
  for (int i = 0; i < N_DTYPES; i++)
    for (int j = 0; j < N_DTYPES; j += 3) {
      mt_dtype dd = all_dtypes[i], sd = all_dtypes[j];
      snprintf(where, sizeof where, "copy_ %s into %s views", mt_dtype_name(sd),
               mt_dtype_name(dd));
      pair dst = pair_values(2, shape, dd, V_GENERAL);
      pair src = input(L_SLICED, sd, V_SPECIAL); /* [4, 6], strided */
      pair column = input(L_ROW, sd, V_SPECIAL); /* [6] */
      for (int side = 0; side < 2; side++) {
        /* rows 1..4 (an offset), every second column, transposed: [4, 4]
         * gets a transposed [4, 4] corner of src */
        mt_tensor *rows = MH_MADE(mt_slice(ON(dst), 0, 1, 5, 1));
        mt_tensor *cols = MH_MADE(mt_slice(rows, 1, 0, 8, 2));
        mt_tensor *tr = MH_MADE(mt_transpose(cols, 0, 1));
        mt_tensor *corner = MH_MADE(mt_slice(ON(src), 1, 1, 5, 1));
        mt_tensor *srct = MH_MADE(mt_transpose(corner, 0, 1));
        MH_OK(mt_copy_(tr, srct));
        mt_tensor_free(corner);
        /* the last column (a strided 1-D view) */
        mt_tensor *last = MH_MADE(mt_slice(ON(dst), 1, 7, 8, 1));
        mt_tensor *col = MH_MADE(mt_squeeze(last, 1));
        MH_OK(mt_copy_(col, ON(column)));
        mt_tensor_free(col);
        mt_tensor_free(last);
        mt_tensor_free(srct);
        mt_tensor_free(tr);
        mt_tensor_free(cols);
        mt_tensor_free(rows);
      }
      CHECK_VIEW(mt_clone(ON(dst)));
      /* An expanded destination overlaps itself: refused on both sides. */
      for (int side = 0; side < 2; side++) {
        mt_tensor *row = MH_MADE(mt_slice(ON(dst), 0, 0, 1, 1));
        mt_tensor *exp = MH_MADE(mt_expand(row, 2, shape));
        MH_EXPECT(mt_copy_(exp, ON(dst)), MT_ERR_INVALID_ARGUMENT, "mt_copy_", "overlap");
        MH_EXPECT(mt_copy_(row, ON(dst)), MT_ERR_SHAPE, "mt_copy_", NULL);
        mt_tensor_free(exp);
        mt_tensor_free(row);
      }
      pair_free(column);
      pair_free(src);
      pair_free(dst);
    }
  /* A modal tensor viewed before a copy_ into it sees the new values. */
  float ones[4] = {1, 1, 1, 1}, got[4];
  const int64_t four = 4;
  mt_tensor *z = MH_MADE(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *alias = MH_MADE(mt_reshape(z, 2, (const int64_t[]){2, 2}));
  mt_tensor *src = MH_MADE(mt_from_data(ones, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_copy_(z, src));
  MH_OK(mt_to_host(alias, got, sizeof got));
  for (int i = 0; i < 4; i++) ck_assert(got[i] == 1.0f);
  mt_tensor_free(src);
  mt_tensor_free(alias);
  mt_tensor_free(z);
}
END_TEST

/* mt_copy_ broadcasts src to dst's shape: a row, a column, a 0-d value and
 * an expanded view, into a plain tensor and into a transposed view, as on cpu. */
START_TEST(test_copy_broadcast_into_modal) {
  rng_state = 15;
  static const int64_t shape[2] = {4, 6};
  for (int i = 0; i < N_DTYPES; i += 3)
    for (int j = 0; j < N_DTYPES; j += 4) {
      mt_dtype dd = all_dtypes[i], sd = all_dtypes[j];
      static const layout sources[] = {L_ROW, L_COL, L_SCALAR, L_EXPANDED};
      for (int l = 0; l < COUNT(sources); l++) {
        snprintf(where, sizeof where, "copy_ %s %s broadcast into %s",
                 layout_names[sources[l]], mt_dtype_name(sd), mt_dtype_name(dd));
        pair dst = pair_values(2, shape, dd, V_GENERAL);
        pair src = input(sources[l], sd, V_SPECIAL);
        for (int side = 0; side < 2; side++) MH_OK(mt_copy_(ON(dst), ON(src)));
        CHECK_VIEW(mt_clone(ON(dst)));
        /* the same into a transposed view of a [6, 4] tensor */
        pair dst_t = pair_values(2, (const int64_t[]){6, 4}, dd, V_GENERAL);
        for (int side = 0; side < 2; side++) {
          mt_tensor *tr = MH_MADE(mt_transpose(ON(dst_t), 0, 1));
          MH_OK(mt_copy_(tr, ON(src)));
          mt_tensor_free(tr);
        }
        CHECK_VIEW(mt_clone(ON(dst_t)));
        pair_free(dst_t);
        pair_free(src);
        pair_free(dst);
      }
    }
}
END_TEST

START_TEST(test_to_between_devices) {
  rng_state = 13;
  for (int i = 0; i < N_DTYPES; i++)
    for (int j = 0; j < N_DTYPES; j++) {
      mt_dtype from = all_dtypes[i], to = all_dtypes[j];
      snprintf(where, sizeof where, "mt_to %s -> %s", mt_dtype_name(from), mt_dtype_name(to));
      pair a = input(L_SLICED, from, V_SPECIAL);
      mt_tensor *want = MH_MADE(mt_cast(a.t[0], to)); /* the cpu reference */
      for (int copy = 0; copy < 2; copy++) {
        /* cpu view -> modal, modal view -> cpu, modal -> modal */
        mt_tensor *up = MH_MADE(mt_to(a.t[0], MH_MODAL, to, copy));
        mt_tensor *down = MH_MADE(mt_to(a.t[1], MH_CPU, to, copy));
        mt_tensor *across = MH_MADE(mt_to(a.t[1], MH_MODAL, to, copy));
        mt_tensor *round_trip = MH_MADE(mt_to(up, MH_CPU, to, copy));
        ck_assert_int_eq(mt_tensor_device(up).type, MT_DEVICE_MODAL);
        ck_assert_int_eq(mt_tensor_device(down).type, MT_DEVICE_CPU);
        ck_assert_int_eq(mt_tensor_device(across).type, MT_DEVICE_MODAL);
        ck_assert_int_eq(mt_tensor_dtype(up), to);
        compare_values(__FILE__, __LINE__, "cpu -> modal", want, up, 1);
        compare_values(__FILE__, __LINE__, "modal -> cpu", want, down, 1);
        compare_values(__FILE__, __LINE__, "modal -> modal", want, across, 1);
        compare_values(__FILE__, __LINE__, "round trip", want, round_trip, 1);
        mt_tensor_free(up);
        mt_tensor_free(down);
        mt_tensor_free(across);
        mt_tensor_free(round_trip);
      }
      mt_tensor_free(want);
      pair_free(a);
    }
  /* copy=0 with nothing to change shares the storage; copy=1 does not. */
  const int64_t four = 4;
  float vals[4] = {1, 2, 3, 4}, nines[4] = {9, 9, 9, 9}, got[4];
  mt_tensor *m = MH_MADE(mt_from_data(vals, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *shared = MH_MADE(mt_to(m, MH_MODAL, MT_FLOAT32, 0));
  mt_tensor *copied = MH_MADE(mt_to(m, MH_MODAL, MT_FLOAT32, 1));
  mt_tensor *src = MH_MADE(mt_from_data(nines, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_copy_(m, src));
  MH_OK(mt_to_host(shared, got, sizeof got));
  ck_assert(got[0] == 9.0f && got[3] == 9.0f);
  MH_OK(mt_to_host(copied, got, sizeof got));
  ck_assert(got[0] == 1.0f && got[3] == 4.0f);
  mt_tensor_free(src);
  mt_tensor_free(copied);
  mt_tensor_free(shared);
  mt_tensor_free(m);
  MH_EXPECT_NULL(mt_to(NULL, MH_MODAL, MT_FLOAT32, 0), MT_ERR_INVALID_ARGUMENT, "mt_to", NULL);
  mt_tensor *c = MH_MADE(mt_zeros(1, &four, MT_FLOAT32, MH_CPU));
  MH_EXPECT_NULL(mt_to(c, ((mt_device){MT_DEVICE_MODAL, 3}), MT_FLOAT32, 0), MT_ERR_DEVICE,
                 "mt_to", "modal:3");
  MH_EXPECT_NULL(mt_to(c, MH_MODAL, (mt_dtype)77, 0), MT_ERR_DTYPE, "mt_to", NULL);
  mt_tensor_free(c);
}
END_TEST

START_TEST(test_contiguous_and_clone) {
  rng_state = 14;
  for (int k = 0; k < N_DTYPES; k++) {
    snprintf(where, sizeof where, "contiguous/clone %s", mt_dtype_name(all_dtypes[k]));
    pair a = input(L_CONTIG, all_dtypes[k], V_SPECIAL);
    pair t = input(L_TRANSPOSED, all_dtypes[k], V_SPECIAL);
    mt_tensor *same = MH_MADE(mt_contiguous(a.t[1]));
    mt_tensor *made = MH_MADE(mt_contiguous(t.t[1]));
    mt_tensor *clone = MH_MADE(mt_clone(a.t[1]));
    ck_assert(mt_is_contiguous(same) && mt_is_contiguous(made) && mt_is_contiguous(clone));
    ck_assert(!mt_is_contiguous(t.t[1]));
    compare_values(__FILE__, __LINE__, "contiguous of contiguous", a.t[0], same, 1);
    compare_values(__FILE__, __LINE__, "contiguous of transposed", t.t[0], made, 1);
    compare_values(__FILE__, __LINE__, "clone", a.t[0], clone, 1);
    /* contiguous shares, clone does not: write through the original. */
    mt_tensor *z = MH_MADE(mt_zeros(2, (const int64_t[]){4, 6}, all_dtypes[k], MH_MODAL));
    MH_OK(mt_copy_(a.t[1], z));
    mt_tensor *zc = MH_MADE(mt_zeros(2, (const int64_t[]){4, 6}, all_dtypes[k], MH_CPU));
    compare_values(__FILE__, __LINE__, "contiguous shares", zc, same, 1);
    compare_values(__FILE__, __LINE__, "clone owns", a.t[0], clone, 1);
    mt_tensor_free(zc);
    mt_tensor_free(z);
    mt_tensor_free(clone);
    mt_tensor_free(made);
    mt_tensor_free(same);
    pair_free(a);
    pair_free(t);
  }
}
END_TEST

/* The header allows a NULL shape for 0-d tensors, in every creation call. */
START_TEST(test_zero_d_with_null_shape) {
  double v = 2.5, x;
  for (int side = 0; side < 2; side++) {
    mt_device d = side ? MH_MODAL : MH_CPU;
    mt_tensor *t[5] = {MH_MADE(mt_from_data(&v, 0, NULL, MT_FLOAT64, d)),
                       MH_MADE(mt_full(0, NULL, v, MT_FLOAT64, d)),
                       MH_MADE(mt_zeros(0, NULL, MT_FLOAT64, d)),
                       MH_MADE(mt_empty(0, NULL, MT_FLOAT64, d)),
                       MH_MADE(mt_rand(0, NULL, MT_FLOAT64, d, 1))};
    MH_OK(mt_item(t[0], &x));
    ck_assert(x == 2.5);
    mt_tensor *r = MH_MADE(mt_reshape(t[1], 0, NULL));
    MH_OK(mt_item(r, &x));
    ck_assert(x == 2.5);
    mt_tensor_free(r);
    for (int i = 0; i < 5; i++) mt_tensor_free(t[i]);
  }
}
END_TEST

START_TEST(test_item) {
  for (int k = 0; k < N_DTYPES; k++) {
    mt_dtype d = all_dtypes[k];
    double v = d == MT_BOOL ? 1 : d == MT_UINT8 ? 200 : -7.5, want, got;
    mt_tensor *c = MH_MADE(mt_full(0, NULL, v, d, MH_CPU));
    mt_tensor *m = MH_MADE(mt_full(0, NULL, v, d, MH_MODAL));
    MH_OK(mt_item(c, &want));
    MH_OK(mt_item(m, &got));
    ck_assert_msg(want == got, "%s: item %g on cpu, %g on modal", mt_dtype_name(d), want, got);
    /* any shape with one element, and a view with an offset */
    mt_tensor *big = MH_MADE(mt_arange(0, 24, 1, d, MH_MODAL));
    mt_tensor *one = MH_MADE(mt_slice(big, 0, 5, 6, 1));
    mt_tensor *one2 = MH_MADE(mt_reshape(one, 3, (const int64_t[]){1, 1, 1}));
    double five;
    MH_OK(mt_item(one2, &five));
    mt_tensor *cbig = MH_MADE(mt_arange(0, 24, 1, d, MH_CPU));
    mt_tensor *cone = MH_MADE(mt_slice(cbig, 0, 5, 6, 1));
    MH_OK(mt_item(cone, &want));
    ck_assert_msg(five == want, "%s: item of a view %g, expected %g", mt_dtype_name(d), five, want);
    MH_EXPECT(mt_item(big, &got), MT_ERR_SHAPE, "mt_item", NULL);
    MH_EXPECT(mt_item(m, NULL), MT_ERR_INVALID_ARGUMENT, "mt_item", NULL);
    mt_tensor_free(cone);
    mt_tensor_free(cbig);
    mt_tensor_free(one2);
    mt_tensor_free(one);
    mt_tensor_free(big);
    mt_tensor_free(m);
    mt_tensor_free(c);
  }
}
END_TEST

/* ------------------------------------------------------------ errors */

START_TEST(test_mixed_devices) {
  const int64_t shape[2] = {2, 3};
  mt_tensor *c = MH_MADE(mt_ones(2, shape, MT_FLOAT32, MH_CPU));
  mt_tensor *m = MH_MADE(mt_ones(2, shape, MT_FLOAT32, MH_MODAL));
  MH_EXPECT_NULL(mt_add(c, m), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT_NULL(mt_add(m, c), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT_NULL(mt_matmul(m, c), MT_ERR_DEVICE, "mt_matmul", "modal:0");
  MH_EXPECT_NULL(mt_where(m, c, c), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT_NULL(mt_layer_norm(m, c, NULL, 1e-5), MT_ERR_DEVICE, "cpu", "modal:0");
  const mt_tensor *list[3] = {m, m, c};
  MH_EXPECT_NULL(mt_cat(3, list, 0), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT_NULL(mt_stack(3, list, 0), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT(mt_copy_(m, c), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT(mt_copy_(c, m), MT_ERR_DEVICE, "cpu", "modal:0");
  MH_EXPECT(mt_data_ptr(m) ? MT_OK : mt_last_status(), MT_ERR_DEVICE, NULL, NULL);
  MH_EXPECT_NULL(mt_zeros(2, shape, MT_FLOAT32, ((mt_device){MT_DEVICE_MODAL, 1})), MT_ERR_DEVICE,
                 "modal:1", NULL);
  mt_tensor_free(m);
  mt_tensor_free(c);
}
END_TEST

START_TEST(test_deferred_index_error) {
  float vals[6] = {0, 1, 2, 3, 4, 5}, got[6];
  int64_t bad[2] = {1, 9};
  const int64_t six = 6, two = 2;
  mt_tensor *a = MH_MADE(mt_from_data(vals, 1, &six, MT_FLOAT32, MH_MODAL));
  mt_tensor *idx = MH_MADE(mt_from_data(bad, 1, &two, MT_INT64, MH_MODAL));
  /* On cpu the same call fails at once. */
  mt_tensor *ca = MH_MADE(mt_from_data(vals, 1, &six, MT_FLOAT32, MH_CPU));
  mt_tensor *cidx = MH_MADE(mt_from_data(bad, 1, &two, MT_INT64, MH_CPU));
  MH_EXPECT_NULL(mt_index_select(ca, 0, cidx), MT_ERR_INVALID_ARGUMENT, "mt_index_select", NULL);
  /* On modal the call records, and the error waits for the next sync. */
  mt_tensor *sel = MH_MADE(mt_index_select(a, 0, idx));
  mt_tensor *later = MH_MADE(mt_mul_scalar(sel, 2)); /* computed from the failed tensor */
  mt_tensor *fine = MH_MADE(mt_add_scalar(a, 1));     /* independent of it */
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "mt_index_select", NULL);
  /* Reported once: the next sync is clean. */
  MH_OK(mt_synchronize(MH_MODAL));
  /* The failed tensor, and what came from it, report the error when read. */
  float two_vals[2];
  MH_EXPECT(mt_to_host(sel, two_vals, sizeof two_vals), MT_ERR_INVALID_ARGUMENT,
            "mt_index_select", NULL);
  MH_EXPECT(mt_to_host(later, two_vals, sizeof two_vals), MT_ERR_INVALID_ARGUMENT,
            "mt_index_select", NULL);
  /* mt_item of a failed one-element tensor (a 0-d index drops the dim). */
  int64_t nine = 9;
  mt_tensor *idx0 = MH_MADE(mt_from_data(&nine, 0, &two, MT_INT64, MH_MODAL)); /* 0-d */
  mt_tensor *sel0 = MH_MADE(mt_index_select(a, 0, idx0));
  double x;
  MH_EXPECT(mt_item(sel0, &x), MT_ERR_INVALID_ARGUMENT, "mt_index_select", NULL);
  mt_tensor_free(sel0);
  mt_tensor_free(idx0);
  /* Everything else works on. */
  MH_OK(mt_to_host(fine, got, sizeof got));
  for (int i = 0; i < 6; i++) ck_assert(got[i] == vals[i] + 1);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor_free(fine);
  mt_tensor_free(later);
  mt_tensor_free(sel);
  mt_tensor_free(cidx);
  mt_tensor_free(ca);
  mt_tensor_free(idx);
  mt_tensor_free(a);
}
END_TEST

/* The whole suite, or (only != NULL) just the ops whose flag is set. */
static Suite *conformance_suite(const unsigned char *only) {
  Suite *s = suite_create("modal_conformance");
  TCase *ops = tcase_create("ops");
  tcase_add_checked_fixture(ops, setup, teardown);
  tcase_set_timeout(ops, MH_TEST_TIMEOUT_S);
  if (only) {
    for (int op = 0; op < MTI_OP_COUNT; op++)
      if (only[op]) tcase_add_loop_test(ops, test_op, op, op + 1);
    suite_add_tcase(s, ops);
    return s;
  }
  tcase_add_loop_test(ops, test_op, 0, MTI_OP_COUNT);
  TCase *table = tcase_create("op_table");
  tcase_add_test(table, test_every_op_has_a_case);
  suite_add_tcase(s, table);
  suite_add_tcase(s, ops);

  TCase *api = tcase_create("api");
  tcase_add_checked_fixture(api, setup, teardown);
  tcase_set_timeout(api, MH_TEST_TIMEOUT_S);
  tcase_add_test(api, test_views);
  tcase_add_test(api, test_copy_into_modal_views);
  tcase_add_test(api, test_copy_broadcast_into_modal);
  tcase_add_test(api, test_to_between_devices);
  tcase_add_test(api, test_contiguous_and_clone);
  tcase_add_test(api, test_item);
  tcase_add_test(api, test_zero_d_with_null_shape);
  tcase_add_test(api, test_mixed_devices);
  tcase_add_test(api, test_deferred_index_error);
  suite_add_tcase(s, api);
  return s;
}

/* Marks the ops named in the comma-separated list; 0, or -1 for a name
 * that is not an op. */
static int select_ops(const char *list, unsigned char *only) {
  char name[64];
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
    int found = -1;
    for (int op = 0; op < MTI_OP_COUNT; op++)
      if (strcmp(op_names[op], name) == 0) found = op;
    if (found < 0) {
      fprintf(stderr, "test_modal_conformance: -o: %s is not an op of ops.def\n", name);
      return -1;
    }
    only[found] = 1;
    p += len + (p[len] == ',');
  }
  return 0;
}

/* test_modal_conformance [-o OP[,OP...]]...: every case, or only those of
 * the named ops (as ggml's test-backend-ops -o), e.g. -o topk,sort. */
int main(int argc, char **argv) {
  unsigned char only[MTI_OP_COUNT] = {0};
  int selected = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      if (select_ops(argv[++i], only)) return 2;
      selected = 1;
    } else {
      fprintf(stderr, "usage: %s [-o OP[,OP...]]...\n", argv[0]);
      return 2;
    }
  }
  return mh_run_suite(conformance_suite(selected ? only : NULL));
}
