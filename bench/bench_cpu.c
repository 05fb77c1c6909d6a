/*
 * bench_cpu.c - times a fixed suite of ops on the cpu device through the
 * public API, one JSON object per line on stdout.
 *
 * bench/bench_numpy.py runs the same cases with NumPy by the same method, and
 * bench/compare.py joins the two outputs (scripts/bench.sh does all three).
 *
 * Method: inputs are made once per case, outside the timed region. Each case
 * runs `warmup` times untimed, then is timed rep by rep until the time budget
 * is spent (at least MIN_REPS reps, at most MAX_REPS) or exactly --reps times.
 * A rep times the op together with freeing its result: allocating and
 * releasing the output is part of an op's cost, as it is in NumPy. The
 * reported figure is the median of the reps. Small-op cases (batch > 1) time
 * `batch` calls per rep, so that the clock's own cost does not count, and
 * report the time per call.
 *
 * Usage: mt_bench [--filter SUBSTR] [--reps N] [--warmup N] [--seconds S]
 *                 [--quick] [--list]
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  MIN_REPS = 5,     /* adaptive mode: enough reps for a meaningful median */
  MAX_REPS = 1000,  /* adaptive mode: bound on reps of very fast cases */
  INPUT_SEED = 1234 /* same inputs on every run */
};

typedef struct bench_options {
  const char *filter; /* run only cases whose name contains it; NULL: all */
  int reps;           /* exact number of timed reps; 0: adaptive */
  int warmup;         /* untimed runs before timing */
  double seconds;     /* adaptive mode: time budget per case */
  int quick;          /* scaled-down sizes, for smoke tests */
  int list;           /* print the case names and exit */
} bench_options;

/* Problem sizes: full size for measurements, small ones for --quick. */
typedef struct bench_sizes {
  int64_t flat;     /* elements of the 1-D cases (10M) */
  int64_t square;   /* side of the square 2-D cases (4096) */
  int64_t mm_small; /* matmul n for the smaller GEMM (1024) */
  int64_t mm_large; /* matmul n for the larger GEMM (2048) */
} bench_sizes;

typedef mt_tensor *(*bench_fn)(mt_tensor *const in[2]);

/* One case: input shapes (b is absent when ndim_b < 0), the op, and what
 * its result must look like (checked once, on the first warm-up result, so
 * that a broken op is never reported as a fast one). Rows are written with
 * CASE (below); the optional fields default to 0. */
typedef struct bench_case {
  const char *name;
  int ndim_a;
  int64_t shape_a[2];
  int ndim_b;
  int64_t shape_b[2];
  bench_fn run;
  mt_dtype out_dtype;
  int64_t out_numel;
  int batch;        /* calls per timed rep (small-op cases); 0 means 1 */
  mt_dtype in_dtype; /* dtype of the inputs; 0 (MT_BOOL) means float32 */
  int64_t index_range; /* > 0: input b is an int64 index, uniform in [0, index_range) */
} bench_case;

/* ------------------------------------------------------------ the ops */

static mt_tensor *run_add(mt_tensor *const in[2]) { return mt_add(in[0], in[1]); }
static mt_tensor *run_mul(mt_tensor *const in[2]) { return mt_mul(in[0], in[1]); }
static mt_tensor *run_exp(mt_tensor *const in[2]) { return mt_exp(in[0]); }
static mt_tensor *run_sum_all(mt_tensor *const in[2]) { return mt_sum(in[0], 0, NULL, 0); }
static mt_tensor *run_softmax(mt_tensor *const in[2]) { return mt_softmax(in[0], -1); }
static mt_tensor *run_matmul(mt_tensor *const in[2]) { return mt_matmul(in[0], in[1]); }
static mt_tensor *run_cast_f16(mt_tensor *const in[2]) { return mt_cast(in[0], MT_FLOAT16); }
static mt_tensor *run_cast_bf16(mt_tensor *const in[2]) { return mt_cast(in[0], MT_BFLOAT16); }
static mt_tensor *run_cast_f32(mt_tensor *const in[2]) { return mt_cast(in[0], MT_FLOAT32); }
static mt_tensor *run_argmax(mt_tensor *const in[2]) { return mt_argmax(in[0], 1, 0); }

static mt_tensor *run_gelu(mt_tensor *const in[2]) { return mt_gelu(in[0]); }
static mt_tensor *run_gelu_tanh(mt_tensor *const in[2]) { return mt_gelu_tanh(in[0]); }
static mt_tensor *run_silu(mt_tensor *const in[2]) { return mt_silu(in[0]); }
static mt_tensor *run_log_softmax(mt_tensor *const in[2]) { return mt_log_softmax(in[0], -1); }
static mt_tensor *run_gather_dim1(mt_tensor *const in[2]) { return mt_gather(in[0], 1, in[1]); }
static mt_tensor *run_embedding(mt_tensor *const in[2]) { return mt_embedding(in[0], in[1]); }
static mt_tensor *run_scatter_add_dim1(mt_tensor *const in[2]) {
  return mt_scatter_add(in[0], 1, in[1], in[0]);
}
static mt_tensor *run_slice(mt_tensor *const in[2]) { return mt_slice(in[0], 0, 2, 10, 1); }

static mt_tensor *run_sum_dim1(mt_tensor *const in[2]) {
  const int dims[1] = {1};
  return mt_sum(in[0], 1, dims, 0);
}

static mt_tensor *run_layer_norm(mt_tensor *const in[2]) {
  return mt_layer_norm(in[0], NULL, NULL, 1e-5);
}

/* Ops with two results: the second is freed with the first (both are the cost). */
static mt_tensor *first_of_pair(mt_status st, mt_tensor *const pair[2]) {
  if (st) return NULL;
  mt_tensor_free(pair[1]);
  return pair[0];
}

static mt_tensor *run_sort(mt_tensor *const in[2]) {
  mt_tensor *out[2];
  mt_status st = mt_sort(in[0], -1, 0, &out[0], &out[1]);
  return first_of_pair(st, out);
}

static mt_tensor *run_argsort(mt_tensor *const in[2]) { return mt_argsort(in[0], -1, 0); }

static mt_tensor *run_topk10(mt_tensor *const in[2]) {
  mt_tensor *out[2];
  mt_status st = mt_topk(in[0], 10, -1, 1, &out[0], &out[1]);
  return first_of_pair(st, out);
}

static mt_tensor *run_max_dim1(mt_tensor *const in[2]) {
  mt_tensor *out[2];
  mt_status st = mt_max_dim(in[0], 1, 0, &out[0], &out[1]);
  return first_of_pair(st, out);
}

static mt_tensor *run_cumsum_dim1(mt_tensor *const in[2]) { return mt_cumsum(in[0], 1); }

static mt_tensor *run_var_dim1(mt_tensor *const in[2]) {
  const int dims[1] = {1};
  return mt_var(in[0], 1, dims, 1, 0);
}

static mt_tensor *run_logsumexp_dim1(mt_tensor *const in[2]) {
  const int dims[1] = {1};
  return mt_logsumexp(in[0], 1, dims, 0);
}

/* The transposed view is free; the cost measured is the strided copy. */
static mt_tensor *run_transpose_contiguous(mt_tensor *const in[2]) {
  mt_tensor *view = mt_transpose(in[0], 0, 1);
  if (!view) return NULL;
  mt_tensor *copy = mt_contiguous(view);
  mt_tensor_free(view);
  return copy;
}

/* ------------------------------------------------------------ the suite */

/* A row: name, input a's ndim and shape, b's (ndim -1: none), the op, the
 * result's dtype and element count, then optional fields (.batch, .in_dtype,
 * .index_range).
 * scripts/bench.sh compares every row with NumPy and PyTorch: a new row gets
 * its lines in bench/bench_numpy.py and bench/bench_torch_cpu.py by name. */
#define CASE(name_, nda, sa, ndb, sb, fn, odt, onumel, ...)                                  \
  {.name = name_, .ndim_a = nda, .shape_a = {sa}, .ndim_b = ndb, .shape_b = {sb}, .run = fn,  \
   .out_dtype = odt, .out_numel = onumel, __VA_ARGS__}
#define SHAPE(...) __VA_ARGS__

enum { CASE_COUNT = 51, SMALL_BATCH = 1000 };

/* Rows of the transformer-sized kernels: [rows, cols] as a BERT-base layer
 * at batch 8 x 49 tokens (hidden 384, MLP 1536, attention rows of 49). */
enum { TF_ROWS = 392, TF_HIDDEN = 384, TF_MLP = 1536, ATT_ROWS = 8 * 6 * 49, ATT_COLS = 49,
       VOCAB = 30522 };

static void make_cases(const bench_sizes *s, bench_case cases[CASE_COUNT]) {
  const int64_t n = s->flat, sq = s->square, m1 = s->mm_small, m2 = s->mm_large;
  const int64_t mlp = TF_ROWS * TF_MLP, att = ATT_ROWS * ATT_COLS, hid = TF_ROWS * TF_HIDDEN;
  const int64_t n_sort = n / 10, narrow = sq / 16, mid = sq / 4; /* 1M, 256, 1024 */
  const bench_case table[CASE_COUNT] = {
      CASE("add_f32_10M", 1, n, 1, n, run_add, MT_FLOAT32, n),
      CASE("mul_bcast_4096x4096_by_4096", 2, SHAPE(sq, sq), 1, sq, run_mul, MT_FLOAT32, sq * sq),
      CASE("exp_f32_10M", 1, n, -1, 0, run_exp, MT_FLOAT32, n),
      CASE("sum_all_f32_10M", 1, n, -1, 0, run_sum_all, MT_FLOAT32, 1),
      CASE("sum_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_sum_dim1, MT_FLOAT32, sq),
      CASE("softmax_lastdim_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_softmax, MT_FLOAT32, sq * sq),
      CASE("layer_norm_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_layer_norm, MT_FLOAT32, sq * sq),
      CASE("matmul_f32_1024", 2, SHAPE(m1, m1), 2, SHAPE(m1, m1), run_matmul, MT_FLOAT32, m1 * m1),
      CASE("matmul_f32_2048", 2, SHAPE(m2, m2), 2, SHAPE(m2, m2), run_matmul, MT_FLOAT32, m2 * m2),
      CASE("transpose_contiguous_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_transpose_contiguous,
           MT_FLOAT32, sq * sq),
      CASE("cast_f32_to_f16_10M", 1, n, -1, 0, run_cast_f16, MT_FLOAT16, n),
      CASE("argmax_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_argmax, MT_INT64, sq),
      /* sorting, selection, scans and row reductions */
      CASE("sort_f32_1M", 1, n_sort, -1, 0, run_sort, MT_FLOAT32, n_sort),
      CASE("sort_lastdim_4096x256", 2, SHAPE(sq, narrow), -1, 0, run_sort, MT_FLOAT32, sq * narrow),
      CASE("argsort_f32_1M", 1, n_sort, -1, 0, run_argsort, MT_INT64, n_sort),
      CASE("topk10_lastdim_4096x1024", 2, SHAPE(sq, mid), -1, 0, run_topk10, MT_FLOAT32, sq * 10),
      CASE("topk10_f32_10M", 1, n, -1, 0, run_topk10, MT_FLOAT32, 10),
      CASE("cumsum_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_cumsum_dim1, MT_FLOAT32, sq * sq),
      CASE("var_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_var_dim1, MT_FLOAT32, sq),
      CASE("logsumexp_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_logsumexp_dim1, MT_FLOAT32,
           sq),
      CASE("max_dim1_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_max_dim1, MT_FLOAT32, sq),
      /* indexing: index b uniform over the indexed dim (BERT-base's vocabulary
       * for the embedding, 8 x 392 tokens) */
      CASE("gather_dim1_4096x4096_by_4096x1024", 2, SHAPE(sq, sq), 2, SHAPE(sq, mid),
           run_gather_dim1, MT_FLOAT32, sq * mid, .index_range = sq),
      CASE("scatter_add_dim1_4096x1024", 2, SHAPE(sq, mid), 2, SHAPE(sq, mid),
           run_scatter_add_dim1, MT_FLOAT32, sq * mid, .index_range = mid),
      CASE("embedding_30522x384_by_3136", 2, SHAPE(VOCAB, TF_HIDDEN), 1, 8 * TF_ROWS,
           run_embedding, MT_FLOAT32, 8 * TF_ROWS * TF_HIDDEN, .index_range = VOCAB),
      /* transformer kernels */
      CASE("gelu_392x1536", 2, SHAPE(TF_ROWS, TF_MLP), -1, 0, run_gelu, MT_FLOAT32, mlp),
      CASE("gelu_tanh_392x1536", 2, SHAPE(TF_ROWS, TF_MLP), -1, 0, run_gelu_tanh, MT_FLOAT32, mlp),
      CASE("silu_392x1536", 2, SHAPE(TF_ROWS, TF_MLP), -1, 0, run_silu, MT_FLOAT32, mlp),
      CASE("gelu_f32_10M", 1, n, -1, 0, run_gelu, MT_FLOAT32, n),
      CASE("softmax_2352x49", 2, SHAPE(ATT_ROWS, ATT_COLS), -1, 0, run_softmax, MT_FLOAT32, att),
      CASE("log_softmax_2352x49", 2, SHAPE(ATT_ROWS, ATT_COLS), -1, 0, run_log_softmax,
           MT_FLOAT32, att),
      CASE("log_softmax_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_log_softmax, MT_FLOAT32, sq * sq),
      CASE("layer_norm_392x384", 2, SHAPE(TF_ROWS, TF_HIDDEN), -1, 0, run_layer_norm, MT_FLOAT32,
           hid),
      /* half precision: no slower than float32 */
      CASE("add_f16_10M", 1, n, 1, n, run_add, MT_FLOAT16, n, .in_dtype = MT_FLOAT16),
      CASE("add_bf16_10M", 1, n, 1, n, run_add, MT_BFLOAT16, n, .in_dtype = MT_BFLOAT16),
      CASE("exp_f16_10M", 1, n, -1, 0, run_exp, MT_FLOAT16, n, .in_dtype = MT_FLOAT16),
      CASE("sum_all_f16_10M", 1, n, -1, 0, run_sum_all, MT_FLOAT16, 1, .in_dtype = MT_FLOAT16),
      CASE("sum_all_bf16_10M", 1, n, -1, 0, run_sum_all, MT_BFLOAT16, 1, .in_dtype = MT_BFLOAT16),
      CASE("gelu_bf16_392x1536", 2, SHAPE(TF_ROWS, TF_MLP), -1, 0, run_gelu, MT_BFLOAT16, mlp,
           .in_dtype = MT_BFLOAT16),
      CASE("mul_bf16_10M", 1, n, 1, n, run_mul, MT_BFLOAT16, n, .in_dtype = MT_BFLOAT16),
      CASE("exp_bf16_10M", 1, n, -1, 0, run_exp, MT_BFLOAT16, n, .in_dtype = MT_BFLOAT16),
      CASE("cast_f32_to_bf16_10M", 1, n, -1, 0, run_cast_bf16, MT_BFLOAT16, n),
      CASE("cast_f16_to_f32_10M", 1, n, -1, 0, run_cast_f32, MT_FLOAT32, n, .in_dtype = MT_FLOAT16),
      CASE("sum_dim1_f16_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_sum_dim1, MT_FLOAT16, sq,
           .in_dtype = MT_FLOAT16),
      CASE("sum_dim1_bf16_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_sum_dim1, MT_BFLOAT16, sq,
           .in_dtype = MT_BFLOAT16),
      CASE("softmax_lastdim_bf16_4096x4096", 2, SHAPE(sq, sq), -1, 0, run_softmax, MT_BFLOAT16,
           sq * sq, .in_dtype = MT_BFLOAT16),
      CASE("matmul_f16_1024", 2, SHAPE(m1, m1), 2, SHAPE(m1, m1), run_matmul, MT_FLOAT16, m1 * m1,
           .in_dtype = MT_FLOAT16),
      CASE("matmul_bf16_1024", 2, SHAPE(m1, m1), 2, SHAPE(m1, m1), run_matmul, MT_BFLOAT16,
           m1 * m1, .in_dtype = MT_BFLOAT16),
      /* small-op overhead: create, compute, free */
      CASE("small_add_f32_16", 1, 16, 1, 16, run_add, MT_FLOAT32, 16, .batch = SMALL_BATCH),
      CASE("small_view_slice_16", 1, 16, -1, 0, run_slice, MT_FLOAT32, 8, .batch = SMALL_BATCH),
      CASE("small_sum_f32_16", 1, 16, -1, 0, run_sum_all, MT_FLOAT32, 1, .batch = SMALL_BATCH),
      CASE("small_matmul_f32_8", 2, SHAPE(8, 8), 2, SHAPE(8, 8), run_matmul, MT_FLOAT32, 64,
           .batch = SMALL_BATCH),
  };
  memcpy(cases, table, sizeof table);
}

/* ------------------------------------------------------------ timing */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *pa, const void *pb) {
  const double a = *(const double *)pa, b = *(const double *)pb;
  return (a > b) - (a < b);
}

static double median_of(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare_doubles);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && used < cap; d++)
    used += (size_t)snprintf(buf + used, cap - used, d ? ",%lld" : "%lld", (long long)shape[d]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
}

static int report_api_failure(const bench_case *c, const char *what) {
  fprintf(stderr, "mt_bench: %s: %s failed: %s (%s)\n", c->name, what, mt_last_error(),
          mt_status_name(mt_last_status()));
  return -1;
}

/* Runs the op once untimed; the first result is checked against the case. */
static int warm_up(const bench_case *c, mt_tensor *const in[2], int check) {
  mt_tensor *out = c->run(in);
  if (!out) return report_api_failure(c, "op");
  int ok = 1;
  if (check) {
    ok = mt_tensor_dtype(out) == c->out_dtype && mt_numel(out) == c->out_numel &&
         mt_is_contiguous(out);
    if (!ok)
      fprintf(stderr, "mt_bench: %s: result is %s with %lld elements, expected %s with %lld\n",
              c->name, mt_dtype_name(mt_tensor_dtype(out)), (long long)mt_numel(out),
              mt_dtype_name(c->out_dtype), (long long)c->out_numel);
  }
  mt_tensor_free(out);
  return ok ? 0 : -1;
}

/* Times reps of the op (call + free of its result, `batch` times per rep);
 * fills the median and the minimum per call in milliseconds and the number
 * of reps. */
static int time_case(const bench_case *c, mt_tensor *const in[2], const bench_options *o,
                     double *median_ms, double *min_ms, int *reps_done) {
  const int cap = o->reps > 0 ? o->reps : MAX_REPS;
  double *samples = malloc((size_t)cap * sizeof *samples);
  if (!samples) {
    fprintf(stderr, "mt_bench: %s: out of memory for %d samples\n", c->name, cap);
    return -1;
  }
  const int batch = c->batch > 1 ? c->batch : 1;
  int n = 0;
  const double start = now_seconds();
  while (n < cap) {
    int ok = 1;
    const double t0 = now_seconds();
    for (int b = 0; b < batch; b++) {
      mt_tensor *out = c->run(in);
      ok &= out != NULL;
      mt_tensor_free(out);
    }
    const double t1 = now_seconds();
    if (!ok) {
      free(samples);
      return report_api_failure(c, "op");
    }
    samples[n++] = (t1 - t0) * 1e3 / batch;
    if (o->reps == 0 && n >= MIN_REPS && t1 - start >= o->seconds) break;
  }
  *reps_done = n;
  *median_ms = median_of(samples, n);
  *min_ms = samples[0]; /* sorted by median_of */
  free(samples);
  return 0;
}

static mt_tensor *make_input(int ndim, const int64_t *shape, mt_dtype dtype, uint64_t seed) {
  const mt_device cpu = {MT_DEVICE_CPU, 0};
  return mt_randn(ndim, shape, dtype == MT_BOOL ? MT_FLOAT32 : dtype, cpu, seed);
}

/* Makes the inputs, warms up, times, prints one JSON line. */
static int run_case(const bench_case *c, const bench_options *o) {
  mt_tensor *in[2] = {NULL, NULL};
  int rc = -1;
  in[0] = make_input(c->ndim_a, c->shape_a, c->in_dtype, INPUT_SEED);
  if (!in[0]) {
    report_api_failure(c, "mt_randn (input a)");
    goto done;
  }
  if (c->ndim_b >= 0) {
    const mt_device cpu = {MT_DEVICE_CPU, 0};
    in[1] = c->index_range > 0 ? mt_randint(0, c->index_range, c->ndim_b, c->shape_b, MT_INT64,
                                            cpu, INPUT_SEED + 1)
                               : make_input(c->ndim_b, c->shape_b, c->in_dtype, INPUT_SEED + 1);
    if (!in[1]) {
      report_api_failure(c, "mt_randn (input b)");
      goto done;
    }
  }
  for (int i = 0; i < o->warmup || i == 0; i++)
    if (warm_up(c, in, i == 0) != 0) goto done;

  double median_ms, min_ms;
  int reps;
  if (time_case(c, in, o, &median_ms, &min_ms, &reps) != 0) goto done;

  char shape[96], shape_b[64] = "";
  shape_text(shape, sizeof shape, c->ndim_a, c->shape_a);
  if (c->ndim_b >= 0) {
    shape_text(shape_b, sizeof shape_b, c->ndim_b, c->shape_b);
    strncat(shape, "x", sizeof shape - strlen(shape) - 1);
    strncat(shape, shape_b, sizeof shape - strlen(shape) - 1);
  }
  printf("{\"case\": \"%s\", \"shape\": \"%s\", \"median_ms\": %.6f, \"min_ms\": %.6f, "
         "\"reps\": %d}\n",
         c->name, shape, median_ms, min_ms, reps);
  fflush(stdout);
  rc = 0;
done:
  mt_tensor_free(in[0]);
  mt_tensor_free(in[1]);
  return rc;
}

/* ------------------------------------------------------------ command line */

static void usage(FILE *f) {
  fprintf(f,
          "usage: mt_bench [--filter SUBSTR] [--reps N] [--warmup N] [--seconds S] [--quick] "
          "[--list]\n"
          "  --filter SUBSTR  run only the cases whose name contains SUBSTR\n"
          "  --reps N         exactly N timed reps per case (default: adaptive, at least %d,\n"
          "                   until --seconds have passed, at most %d)\n"
          "  --warmup N       untimed runs before timing (default 2; the first always runs)\n"
          "  --seconds S      adaptive time budget per case (default 0.5)\n"
          "  --quick          scaled-down sizes, for smoke tests\n"
          "  --list           print the case names and exit\n",
          MIN_REPS, MAX_REPS);
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  const long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, bench_options *o) {
  *o = (bench_options){NULL, 0, 2, 0.5, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    long v;
    if (!strcmp(a, "--quick")) {
      o->quick = 1;
    } else if (!strcmp(a, "--list")) {
      o->list = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (val && !strcmp(a, "--filter")) {
      o->filter = val;
      i++;
    } else if (val && !strcmp(a, "--reps") && parse_long(val, 1, 1000000, &v) == 0) {
      o->reps = (int)v;
      i++;
    } else if (val && !strcmp(a, "--warmup") && parse_long(val, 0, 1000, &v) == 0) {
      o->warmup = (int)v;
      i++;
    } else if (val && !strcmp(a, "--seconds")) {
      char *end;
      o->seconds = strtod(val, &end);
      if (end == val || *end || !(o->seconds >= 0.0 && o->seconds <= 3600.0)) {
        fprintf(stderr, "mt_bench: --seconds: expected 0..3600, got '%s'\n", val);
        return -1;
      }
      i++;
    } else {
      fprintf(stderr, "mt_bench: bad argument '%s%s%s'\n", a, val ? " " : "", val ? val : "");
      usage(stderr);
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  bench_options opt;
  if (parse_args(argc, argv, &opt) != 0) return 2;

  const bench_sizes full = {10 * 1000 * 1000, 4096, 1024, 2048};
  const bench_sizes quick = {100 * 1000, 256, 128, 256};
  bench_case cases[CASE_COUNT];
  make_cases(opt.quick ? &quick : &full, cases);

  if (opt.list) {
    for (int i = 0; i < CASE_COUNT; i++) printf("%s\n", cases[i].name);
    return 0;
  }

  int selected[CASE_COUNT], nselected = 0;
  for (int i = 0; i < CASE_COUNT; i++)
    if (!opt.filter || strstr(cases[i].name, opt.filter)) selected[nselected++] = i;
  if (nselected == 0) {
    fprintf(stderr, "mt_bench: no case matches --filter '%s' (see --list)\n", opt.filter);
    return 2;
  }

  printf("{\"meta\": {\"impl\": \"modaltensor\", \"version\": \"%s\", \"quick\": %s}}\n",
         mt_version(), opt.quick ? "true" : "false");
  int failures = 0;
  for (int i = 0; i < nselected; i++)
    if (run_case(&cases[selected[i]], &opt) != 0) failures++;
  return failures ? 1 : 0;
}
