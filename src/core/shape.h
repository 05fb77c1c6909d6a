/*
 * shape.h - shapes, strides, broadcasting and strided views of memory.
 */
#ifndef MTI_SHAPE_H
#define MTI_SHAPE_H

#include <stdint.h>

#include "modaltensor.h"

/* A strided array in host memory: what a kernel reads or writes. Strides are
 * in elements and may be 0 (broadcast) or negative; data points at element
 * [0,...,0]. A 0-d view has one element. */
typedef struct mti_view {
  void *data;
  mt_dtype dtype;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS];
} mti_view;

/* Copies n dims; src may be NULL when n is 0 (a caller's 0-d shape). */
static inline void mti_dims_copy(int64_t *dst, const int64_t *src, int n) {
  for (int i = 0; i < n; i++) dst[i] = src[i];
}

/* 1 when the first n dims of a and b are the same. */
static inline int mti_shape_equal(int n, const int64_t *a, const int64_t *b) {
  for (int i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* Product of the dims; the caller has checked it cannot overflow. */
int64_t mti_shape_numel(int ndim, const int64_t *shape);

/* Splits shape around dim into [outer, len, inner] element counts, as a
 * kernel along dim sees it; a 0-d shape (dim 0) is [1, 1, 1]. */
static inline void mti_shape_split(int ndim, const int64_t *shape, int dim, int64_t *outer,
                                   int64_t *len, int64_t *inner) {
  *outer = *len = *inner = 1;
  for (int d = 0; d < ndim; d++) {
    if (d < dim) *outer *= shape[d];
    else if (d == dim) *len = shape[d];
    else *inner *= shape[d];
  }
}

/* Checks 0 <= ndim <= MT_MAX_DIMS, dims >= 0, and that numel * elem_size fits
 * in int64. Sets the error (naming fn) and returns its status on failure. */
mt_status mti_shape_check(const char *fn, int ndim, const int64_t *shape, size_t elem_size);

/* Row-major strides (in elements) of shape. */
void mti_shape_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* 1 when strides are row-major for shape (dims of size 1 are ignored). */
int mti_shape_is_contiguous(int ndim, const int64_t *shape, const int64_t *strides);

/* 1 when two different indices of (shape, strides) may address the same
 * element (a stride 0 over a dim > 1, or interleaved strides). */
int mti_strides_overlap(int ndim, const int64_t *shape, const int64_t *strides);

/* Broadcast shape of a and b into out (NumPy rules); MT_ERR_SHAPE with a
 * message naming fn when they do not broadcast. out_ndim may alias. */
mt_status mti_shape_broadcast(const char *fn, int andim, const int64_t *ashape, int bndim,
                              const int64_t *bshape, int *out_ndim, int64_t *out_shape);

/* Normalises dim (negative counts from the end) for a tensor of ndim dims;
 * MT_ERR_SHAPE naming fn and arg when out of range. */
mt_status mti_dim_normalize(const char *fn, const char *arg, int dim, int ndim, int *out);

/* A view of v expanded to (ndim, shape): leading dims are added and dims of
 * size 1 get stride 0. The caller has checked that v broadcasts to shape. */
mti_view mti_view_broadcast_to(const mti_view *v, int ndim, const int64_t *shape);

/* Formats a shape as "[2, 3]" into buf (always NUL-terminated). */
const char *mti_shape_str(char *buf, size_t len, int ndim, const int64_t *shape);

#endif
