/*
 * sample.c - eye, linspace, randint (creation) and multinomial, dropout
 * (sampling), on the cpu.
 *
 * The random ones follow the stream layouts of core/philox.h exactly, so
 * the cuda worker gives the same numbers. Values computed in float64 or
 * int64 go to the output dtype through mti_cpu_convert, chunk by chunk, so
 * the conversion rules are mt_cast's.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/philox.h"
#include "cpu/cpu_kernels.h"

/* Elements per chunk of the creation kernels (a multiple of 4). */
#define SAMPLE_CHUNK 4096

/* Converts n values at buf (dtype from) into out's flat elements [i0, i0 + n). */
static void store_chunk(const void *buf, mt_dtype from, const mti_view *out, int64_t i0,
                        int64_t n) {
  mti_view src = {(void *)buf, from, 1, {n}, {1}};
  mti_view dst = {(char *)out->data + i0 * (int64_t)mt_dtype_size(out->dtype), out->dtype, 1,
                  {n}, {1}};
  mti_cpu_convert(&src, &dst);
}

/* ------------------------------------------------------------ eye */

mt_status mti_cpu_eye(const mti_view *out) {
  int64_t n = out->shape[0], m = out->shape[1], es = (int64_t)mt_dtype_size(out->dtype);
  memset(out->data, 0, (size_t)(n * m * es));
  unsigned char one[8];
  mti_store_double(one, out->dtype, 1.0);
  for (int64_t i = 0; i < n && i < m; i++)
    memcpy((char *)out->data + (i * m + i) * es, one, (size_t)es);
  return MT_OK;
}

/* ------------------------------------------------------------ linspace */

/* As PyTorch: the first half steps up from start, the second half down
 * from end, so both ends are exact; one step is start. */
static double linspace_at(double start, double end, int64_t steps, double step, int64_t i) {
  return i < steps / 2 || steps == 1 ? start + step * (double)i : end - step * (double)(steps - 1 - i);
}

mt_status mti_cpu_linspace(const mti_attrs *at, const mti_view *out) {
  int64_t steps = out->shape[0];
  double step = steps > 1 ? (at->s1 - at->s0) / (double)(steps - 1) : 0.0;
  int64_t chunks = (steps + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
#pragma omp parallel for schedule(static) if (steps >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t c = 0; c < chunks; c++) {
    double buf[SAMPLE_CHUNK];
    int64_t i0 = c * SAMPLE_CHUNK, n = steps - i0 < SAMPLE_CHUNK ? steps - i0 : SAMPLE_CHUNK;
    for (int64_t i = 0; i < n; i++) buf[i] = linspace_at(at->s0, at->s1, steps, step, i0 + i);
    store_chunk(buf, MT_FLOAT64, out, i0, n);
  }
  return MT_OK;
}

/* ------------------------------------------------------------ randint */

mt_status mti_cpu_randint(const mti_attrs *at, const mti_view *out) {
  int64_t numel = mti_shape_numel(out->ndim, out->shape);
  uint64_t low = (uint64_t)at->ints[0], range = (uint64_t)at->ints[1] - low;
  int64_t chunks = (numel + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
#pragma omp parallel for schedule(static) if (numel >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t c = 0; c < chunks; c++) {
    int64_t buf[SAMPLE_CHUNK];
    int64_t i0 = c * SAMPLE_CHUNK, n = numel - i0 < SAMPLE_CHUNK ? numel - i0 : SAMPLE_CHUNK;
    for (int64_t i = 0; i < n; i += 2) { /* chunks start on even elements: whole blocks */
      mti_philox_words w = mti_philox_block(at->seed, MTI_PHILOX_STREAM_RANDINT,
                                            (uint64_t)(i0 + i) / 2);
      for (int j = 0; j < 2 && i + j < n; j++) {
        uint64_t x = (uint64_t)w.w[2 * j + 1] << 32 | w.w[2 * j];
        buf[i + j] = (int64_t)(low + x % range);
      }
    }
    store_chunk(buf, MT_INT64, out, i0, n);
  }
  return MT_OK;
}

/* ------------------------------------------------------------ dropout */

/* One dtype's loop over the flat elements [i0, i1) of out, in place: x *
 * (kept ? scale : 0), as PyTorch's input * mask (NaN stays NaN). */
#define DROPOUT_LOOP(T, LOAD, STORE, CT)                                          \
  do {                                                                            \
    T *d = (T *)out->data;                                                        \
    for (int64_t b = i0 / 4; b * 4 < i1; b++) {                                   \
      mti_philox_words w = mti_philox_block(at->seed, MTI_PHILOX_STREAM_DROPOUT,  \
                                            (uint64_t)b);                         \
      for (int j = 0; j < 4 && b * 4 + j < i1; j++) {                             \
        CT keep = (double)mti_philox_uniform_f32(w.w[j]) >= p ? (CT)scale : (CT)0; \
        d[b * 4 + j] = STORE(LOAD(d[b * 4 + j]) * keep);                          \
      }                                                                           \
    }                                                                             \
  } while (0)

#define DROPOUT_SAME(x) (x)

mt_status mti_cpu_dropout(const mti_view *a, const mti_attrs *at, const mti_view *out) {
  mt_status s = mti_cpu_convert(a, out);
  if (s) return s;
  int64_t numel = mti_shape_numel(out->ndim, out->shape);
  double p = at->s0, scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  int64_t chunks = (numel + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
#pragma omp parallel for schedule(static) if (numel >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t c = 0; c < chunks; c++) {
    int64_t i0 = c * SAMPLE_CHUNK, i1 = numel - i0 < SAMPLE_CHUNK ? numel : i0 + SAMPLE_CHUNK;
    switch (out->dtype) {
    case MT_FLOAT64: DROPOUT_LOOP(double, DROPOUT_SAME, DROPOUT_SAME, double); break;
    case MT_FLOAT16: DROPOUT_LOOP(uint16_t, mti_f16_to_f32, mti_f32_to_f16, float); break;
    case MT_BFLOAT16: DROPOUT_LOOP(uint16_t, mti_bf16_to_f32, mti_f32_to_bf16, float); break;
    default: DROPOUT_LOOP(float, DROPOUT_SAME, DROPOUT_SAME, float); break;
    }
  }
  return MT_OK;
}

/* ------------------------------------------------------------ multinomial */

/* Why a row of probabilities cannot be sampled. */
enum { ROW_OK, ROW_BAD_ENTRY, ROW_ZERO_SUM, ROW_TOO_FEW };

static int row_check(const double *p, int64_t cats, int64_t n, int replacement) {
  double total = 0;
  int64_t positive = 0;
  for (int64_t c = 0; c < cats; c++) {
    if (!(p[c] >= 0) || isinf(p[c])) return ROW_BAD_ENTRY;
    total += p[c];
    positive += p[c] > 0;
  }
  if (!(total > 0) || isinf(total)) return total > 0 ? ROW_BAD_ENTRY : ROW_ZERO_SUM;
  return !replacement && positive < n ? ROW_TOO_FEW : ROW_OK;
}

/* With replacement: p becomes the running sums, then each sample is the
 * first category whose sum exceeds u * total (binary search). */
static void draw_with_replacement(double *p, int64_t cats, int64_t n, uint64_t seed, int64_t row,
                                  int64_t *out) {
  for (int64_t c = 1; c < cats; c++) p[c] += p[c - 1];
  double total = p[cats - 1];
  int64_t last = cats - 1;
  while (last > 0 && p[last] == p[last - 1]) last--; /* the last positive category */
  for (int64_t s = 0; s < n; s++) {
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_MULTINOMIAL,
                                          (uint64_t)(row * n + s));
    double target = mti_philox_uniform_f64(w.w[0], w.w[1]) * total;
    int64_t lo = 0, hi = cats; /* first c with p[c] > target */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (p[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    out[s] = lo < cats ? lo : last;
  }
}

typedef struct race_key {
  double key;
  int64_t cat;
} race_key;

static int race_cmp(const void *x, const void *y) {
  const race_key *a = x, *b = y;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  return a->cat < b->cat ? -1 : a->cat > b->cat;
}

/* Without replacement: the n smallest keys -log(u) / p (philox.h). */
static int draw_without_replacement(const double *p, int64_t cats, int64_t n, uint64_t seed,
                                    int64_t row, int64_t *out) {
  race_key *keys = malloc(sizeof *keys * (size_t)cats);
  if (!keys) return 0;
  for (int64_t c = 0; c < cats; c++) {
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_MULTINOMIAL,
                                          (uint64_t)(row * cats + c));
    double u = mti_philox_uniform_f64(w.w[0], w.w[1]) + 0x1p-53;
    keys[c].key = p[c] > 0 ? -mti_philox_log(u) / p[c] : INFINITY;
    keys[c].cat = c;
  }
  qsort(keys, (size_t)cats, sizeof *keys, race_cmp);
  for (int64_t s = 0; s < n; s++) out[s] = keys[s].cat;
  free(keys);
  return 1;
}

static mt_status row_error(int why, int64_t row, int64_t n) {
  const char *fn = "mt_multinomial";
  if (why == ROW_BAD_ENTRY)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: probs: row %lld has a negative, infinite or NaN entry", fn,
                     (long long)row);
  if (why == ROW_ZERO_SUM)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: probs: row %lld sums to 0", fn, (long long)row);
  return mti_error(MT_ERR_INVALID_ARGUMENT,
                   "%s: probs: row %lld has fewer non-zero categories than num_samples %lld "
                   "(without replacement)", fn, (long long)row, (long long)n);
}

/* Rows in parallel on a float64 copy of probs; the first bad row (in row
 * order) is reported. */
mt_status mti_cpu_multinomial(const mti_view *probs, const mti_attrs *at, const mti_view *out) {
  int64_t cats = probs->shape[probs->ndim - 1], rows = probs->ndim == 2 ? probs->shape[0] : 1;
  int64_t n = at->ints[0];
  int replacement = (at->flags & MTI_FLAG_REPLACEMENT) != 0;
  size_t bytes = sizeof(double) * (size_t)(rows * cats);
  mti_view p = {malloc(bytes ? bytes : 1), MT_FLOAT64, probs->ndim, {0}, {0}};
  if (!p.data) return mti_error_oom("mt_multinomial", bytes);
  mti_dims_copy(p.shape, probs->shape, probs->ndim);
  mti_shape_contiguous_strides(p.ndim, p.shape, p.strides);
  mt_status s = mti_cpu_convert(probs, &p);
  atomic_llong bad_row = rows;
  atomic_int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) if (!s && rows * cats >= MTI_CPU_PARALLEL_MIN / 8) num_threads(mti_cpu_threads())
  for (int64_t r = 0; r < rows; r++) {
    double *row = (double *)p.data + r * cats;
    int64_t *o = (int64_t *)out->data + r * n;
    if (s || row_check(row, cats, n, replacement) != ROW_OK) {
      long long cur = atomic_load(&bad_row);
      while (r < cur && !atomic_compare_exchange_weak(&bad_row, &cur, r)) {}
    } else if (replacement) {
      draw_with_replacement(row, cats, n, at->seed, r, o);
    } else if (!draw_without_replacement(row, cats, n, at->seed, r, o)) {
      atomic_store(&oom, 1);
    }
  }
  int64_t br = atomic_load(&bad_row);
  if (!s && br < rows) s = row_error(row_check((double *)p.data + br * cats, cats, n, replacement), br, n);
  if (!s && atomic_load(&oom)) s = mti_error_oom("mt_multinomial", sizeof(race_key) * (size_t)cats);
  free(p.data);
  return s;
}
