/*
 * shape_ops.c - flip, roll, repeat, pad (the REMAP kind) and tril, triu.
 *
 * REMAP follows the per-dim maps of core/remap.h: the output is taken as
 * rows along its last dim; a row's source is fixed by the maps of the outer
 * dims, and the last dim's map is cut once into segments (a run of
 * consecutive source elements moves with one memcpy, a run of fill is
 * written as such), so repeat, roll and pad move memory at memcpy speed and
 * only a flip of the last dim goes element by element.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/remap.h"
#include "cpu/cpu_kernels.h"
#include "cpu/index_util.h"

/* A piece of the last dim: out[start, start + len) reads len source
 * elements from src (element offset), or the fill value when fill. */
typedef struct remap_seg {
  int64_t start, len, src;
  int fill;
} remap_seg;

typedef struct remap_plan {
  const char *a;
  char *out;
  int64_t es;
  int ndim;                       /* out's, >= 1 */
  const int64_t *shape;           /* out's */
  int64_t strides[MT_MAX_DIMS];   /* a's, aligned to out's dims */
  const int64_t *maps[MT_MAX_DIMS];
  const remap_seg *segs;
  int64_t nsegs;
  unsigned char fill[8];          /* s0 in the dtype */
} remap_plan;

/* Cuts the last dim's map into segments (segs has room for n). */
static int64_t remap_segments(const int64_t *map, int64_t n, int64_t stride, remap_seg *segs) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    int fill = map[i] < 0;
    int64_t src = fill ? 0 : map[i] * stride;
    remap_seg *last = k ? &segs[k - 1] : NULL;
    if (last && last->fill == fill && (fill || (stride == 1 && src == last->src + last->len))) {
      last->len++;
      continue;
    }
    segs[k++] = (remap_seg){i, 1, src, fill};
  }
  return k;
}

/* Output row r: its source base from the outer maps (-1 anywhere: all
 * fill), then the segments. */
static void remap_row(const remap_plan *p, int64_t r) {
  int64_t n = p->shape[p->ndim - 1], o = r, base = 0;
  int fill_row = 0;
  for (int d = p->ndim - 2; d >= 0; d--) {
    int64_t m = p->maps[d][o % p->shape[d]];
    o /= p->shape[d];
    if (m < 0) fill_row = 1;
    base += m * p->strides[d];
  }
  char *dst = p->out + r * n * p->es;
  const char *src = p->a + base * p->es;
  for (int64_t k = 0; k < p->nsegs; k++) {
    const remap_seg *s = &p->segs[k];
    char *d = dst + s->start * p->es;
    if (fill_row || s->fill) {
      for (int64_t e = 0; e < s->len; e++) memcpy(d + e * p->es, p->fill, (size_t)p->es);
    } else { /* runs are merged only where the last dim has stride 1 */
      memcpy(d, src + s->src * p->es, (size_t)(s->len * p->es));
    }
  }
}

mt_status mti_cpu_remap(mti_op op, const mti_view *a, const mti_attrs *at, const mti_view *out) {
  int64_t numel = mti_shape_numel(out->ndim, out->shape);
  int64_t es = (int64_t)mt_dtype_size(out->dtype);
  if (numel == 0) return MT_OK;
  if (out->ndim == 0) {
    memcpy(out->data, a->data, (size_t)es);
    return MT_OK;
  }
  mti_meta in_meta = {a->dtype, a->ndim, {0}}, out_meta = {out->dtype, out->ndim, {0}};
  mti_dims_copy(in_meta.shape, a->shape, a->ndim);
  mti_dims_copy(out_meta.shape, out->shape, out->ndim);
  int64_t len = mti_remap_map_len(&out_meta), n = out->shape[out->ndim - 1];
  size_t bytes = (size_t)len * sizeof(int64_t) + (size_t)n * sizeof(remap_seg);
  int64_t *maps = malloc(bytes);
  if (!maps) return mti_error_oom(mti_op_get((int)op)->fn, bytes);
  mti_remap_maps(op, at, &in_meta, &out_meta, maps);
  remap_plan p = {.a = a->data, .out = out->data, .es = es, .ndim = out->ndim, .shape = out->shape};
  int lead = out->ndim - a->ndim;
  for (int d = 0; d < out->ndim; d++) {
    p.strides[d] = d < lead ? 0 : a->strides[d - lead];
    p.maps[d] = d ? p.maps[d - 1] + out->shape[d - 1] : maps;
  }
  remap_seg *segs = (remap_seg *)(maps + len);
  p.segs = segs;
  p.nsegs = remap_segments(p.maps[out->ndim - 1], n, p.strides[out->ndim - 1], segs);
  mti_store_double(p.fill, out->dtype, at->s0);
  int64_t rows = numel / n;
#pragma omp parallel for schedule(static) if (numel >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t r = 0; r < rows; r++) remap_row(&p, r);
  free(maps);
  return MT_OK;
}

/* ------------------------------------------------------------ tril, triu */

/* Row i of every matrix keeps the columns [lo, hi) with lo, hi from the
 * diagonal; the rest is zero (all bits zero in every dtype). */
mt_status mti_cpu_triangle(mti_op op, const mti_view *a, const mti_attrs *at,
                           const mti_view *out) {
  int nd = a->ndim;
  int64_t rows = a->shape[nd - 2], cols = a->shape[nd - 1], diag = at->ints[0];
  int64_t es = (int64_t)mt_dtype_size(a->dtype);
  int64_t all_rows = mti_shape_numel(nd - 1, a->shape);
  int64_t rs = a->strides[nd - 2], cs = a->strides[nd - 1];
  int upper = op == MTI_OP_TRIU;
  if (all_rows == 0 || cols == 0) return MT_OK;
#pragma omp parallel for schedule(static) if (all_rows * cols >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t r = 0; r < all_rows; r++) {
    int64_t i = r % rows;
    int64_t edge = i + diag; /* tril keeps j <= edge, triu j >= edge */
    int64_t lo = upper ? (edge < 0 ? 0 : edge > cols ? cols : edge) : 0;
    int64_t hi = upper ? cols : (edge < 0 ? 0 : edge >= cols ? cols : edge + 1);
    if (hi < lo) hi = lo;
    char *dst = (char *)out->data + r * cols * es;
    const char *src = (const char *)a->data +
                      (mti_outer_offset(a->shape, a->strides, nd - 2, r / rows) + i * rs) * es;
    memset(dst, 0, (size_t)(lo * es));
    if (cs == 1) {
      memcpy(dst + lo * es, src + lo * es, (size_t)((hi - lo) * es));
    } else {
      for (int64_t j = lo; j < hi; j++) memcpy(dst + j * es, src + j * cs * es, (size_t)es);
    }
    memset(dst + hi * es, 0, (size_t)((cols - hi) * es));
  }
  return MT_OK;
}
