/*
 * cpu_backend.h - runs one op on strided host memory.
 *
 * Knows nothing of devices, handles or the network: the library's in-process
 * path and the worker's cpu backend both call mti_cpu_run on views they own.
 */
#ifndef MTI_CPU_BACKEND_H
#define MTI_CPU_BACKEND_H

#include "core/op_table.h"
#include "core/shape.h"

/* Computes op into its outputs out[0..nout) (ops.def's NOUT), already
 * allocated with the shapes and dtypes mti_infer gave (contiguous, except
 * for COPY whose out may be any non-overlapping view). in holds n inputs with their own shapes; for
 * LAYER_NORM in[1] and in[2] are read only when the attrs flags say they are
 * present. Inputs and out must not overlap, except that COPY tolerates any
 * overlap by staging. Returns MT_OK, or a status with the thread's error set
 * (data-dependent failures only: an index out of range, out of memory). */
mt_status mti_cpu_run(mti_op op, const mti_view *in, int n, const mti_attrs *at,
                      const mti_view *out);

#endif
