/*
 * validate.c - view checks that are safe against hostile numbers.
 */
#include "validate.h"

#include "core/error.h"
#include "core/shape.h"

/* Adds term to *acc unless the sum would pass limit; 0 on success. */
static int add_within(int64_t *acc, int64_t term, int64_t limit) {
  if (term > limit - *acc) return -1;
  *acc += term;
  return 0;
}

/* Lowest and highest element offsets (relative to the view's first
 * element) the dims can reach, as magnitudes below and above; -1 when
 * either passes limit. Dims of size <= 1 reach nothing. */
static int reach(const mtw_view_desc *v, int64_t limit, int64_t *below, int64_t *above) {
  *below = *above = 0;
  for (int d = 0; d < v->ndim; d++) {
    int64_t extent = v->shape[d] - 1, stride = v->strides[d];
    if (extent <= 0 || stride == 0) continue;
    if (stride == INT64_MIN) return -1;
    int64_t step = stride < 0 ? -stride : stride;
    if (step > limit || extent > limit / step) return -1;
    if (add_within(stride < 0 ? below : above, step * extent, limit)) return -1;
  }
  return 0;
}

mt_status mtw_view_check(const char *what, int64_t offset, size_t n_shape, const int64_t *shape,
                         size_t n_strides, const int64_t *strides, int64_t storage_numel,
                         size_t elem_size, mtw_view_desc *out) {
  if (n_shape > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: %zu dims, at most %d", what, n_shape, MT_MAX_DIMS);
  if (n_strides != n_shape && n_strides != 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %zu strides for %zu dims", what, n_strides,
                     n_shape);
  out->ndim = (int)n_shape;
  for (int d = 0; d < out->ndim; d++) out->shape[d] = shape[d];
  mt_status s = mti_shape_check(what, out->ndim, out->shape, elem_size);
  if (s) return s;
  out->numel = mti_shape_numel(out->ndim, out->shape);
  out->offset = offset;
  if (n_strides) {
    for (int d = 0; d < out->ndim; d++) out->strides[d] = out->shape[d] > 1 ? strides[d] : 0;
  } else {
    mti_shape_contiguous_strides(out->ndim, out->shape, out->strides);
    for (int d = 0; d < out->ndim; d++)
      if (out->shape[d] <= 1) out->strides[d] = 0;
  }
  if (out->numel == 0) { /* reaches nothing; its start must still lie in the storage */
    for (int d = 0; d < out->ndim; d++) out->strides[d] = 0;
    if (offset < 0 || offset > storage_numel)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: offset %lld is outside the storage (%lld elements)",
                       what, (long long)offset, (long long)storage_numel);
    return MT_OK;
  }
  if (offset < 0 || offset >= storage_numel)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: offset %lld is outside the storage (%lld elements)",
                     what, (long long)offset, (long long)storage_numel);
  int64_t below, above;
  if (reach(out, storage_numel, &below, &above) || below > offset ||
      above > storage_numel - 1 - offset)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: offset %lld with these strides reaches outside the storage "
                     "(%lld elements)",
                     what, (long long)offset, (long long)storage_numel);
  return MT_OK;
}
