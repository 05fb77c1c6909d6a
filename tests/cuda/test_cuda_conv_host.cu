/*
 * test_cuda_conv_host.cu - host-side checks of the index arithmetic of the
 * CUDA convolution and pooling kernels (remote_worker/cuda/cuda_conv.cuh),
 * without a GPU.
 *
 * The conv is simulated as cuda_conv.c computes it: im2col_source fills
 * the columns ([images][C][kh][kw][P], group g's rows at g * C/G * kh *
 * kw), then out[n, g * O/G + o, p] = sum_k W[g * O/G + o, k] col[n, g, k,
 * p], the product cuBLAS is asked for; depthwise_output and pool_output
 * (the kernels' bodies) run element by element. Every result must equal
 * the cpu backend's (mti_cpu_run) on the same float64 inputs, some of them
 * strided views. The backward (CONV_GRAD) is simulated the same way from
 * its layouts (dy by channel, columns [C kh kw][count P], col2im_sum).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "cuda/cuda_conv.cuh"

extern "C" {
#include "cpu/cpu_backend.h"
}

#include "host_check.h"

using namespace mtw;

static std::vector<double> ramp(int64_t n, double scale) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; i++) v[i] = fmod((double)(i * 37 % 101) * scale, 7.0) - 3.0;
  return v;
}

static mti_view view_of(double *data, int ndim, const int64_t *shape) {
  mti_view v;
  memset(&v, 0, sizeof v);
  v.data = data;
  v.dtype = MT_FLOAT64;
  v.ndim = ndim;
  for (int d = 0; d < ndim; d++) v.shape[d] = shape[d];
  mti_shape_contiguous_strides(ndim, shape, v.strides);
  return v;
}

struct conv_case {
  mti_op op;
  int64_t n, c, h, w, o, kh, kw;
  int64_t ints[7];
  int bias, transposed;
};

/* The cpu's result for the conv of x (a [.., w, h] buffer transposed to
 * [.., h, w] when transposed) against the simulated cuda one. */
static void check_conv(const conv_case &k) {
  int conv1d = k.op == MTI_OP_CONV1D;
  int64_t xs[4] = {k.n, k.c, k.h, k.w}, ws[4] = {k.o, k.c / k.ints[conv1d ? 3 : 6], k.kh, k.kw};
  if (conv1d) xs[2] = k.w, ws[2] = k.kw;
  int rank = conv1d ? 3 : 4;
  int64_t xn = k.n * k.c * k.h * k.w, wn = ws[0] * ws[1] * k.kh * k.kw;
  std::vector<double> xv = ramp(xn, 0.37), wv = ramp(wn, 0.61), bv = ramp(k.o, 1.3);
  mti_view in[3];
  in[0] = view_of(xv.data(), rank, xs);
  if (k.transposed && !conv1d) { /* the buffer holds [n, c, w, h]: swap the last two dims */
    in[0].strides[2] = 1;
    in[0].strides[3] = k.h;
  }
  in[1] = view_of(wv.data(), rank, ws);
  in[2] = view_of(bv.data(), 1, &k.o);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.n_ints = conv1d ? 4 : 7;
  for (int i = 0; i < at.n_ints; i++) at.ints[i] = k.ints[i];
  if (k.bias) at.flags = MTI_FLAG_PRESENT(2);
  mti_meta metas[3], out_meta;
  for (int i = 0; i < 3; i++) {
    metas[i].dtype = MT_FLOAT64;
    metas[i].ndim = in[i].ndim;
    memcpy(metas[i].shape, in[i].shape, sizeof metas[i].shape);
  }
  CHECK(mti_infer(k.op, 3, metas, &at, &out_meta) == MT_OK, "infer: %s", mt_last_error());
  int64_t on = mti_shape_numel(out_meta.ndim, out_meta.shape);
  std::vector<double> cpu(on), sim(on, 0.0);
  mti_view out = view_of(cpu.data(), out_meta.ndim, out_meta.shape);
  CHECK(mti_cpu_run(k.op, in, 3, &at, &out) == MT_OK, "cpu: %s", mt_last_error());

  mti_conv_geom g;
  mti_conv_geom_of(k.op, in[0].shape, in[1].shape, at.ints, &g);
  strides4 sx = strides4_of(in[0], conv1d), sw = strides4_of(in[1], conv1d);
  int64_t cg = g.c / g.groups, og = g.o / g.groups, kk = cg * g.kh * g.kw, p = g.oh * g.ow;
  if (cg == 1) {
    for (int64_t i = 0; i < on; i++)
      sim[i] = depthwise_output(g, sx, xv.data(), sw, wv.data(), k.bias ? bv.data() : NULL,
                                in[2].strides[0], i);
  } else {
    std::vector<double> col(g.n * g.c * g.kh * g.kw * p);
    for (int64_t i = 0; i < (int64_t)col.size(); i++) {
      int64_t off;
      col[i] = im2col_source(g, sx, 0, i, &off) ? xv[off] : 0.0;
    }
    for (int64_t n = 0; n < g.n; n++)
      for (int64_t grp = 0; grp < g.groups; grp++)
        for (int64_t o = 0; o < og; o++)
          for (int64_t q = 0; q < p; q++) {
            int64_t oc = grp * og + o;
            double acc = k.bias ? bv[oc] : 0.0;
            for (int64_t t = 0; t < kk; t++)
              acc += wv[oc * kk + t] * col[((n * g.groups + grp) * kk + t) * p + q];
            sim[(n * g.o + oc) * p + q] = acc;
          }
  }
  for (int64_t i = 0; i < on; i++)
    CHECK(fabs(cpu[i] - sim[i]) <= 1e-9 * (1 + fabs(cpu[i])), "conv op %d case n%lld c%lld: "
          "element %lld cpu %g cuda %g", (int)k.op, (long long)k.n, (long long)k.c,
          (long long)i, cpu[i], sim[i]);
}

/* The cpu's CONV_GRAD op (op) on dy and other (the weight or x), float64. */
static std::vector<double> cpu_conv_grad(mti_op op, const mti_view *in, const mti_attrs &at) {
  mti_meta metas[2], out_meta;
  for (int i = 0; i < 2; i++) {
    metas[i].dtype = MT_FLOAT64;
    metas[i].ndim = in[i].ndim;
    memcpy(metas[i].shape, in[i].shape, sizeof metas[i].shape);
  }
  CHECK(mti_infer(op, 2, metas, &at, &out_meta) == MT_OK, "infer: %s", mt_last_error());
  std::vector<double> cpu(mti_shape_numel(out_meta.ndim, out_meta.shape));
  mti_view out = view_of(cpu.data(), out_meta.ndim, out_meta.shape);
  CHECK(mti_cpu_run(op, in, 2, &at, &out) == MT_OK, "cpu: %s", mt_last_error());
  return cpu;
}

/* The backward as cuda_conv.c computes it, in chunks of `chunk` images:
 * dy by channel (dy_by_channel_source), the columns (im2col_rows_source),
 * the products cuBLAS is asked for, and col2im_sum; both gradients must
 * equal the cpu backend's. */
static void check_conv_grad(const conv_case &k, int64_t chunk) {
  int64_t xs[4] = {k.n, k.c, k.h, k.w}, ws[4] = {k.o, k.c / k.ints[6], k.kh, k.kw};
  mti_conv_geom g;
  mti_conv_geom_of(MTI_OP_CONV2D, xs, ws, k.ints, &g);
  int64_t ys[4] = {k.n, k.o, g.oh, g.ow};
  std::vector<double> xv = ramp(k.n * k.c * k.h * k.w, 0.37);
  std::vector<double> wv = ramp(ws[0] * ws[1] * k.kh * k.kw, 0.61);
  std::vector<double> dyv = ramp(k.n * k.o * g.oh * g.ow, 0.23);
  mti_view dy = view_of(dyv.data(), 4, ys), x = view_of(xv.data(), 4, xs);
  mti_view w = view_of(wv.data(), 4, ws);
  if (k.transposed) x.strides[2] = 1, x.strides[3] = k.h; /* the buffer holds [n, c, w, h] */
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.n_ints = MTI_CONV_GRAD_N_INTS;
  for (int i = 0; i < 7; i++) at.ints[i] = k.ints[i];
  at.ints[7] = k.h, at.ints[8] = k.w;
  mti_view in_dx[2] = {dy, w};
  std::vector<double> dx_cpu = cpu_conv_grad(MTI_OP_CONV2D_INPUT_GRAD, in_dx, at);
  at.ints[7] = k.kh, at.ints[8] = k.kw;
  mti_view in_dw[2] = {dy, x};
  std::vector<double> dw_cpu = cpu_conv_grad(MTI_OP_CONV2D_WEIGHT_GRAD, in_dw, at);

  int64_t og = g.o / g.groups, kk = (g.c / g.groups) * g.kh * g.kw, p = g.oh * g.ow;
  int64_t rows = g.c * g.kh * g.kw, image = g.c * g.h * g.w;
  std::vector<double> dx(dx_cpu.size()), dw(dw_cpu.size(), 0.0);
  strides4 sx = strides4_of(x, 0), sd = strides4_of(dy, 0);
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    int64_t count = g.n - n0 < chunk ? g.n - n0 : chunk, np = count * p;
    std::vector<double> dy_t(g.o * np), col(rows * np), dcol(rows * np, 0.0);
    for (int64_t i = 0; i < g.o * np; i++)
      dy_t[i] = dyv[dy_by_channel_source(g, sd, n0, count, i)];
    for (int64_t i = 0; i < rows * np; i++) {
      int64_t off;
      col[i] = im2col_rows_source(g, sx, n0, count, i, &off) ? xv[off] : 0.0;
    }
    for (int64_t grp = 0; grp < g.groups; grp++)
      for (int64_t o = 0; o < og; o++)
        for (int64_t t = 0; t < kk; t++)
          for (int64_t q = 0; q < np; q++) {
            int64_t oc = grp * og + o, r = grp * kk + t;
            dw[oc * kk + t] += dy_t[oc * np + q] * col[r * np + q];
            dcol[r * np + q] += wv[oc * kk + t] * dy_t[oc * np + q];
          }
    for (int64_t i = 0; i < count * image; i++)
      dx[n0 * image + i] = col2im_sum(g, dcol.data(), count, i);
  }
  for (size_t i = 0; i < dx.size(); i++)
    CHECK(fabs(dx[i] - dx_cpu[i]) <= 1e-9 * (1 + fabs(dx_cpu[i])), "input grad n%lld c%lld "
          "chunk %lld: element %zu cpu %g cuda %g", (long long)k.n, (long long)k.c,
          (long long)chunk, i, dx_cpu[i], dx[i]);
  for (size_t i = 0; i < dw.size(); i++)
    CHECK(fabs(dw[i] - dw_cpu[i]) <= 1e-9 * (1 + fabs(dw_cpu[i])), "weight grad n%lld c%lld "
          "chunk %lld: element %zu cpu %g cuda %g", (long long)k.n, (long long)k.c,
          (long long)chunk, i, dw_cpu[i], dw[i]);
}

/* The windows of im2col_source against the definition, element by element. */
static void check_im2col_layout(void) {
  mti_conv_geom g = {2, 3, 5, 4, 2, 2, 3, 1, 2, 1, 1, 2, 1, 2, 0, 0};
  g.oh = mti_window_out(g.h, g.kh, g.sh, g.ph, g.dh);
  g.ow = mti_window_out(g.w, g.kw, g.sw, g.pw, g.dw);
  strides4 s = {g.c * g.h * g.w, g.h * g.w, g.w, 1};
  int64_t i = 0;
  for (int64_t n = 1; n < g.n; n++) /* images from n0 = 1 */
    for (int64_t c = 0; c < g.c; c++)
      for (int64_t ki = 0; ki < g.kh; ki++)
        for (int64_t kj = 0; kj < g.kw; kj++)
          for (int64_t y = 0; y < g.oh; y++)
            for (int64_t z = 0; z < g.ow; z++, i++) {
              int64_t ih = y * g.sh - g.ph + ki * g.dh, iw = z * g.sw - g.pw + kj * g.dw;
              int inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
              int64_t off = -1;
              int got = im2col_source(g, s, 1, i, &off);
              CHECK(got == inside, "im2col %lld: inside %d, got %d", (long long)i, inside, got);
              if (inside)
                CHECK(off == ((n * g.c + c) * g.h + ih) * g.w + iw, "im2col %lld: offset %lld",
                      (long long)i, (long long)off);
            }
}

static void check_pool(mti_op op, int ndim, const int64_t *shape, const int64_t *ints,
                       int transposed) {
  int64_t n = mti_shape_numel(ndim, shape);
  std::vector<double> xv = ramp(n, 0.29);
  xv[3] = NAN, xv[n / 2] = -INFINITY, xv[n - 2] = INFINITY;
  mti_view in = view_of(xv.data(), ndim, shape);
  if (transposed) in.strides[ndim - 1] = shape[ndim - 2], in.strides[ndim - 2] = 1;
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.n_ints = op == MTI_OP_ADAPTIVE_AVG_POOL2D ? 2 : 6;
  for (int i = 0; i < at.n_ints; i++) at.ints[i] = ints[i];
  mti_meta meta, outs[2];
  meta.dtype = MT_FLOAT64, meta.ndim = ndim;
  memcpy(meta.shape, shape, (size_t)ndim * sizeof *shape);
  CHECK(mti_infer(op, 1, &meta, &at, outs) == MT_OK, "infer: %s", mt_last_error());
  int64_t on = mti_shape_numel(outs[0].ndim, outs[0].shape);
  std::vector<double> cpu(on);
  std::vector<int64_t> cpu_index(on), sim_index(on);
  mti_view out[2];
  out[0] = view_of(cpu.data(), outs[0].ndim, outs[0].shape);
  out[1] = out[0];
  out[1].data = cpu_index.data();
  out[1].dtype = MT_INT64;
  CHECK(mti_cpu_run(op, &in, 1, &at, out) == MT_OK, "cpu: %s", mt_last_error());
  mti_pool_geom g;
  mti_pool_geom_of(op, ndim, shape, at.ints, &g);
  int is_max = op == MTI_OP_MAX_POOL2D, adaptive = op == MTI_OP_ADAPTIVE_AVG_POOL2D;
  for (int64_t i = 0; i < on; i++) {
    int64_t at_index = 0;
    double v = pool_output(g, is_max, adaptive, shape[ndim - 3], strides4_of(in, 0), xv.data(), i,
                           &at_index);
    int same = (isnan(v) && isnan(cpu[i])) || v == cpu[i] ||
               fabs(v - cpu[i]) <= 1e-12 * (1 + fabs(cpu[i]));
    CHECK(same, "pool op %d element %lld: cpu %g cuda %g", (int)op, (long long)i, cpu[i], v);
    if (is_max)
      CHECK(at_index == cpu_index[i], "max_pool2d element %lld: index cpu %lld cuda %lld",
            (long long)i, (long long)cpu_index[i], (long long)at_index);
  }
}

int main(void) {
  check_im2col_layout();
  static const conv_case convs[] = {
      {MTI_OP_CONV2D, 2, 3, 6, 5, 4, 3, 3, {1, 1, 1, 1, 1, 1, 1}, 1, 0},
      {MTI_OP_CONV2D, 1, 4, 9, 10, 6, 3, 2, {2, 3, 1, 0, 2, 1, 2}, 0, 1},
      {MTI_OP_CONV2D, 2, 4, 6, 5, 8, 3, 3, {1, 2, 1, 1, 1, 1, 4}, 1, 1},  /* depthwise x2 */
      {MTI_OP_CONV2D, 2, 6, 4, 6, 4, 1, 1, {1, 1, 0, 0, 1, 1, 2}, 1, 0},  /* 1x1 groups 2 */
      {MTI_OP_CONV2D, 1, 2, 4, 9, 2, 2, 3, {3, 4, 1, 2, 1, 3, 1}, 1, 1},
      {MTI_OP_CONV1D, 2, 6, 1, 11, 4, 1, 3, {2, 2, 3, 2}, 1, 0},
      {MTI_OP_CONV1D, 2, 3, 1, 8, 6, 1, 3, {1, 1, 1, 3}, 0, 0},            /* depthwise 1-d */
  };
  for (const conv_case &k : convs) check_conv(k);
  for (const conv_case &k : convs)
    if (k.op == MTI_OP_CONV2D)
      for (int64_t chunk = 1; chunk <= k.n; chunk++) check_conv_grad(k, chunk);
  static const int64_t s4[4] = {2, 3, 7, 6}, s3[3] = {3, 5, 8};
  static const int64_t windows[][6] = {{2, 2, 2, 2, 0, 0}, {3, 3, 2, 1, 1, 1}, {3, 2, 1, 3, 1, 0}};
  for (int t = 0; t < 2; t++)
    for (const auto &w : windows) {
      check_pool(MTI_OP_MAX_POOL2D, 4, s4, w, t);
      check_pool(MTI_OP_AVG_POOL2D, 4, s4, w, t);
      check_pool(MTI_OP_MAX_POOL2D, 3, s3, w, t);
      check_pool(MTI_OP_AVG_POOL2D, 3, s3, w, t);
    }
  static const int64_t sizes[][2] = {{1, 1}, {3, 4}, {7, 6}, {5, 9}, {2, 3}};
  for (const auto &sz : sizes) {
    check_pool(MTI_OP_ADAPTIVE_AVG_POOL2D, 4, s4, sz, 0);
    check_pool(MTI_OP_ADAPTIVE_AVG_POOL2D, 3, s3, sz, 1);
  }
  return host_check_report();
}
