/*
 * conv_rules.h - the geometry of convolution and pooling that the op table
 * (src/core/op_table.c), the cpu kernels (src/cpu/conv.c, src/cpu/pool.c)
 * and the cuda kernels (remote_worker/cuda/cuda_conv*.cu) share: output
 * sizes, the attribute layout and torch's adaptive windows, written once so
 * the backends cannot drift apart.
 *
 * Attribute layout (ints):
 *   conv2d   [stride h, w, padding h, w, dilation h, w, groups]
 *   conv1d   [stride, padding, dilation, groups] (a conv2d with H = 1)
 *   pools    [kernel h, w, stride h, w, padding h, w]
 *   adaptive [out h, out w]
 */
#ifndef MTI_CONV_RULES_H
#define MTI_CONV_RULES_H

#include <stdint.h>

#include "core/dtype.h"
#include "core/op_table.h"

/* A convolution as a 2-d one: conv1d has H = kh = 1, stride/dilation 1 and
 * padding 0 along H. Every count is a tensor extent (>= 0). */
typedef struct mti_conv_geom {
  int64_t n, c, h, w;       /* input  [n, c, h, w]            */
  int64_t o, kh, kw;        /* weight [o, c / groups, kh, kw] */
  int64_t groups;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t oh, ow;           /* output [n, o, oh, ow]          */
} mti_conv_geom;

/* Output extent of a window of k taps spaced dil over in + 2 pad elements
 * at stride s: floor((in + 2 pad - dil (k - 1) - 1) / s) + 1, or -1 when the
 * dilated window is longer than the padded input. s, k, dil >= 1. */
MTI_HOST_DEVICE static inline int64_t mti_window_out(int64_t in, int64_t k, int64_t s,
                                                     int64_t pad, int64_t dil) {
  int64_t span = dil * (k - 1) + 1, room = in + 2 * pad;
  return room < span ? -1 : (room - span) / s + 1;
}

/* torch's adaptive window i of out over in: [floor(i in / out),
 * ceil((i + 1) in / out)). out >= 1. */
MTI_HOST_DEVICE static inline int64_t mti_adaptive_start(int64_t i, int64_t in, int64_t out) {
  return i * in / out;
}
MTI_HOST_DEVICE static inline int64_t mti_adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

/* The outputs o in [*lo, *hi) of n_out whose tap o * s + off (off = k dil -
 * pad) lands inside [0, n_in): the rest read padding. s >= 1. */
MTI_HOST_DEVICE static inline void mti_window_valid(int64_t n_out, int64_t n_in, int64_t s,
                                                    int64_t off, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = n_in - off <= 0 ? 0 : (n_in - off - 1) / s + 1;
  if (b > n_out) b = n_out;
  if (a > b) a = b;
  *lo = a, *hi = b;
}

/* avg_pool2d's divisor for the window starting at start along one dim
 * (count_include_pad: taps over the padded input, torch's
 * min(start + k, in + pad) - start). */
MTI_HOST_DEVICE static inline int64_t mti_avg_pool_taps(int64_t start, int64_t k, int64_t in,
                                                        int64_t pad) {
  int64_t end = start + k < in + pad ? start + k : in + pad;
  return end - start;
}

/* The geometry of a CONV node from its inputs' shapes and ints (already
 * validated by mti_infer: ranks, sizes, attribute ranges). */
static inline void mti_conv_geom_of(mti_op op, const int64_t *x_shape, const int64_t *w_shape,
                                    const int64_t *ints, mti_conv_geom *g) {
  int is_1d = op == MTI_OP_CONV1D;
  g->n = x_shape[0], g->c = x_shape[1];
  g->h = is_1d ? 1 : x_shape[2], g->w = x_shape[is_1d ? 2 : 3];
  g->o = w_shape[0];
  g->kh = is_1d ? 1 : w_shape[2], g->kw = w_shape[is_1d ? 2 : 3];
  if (is_1d) {
    g->sh = 1, g->sw = ints[0], g->ph = 0, g->pw = ints[1], g->dh = 1, g->dw = ints[2];
    g->groups = ints[3];
  } else {
    g->sh = ints[0], g->sw = ints[1], g->ph = ints[2], g->pw = ints[3];
    g->dh = ints[4], g->dw = ints[5], g->groups = ints[6];
  }
  g->oh = mti_window_out(g->h, g->kh, g->sh, g->ph, g->dh);
  g->ow = mti_window_out(g->w, g->kw, g->sw, g->pw, g->dw);
}

/* The conv backward ops (CONV_GRAD) carry conv2d's 7 ints and two extents:
 * x's [H, W] (CONV2D_INPUT_GRAD) or the weight's [kh, kw] (CONV2D_WEIGHT_GRAD). */
#define MTI_CONV_GRAD_N_INTS 9

/* The forward geometry of a CONV_GRAD node from dy's shape, its second
 * input's (the weight, or x) and its ints (already validated by mti_infer). */
static inline void mti_conv_grad_geom_of(mti_op op, const int64_t *dy_shape,
                                         const int64_t *other_shape, const int64_t *ints,
                                         mti_conv_geom *g) {
  g->n = dy_shape[0], g->o = dy_shape[1];
  g->sh = ints[0], g->sw = ints[1], g->ph = ints[2], g->pw = ints[3];
  g->dh = ints[4], g->dw = ints[5], g->groups = ints[6];
  if (op == MTI_OP_CONV2D_INPUT_GRAD) {
    g->c = other_shape[1] * g->groups, g->kh = other_shape[2], g->kw = other_shape[3];
    g->h = ints[7], g->w = ints[8];
  } else {
    g->c = other_shape[1], g->h = other_shape[2], g->w = other_shape[3];
    g->kh = ints[7], g->kw = ints[8];
  }
  g->oh = mti_window_out(g->h, g->kh, g->sh, g->ph, g->dh);
  g->ow = mti_window_out(g->w, g->kw, g->sw, g->pw, g->dw);
}

/* A pool's geometry: planes (the product of the dims before H, W), the
 * window and its output extents. */
typedef struct mti_pool_geom {
  int64_t planes, h, w;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t oh, ow;
} mti_pool_geom;

/* From a POOL2D or ADAPTIVE_POOL2D node's input shape (3-d or 4-d) and ints. */
static inline void mti_pool_geom_of(mti_op op, int ndim, const int64_t *shape,
                                    const int64_t *ints, mti_pool_geom *g) {
  g->planes = 1;
  for (int d = 0; d < ndim - 2; d++) g->planes *= shape[d];
  g->h = shape[ndim - 2], g->w = shape[ndim - 1];
  if (op == MTI_OP_ADAPTIVE_AVG_POOL2D) {
    g->oh = ints[0], g->ow = ints[1];
    g->kh = g->kw = g->sh = g->sw = 1, g->ph = g->pw = 0;
    return;
  }
  g->kh = ints[0], g->kw = ints[1], g->sh = ints[2], g->sw = ints[3];
  g->ph = ints[4], g->pw = ints[5];
  g->oh = mti_window_out(g->h, g->kh, g->sh, g->ph, 1);
  g->ow = mti_window_out(g->w, g->kw, g->sw, g->pw, 1);
}

/* The window of pool output (y, z) clamped to the input: rows [*h0, *h1),
 * cols [*w0, *w1); adaptive: torch's adaptive windows. */
MTI_HOST_DEVICE static inline void mti_pool_window(const mti_pool_geom *g, int adaptive,
                                                   int64_t y, int64_t z, int64_t *h0,
                                                   int64_t *h1, int64_t *w0, int64_t *w1) {
  if (adaptive) {
    *h0 = mti_adaptive_start(y, g->h, g->oh), *h1 = mti_adaptive_end(y, g->h, g->oh);
    *w0 = mti_adaptive_start(z, g->w, g->ow), *w1 = mti_adaptive_end(z, g->w, g->ow);
    return;
  }
  int64_t hs = y * g->sh - g->ph, ws = z * g->sw - g->pw;
  *h1 = hs + g->kh < g->h ? hs + g->kh : g->h;
  *w1 = ws + g->kw < g->w ? ws + g->kw : g->w;
  *h0 = hs > 0 ? hs : 0;
  *w0 = ws > 0 ? ws : 0;
}

/* The divisor of average pooling at output (y, z) whose clamped window is
 * [h0, h1) x [w0, w1): its size for adaptive windows, else the taps over
 * the padded input (count_include_pad). */
MTI_HOST_DEVICE static inline int64_t mti_pool_divisor(const mti_pool_geom *g, int adaptive,
                                                       int64_t y, int64_t z, int64_t h0,
                                                       int64_t h1, int64_t w0, int64_t w1) {
  if (adaptive) return (h1 - h0) * (w1 - w0);
  return mti_avg_pool_taps(y * g->sh - g->ph, g->kh, g->h, g->ph) *
         mti_avg_pool_taps(z * g->sw - g->pw, g->kw, g->w, g->pw);
}

#endif
