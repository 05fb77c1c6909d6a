/*
 * pool.c - max_pool2d, avg_pool2d (POOL2D) and adaptive_avg_pool2d
 * (ADAPTIVE_POOL2D) on host memory, torch's semantics.
 *
 * The input is read as planes of H x W (every dim before the last two is a
 * plane), staged contiguous in float32 (float64 for float64) when it is not
 * already; results are computed in that dtype and rounded into out once.
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

/* The window of output (oh, ow) clamped to the input: rows [*h0, *h1), cols [*w0, *w1). */
static void pool_window(const pool_problem *q, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                        int64_t *w0, int64_t *w1) {
  const mti_pool_geom *g = &q->g;
  if (q->op == MTI_OP_ADAPTIVE_AVG_POOL2D) {
    *h0 = mti_adaptive_start(oh, g->h, g->oh), *h1 = mti_adaptive_end(oh, g->h, g->oh);
    *w0 = mti_adaptive_start(ow, g->w, g->ow), *w1 = mti_adaptive_end(ow, g->w, g->ow);
    return;
  }
  int64_t hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
  *h1 = hs + g->kh < g->h ? hs + g->kh : g->h;
  *w1 = ws + g->kw < g->w ? ws + g->kw : g->w;
  *h0 = hs > 0 ? hs : 0;
  *w0 = ws > 0 ? ws : 0;
}

/* The divisor of avg pooling at (oh, ow). */
static int64_t pool_divisor(const pool_problem *q, int64_t oh, int64_t ow, int64_t h0, int64_t h1,
                            int64_t w0, int64_t w1) {
  const mti_pool_geom *g = &q->g;
  if (q->op == MTI_OP_ADAPTIVE_AVG_POOL2D) return (h1 - h0) * (w1 - w0);
  return mti_avg_pool_taps(oh * g->sh - g->ph, g->kh, g->h, g->ph) *
         mti_avg_pool_taps(ow * g->sw - g->pw, g->kw, g->w, g->pw);
}

#define POOL_PLANE(T)                                                                       \
  static void pool_plane_##T(const pool_problem *q, int64_t plane) {                        \
    const mti_pool_geom *g = &q->g;                                                         \
    const T *x = (const T *)q->x + plane * g->h * g->w;                                     \
    T *y = (T *)q->y + plane * g->oh * g->ow;                                               \
    int64_t *index = q->index ? q->index + plane * g->oh * g->ow : NULL;                    \
    for (int64_t oh = 0; oh < g->oh; oh++)                                                  \
      for (int64_t ow = 0; ow < g->ow; ow++) {                                              \
        int64_t h0, h1, w0, w1;                                                             \
        pool_window(q, oh, ow, &h0, &h1, &w0, &w1);                                         \
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
          y[oh * g->ow + ow] = sum / (T)pool_divisor(q, oh, ow, h0, h1, w0, w1);            \
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
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t p = 0; p < g->planes; p++) {
    if (q->ct == MT_FLOAT32)
      pool_plane_float(q, p);
    else
      pool_plane_double(q, p);
  }
}

mt_status mti_cpu_pool2d(mti_op op, const mti_view *in, const mti_attrs *at,
                         const mti_view *out) {
  const char *fn = mti_op_get((int)op)->fn;
  int64_t out_numel = mti_shape_numel(out[0].ndim, out[0].shape);
  if (out_numel == 0) return MT_OK;
  pool_problem q;
  memset(&q, 0, sizeof q);
  q.op = op;
  mti_pool_geom_of(op, in->ndim, in->shape, at->ints, &q.g);
  q.ct = out[0].dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  size_t es = mt_dtype_size(q.ct);
  void *xbuf = NULL, *ybuf = NULL;
  mt_status s = MT_OK;
  if (in->dtype == q.ct && mti_shape_is_contiguous(in->ndim, in->shape, in->strides)) {
    q.x = in->data;
  } else {
    size_t bytes = (size_t)mti_shape_numel(in->ndim, in->shape) * es;
    mti_view staged = *in;
    if (!(xbuf = malloc(bytes ? bytes : 1))) return mti_error_oom(fn, bytes);
    staged.data = xbuf;
    staged.dtype = q.ct;
    mti_shape_contiguous_strides(in->ndim, in->shape, staged.strides);
    s = mti_cpu_convert(in, &staged);
    q.x = xbuf;
  }
  if (s == MT_OK && out[0].dtype != q.ct && !(ybuf = malloc((size_t)out_numel * es)))
    s = mti_error_oom(fn, (size_t)out_numel * es);
  if (s == MT_OK) {
    q.y = ybuf ? ybuf : out[0].data;
    q.index = op == MTI_OP_MAX_POOL2D ? (int64_t *)out[1].data : NULL;
    pool_compute(&q);
    if (ybuf) {
      mti_view y = out[0];
      y.data = ybuf;
      y.dtype = q.ct;
      s = mti_cpu_convert(&y, &out[0]);
    }
  }
  free(xbuf);
  free(ybuf);
  return s;
}
