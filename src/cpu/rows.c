/*
 * rows.c - views as contiguous rows along a set of dims (rows.h).
 */
#include "rows.h"

#include <stdlib.h>

#include "core/error.h"
#include "cpu_kernels.h"

mti_view mti_view_dims_last(const mti_view *v, uint32_t mask) {
  mti_view p = *v;
  int at = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < v->ndim; d++) {
      if ((int)(mask >> d & 1u) != pass) continue;
      p.shape[at] = v->shape[d];
      p.strides[at++] = v->strides[d];
    }
  return p;
}

/* nrows and len of v's rows along mask. */
static void row_counts(const mti_view *v, uint32_t mask, mti_rows *r) {
  r->nrows = r->len = 1;
  for (int d = 0; d < v->ndim; d++) {
    if (mask >> d & 1u) r->len *= v->shape[d];
    else r->nrows *= v->shape[d];
  }
}

/* A contiguous view of dtype dt over buf with p's shape. */
static mti_view dense_like(const mti_view *p, void *buf, mt_dtype dt) {
  mti_view d = *p;
  d.data = buf;
  d.dtype = dt;
  mti_shape_contiguous_strides(d.ndim, d.shape, d.strides);
  return d;
}

static mt_status alloc_rows(const char *fn, mti_rows *r) {
  size_t bytes = (size_t)(r->nrows * r->len) * mt_dtype_size(r->dtype);
  if (!(r->owned = malloc(bytes ? bytes : 1))) return mti_error_oom(fn, bytes);
  r->data = r->owned;
  return MT_OK;
}

mt_status mti_rows_for_out(const char *fn, const mti_view *out, uint32_t mask, mt_dtype dt,
                           mti_rows *r) {
  mti_view p = mti_view_dims_last(out, mask);
  row_counts(out, mask, r);
  r->dtype = dt;
  r->owned = NULL;
  r->data = out->data;
  if (out->dtype == dt && mti_shape_is_contiguous(p.ndim, p.shape, p.strides)) return MT_OK;
  return alloc_rows(fn, r);
}

mt_status mti_rows_read(const char *fn, const mti_view *v, uint32_t mask, mt_dtype dt,
                        mti_rows *r) {
  mt_status s = mti_rows_for_out(fn, v, mask, dt, r);
  if (s || !r->owned) return s; /* v's own memory already has the rows */
  mti_view p = mti_view_dims_last(v, mask);
  mti_view dst = dense_like(&p, r->owned, dt);
  if ((s = mti_cpu_convert(&p, &dst))) mti_rows_free(r);
  return s;
}

mt_status mti_rows_write_back(mti_rows *r, const mti_view *out, uint32_t mask) {
  mt_status s = MT_OK;
  if (r->owned) {
    mti_view p = mti_view_dims_last(out, mask);
    mti_view src = dense_like(&p, r->owned, r->dtype);
    s = mti_cpu_convert(&src, &p);
  }
  mti_rows_free(r);
  return s;
}

void mti_rows_free(mti_rows *r) {
  free(r->owned);
  r->owned = NULL;
}
