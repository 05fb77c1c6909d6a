/*
 * gather.c - data movement along one dim: cat and index_select.
 *
 * Both see the output as rows: for cat, each input fills a slab of every
 * outer row; for index_select, each output row is one inner block of a,
 * picked by the index. Contiguous blocks move with memcpy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/cpu_kernels.h"

/* Bytes one thread moves per work item of a parallel copy. */
#define GATHER_CHUNK_BYTES ((int64_t)1 << 16)

/* Ranges of output rows a parallel index_select splits into. */
#define GATHER_PARTS 64

static int64_t dims_numel(const int64_t *shape, int from, int to) {
  int64_t n = 1;
  for (int d = from; d < to; d++) n *= shape[d];
  return n;
}

/* Copies rows row_bytes long from src (pitch src_pitch) to dst (pitch
 * dst_pitch), in chunks spread across threads when there is enough to move. */
static void copy_rows(char *dst, int64_t dst_pitch, const char *src, int64_t src_pitch,
                      int64_t rows, int64_t row_bytes) {
  int64_t chunks_per_row = (row_bytes + GATHER_CHUNK_BYTES - 1) / GATHER_CHUNK_BYTES;
  int64_t items = rows * chunks_per_row;
  int parallel = rows * row_bytes >= (int64_t)MTI_CPU_PARALLEL_MIN * 16;
#pragma omp parallel for schedule(static) if (parallel) num_threads(mti_cpu_threads())
  for (int64_t it = 0; it < items; it++) {
    int64_t r = it / chunks_per_row, off = it % chunks_per_row * GATHER_CHUNK_BYTES;
    int64_t len = row_bytes - off < GATHER_CHUNK_BYTES ? row_bytes - off : GATHER_CHUNK_BYTES;
    memcpy(dst + r * dst_pitch + off, src + r * src_pitch + off, (size_t)len);
  }
}

/* ------------------------------------------------------------------ cat */

/*
 * Input i fills out[..., off_i : off_i + len_i, ...]: a view of that slab of
 * out takes the input's values, converted to out's dtype. Inputs of out's
 * dtype whose values are contiguous are copied row by row with memcpy.
 */
mt_status mti_cpu_cat(const mti_view *in, int n, const mti_attrs *at, const mti_view *out) {
  int dim = at->dim;
  size_t es = mt_dtype_size(out->dtype);
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  int64_t outer = dims_numel(out->shape, 0, dim);
  int64_t inner = dims_numel(out->shape, dim + 1, out->ndim);
  int64_t out_pitch = out->shape[dim] * inner * (int64_t)es;
  int64_t offset = 0; /* along dim */
  for (int i = 0; i < n; i++) {
    const mti_view *v = &in[i];
    if (mti_shape_numel(v->ndim, v->shape) == 0) continue; /* contributes nothing */
    int64_t len = v->shape[dim];
    char *slab_data = (char *)out->data + offset * inner * (int64_t)es;
    if (v->dtype == out->dtype && mti_shape_is_contiguous(v->ndim, v->shape, v->strides)) {
      int64_t row_bytes = len * inner * (int64_t)es;
      copy_rows(slab_data, out_pitch, (const char *)v->data, row_bytes, outer, row_bytes);
    } else {
      mti_view slab = *out;
      slab.data = slab_data;
      slab.shape[dim] = len;
      mt_status st = mti_cpu_convert(v, &slab);
      if (st != MT_OK) return st;
    }
    offset += len;
  }
  return MT_OK;
}

/* ------------------------------------------------------------ index_select */

/* What every output row needs: out row r = (o, l) is a's inner block at outer
 * index o and position index[l] along dim. */
typedef struct gather_plan {
  const char *a;
  char *out;
  size_t es;
  const void *index;       /* int32 or int64 entries, index_step apart */
  int index_is_int32;
  int64_t index_step;
  int64_t len;             /* index entries */
  int64_t size, stride;    /* of a along dim */
  int pre_ndim;            /* dims before dim */
  const int64_t *pre_shape, *pre_strides;
  int post_ndim;           /* dims after dim */
  const int64_t *post_shape, *post_strides;
  int64_t inner;           /* elements per row */
  int inner_contiguous;
} gather_plan;

static int64_t index_at(const gather_plan *g, int64_t l) {
  return g->index_is_int32 ? ((const int32_t *)g->index)[l * g->index_step]
                           : ((const int64_t *)g->index)[l * g->index_step];
}

/* Element offset in a of outer index o (row-major over the dims before dim). */
static int64_t pre_offset(const gather_plan *g, int64_t o) {
  int64_t off = 0;
  for (int d = g->pre_ndim - 1; d >= 0; d--) {
    off += o % g->pre_shape[d] * g->pre_strides[d];
    o /= g->pre_shape[d];
  }
  return off;
}

static void copy_element(char *dst, const char *src, size_t es) {
  switch (es) {
  case 1: memcpy(dst, src, 1); break;
  case 2: memcpy(dst, src, 2); break;
  case 4: memcpy(dst, src, 4); break;
  default: memcpy(dst, src, 8); break;
  }
}

/* One inner block whose dims after dim have arbitrary strides. */
static void copy_strided_block(const gather_plan *g, char *dst, const char *src) {
  int64_t idx[MT_MAX_DIMS] = {0};
  int64_t off = 0;
  for (int64_t e = 0; e < g->inner; e++) {
    copy_element(dst + e * (int64_t)g->es, src + off * (int64_t)g->es, g->es);
    for (int d = g->post_ndim - 1; d >= 0; d--) {
      off += g->post_strides[d];
      if (++idx[d] < g->post_shape[d]) break;
      off -= idx[d] * g->post_strides[d];
      idx[d] = 0;
    }
  }
}

/* The loop over index entries [l0, l1) of one outer index (base = a's data
 * there), with the index type ITYPE and one way of copying a row (COPY, from
 * src to dst) fixed, so that the choices are made once per range and the
 * per-row work stays small (gathers of single elements are bound by memory
 * latency, and fewer instructions per row let more loads be in flight). An
 * entry out of range stops the loop: its position goes to *bad. v + size is
 * formed unsigned: below 2 * size exactly when v is in range. */
#define GATHER_LOOP(ITYPE, COPY)                                      \
  do {                                                                \
    const ITYPE *ix = (const ITYPE *)g->index;                        \
    for (int64_t l = l0; l < l1; l++, dst += row_bytes) {             \
      uint64_t u = (uint64_t)(int64_t)ix[l * step] + (uint64_t)size; \
      if (u >= 2 * (uint64_t)size) {                                  \
        *bad = l;                                                     \
        return;                                                       \
      }                                                               \
      uint64_t pos = u >= (uint64_t)size ? u - (uint64_t)size : u;    \
      const char *src = base + (int64_t)pos * stride_bytes;           \
      COPY;                                                           \
    }                                                                 \
  } while (0)

#define GATHER_COPY_MODES(ITYPE)                                      \
  do {                                                                \
    if (inner == 1 && es == 1)                                        \
      GATHER_LOOP(ITYPE, memcpy(dst, src, 1));                        \
    else if (inner == 1 && es == 2)                                   \
      GATHER_LOOP(ITYPE, memcpy(dst, src, 2));                        \
    else if (inner == 1 && es == 4)                                   \
      GATHER_LOOP(ITYPE, memcpy(dst, src, 4));                        \
    else if (inner == 1)                                              \
      GATHER_LOOP(ITYPE, memcpy(dst, src, 8));                        \
    else if (g->inner_contiguous)                                     \
      GATHER_LOOP(ITYPE, memcpy(dst, src, (size_t)row_bytes));        \
    else                                                              \
      GATHER_LOOP(ITYPE, copy_strided_block(g, dst, src));            \
  } while (0)

/* Output rows [r0, r1), taken outer index by outer index; *bad is left
 * alone unless an index entry is out of range. */
static void gather_rows(const gather_plan *g, int64_t r0, int64_t r1, int64_t *bad) {
  const int64_t step = g->index_step, len = g->len, size = g->size, inner = g->inner;
  const int64_t es = (int64_t)g->es, row_bytes = inner * es, stride_bytes = g->stride * es;
  while (r0 < r1) {
    int64_t o = r0 / len, l0 = r0 % len;
    int64_t l1 = r1 - r0 < len - l0 ? l0 + (r1 - r0) : len;
    const char *base = g->a + pre_offset(g, o) * es;
    char *dst = g->out + r0 * row_bytes;
    if (g->index_is_int32)
      GATHER_COPY_MODES(int32_t);
    else
      GATHER_COPY_MODES(int64_t);
    r0 += l1 - l0;
  }
}

/* Position of the first index entry out of range, or -1. */
static int64_t first_bad_index(const gather_plan *g) {
  for (int64_t l = 0; l < g->len; l++) {
    int64_t v = index_at(g, l);
    if (v < -g->size || v >= g->size) return l;
  }
  return -1;
}

/*
 * Index entries are checked as the rows are copied; an entry out of range
 * fails the op (out then holds a partial result nobody reads). Rows are
 * split into ranges across threads; each range notes its first bad entry and
 * the error names the first one in row order, so it does not depend on the
 * thread count.
 */
mt_status mti_cpu_index_select(const mti_view *a, const mti_view *index, const mti_attrs *at,
                               const mti_view *out) {
  int dim = at->dim;
  gather_plan g = {
      .a = (const char *)a->data,
      .out = (char *)out->data,
      .es = mt_dtype_size(a->dtype),
      .index = index->data,
      .index_is_int32 = index->dtype == MT_INT32,
      .index_step = index->ndim == 0 ? 0 : index->strides[0],
      .len = index->ndim == 0 ? 1 : index->shape[0],
      .size = a->shape[dim],
      .stride = a->strides[dim],
      .pre_ndim = dim,
      .pre_shape = a->shape,
      .pre_strides = a->strides,
      .post_ndim = a->ndim - dim - 1,
      .post_shape = a->shape + dim + 1,
      .post_strides = a->strides + dim + 1,
      .inner = dims_numel(a->shape, dim + 1, a->ndim),
  };
  g.inner_contiguous = mti_shape_is_contiguous(g.post_ndim, g.post_shape, g.post_strides);
  int64_t rows = dims_numel(a->shape, 0, dim) * g.len;
  int64_t bad = -1;
  if (rows == 0 || g.inner == 0) {
    bad = first_bad_index(&g);
  } else {
    int64_t parts = rows * g.inner >= MTI_CPU_PARALLEL_MIN ? GATHER_PARTS : 1;
    if (parts > rows) parts = rows;
    int64_t part_bad[GATHER_PARTS];
#pragma omp parallel for schedule(static) if (parts > 1) num_threads(mti_cpu_threads())
    for (int64_t part = 0; part < parts; part++) {
      part_bad[part] = -1;
      gather_rows(&g, rows * part / parts, rows * (part + 1) / parts, &part_bad[part]);
    }
    for (int64_t part = 0; part < parts && bad < 0; part++) bad = part_bad[part];
  }
  if (bad >= 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "mt_index_select: index: %lld is out of range for dim %d of size %lld",
                     (long long)index_at(&g, bad), dim, (long long)g.size);
  return MT_OK;
}
