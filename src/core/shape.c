/*
 * shape.c - shapes, strides, broadcasting.
 */
#include "core/shape.h"

#include <stdio.h>

#include "core/error.h"

int64_t mti_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

mt_status mti_shape_check(const char *fn, int ndim, const int64_t *shape, size_t elem_size) {
  if (ndim < 0 || ndim > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: ndim: %d is outside 0..%d", fn, ndim, MT_MAX_DIMS);
  if (ndim > 0 && !shape)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: shape: NULL with ndim %d", fn, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return mti_error(MT_ERR_SHAPE, "%s: shape: dim %d is negative (%lld)", fn, i,
                       (long long)shape[i]);
  /* Bytes must fit in int64 even when some dim is 0 after a huge one is
   * multiplied, so check the product of non-zero dims (multiplications that
   * report overflow: divisions would cost more than a small op's kernel). */
  int64_t n = elem_size ? (int64_t)elem_size : 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) continue;
    if (__builtin_mul_overflow(n, shape[i], &n)) {
      char buf[160];
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: shape: %s is too large (byte size overflows)",
                       fn, mti_shape_str(buf, sizeof buf, ndim, shape));
    }
  }
  return MT_OK;
}

void mti_shape_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

int mti_shape_is_contiguous(int ndim, const int64_t *shape, const int64_t *strides) {
  int64_t expect = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    if (shape[i] == 0) return 1;
    if (shape[i] == 1) continue;
    if (strides[i] != expect) return 0;
    expect *= shape[i];
  }
  return 1;
}

int mti_strides_overlap(int ndim, const int64_t *shape, const int64_t *strides) {
  /* Sort the dims that have more than one index by |stride|; each must step
   * over everything the smaller ones can reach. */
  int64_t st[MT_MAX_DIMS], sz[MT_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) return 0;
    if (shape[i] == 1) continue;
    int64_t a = strides[i] < 0 ? -strides[i] : strides[i];
    int j = n++;
    for (; j > 0 && st[j - 1] > a; j--) {
      st[j] = st[j - 1];
      sz[j] = sz[j - 1];
    }
    st[j] = a;
    sz[j] = shape[i];
  }
  int64_t reach = 0; /* largest offset reachable by the dims seen so far */
  for (int i = 0; i < n; i++) {
    if (st[i] <= reach) return 1;
    reach += st[i] * (sz[i] - 1);
  }
  return 0;
}

mt_status mti_shape_broadcast(const char *fn, int andim, const int64_t *ashape, int bndim,
                              const int64_t *bshape, int *out_ndim, int64_t *out_shape) {
  int nd = andim > bndim ? andim : bndim;
  int64_t result[MT_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    int ai = i - (nd - andim), bi = i - (nd - bndim);
    int64_t a = ai >= 0 ? ashape[ai] : 1, b = bi >= 0 ? bshape[bi] : 1;
    if (a != b && a != 1 && b != 1) {
      char sa[160], sb[160];
      return mti_error(MT_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                       fn, mti_shape_str(sa, sizeof sa, andim, ashape),
                       mti_shape_str(sb, sizeof sb, bndim, bshape), i, (long long)a, (long long)b);
    }
    result[i] = a == 1 ? b : a;
  }
  for (int i = 0; i < nd; i++) out_shape[i] = result[i];
  *out_ndim = nd;
  return MT_OK;
}

mt_status mti_dim_normalize(const char *fn, const char *arg, int dim, int ndim, int *out) {
  int d = dim < 0 ? dim + ndim : dim;
  *out = 0; /* written on failure too: callers' error paths stay defined */
  if (d < 0 || d >= ndim)
    return mti_error(MT_ERR_SHAPE, "%s: %s: dim %d is out of range for a %d-d tensor", fn, arg, dim,
                     ndim);
  *out = d;
  return MT_OK;
}

mti_view mti_view_broadcast_to(const mti_view *v, int ndim, const int64_t *shape) {
  mti_view r = *v;
  int lead = ndim - v->ndim;
  r.ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    int vi = i - lead;
    r.shape[i] = shape[i];
    r.strides[i] = (vi < 0 || v->shape[vi] == 1) ? 0 : v->strides[vi];
  }
  return r;
}

const char *mti_shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
  size_t used = 0;
  int n = snprintf(buf, len, "[");
  used = n > 0 ? (size_t)n : 0;
  for (int i = 0; i < ndim && used < len; i++) {
    n = snprintf(buf + used, len - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
  if (used < len) snprintf(buf + used, len - used, "]");
  return buf;
}
