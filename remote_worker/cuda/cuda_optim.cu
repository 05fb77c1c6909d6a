/*
 * cuda_optim.cu - the optimizer updates SGD_STEP and ADAMW_STEP on the GPU:
 * one thread per element (grid-stride), reading the param, its gradient
 * and its state and writing the new param and state, with the element
 * rules of core/optim_rules.h that the cpu kernels (src/cpu/optim.c) use.
 * Compiled with --fmad=false (remote_worker/CMakeLists.txt), so every
 * product and sum rounds on its own as on the cpu, and the two backends
 * give the same bits; sqrt and division are IEEE (nvcc's defaults).
 *
 * Inputs may be strided views (their element offsets come from a desc);
 * outputs are contiguous. The state is rounded to its storage dtype before
 * the param's update reads it, as on the cpu.
 */
#include "cuda_common.cuh"

extern "C" {
#include "core/optim_rules.h"
}

namespace mtw {
namespace {

enum { THREADS = 256 };

/* The compute type of a storage type: float, double for double. */
template <class T> struct optim_compute { typedef float type; };
template <> struct optim_compute<double> { typedef double type; };

/* The shared rules by compute type. */
__host__ __device__ __forceinline__ float sgd_decayed(float g, float p, float wd) {
  return mti_sgd_decayed_f32(g, p, wd);
}
__host__ __device__ __forceinline__ double sgd_decayed(double g, double p, double wd) {
  return mti_sgd_decayed_f64(g, p, wd);
}
__host__ __device__ __forceinline__ float sgd_buffer(float b, float d, float mom) {
  return mti_sgd_buffer_f32(b, d, mom);
}
__host__ __device__ __forceinline__ double sgd_buffer(double b, double d, double mom) {
  return mti_sgd_buffer_f64(b, d, mom);
}
__host__ __device__ __forceinline__ float sgd_direction(float d, float b, float mom, int nest) {
  return mti_sgd_direction_f32(d, b, mom, nest);
}
__host__ __device__ __forceinline__ double sgd_direction(double d, double b, double mom,
                                                         int nest) {
  return mti_sgd_direction_f64(d, b, mom, nest);
}
__host__ __device__ __forceinline__ float sgd_param(float p, float d, float neg_lr) {
  return mti_sgd_param_f32(p, d, neg_lr);
}
__host__ __device__ __forceinline__ double sgd_param(double p, double d, double neg_lr) {
  return mti_sgd_param_f64(p, d, neg_lr);
}
__host__ __device__ __forceinline__ float adamw_m(float m, float g, float b1, float omb1) {
  return mti_adamw_m_f32(m, g, b1, omb1);
}
__host__ __device__ __forceinline__ double adamw_m(double m, double g, double b1, double omb1) {
  return mti_adamw_m_f64(m, g, b1, omb1);
}
__host__ __device__ __forceinline__ float adamw_v(float v, float g, float b2, float omb2) {
  return mti_adamw_v_f32(v, g, b2, omb2);
}
__host__ __device__ __forceinline__ double adamw_v(double v, double g, double b2, double omb2) {
  return mti_adamw_v_f64(v, g, b2, omb2);
}
__host__ __device__ __forceinline__ float adamw_param(float p, float m, float v, float decay,
                                                      float neg_step, float bc2s, float eps) {
  return mti_adamw_param_f32(p, m, v, decay, neg_step, bc2s, eps);
}
__host__ __device__ __forceinline__ double adamw_param(double p, double m, double v,
                                                       double decay, double neg_step,
                                                       double bc2s, double eps) {
  return mti_adamw_param_f64(p, m, v, decay, neg_step, bc2s, eps);
}

/* The scalars of one update in compute type C. */
template <class C> struct sgd_scalars {
  C neg_lr, momentum, weight_decay;
  int nesterov;
  int mode; /* 0: no momentum; 1: first step (buf = d); 2: buf * momentum + d */
};
template <class C> struct adamw_scalars {
  C decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, neg_step, bc2_sqrt;
  mti_adamw_coef exact; /* in double, for the step's bias corrections */
};

/* The scalars from the attrs (host; the host tests use these too). */
template <class C> sgd_scalars<C> make_sgd_scalars(const mti_attrs *at) {
  mti_sgd_coef c = mti_sgd_prepare(at);
  sgd_scalars<C> k;
  k.neg_lr = (C)c.neg_lr;
  k.momentum = (C)c.momentum;
  k.weight_decay = (C)c.weight_decay;
  k.nesterov = c.nesterov;
  k.mode = !(c.momentum > 0) ? 0 : (at->flags & MTI_FLAG_PRESENT(2)) ? 2 : 1;
  return k;
}

/* The attrs' part; adamw_at_step adds the step's. */
template <class C> adamw_scalars<C> make_adamw_scalars(const mti_attrs *at) {
  mti_adamw_coef c = mti_adamw_prepare(at);
  adamw_scalars<C> k;
  k.decay = (C)c.decay;
  k.beta1 = (C)c.beta1;
  k.one_minus_beta1 = (C)c.one_minus_beta1;
  k.beta2 = (C)c.beta2;
  k.one_minus_beta2 = (C)c.one_minus_beta2;
  k.eps = (C)c.eps;
  k.exact = c;
  return k;
}

/* The bias corrections of step t, in double as on the cpu. */
template <class C> __host__ __device__ void adamw_at_step(adamw_scalars<C> *k, double t) {
  mti_adamw_at_step(&k->exact, t);
  k->neg_step = (C)k->exact.neg_step_size;
  k->bc2_sqrt = (C)k->exact.bc2_sqrt;
}

/* Element e of an input: contiguous, or through its desc. */
template <class T>
__host__ __device__ __forceinline__ T load_at(const T *x, const desc &d, bool contig, int64_t e) {
#ifdef __CUDA_ARCH__
  return x[contig ? e : offset_of(d, e)];
#else
  (void)d;
  (void)contig;
  return x[e]; /* host tests pass contiguous arrays */
#endif
}

/* One element of SGD_STEP (host and device, so host tests can run it). */
template <class T>
__host__ __device__ __forceinline__ void sgd_element(
    T p, T g, T b, const sgd_scalars<typename optim_compute<T>::type> &k, T *po, T *bo) {
  typedef typename optim_compute<T>::type C;
  C pv = (C)widen(p);
  C d = sgd_decayed((C)widen(g), pv, k.weight_decay);
  if (k.mode != 0) {
    T bs = convert<T>(k.mode == 1 ? d : sgd_buffer((C)widen(b), d, k.momentum));
    *bo = bs;
    d = sgd_direction(d, (C)widen(bs), k.momentum, k.nesterov);
  }
  *po = convert<T>(sgd_param(pv, d, k.neg_lr));
}

/* One element of ADAMW_STEP. */
template <class T>
__host__ __device__ __forceinline__ void adamw_element(
    T p, T g, T m, T v, const adamw_scalars<typename optim_compute<T>::type> &k, T *po, T *mo,
    T *vo) {
  typedef typename optim_compute<T>::type C;
  C gv = (C)widen(g);
  T ms = convert<T>(adamw_m((C)widen(m), gv, k.beta1, k.one_minus_beta1));
  T vs = convert<T>(adamw_v((C)widen(v), gv, k.beta2, k.one_minus_beta2));
  *mo = ms;
  *vo = vs;
  *po = convert<T>(adamw_param((C)widen(p), (C)widen(ms), (C)widen(vs), k.decay, k.neg_step,
                               k.bc2_sqrt, k.eps));
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    sgd_kernel(const T *p, desc pd, const T *g, desc gd, const T *b, desc bd, bool contig,
               int64_t n, sgd_scalars<typename optim_compute<T>::type> k, T *po, T *bo) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    T bv = k.mode == 2 ? load_at(b, bd, contig, e) : T();
    T bnew;
    sgd_element(load_at(p, pd, contig, e), load_at(g, gd, contig, e), bv, k, &po[e], &bnew);
    if (k.mode != 0) bo[e] = bnew;
  }
}

/* The step count is read on the device (the graph stays the same every
 * step): each block's first thread makes the corrections for the block,
 * and block 0's writes the new count. */
template <class T>
__global__ void __launch_bounds__(THREADS)
    adamw_kernel(const T *p, desc pd, const T *g, desc gd, const T *m, desc md, const T *v,
                 desc vd, bool contig, int64_t n, const double *step,
                 adamw_scalars<typename optim_compute<T>::type> k, T *po, T *mo, T *vo,
                 double *step_out) {
  __shared__ adamw_scalars<typename optim_compute<T>::type> ks;
  if (threadIdx.x == 0) {
    double t = *step + 1;
    ks = k;
    adamw_at_step(&ks, t);
    if (blockIdx.x == 0) *step_out = t;
  }
  __syncthreads();
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x)
    adamw_element(load_at(p, pd, contig, e), load_at(g, gd, contig, e),
                  load_at(m, md, contig, e), load_at(v, vd, contig, e), ks, &po[e], &mo[e],
                  &vo[e]);
}

inline bool is_contig(const mti_view &v) {
  return mti_shape_is_contiguous(v.ndim, v.shape, v.strides) != 0;
}

template <class T>
mt_status launch_sgd(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                     const mti_view *out, int64_t n) {
  typedef typename optim_compute<T>::type C;
  sgd_scalars<C> k = make_sgd_scalars<C>(at);
  bool contig = is_contig(in[0]) && is_contig(in[1]) && (k.mode != 2 || is_contig(in[2]));
  desc pd = make_desc(in[0]), gd = make_desc(in[1]);
  desc bd = k.mode == 2 ? make_desc(in[2]) : pd;
  const T *b = k.mode == 2 ? (const T *)in[2].data : NULL;
  sgd_kernel<T><<<grid_for(ctx, n, THREADS), THREADS, 0, ctx->stream>>>(
      (const T *)in[0].data, pd, (const T *)in[1].data, gd, b, bd, contig, n, k,
      (T *)out[0].data, k.mode != 0 ? (T *)out[1].data : NULL);
  return launched("mt_sgd_step");
}

template <class T>
mt_status launch_adamw(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                       const mti_view *out, int64_t n) {
  typedef typename optim_compute<T>::type C;
  adamw_scalars<C> k = make_adamw_scalars<C>(at);
  bool contig = true;
  for (int i = 0; i < 4; i++) contig = contig && is_contig(in[i]);
  /* at least one block: an empty param still counts its step */
  adamw_kernel<T><<<grid_for(ctx, n > 0 ? n : 1, THREADS), THREADS, 0, ctx->stream>>>(
      (const T *)in[0].data, make_desc(in[0]), (const T *)in[1].data, make_desc(in[1]),
      (const T *)in[2].data, make_desc(in[2]), (const T *)in[3].data, make_desc(in[3]), contig,
      n, (const double *)in[4].data, k, (T *)out[0].data, (T *)out[1].data, (T *)out[2].data,
      (double *)out[3].data);
  return launched("mt_adamw_step");
}

} /* namespace */
} /* namespace mtw */

extern "C" mt_status mtw_cuda_sgd_step(const mtw_cuda_ctx *ctx, const mti_view *in,
                                       const mti_attrs *at, const mti_view *out) {
  int64_t n = mti_shape_numel(out[0].ndim, out[0].shape);
  if (n == 0) return MT_OK;
  switch (out[0].dtype) {
  case MT_FLOAT16: return mtw::launch_sgd<__half>(ctx, in, at, out, n);
  case MT_BFLOAT16: return mtw::launch_sgd<__nv_bfloat16>(ctx, in, at, out, n);
  case MT_FLOAT64: return mtw::launch_sgd<double>(ctx, in, at, out, n);
  case MT_FLOAT32: return mtw::launch_sgd<float>(ctx, in, at, out, n);
  default: break;
  }
  return mti_error(MT_ERR_DTYPE, "mt_sgd_step: dtype %s is not floating",
                   mt_dtype_name(out[0].dtype));
}

extern "C" mt_status mtw_cuda_adamw_step(const mtw_cuda_ctx *ctx, const mti_view *in,
                                         const mti_attrs *at, const mti_view *out) {
  int64_t n = mti_shape_numel(out[0].ndim, out[0].shape);
  switch (out[0].dtype) {
  case MT_FLOAT16: return mtw::launch_adamw<__half>(ctx, in, at, out, n);
  case MT_BFLOAT16: return mtw::launch_adamw<__nv_bfloat16>(ctx, in, at, out, n);
  case MT_FLOAT64: return mtw::launch_adamw<double>(ctx, in, at, out, n);
  case MT_FLOAT32: return mtw::launch_adamw<float>(ctx, in, at, out, n);
  default: break;
  }
  return mti_error(MT_ERR_DTYPE, "mt_adamw_step: dtype %s is not floating",
                   mt_dtype_name(out[0].dtype));
}
