/*
 * views.c - reshape, permute, transpose, slice, expand, squeeze, unsqueeze.
 *
 * All of them share t's storage; only mt_reshape copies, and only when t's
 * strides cannot express the new shape.
 */
#include <string.h>

#include "api/tensor_impl.h"
#include "autograd/autograd.h"
#include "core/error.h"

/* A view of t with the given geometry, recorded for autograd as how says. */
static mt_tensor *view_of(const char *fn, const mt_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *strides, int64_t offset, const mti_ag_view *how) {
  mt_tensor *v = mti_tensor_view(fn, t, ndim, shape, strides, offset);
  if (v && mti_ag_wanted(1, &t) && mti_ag_record_view(fn, t, v, how)) {
    mt_tensor_free(v);
    return NULL;
  }
  return v;
}

static const mti_ag_view reshaped = {.kind = MTI_AG_RESHAPE};

/* Resolves a requested shape with at most one -1 against numel. */
static mt_status resolve_shape(const char *fn, int64_t numel, int ndim, const int64_t *req,
                               int64_t *shape) {
  int infer = -1;
  int64_t known = 1;
  if (ndim < 0 || ndim > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: ndim: %d is outside 0..%d", fn, ndim, MT_MAX_DIMS);
  if (ndim > 0 && !req) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: shape: NULL", fn);
  for (int i = 0; i < ndim; i++) {
    if (req[i] == -1) {
      if (infer >= 0) return mti_error(MT_ERR_SHAPE, "%s: shape: more than one -1", fn);
      infer = i;
    } else if (req[i] < 0) {
      return mti_error(MT_ERR_SHAPE, "%s: shape: dim %d is %lld", fn, i, (long long)req[i]);
    } else {
      if (req[i] && known > INT64_MAX / req[i])
        return mti_error(MT_ERR_SHAPE, "%s: shape: product overflows", fn);
      known *= req[i];
    }
    shape[i] = req[i];
  }
  if (infer >= 0) {
    if (known == 0 || numel % known)
      return mti_error(MT_ERR_SHAPE, "%s: shape: -1 cannot be inferred for %lld elements", fn,
                       (long long)numel);
    shape[infer] = numel / known;
    known *= shape[infer];
  }
  if (known != numel)
    return mti_error(MT_ERR_SHAPE, "%s: shape: %lld elements cannot be viewed as %lld", fn,
                     (long long)numel, (long long)known);
  return MT_OK;
}

/* Strides for viewing (old shape, strides) as a new shape without a copy.
 * The old dims split into chunks, each contiguous within itself (a dim's
 * stride is the next one's stride times its size); a view is possible when
 * every new dim falls inside one chunk. Returns 0 when it is not. */
static int view_strides(int ondim, const int64_t *oshape, const int64_t *ostrides, int nndim,
                        const int64_t *nshape, int64_t *nstrides) {
  if (ondim == 0 || mti_shape_numel(ondim, oshape) == 0) {
    mti_shape_contiguous_strides(nndim, nshape, nstrides);
    return 1;
  }
  int nd = nndim - 1;
  int64_t base = ostrides[ondim - 1]; /* stride of the chunk's innermost element */
  int64_t chunk_numel = 1, view_numel = 1;
  for (int od = ondim - 1; od >= 0; od--) {
    chunk_numel *= oshape[od];
    int chunk_ends = od == 0 || (oshape[od - 1] != 1 && ostrides[od - 1] != chunk_numel * base);
    if (!chunk_ends) continue;
    while (nd >= 0 && (view_numel < chunk_numel || nshape[nd] == 1)) {
      nstrides[nd] = view_numel * base;
      view_numel *= nshape[nd];
      nd--;
    }
    if (view_numel != chunk_numel) return 0;
    if (od > 0) {
      base = ostrides[od - 1];
      chunk_numel = view_numel = 1;
    }
  }
  return nd == -1;
}

mt_tensor *mt_reshape(const mt_tensor *t, int ndim, const int64_t *shape) {
  const char *fn = "mt_reshape";
  int64_t nshape[MT_MAX_DIMS], nstrides[MT_MAX_DIMS];
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (resolve_shape(fn, mt_numel(t), ndim, shape, nshape)) return NULL;
  if (view_strides(t->ndim, t->shape, t->strides, ndim, nshape, nstrides))
    return view_of(fn, t, ndim, nshape, nstrides, t->offset, &reshaped);
  mt_tensor *c = mt_clone(t);
  if (!c) return NULL;
  mti_shape_contiguous_strides(ndim, nshape, nstrides);
  mt_tensor *v = view_of(fn, c, ndim, nshape, nstrides, 0, &reshaped);
  mt_tensor_free(c);
  return v;
}

mt_tensor *mt_permute(const mt_tensor *t, const int *dims) {
  const char *fn = "mt_permute";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (!dims && t->ndim > 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: dims: NULL", fn), NULL;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  unsigned seen = 0;
  mti_ag_view how = {.kind = MTI_AG_PERMUTE};
  for (int i = 0; i < t->ndim; i++) {
    int d;
    if (mti_dim_normalize(fn, "dims", dims[i], t->ndim, &d)) return NULL;
    if (seen >> d & 1u)
      return mti_error(MT_ERR_SHAPE, "%s: dims: dim %d appears twice", fn, d), NULL;
    seen |= 1u << d;
    shape[i] = t->shape[d];
    strides[i] = t->strides[d];
    how.dims[i] = d;
  }
  return view_of(fn, t, t->ndim, shape, strides, t->offset, &how);
}

mt_tensor *mt_transpose(const mt_tensor *t, int dim0, int dim1) {
  const char *fn = "mt_transpose";
  int a, b;
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (t->ndim == 0 && (dim0 == 0 || dim0 == -1) && (dim1 == 0 || dim1 == -1))
    return view_of(fn, t, 0, t->shape, t->strides, t->offset, &reshaped);
  if (mti_dim_normalize(fn, "dim0", dim0, t->ndim, &a) ||
      mti_dim_normalize(fn, "dim1", dim1, t->ndim, &b))
    return NULL;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(strides, t->strides, sizeof strides);
  shape[a] = t->shape[b], shape[b] = t->shape[a];
  strides[a] = t->strides[b], strides[b] = t->strides[a];
  mti_ag_view how = {.kind = MTI_AG_PERMUTE};
  for (int i = 0; i < t->ndim; i++) how.dims[i] = i;
  how.dims[a] = b, how.dims[b] = a;
  return view_of(fn, t, t->ndim, shape, strides, t->offset, &how);
}

/* Python's clamping of a slice bound for a dim of size n (step > 0). */
static int64_t clamp_bound(int64_t v, int64_t n) {
  if (v < 0) v = v < -n ? 0 : v + n;
  return v > n ? n : v;
}

mt_tensor *mt_slice(const mt_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
  const char *fn = "mt_slice";
  int d;
  if (mti_check_tensor(fn, "t", t) || mti_dim_normalize(fn, "dim", dim, t->ndim, &d)) return NULL;
  if (step <= 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: step: %lld must be > 0", fn, (long long)step),
           NULL;
  int64_t n = t->shape[d], lo = clamp_bound(start, n), hi = clamp_bound(end, n);
  int64_t len = hi > lo ? (hi - lo + step - 1) / step : 0;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(strides, t->strides, sizeof strides);
  shape[d] = len;
  strides[d] = t->strides[d] * step;
  int64_t offset = t->offset + (len ? lo * t->strides[d] : 0);
  const mti_ag_view how = {.kind = MTI_AG_SLICE, .dim = d, .start = lo, .step = step};
  return view_of(fn, t, t->ndim, shape, strides, offset, &how);
}

mt_tensor *mt_expand(const mt_tensor *t, int ndim, const int64_t *shape) {
  const char *fn = "mt_expand";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (ndim < t->ndim || ndim > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: ndim: %d, expected %d..%d", fn, ndim, t->ndim, MT_MAX_DIMS),
           NULL;
  if (ndim > 0 && !shape) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: shape: NULL", fn), NULL;
  int64_t nshape[MT_MAX_DIMS], nstrides[MT_MAX_DIMS];
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int ti = i - lead;
    int64_t want = shape[i];
    if (ti < 0) {
      if (want < 0)
        return mti_error(MT_ERR_SHAPE, "%s: shape: new dim %d cannot be %lld", fn, i,
                         (long long)want), NULL;
      nshape[i] = want, nstrides[i] = 0;
    } else if (want == -1 || want == t->shape[ti]) {
      nshape[i] = t->shape[ti], nstrides[i] = t->strides[ti];
    } else if (t->shape[ti] == 1 && want >= 0) {
      nshape[i] = want, nstrides[i] = 0;
    } else {
      return mti_error(MT_ERR_SHAPE, "%s: shape: dim %d of size %lld cannot expand to %lld", fn, i,
                       (long long)t->shape[ti], (long long)want), NULL;
    }
  }
  if (mti_shape_check(fn, ndim, nshape, mt_dtype_size(t->dtype))) return NULL;
  static const mti_ag_view expanded = {.kind = MTI_AG_EXPAND};
  return view_of(fn, t, ndim, nshape, nstrides, t->offset, &expanded);
}

mt_tensor *mt_squeeze(const mt_tensor *t, int dim) {
  const char *fn = "mt_squeeze";
  int d;
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (t->ndim == 0 && (dim == 0 || dim == -1))
    return view_of(fn, t, 0, t->shape, t->strides, t->offset, &reshaped);
  if (mti_dim_normalize(fn, "dim", dim, t->ndim, &d)) return NULL;
  if (t->shape[d] != 1)
    return mti_error(MT_ERR_SHAPE, "%s: dim: dim %d has size %lld, not 1", fn, d,
                     (long long)t->shape[d]), NULL;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  for (int i = 0, j = 0; i < t->ndim; i++)
    if (i != d) shape[j] = t->shape[i], strides[j++] = t->strides[i];
  return view_of(fn, t, t->ndim - 1, shape, strides, t->offset, &reshaped);
}

mt_tensor *mt_unsqueeze(const mt_tensor *t, int dim) {
  const char *fn = "mt_unsqueeze";
  int d;
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (t->ndim == MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: t: already has %d dims", fn, MT_MAX_DIMS), NULL;
  if (mti_dim_normalize(fn, "dim", dim, t->ndim + 1, &d)) return NULL;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  for (int i = 0, j = 0; i <= t->ndim; i++) {
    if (i == d) {
      shape[i] = 1;
      /* Any stride works for a size-1 dim; this one keeps contiguity checks simple. */
      strides[i] = j < t->ndim ? t->strides[j] * t->shape[j] : 1;
    } else {
      shape[i] = t->shape[j], strides[i] = t->strides[j], j++;
    }
  }
  return view_of(fn, t, t->ndim + 1, shape, strides, t->offset, &reshaped);
}
