/*
 * scan_sort.c - cumsum, cumprod, sort, argsort and topk.
 *
 * Scans see their input as [outer, r, inner] on contiguous memory (staged
 * in the kernel's dtype when it is not so already): inner == 1 is a
 * running sum down each row, inner > 1 adds row k - 1 to row k, which is
 * SIMD across inner. Floats accumulate in double, integers and bool in
 * int64 (wrapping, in uint64).
 *
 * Sorting works on rows along dim (rows.h). Each element becomes an
 * unsigned 64-bit key whose order is the value order (floats: sign flipped
 * into a biased form, -0 made +0, every NaN the largest key; descending:
 * the complement), so one stable LSD radix sort (8-bit digits, digits
 * that do not vary in the row skipped) serves every dtype; short rows use
 * insertion sort. Values are then gathered by index from the row. topk
 * with k small beside the row selects instead (heap_select): a bound from
 * the minima of groups of 16 keys leaves only a few candidates for a heap
 * of the k best, and groups that cannot beat the heap are skipped with a
 * vector compare; otherwise it sorts the row. Rows are spread over OpenMP
 * threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cpu_kernels.h"
#include "stop.h"
#include "cpu_simd.h"
#include "rows.h"

#define SCAN_TILE 512       /* columns a scan of inner > 1 carries at once */
#define INSERTION_MAX 32    /* rows up to this long are insertion-sorted */
#define TOPK_HEAP_RATIO 16  /* topk uses a heap when k * this <= the row's length */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Rows per task: tasks of at least 16K elements are worth scheduling. */
static int64_t rows_per_task(int64_t n) { return n >= 16384 ? 1 : 16384 / (n ? n : 1); }

/* ------------------------------------------------------------ scans */

/*
 * Scan kernels: input type T, accumulator A, result type R (prod: a product).
 *  _rows  nrows rows of n: y[k] = x[0] op ... op x[k]
 *  _cols  r rows of w columns (row stride ld): y[k][c] = y[k-1][c] op x[k][c]
 */
#define SCAN_KERNELS(S, T, A, R)                                                             \
  static void scan_rows_##S(const T *x, R *y, int64_t nrows, int64_t n, int prod) {         \
    for (int64_t row = 0; row < nrows; row++, x += n, y += n) {                             \
      A acc = prod ? (A)1 : (A)0;                                                           \
      if (prod)                                                                             \
        for (int64_t k = 0; k < n; k++) y[k] = (R)(acc *= (A)x[k]);                         \
      else                                                                                  \
        for (int64_t k = 0; k < n; k++) y[k] = (R)(acc += (A)x[k]);                         \
    }                                                                                       \
  }                                                                                         \
  MTI_SIMD_CLONES static void scan_cols_##S(const T *x, R *y, int64_t r, int64_t w,        \
                                            int64_t ld, int prod) {                         \
    A acc[SCAN_TILE];                                                                       \
    for (int64_t c = 0; c < w; c++) acc[c] = prod ? (A)1 : (A)0;                            \
    for (int64_t k = 0; k < r; k++, x += ld, y += ld) {                                     \
      if (prod)                                                                             \
        for (int64_t c = 0; c < w; c++) y[c] = (R)(acc[c] *= (A)x[c]);                      \
      else                                                                                  \
        for (int64_t c = 0; c < w; c++) y[c] = (R)(acc[c] += (A)x[c]);                      \
    }                                                                                       \
  }

SCAN_KERNELS(f32, float, double, float)
SCAN_KERNELS(f64, double, double, double)
SCAN_KERNELS(i64, int64_t, uint64_t, int64_t)

/* The dtype a scan kernel reads and writes for an out dtype. */
static mt_dtype scan_dtype(mt_dtype out) {
  return out == MT_FLOAT64 || out == MT_INT64 ? out : MT_FLOAT32;
}

static void scan_task(mt_dtype kt, const char *x, char *y, int64_t nrows, int64_t n, int64_t r,
                      int64_t w, int64_t ld, int prod) {
  if (kt == MT_FLOAT64)
    w ? scan_cols_f64((const double *)x, (double *)y, r, w, ld, prod)
      : scan_rows_f64((const double *)x, (double *)y, nrows, n, prod);
  else if (kt == MT_INT64)
    w ? scan_cols_i64((const int64_t *)x, (int64_t *)y, r, w, ld, prod)
      : scan_rows_i64((const int64_t *)x, (int64_t *)y, nrows, n, prod);
  else
    w ? scan_cols_f32((const float *)x, (float *)y, r, w, ld, prod)
      : scan_rows_f32((const float *)x, (float *)y, nrows, n, prod);
}

mt_status mti_cpu_scan(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = mti_op_get((int)op)->fn;
  int64_t outer, r, inner;
  mti_shape_split(in->ndim, in->shape, at->dim, &outer, &r, &inner);
  if (outer * r * inner == 0) return MT_OK;
  mt_dtype kt = scan_dtype(out->dtype);
  mti_rows x, y;
  mt_status s = mti_rows_read(fn, in, 0, kt, &x);
  if (s) return s;
  if ((s = mti_rows_for_out(fn, out, 0, kt, &y))) {
    mti_rows_free(&x);
    return s;
  }
  int prod = op == MTI_OP_CUMPROD, par = outer * r * inner >= MTI_CPU_PARALLEL_MIN;
  size_t esz = mt_dtype_size(kt);
  if (inner == 1) {
    int64_t per = rows_per_task(r), ntask = (outer + per - 1) / per;
#pragma omp parallel for schedule(dynamic) if (par && ntask > 1) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      size_t at_row = (size_t)(t * per * r) * esz;
      scan_task(kt, x.data + at_row, y.data + at_row, min64(per, outer - t * per), r, 0, 0, 0,
                prod);
    }
  } else {
    int64_t ntile = (inner + SCAN_TILE - 1) / SCAN_TILE, ntask = outer * ntile;
#pragma omp parallel for schedule(dynamic) if (par && ntask > 1) num_threads(mti_cpu_threads())
    for (int64_t q = 0; q < ntask; q++) {
      int64_t o = q / ntile, c = q % ntile * SCAN_TILE;
      size_t at_col = (size_t)(o * r * inner + c) * esz;
      scan_task(kt, x.data + at_col, y.data + at_col, 0, 0, r, min64(SCAN_TILE, inner - c), inner,
                prod);
    }
  }
  mti_rows_free(&x);
  return mti_rows_write_back(&y, out, 0);
}

/* ------------------------------------------------------------ sort keys */

/* An IEEE bit pattern of `bits` bits as an order-preserving key: NaN (any
 * sign, any payload) is the largest, -0 equals +0. Written with selects,
 * not branches, so that row_keys vectorises and random signs cost no
 * mispredictions. */
static inline uint64_t float_key(uint64_t u, int bits, int is_nan) {
  uint64_t sign = (uint64_t)1 << (bits - 1), all = sign | (sign - 1);
  uint64_t negative = (0 - (u >> (bits - 1) & 1)) & all;
  uint64_t key = (u & (sign - 1)) == 0 ? sign : u ^ (negative | sign);
  return is_nan ? all : key;
}

/* keys[i] of the n elements of row (dtype dt), complemented when
 * descending; *varying gets the bits that differ between keys. */
MTI_SIMD_CLONES static void row_keys(mt_dtype dt, const char *row, int64_t n, int descending,
                                     uint64_t *keys, uint64_t *varying) {
  uint64_t flip = descending ? ~(uint64_t)0 : 0, all_or = 0, all_and = ~(uint64_t)0;
#define KEYS(T, EXPR)                                 \
  do {                                                \
    const T *x = (const T *)row;                      \
    for (int64_t i = 0; i < n; i++) {                 \
      T v = x[i];                                     \
      uint64_t k = (EXPR) ^ flip;                     \
      keys[i] = k;                                    \
      all_or |= k;                                    \
      all_and &= k;                                   \
    }                                                 \
  } while (0)
  switch (dt) {
  case MT_BOOL:
  case MT_UINT8: KEYS(uint8_t, (uint64_t)v); break;
  case MT_INT8: KEYS(uint8_t, (uint64_t)(uint8_t)(v ^ 0x80u)); break;
  case MT_INT16: KEYS(uint16_t, (uint64_t)(uint16_t)(v ^ 0x8000u)); break;
  case MT_INT32: KEYS(uint32_t, (uint64_t)(v ^ 0x80000000u)); break;
  case MT_INT64: KEYS(uint64_t, v ^ ((uint64_t)1 << 63)); break;
  case MT_FLOAT16: KEYS(uint16_t, float_key(v, 16, (v & 0x7fffu) > 0x7c00u)); break;
  case MT_BFLOAT16: KEYS(uint16_t, float_key(v, 16, (v & 0x7fffu) > 0x7f80u)); break;
  case MT_FLOAT32: KEYS(uint32_t, float_key(v, 32, (v & 0x7fffffffu) > 0x7f800000u)); break;
  case MT_FLOAT64:
    KEYS(uint64_t, float_key(v, 64, (v & ~((uint64_t)1 << 63)) > 0x7ff0000000000000ull));
    break;
  }
#undef KEYS
  *varying = all_or ^ all_and;
}

/* ------------------------------------------------------------ sorting */

/* Scratch of one task: keys and indices, twice (radix ping-pong). */
typedef struct sort_scratch {
  uint64_t *keys[2];
  int64_t *idx[2];
} sort_scratch;

/* Stable insertion sort of keys[0..n) carrying idx. */
static void insertion_sort(uint64_t *keys, int64_t *idx, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    uint64_t k = keys[i];
    int64_t v = idx[i], j = i;
    for (; j > 0 && keys[j - 1] > k; j--) {
      keys[j] = keys[j - 1];
      idx[j] = idx[j - 1];
    }
    keys[j] = k;
    idx[j] = v;
  }
}

/* One stable counting pass of digit d (8 bits at shift 8 * d). */
static void radix_pass(const uint64_t *k_in, const int64_t *i_in, uint64_t *k_out,
                       int64_t *i_out, int64_t n, int d) {
  int64_t count[256] = {0};
  int shift = 8 * d;
  for (int64_t i = 0; i < n; i++) count[(k_in[i] >> shift) & 0xff]++;
  int64_t at = 0;
  for (int b = 0; b < 256; b++) {
    int64_t c = count[b];
    count[b] = at;
    at += c;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t to = count[(k_in[i] >> shift) & 0xff]++;
    k_out[to] = k_in[i];
    i_out[to] = i_in ? i_in[i] : i;
  }
}

/* Sorts the n keys in s->keys[0] (stable); returns the buffer (0 or 1)
 * that holds the sorted keys and their original positions. */
static int sort_keys(sort_scratch *s, int64_t n, uint64_t varying) {
  if (n <= INSERTION_MAX) {
    for (int64_t i = 0; i < n; i++) s->idx[0][i] = i;
    insertion_sort(s->keys[0], s->idx[0], n);
    return 0;
  }
  int cur = 0, first = 1;
  for (int d = 0; d < 8; d++) {
    if (!(varying >> (8 * d) & 0xff)) continue; /* the digit is the same in every key */
    radix_pass(s->keys[cur], first ? NULL : s->idx[cur], s->keys[!cur], s->idx[!cur], n, d);
    cur = !cur;
    first = 0;
  }
  if (first)
    for (int64_t i = 0; i < n; i++) s->idx[0][i] = i; /* all keys equal */
  return cur;
}

/* dst[i] = row[idx[i]] for elements of esz bytes. */
static void gather_values(const char *row, const int64_t *idx, int64_t n, size_t esz, char *dst) {
#define GATHER(T)                                                                      \
  for (int64_t i = 0; i < n; i++) ((T *)dst)[i] = ((const T *)row)[idx[i]];
  if (esz == 1) GATHER(uint8_t)
  else if (esz == 2) GATHER(uint16_t)
  else if (esz == 4) GATHER(uint32_t)
  else GATHER(uint64_t)
#undef GATHER
}

/* ------------------------------------------------------------ topk */

/* Heap of the k smallest (key, index) pairs seen, largest on top. */
static void heap_sift_down(uint64_t *key, int64_t *idx, int64_t k, int64_t at) {
  for (;;) {
    int64_t l = 2 * at + 1, big = at;
    if (l < k && (key[l] > key[big] || (key[l] == key[big] && idx[l] > idx[big]))) big = l;
    if (l + 1 < k &&
        (key[l + 1] > key[big] || (key[l + 1] == key[big] && idx[l + 1] > idx[big])))
      big = l + 1;
    if (big == at) return;
    uint64_t tk = key[at];
    int64_t ti = idx[at];
    key[at] = key[big], idx[at] = idx[big];
    key[big] = tk, idx[big] = ti;
    at = big;
  }
}

/* The heap of the k smallest (key, position) pairs offered so far, in
 * rising position order, so a key equal to the top's never displaces it
 * (ties: lower position first). */
typedef struct select_heap {
  uint64_t *key;
  int64_t *idx;
  int64_t k, filled;
} select_heap;

static inline void heap_offer(select_heap *h, uint64_t key, int64_t pos) {
  if (h->filled < h->k) {
    h->key[h->filled] = key, h->idx[h->filled] = pos;
    if (++h->filled == h->k) /* full: make it a heap once */
      for (int64_t at = h->k / 2 - 1; at >= 0; at--) heap_sift_down(h->key, h->idx, h->k, at);
  } else if (key < h->key[0]) {
    h->key[0] = key, h->idx[0] = pos;
    heap_sift_down(h->key, h->idx, h->k, 0);
  }
}

/* Orders the full heap's pairs from smallest to largest. */
static void heap_sort_out(select_heap *h) {
  for (int64_t end = h->k - 1; end > 0; end--) {
    uint64_t tk = h->key[0];
    int64_t ti = h->idx[0];
    h->key[0] = h->key[end], h->idx[0] = h->idx[end];
    h->key[end] = tk, h->idx[end] = ti;
    heap_sift_down(h->key, h->idx, end, 0);
  }
}

/* Keys tested at once (a few vector compares), and the smallest of them. */
#define SELECT_GROUP 16
/* Keys of the first part of a row held at once (128 KiB, in L2); later
 * parts are keyed a block at a time. */
#define SELECT_CHUNK 16384
#define SELECT_BLOCK 256

static inline uint64_t group_min(const uint64_t *keys, int64_t n) {
  uint64_t m = ~(uint64_t)0;
  for (int64_t i = 0; i < n; i++) m = keys[i] < m ? keys[i] : m;
  return m;
}

static inline int any_below(const uint64_t *keys, int64_t n, uint64_t top) {
  int below = 0;
  for (int64_t i = 0; i < n; i++) below |= keys[i] < top;
  return below;
}

/* Keys of a row's first part (or all of it) the heap selection needs room
 * for: at least SELECT_GROUP * k, so that the part has k groups. */
static int64_t select_chunk(int64_t n, int64_t k) {
  int64_t want = SELECT_GROUP * k > SELECT_CHUNK ? SELECT_GROUP * k : SELECT_CHUNK;
  return min64(n, want);
}

/* The k smallest keys of the n elements of row (dtype dt, complemented
 * when descending; n >= SELECT_GROUP * k) with their positions, sorted, in
 * h. buf has room for select_chunk(n, k) keys and a key per group of them.
 *
 * The first part's keys bound the answer before any heap work: of its
 * groups of SELECT_GROUP keys, the k-th smallest group minimum T is >= the
 * part's k-th smallest key (k groups each hold a key <= T), so only keys
 * <= T can be chosen, and they are few (about k plus a few for random data);
 * a group whose minimum is above T is skipped whole. The rest of a long row
 * is keyed a block at a time and a group is offered only if one of its keys
 * beats the heap's top. The row is read once. */
MTI_SIMD_CLONES static void heap_select(mt_dtype dt, const char *row, int64_t n, int descending,
                                        uint64_t *buf, select_heap *h) {
  size_t esz = mt_dtype_size(dt);
  int64_t part = select_chunk(n, h->k), groups = (part + SELECT_GROUP - 1) / SELECT_GROUP;
  uint64_t *mins = buf + part, varying;
  row_keys(dt, row, part, descending, buf, &varying);
  for (int64_t g = 0; g < groups; g++)
    mins[g] = group_min(buf + g * SELECT_GROUP, min64(SELECT_GROUP, part - g * SELECT_GROUP));
  h->filled = 0;
  for (int64_t g = 0; g < groups; g++) heap_offer(h, mins[g], g);
  uint64_t bound = h->key[0];
  h->filled = 0;
  for (int64_t g = 0; g < groups; g++) {
    if (mins[g] > bound) continue;
    for (int64_t i = g * SELECT_GROUP; i < min64(part, (g + 1) * SELECT_GROUP); i++)
      if (buf[i] <= bound) heap_offer(h, buf[i], i);
  }
  for (int64_t at = part; at < n; at += SELECT_BLOCK) {
    int64_t len = min64(SELECT_BLOCK, n - at);
    row_keys(dt, row + (size_t)at * esz, len, descending, buf, &varying);
    for (int64_t i = 0; i < len; i += SELECT_GROUP) {
      int64_t end = min64(len, i + SELECT_GROUP);
      if (!any_below(buf + i, end - i, h->key[0])) continue;
      for (int64_t g = i; g < end; g++) heap_offer(h, buf[g], at + g);
    }
  }
  heap_sort_out(h);
}

/* ------------------------------------------------------------ driver */

/* A sort-family problem: rows of the input and of the outputs. */
typedef struct sort_job {
  mti_rows x, values, indices;
  int has_values, descending;
  int64_t k; /* results per row */
} sort_job;

/* Whether the rows' results come from heap_select rather than a sort. */
static int selects_by_heap(const sort_job *j) {
  return j->k > 0 && j->k * TOPK_HEAP_RATIO <= j->x.len;
}

/* 64-bit words of scratch one task needs: a sort's keys and indices twice,
 * or heap_select's keys, group minima and heap. */
static size_t scratch_words(const sort_job *j) {
  int64_t n = j->x.len, k = j->k;
  if (!selects_by_heap(j)) return 4 * (size_t)(n ? n : 1);
  int64_t part = select_chunk(n, k);
  return (size_t)(part + (part + SELECT_GROUP - 1) / SELECT_GROUP + 2 * k);
}

/* Sorts or selects one row into its results, with scratch_words(j) words
 * at scratch. */
static void sort_row(const sort_job *j, uint64_t *scratch, int64_t row) {
  int64_t n = j->x.len, k = j->k;
  size_t esz = mt_dtype_size(j->x.dtype);
  const char *src = j->x.data + (size_t)(row * n) * esz;
  int64_t *out_idx = (int64_t *)j->indices.data + row * k;
  const int64_t *picked;
  if (selects_by_heap(j)) {
    select_heap h = {.key = scratch, .idx = (int64_t *)scratch + k, .k = k};
    heap_select(j->x.dtype, src, n, j->descending, scratch + 2 * k, &h);
    picked = h.idx;
  } else {
    int64_t *idx = (int64_t *)scratch + 2 * n;
    sort_scratch s = {{scratch, scratch + n}, {idx, idx + n}};
    uint64_t varying;
    row_keys(j->x.dtype, src, n, j->descending, s.keys[0], &varying);
    picked = s.idx[sort_keys(&s, n, varying)];
  }
  memcpy(out_idx, picked, (size_t)k * sizeof(int64_t));
  if (j->has_values) gather_values(src, picked, k, esz, j->values.data + (size_t)(row * k) * esz);
}

static mt_status run_rows(const char *fn, const sort_job *j) {
  int64_t nrows = j->x.nrows, n = j->x.len, per = rows_per_task(n);
  int64_t ntask = (nrows + per - 1) / per;
  size_t words = scratch_words(j);
  int failed = 0;
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
#pragma omp parallel for schedule(dynamic) if (ntask > 1) \
    num_threads(mti_cpu_threads_for(nrows * n, MTI_CPU_PARALLEL_MIN / 2))
  for (int64_t t = 0; t < ntask; t++) {
    uint64_t *scratch = malloc(words * sizeof(uint64_t));
    if (!scratch) {
#pragma omp atomic write
      failed = 1;
      continue;
    }
    for (int64_t row = t * per; row < min64(nrows, (t + 1) * per) && !mti_cpu_stop_raised(stop);
         row++)
      sort_row(j, scratch, row);
    free(scratch);
  }
  return failed ? mti_error_oom(fn, words * sizeof(uint64_t)) : MT_OK;
}

/* SORT (values, indices), ARGSORT (indices) and TOPK (values, indices):
 * out[0] and out[1] as mti_infer made them. */
mt_status mti_cpu_sort(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = mti_op_get((int)op)->fn;
  uint32_t mask = in->ndim ? 1u << at->dim : 0u;
  sort_job j = {.has_values = op != MTI_OP_ARGSORT,
                .descending = (at->flags & MTI_FLAG_DESCENDING) != 0};
  const mti_view *idx_out = j.has_values ? &out[1] : &out[0];
  j.k = op == MTI_OP_TOPK ? min64(at->ints[0], in->ndim ? in->shape[at->dim] : 1)
                          : (in->ndim ? in->shape[at->dim] : 1);
  if (op == MTI_OP_TOPK && in->ndim == 0) j.k = 1; /* a 0-d topk keeps its element */
  if (mti_shape_numel(idx_out->ndim, idx_out->shape) == 0) return MT_OK;
  mt_status s = mti_rows_read(fn, in, mask, in->dtype, &j.x);
  if (s) return s;
  s = mti_rows_for_out(fn, idx_out, mask, MT_INT64, &j.indices);
  if (!s && j.has_values) s = mti_rows_for_out(fn, &out[0], mask, in->dtype, &j.values);
  if (!s) s = run_rows(fn, &j);
  mti_rows_free(&j.x);
  if (s) {
    mti_rows_free(&j.indices);
    mti_rows_free(&j.values);
    return s;
  }
  s = mti_rows_write_back(&j.indices, idx_out, mask);
  mt_status sv = j.has_values ? mti_rows_write_back(&j.values, &out[0], mask) : MT_OK;
  return s ? s : sv;
}
