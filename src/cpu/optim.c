/*
 * optim.c - the optimizer updates SGD_STEP and ADAMW_STEP on the cpu: one
 * pass over the elements reading the param, its gradient and its state and
 * writing the new param and state (the element rules of
 * core/optim_rules.h, which the cuda kernels share).
 *
 * The loops run over contiguous arrays, with the choices of the update
 * (momentum, first step, nesterov) fixed per loop so that the compiler can
 * vectorise them; an input that is not contiguous is first copied into a
 * contiguous scratch array (outputs always are). Above MTI_CPU_PARALLEL_MIN
 * elements the range is split across the library's threads.
 */
#include <stdlib.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/optim_rules.h"
#include "cpu/cpu_kernels.h"
#include "cpu/vmath.h"

/* The float rules with mti_vsqrtf, which rounds as sqrtf does but, unlike
 * it, vectorises (sqrtf may set errno): suffix vf32. */
MTI_OPTIM_RULES(float, vf32, mti_vsqrtf)

/* Elements per task: large enough to amortise a thread's start, small
 * enough to balance. */
#define OPTIM_CHUNK 16384

/* The contiguous data of input v: its own when contiguous, else a copy in
 * *owned (freed by the caller). NULL with the error set when out of memory. */
static const void *contiguous_data(const mti_view *v, void **owned) {
  *owned = NULL;
  if (mti_shape_is_contiguous(v->ndim, v->shape, v->strides)) return v->data;
  int64_t numel = mti_shape_numel(v->ndim, v->shape);
  size_t bytes = (size_t)numel * mt_dtype_size(v->dtype);
  mti_view tmp = *v;
  if (!(tmp.data = malloc(bytes ? bytes : 1))) {
    mti_error_oom("mt_optimizer_step", bytes);
    return NULL;
  }
  mti_shape_contiguous_strides(tmp.ndim, tmp.shape, tmp.strides);
  if (mti_cpu_convert(v, &tmp)) {
    free(tmp.data);
    return NULL;
  }
  *owned = tmp.data;
  return tmp.data;
}

/* Loads and stores of each storage type, in its compute type. */
#define ID(x) (x)
#define F16_LOAD(x) mti_f16_to_f32(x)
#define F16_STORE(x) mti_f32_to_f16(x)
#define BF16_LOAD(x) mti_bf16_to_f32(x)
#define BF16_STORE(x) mti_f32_to_bf16(x)

/* ------------------------------------------------------------ sgd */

/* One storage type T (compute C, rules suffix S) over [i0, i1). mode 0: no
 * momentum; 1: the first step (buf = d); 2: buf * momentum + d. */
#define SGD_LOOP(T, C, S, LOAD, STORE)                                                       \
  static void sgd_##S##_##T(int64_t i0, int64_t i1, const T *restrict p, const T *restrict g,  \
                            const T *restrict b, T *restrict po, T *restrict bo, int mode,      \
                            const mti_sgd_coef *k) {                                           \
    C neg_lr = (C)k->neg_lr, mom = (C)k->momentum, wd = (C)k->weight_decay;                     \
    int nesterov = k->nesterov;                                                                \
    if (mode == 0) {                                                                           \
      for (int64_t i = i0; i < i1; i++) {                                                      \
        C pv = LOAD(p[i]);                                                                     \
        C d = mti_sgd_decayed_##S(LOAD(g[i]), pv, wd);                                         \
        po[i] = STORE(mti_sgd_param_##S(pv, d, neg_lr));                                       \
      }                                                                                        \
    } else if (mode == 1) {                                                                    \
      for (int64_t i = i0; i < i1; i++) {                                                      \
        C pv = LOAD(p[i]);                                                                     \
        C d = mti_sgd_decayed_##S(LOAD(g[i]), pv, wd);                                         \
        T bs = STORE(d);                                                                       \
        bo[i] = bs;                                                                            \
        C dir = mti_sgd_direction_##S(d, LOAD(bs), mom, nesterov);                             \
        po[i] = STORE(mti_sgd_param_##S(pv, dir, neg_lr));                                     \
      }                                                                                        \
    } else {                                                                                   \
      for (int64_t i = i0; i < i1; i++) {                                                      \
        C pv = LOAD(p[i]);                                                                     \
        C d = mti_sgd_decayed_##S(LOAD(g[i]), pv, wd);                                         \
        T bs = STORE(mti_sgd_buffer_##S(LOAD(b[i]), d, mom));                                  \
        bo[i] = bs;                                                                            \
        C dir = mti_sgd_direction_##S(d, LOAD(bs), mom, nesterov);                             \
        po[i] = STORE(mti_sgd_param_##S(pv, dir, neg_lr));                                     \
      }                                                                                        \
    }                                                                                          \
  }

SGD_LOOP(float, float, f32, ID, ID)
SGD_LOOP(double, double, f64, ID, ID)
typedef uint16_t f16_t;
typedef uint16_t bf16_t;
SGD_LOOP(f16_t, float, f32, F16_LOAD, F16_STORE)
SGD_LOOP(bf16_t, float, f32, BF16_LOAD, BF16_STORE)

static void sgd_range(mt_dtype dt, int64_t i0, int64_t i1, const void *p, const void *g,
                      const void *b, void *po, void *bo, int mode, const mti_sgd_coef *k) {
  switch (dt) {
  case MT_FLOAT64: sgd_f64_double(i0, i1, p, g, b, po, bo, mode, k); break;
  case MT_FLOAT16: sgd_f32_f16_t(i0, i1, p, g, b, po, bo, mode, k); break;
  case MT_BFLOAT16: sgd_f32_bf16_t(i0, i1, p, g, b, po, bo, mode, k); break;
  default: sgd_f32_float(i0, i1, p, g, b, po, bo, mode, k); break; /* float32: mti_infer */
  }
}

mt_status mti_cpu_sgd_step(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  mti_sgd_coef k = mti_sgd_prepare(at);
  int has_buf = (at->flags & MTI_FLAG_PRESENT(2)) != 0;
  int mode = !(k.momentum > 0) ? 0 : has_buf ? 2 : 1;
  int64_t numel = mti_shape_numel(out[0].ndim, out[0].shape);
  void *owned[3] = {NULL, NULL, NULL};
  const void *src[3] = {NULL, NULL, NULL};
  mt_status s = MT_OK;
  for (int i = 0; i < (mode == 2 ? 3 : 2) && !s; i++)
    if (!(src[i] = contiguous_data(&in[i], &owned[i]))) s = mt_last_status();
  if (!s) {
    int64_t chunks = (numel + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
    mt_dtype dt = out[0].dtype;
#pragma omp parallel for schedule(static) num_threads(mti_cpu_threads_for(numel, MTI_CPU_PARALLEL_MIN / 2))
    for (int64_t c = 0; c < chunks; c++) {
      int64_t i0 = c * OPTIM_CHUNK, i1 = numel - i0 < OPTIM_CHUNK ? numel : i0 + OPTIM_CHUNK;
      sgd_range(dt, i0, i1, src[0], src[1], src[2], out[0].data, out[1].data, mode, &k);
    }
  }
  for (int i = 0; i < 3; i++) free(owned[i]);
  return s;
}

/* ------------------------------------------------------------ adamw */

#define ADAMW_LOOP(T, C, S, LOAD, STORE)                                                      \
  static void adamw_##S##_##T(int64_t i0, int64_t i1, const T *restrict p, const T *restrict g, \
                              const T *restrict m, const T *restrict v, T *restrict po,          \
                              T *restrict mo, T *restrict vo, const mti_adamw_coef *k) {        \
    C decay = (C)k->decay, b1 = (C)k->beta1, omb1 = (C)k->one_minus_beta1;                      \
    C b2 = (C)k->beta2, omb2 = (C)k->one_minus_beta2, eps = (C)k->eps;                          \
    C neg_step = (C)k->neg_step_size, bc2s = (C)k->bc2_sqrt;                                    \
    for (int64_t i = i0; i < i1; i++) {                                                         \
      C gv = LOAD(g[i]);                                                                        \
      T ms = STORE(mti_adamw_m_##S(LOAD(m[i]), gv, b1, omb1));                                  \
      T vs = STORE(mti_adamw_v_##S(LOAD(v[i]), gv, b2, omb2));                                  \
      mo[i] = ms;                                                                               \
      vo[i] = vs;                                                                               \
      po[i] = STORE(mti_adamw_param_##S(LOAD(p[i]), LOAD(ms), LOAD(vs), decay, neg_step, bc2s,  \
                                        eps));                                                  \
    }                                                                                           \
  }

ADAMW_LOOP(float, float, vf32, ID, ID)
ADAMW_LOOP(double, double, f64, ID, ID)
ADAMW_LOOP(f16_t, float, vf32, F16_LOAD, F16_STORE)
ADAMW_LOOP(bf16_t, float, vf32, BF16_LOAD, BF16_STORE)

static void adamw_range(mt_dtype dt, int64_t i0, int64_t i1, const void *const *src,
                        const mti_view *out, const mti_adamw_coef *k) {
  void *po = out[0].data, *mo = out[1].data, *vo = out[2].data;
  switch (dt) {
  case MT_FLOAT64: adamw_f64_double(i0, i1, src[0], src[1], src[2], src[3], po, mo, vo, k); break;
  case MT_FLOAT16: adamw_vf32_f16_t(i0, i1, src[0], src[1], src[2], src[3], po, mo, vo, k); break;
  case MT_BFLOAT16:
    adamw_vf32_bf16_t(i0, i1, src[0], src[1], src[2], src[3], po, mo, vo, k);
    break;
  default: adamw_vf32_float(i0, i1, src[0], src[1], src[2], src[3], po, mo, vo, k); break;
  }
}

mt_status mti_cpu_adamw_step(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  mti_adamw_coef k = mti_adamw_prepare(at);
  double t = *(const double *)in[4].data + 1;
  mti_adamw_at_step(&k, t);
  *(double *)out[3].data = t;
  int64_t numel = mti_shape_numel(out[0].ndim, out[0].shape);
  void *owned[4] = {NULL, NULL, NULL, NULL};
  const void *src[4] = {NULL, NULL, NULL, NULL};
  mt_status s = MT_OK;
  for (int i = 0; i < 4 && !s; i++)
    if (!(src[i] = contiguous_data(&in[i], &owned[i]))) s = mt_last_status();
  if (!s) {
    int64_t chunks = (numel + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
    mt_dtype dt = out[0].dtype;
#pragma omp parallel for schedule(static) num_threads(mti_cpu_threads_for(numel, MTI_CPU_PARALLEL_MIN / 2))
    for (int64_t c = 0; c < chunks; c++) {
      int64_t i0 = c * OPTIM_CHUNK, i1 = numel - i0 < OPTIM_CHUNK ? numel : i0 + OPTIM_CHUNK;
      adamw_range(dt, i0, i1, src, out, &k);
    }
  }
  for (int i = 0; i < 4; i++) free(owned[i]);
  return s;
}
