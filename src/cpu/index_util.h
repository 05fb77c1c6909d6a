/*
 * index_util.h - small helpers shared by the indexing, shape and sampling
 * kernels of src/cpu (index_ops.c, shape_ops.c, sample.c).
 */
#ifndef MTI_CPU_INDEX_UTIL_H
#define MTI_CPU_INDEX_UTIL_H

#include <stdint.h>

#include "core/shape.h"

/* Element offset of the row-major position o over dims [0, ndim) of
 * (shape, strides). */
static inline int64_t mti_outer_offset(const int64_t *shape, const int64_t *strides, int ndim,
                                       int64_t o) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    off += o % shape[d] * strides[d];
    o /= shape[d];
  }
  return off;
}

/* Value of the int32/int64 index element at element offset off. */
static inline int64_t mti_index_value(const mti_view *index, int64_t off) {
  return index->dtype == MT_INT32 ? ((const int32_t *)index->data)[off]
                                  : ((const int64_t *)index->data)[off];
}

#endif
