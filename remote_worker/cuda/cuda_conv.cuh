/*
 * cuda_conv.cuh - the index arithmetic of the convolution and pooling
 * kernels (cuda_conv.cu), host and device, so that the host test
 * (tests/cuda/test_cuda_conv_host.cu) checks it against the cpu backend.
 * The geometry and window rules themselves are core/conv_rules.h's.
 */
#ifndef MTW_CUDA_CONV_CUH
#define MTW_CUDA_CONV_CUH

#include <math.h>
#include <stdint.h>

#include "cuda_common.cuh"

extern "C" {
#include "core/conv_rules.h"
}

namespace mtw {

/* The strides (elements) of a conv input or a pool input as 4-d [n, c, h,
 * w]: conv1d's missing H and a pool's missing N get stride 0. */
struct strides4 {
  int64_t n, c, h, w;
};

/* A view's strides as [n, c, h, w]: 4-d as they are, conv1d's 3-d [n, c,
 * l] with no H (missing_h), a pool's 3-d [c, h, w] with no N. */
inline strides4 strides4_of(const mti_view &v, int missing_h) {
  strides4 s;
  if (v.ndim == 4) {
    s.n = v.strides[0], s.c = v.strides[1], s.h = v.strides[2], s.w = v.strides[3];
  } else if (missing_h) {
    s.n = v.strides[0], s.c = v.strides[1], s.h = 0, s.w = v.strides[2];
  } else {
    s.n = 0, s.c = v.strides[0], s.h = v.strides[1], s.w = v.strides[2];
  }
  return s;
}

/* Element i of the im2col columns of images [n0, n0 + count): the layout
 * is [count][c][kh][kw][oh * ow], c over all groups (so group g's K x P
 * block starts at row g * C/G * kh * kw). Sets the element offset of the
 * tap in x, or returns 0 when the tap reads padding. */
__host__ __device__ inline int im2col_source(const mti_conv_geom &g, strides4 xs, int64_t n0,
                                             int64_t i, int64_t *offset) {
  int64_t ow = i % g.ow, t = i / g.ow;
  int64_t oh = t % g.oh;
  t /= g.oh;
  int64_t kj = t % g.kw;
  t /= g.kw;
  int64_t ki = t % g.kh;
  t /= g.kh;
  int64_t c = t % g.c, n = n0 + t / g.c;
  int64_t ih = oh * g.sh - g.ph + ki * g.dh, iw = ow * g.sw - g.pw + kj * g.dw;
  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return 0;
  *offset = n * xs.n + c * xs.c + ih * xs.h + iw * xs.w;
  return 1;
}

/* Output i = ((n * o + oc) * oh + y) * ow + z of a conv as its parts. */
struct conv_out_index {
  int64_t n, oc, y, z;
};
__host__ __device__ inline conv_out_index conv_out_of(const mti_conv_geom &g, int64_t i) {
  conv_out_index r;
  r.z = i % g.ow;
  i /= g.ow;
  r.y = i % g.oh;
  i /= g.oh;
  r.oc = i % g.o;
  r.n = i / g.o;
  return r;
}

/* The accumulator of T: float for the 16-bit types and float32, double for float64. */
template <class T> struct acc_of {
  typedef float type;
};
template <> struct acc_of<double> {
  typedef double type;
};

/* Output i of a conv with one input channel per group (C / groups == 1):
 * the bias (when not NULL) plus the sum over the kernel's taps. */
template <class T>
__host__ __device__ inline T depthwise_output(const mti_conv_geom &g, strides4 xs, const T *x,
                                              strides4 ws, const T *w, const T *bias,
                                              int64_t bias_stride, int64_t i) {
  typedef typename acc_of<T>::type A;
  int64_t og = g.o / g.groups;
  conv_out_index r = conv_out_of(g, i);
  const T *plane = x + r.n * xs.n + (r.oc / og) * xs.c;
  A acc = bias ? convert<A>(bias[r.oc * bias_stride]) : A(0);
  for (int64_t ki = 0; ki < g.kh; ki++) {
    int64_t ih = r.y * g.sh - g.ph + ki * g.dh;
    if (ih < 0 || ih >= g.h) continue;
    for (int64_t kj = 0; kj < g.kw; kj++) {
      int64_t iw = r.z * g.sw - g.pw + kj * g.dw;
      if (iw < 0 || iw >= g.w) continue;
      acc += convert<A>(w[r.oc * ws.n + ki * ws.h + kj * ws.w]) *
             convert<A>(plane[ih * xs.h + iw * xs.w]);
    }
  }
  return convert<T>(acc);
}

/* ---- the backward (CONV_GRAD): a chunk of count images laid out as rows
 * [c kh kw][count P] (row c kh kw + tap holds that tap of channel c for
 * every image's P = OH * OW outputs side by side), dy as [O][count P], so
 * that cuBLAS does one product per group over every image. ---- */

/* Element i of the backward's columns of images [n0, n0 + count): the
 * forward's im2col_source of the same (image, row, pixel). */
__host__ __device__ inline int im2col_rows_source(const mti_conv_geom &g, strides4 xs, int64_t n0,
                                                  int64_t count, int64_t i, int64_t *offset) {
  int64_t p = g.oh * g.ow, q = i % p, t = i / p;
  int64_t n = t % count, row = t / count;
  return im2col_source(g, xs, n0, (n * g.c * g.kh * g.kw + row) * p + q, offset);
}

/* The offset in dy (strides ds, [N, O, OH, OW]) of element i of dy by
 * channel ([O][count P]) for images [n0, n0 + count). */
__host__ __device__ inline int64_t dy_by_channel_source(const mti_conv_geom &g, strides4 ds,
                                                        int64_t n0, int64_t count, int64_t i) {
  int64_t p = g.oh * g.ow, q = i % p, t = i / p;
  int64_t n = n0 + t % count, o = t / count;
  return n * ds.n + o * ds.c + (q / g.ow) * ds.h + (q % g.ow) * ds.w;
}

/* Element i ([count][C][H][W]) of dx for a chunk of images, from the
 * columns' gradient col ([c kh kw][count P]): the sum over the taps whose
 * window reads that input pixel (a gather, so no two threads write one
 * element). */
template <class A>
__host__ __device__ inline A col2im_sum(const mti_conv_geom &g, const A *col, int64_t count,
                                        int64_t i) {
  int64_t iw = i % g.w, t = i / g.w;
  int64_t ih = t % g.h;
  t /= g.h;
  int64_t c = t % g.c, n = t / g.c, p = g.oh * g.ow, ld = count * p;
  A acc = A(0);
  for (int64_t ki = 0; ki < g.kh; ki++) {
    int64_t y = ih + g.ph - ki * g.dh; /* = oh * sh for the output that reads it */
    if (y < 0 || y % g.sh || y / g.sh >= g.oh) continue;
    for (int64_t kj = 0; kj < g.kw; kj++) {
      int64_t z = iw + g.pw - kj * g.dw;
      if (z < 0 || z % g.sw || z / g.sw >= g.ow) continue;
      acc += col[((c * g.kh + ki) * g.kw + kj) * ld + n * p + (y / g.sh) * g.ow + z / g.sw];
    }
  }
  return acc;
}

/* Output i of a pool over planes [n, c] (channels per image): the max
 * (its flat H * W index to *index) or the average. */
template <class T>
__host__ __device__ inline T pool_output(const mti_pool_geom &g, int is_max, int adaptive,
                                         int64_t channels, strides4 xs, const T *x, int64_t i,
                                         int64_t *index) {
  typedef typename acc_of<T>::type A;
  int64_t z = i % g.ow, t = i / g.ow;
  int64_t y = t % g.oh, plane = t / g.oh;
  const T *src = x + (plane / channels) * xs.n + (plane % channels) * xs.c;
  int64_t h0, h1, w0, w1;
  mti_pool_window(&g, adaptive, y, z, &h0, &h1, &w0, &w1);
  if (is_max) {
    A best = -(A)INFINITY;
    int64_t at = h0 * g.w + w0;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) {
        A v = convert<A>(src[ih * xs.h + iw * xs.w]);
        if (v > best || v != v) best = v, at = ih * g.w + iw;
      }
    *index = at;
    return convert<T>(best);
  }
  A sum = 0;
  for (int64_t ih = h0; ih < h1; ih++)
    for (int64_t iw = w0; iw < w1; iw++) sum += convert<A>(src[ih * xs.h + iw * xs.w]);
  return convert<T>(sum / (A)mti_pool_divisor(&g, adaptive, y, z, h0, h1, w0, w1));
}

} /* namespace mtw */

#endif
