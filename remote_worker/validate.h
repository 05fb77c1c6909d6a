/*
 * validate.h - checks of views that arrive from the wire.
 */
#ifndef MTW_VALIDATE_H
#define MTW_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "modaltensor.h"

/* A view of a storage after validation. */
typedef struct mtw_view_desc {
  int64_t offset; /* elements */
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS]; /* 0 for dims of size 1, and all 0 for empty views */
  int64_t numel;
} mtw_view_desc;

/* Checks a view (offset, shape, strides in elements; no strides means
 * row-major) of a storage of storage_numel elements of elem_size bytes: at
 * most MT_MAX_DIMS dims, none negative, a byte size that fits in int64, as
 * many strides as dims, and every element it can reach inside the storage.
 * The arithmetic cannot overflow whatever the input. On failure sets the
 * error "what: reason" and returns its status. */
mt_status mtw_view_check(const char *what, int64_t offset, size_t n_shape, const int64_t *shape,
                         size_t n_strides, const int64_t *strides, int64_t storage_numel,
                         size_t elem_size, mtw_view_desc *out);

#endif
