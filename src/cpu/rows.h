/*
 * rows.h - a view's elements as contiguous rows along some of its dims,
 * for the kernels that work one row at a time (row_reduce.c, scan_sort.c).
 *
 * The dims of a mask are moved last (in their order), the others stay
 * first (in theirs): the view is then nrows rows of len elements, and the
 * kept dims enumerate the rows in out's row-major order.
 */
#ifndef MTI_CPU_ROWS_H
#define MTI_CPU_ROWS_H

#include <stdint.h>

#include "core/shape.h"

/* A view's elements as rows: data holds nrows rows of len elements of
 * dtype, contiguous; owned is the staged copy to free (NULL when data is
 * the view's own memory). */
typedef struct mti_rows {
  char *data;
  char *owned;
  mt_dtype dtype;
  int64_t nrows, len;
} mti_rows;

/* v with the dims of mask (bits beyond v's dims are ignored) moved last. */
mti_view mti_view_dims_last(const mti_view *v, uint32_t mask);

/* The rows of v along mask in dtype dt: v's memory when it is already
 * laid out so (and of dt), else a staged copy converted with
 * mti_cpu_convert. MT_ERR_OUT_OF_MEMORY names fn. */
mt_status mti_rows_read(const char *fn, const mti_view *v, uint32_t mask, mt_dtype dt,
                        mti_rows *r);

/* Room for out's elements as rows along mask in dtype dt: out's memory
 * when results can go there directly, else a buffer that
 * mti_rows_write_back converts into out. */
mt_status mti_rows_for_out(const char *fn, const mti_view *out, uint32_t mask, mt_dtype dt,
                           mti_rows *r);

/* Stores rows made by mti_rows_for_out into out (when they are not out's
 * memory already) and frees them. */
mt_status mti_rows_write_back(mti_rows *r, const mti_view *out, uint32_t mask);

/* Frees a staged copy (nothing for a view's own memory). */
void mti_rows_free(mti_rows *r);

#endif
