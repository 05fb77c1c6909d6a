/*
 * pool.c - max_pool2d, avg_pool2d (POOL2D) and adaptive_avg_pool2d
 * (ADAPTIVE_POOL2D) on host memory, torch's semantics.
 *
 * The input is read as planes of H x W (every dim before the last two is a
 * plane), staged contiguous in float32 (float64 for float64) when it is not
 * already (cpu/rows.h); results are computed in that dtype and rounded into
 * out once.
 * max_pool2d takes a NaN as the maximum (torch's `val > max || isnan(val)`,
 * so the last NaN of a window wins) and writes the flat index into H * W of
 * the maximum to out[1]; a window of -inf only reports its first valid
 * position, as torch does. avg_pool2d divides by the window's taps over
 * the padded input (count_include_pad); adaptive windows are torch's
 * (core/conv_rules.h). Threaded over planes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv_rules.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cpu/cpu_kernels.h"
#include "cpu/stop.h"
#include "cpu/rows.h"

/* Window taps per thread below which a region does not pay. */
#define POOL_MIN_PER_THREAD ((int64_t)32768)

typedef struct pool_problem {
  mti_op op;
  mti_pool_geom g;
  mt_dtype ct;
  const void *x;  /* contiguous planes in ct */
  void *y;        /* contiguous out planes in ct */
  int64_t *index; /* max_pool2d's argmax, or NULL */
} pool_problem;

#define POOL_PLANE(T)                                                                       \
  static void pool_plane_##T(const pool_problem *q, int64_t plane) {                        \
    const mti_pool_geom *g = &q->g;                                                         \
    const T *x = (const T *)q->x + plane * g->h * g->w;                                     \
    T *y = (T *)q->y + plane * g->oh * g->ow;                                               \
    int64_t *index = q->index ? q->index + plane * g->oh * g->ow : NULL;                    \
    int adaptive = q->op == MTI_OP_ADAPTIVE_AVG_POOL2D;                                     \
    for (int64_t oh = 0; oh < g->oh; oh++)                                                  \
      for (int64_t ow = 0; ow < g->ow; ow++) {                                              \
        int64_t h0, h1, w0, w1;                                                             \
        mti_pool_window(g, adaptive, oh, ow, &h0, &h1, &w0, &w1);                           \
        if (q->op == MTI_OP_MAX_POOL2D) {                                                   \
          T best = (T)-INFINITY;                                                            \
          int64_t at = h0 * g->w + w0;                                                      \
          for (int64_t ih = h0; ih < h1; ih++)                                              \
            for (int64_t iw = w0; iw < w1; iw++) {                                          \
              T v = x[ih * g->w + iw];                                                      \
              if (v > best || isnan(v)) best = v, at = ih * g->w + iw;                      \
            }                                                                               \
          y[oh * g->ow + ow] = best;                                                        \
          index[oh * g->ow + ow] = at;                                                      \
        } else {                                                                            \
          T sum = 0;                                                                        \
          for (int64_t ih = h0; ih < h1; ih++)                                              \
            for (int64_t iw = w0; iw < w1; iw++) sum += x[ih * g->w + iw];                  \
          y[oh * g->ow + ow] = sum / (T)mti_pool_divisor(g, adaptive, oh, ow, h0, h1, w0, w1); \
        }                                                                                   \
      }                                                                                     \
  }
POOL_PLANE(float)
POOL_PLANE(double)
#undef POOL_PLANE

/* Taps one output reads, about: the kernel, or an adaptive window. */
static int64_t taps_per_output(const mti_pool_geom *g, mti_op op) {
  if (op != MTI_OP_ADAPTIVE_AVG_POOL2D) return g->kh * g->kw;
  return (g->h / (g->oh ? g->oh : 1) + 1) * (g->w / (g->ow ? g->ow : 1) + 1);
}

static void pool_compute(const pool_problem *q) {
  const mti_pool_geom *g = &q->g;
  int64_t work = g->planes * g->oh * g->ow * taps_per_output(g, q->op);
  int nt = mti_cpu_threads_for(work, POOL_MIN_PER_THREAD);
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t p = 0; p < g->planes; p++) {
    if (mti_cpu_stop_raised(stop)) continue;
    if (q->ct == MT_FLOAT32)
      pool_plane_float(q, p);
    else
      pool_plane_double(q, p);
  }
}

mt_status mti_cpu_pool2d(mti_op op, const mti_view *in, const mti_attrs *at,
                         const mti_view *out) {
  const char *fn = mti_op_get((int)op)->fn;
  if (mti_shape_numel(out[0].ndim, out[0].shape) == 0) return MT_OK;
  pool_problem q;
  memset(&q, 0, sizeof q);
  q.op = op;
  mti_pool_geom_of(op, in->ndim, in->shape, at->ints, &q.g);
  q.ct = out[0].dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  mti_rows x, y;
  mt_status s = mti_rows_read(fn, in, 0, q.ct, &x);
  if (s) return s;
  if ((s = mti_rows_for_out(fn, &out[0], 0, q.ct, &y)) == MT_OK) {
    q.x = x.data;
    q.y = y.data;
    q.index = op == MTI_OP_MAX_POOL2D ? (int64_t *)out[1].data : NULL;
    pool_compute(&q);
    s = mti_rows_write_back(&y, &out[0], 0);
  }
  mti_rows_free(&x);
  return s;
}
