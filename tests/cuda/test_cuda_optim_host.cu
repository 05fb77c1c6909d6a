/*
 * test_cuda_optim_host.cu - host-side checks of the CUDA optimizer updates
 * (remote_worker/cuda/cuda_optim.cu), without a GPU.
 *
 * The file is included whole, so its element functions (sgd_element,
 * adamw_element) and the scalars its launches pass (make_sgd_scalars,
 * make_adamw_scalars) run here on the host, and must give the cpu
 * backend's bits (mti_cpu_run) for every floating dtype, every SGD mode
 * (no momentum, first step, later steps, nesterov) and AdamW, on values
 * that include zeros, ties and large magnitudes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_optim.cu"

#include "host_check.h"

extern "C" {
#include "cpu/cpu_backend.h"
}

using namespace mtw;

enum { N = 517 };

static uint64_t rng_state = 12345;

static double next_value(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  double u = (double)(rng_state >> 11) * 0x1.0p-53;
  switch ((rng_state >> 3) % 8) {
  case 0: return 0.0;
  case 1: return u * 1e4 - 5e3;
  default: return u * 8 - 4;
  }
}

template <class T> static T stored(double v) { return convert<T>(v); }

template <class T> static double as_double(T x) { return (double)widen(x); }

/* A contiguous host view of n elements of dtype dt at data. */
static mti_view view_of(void *data, mt_dtype dt, int64_t n) {
  mti_view v = {};
  v.data = data;
  v.dtype = dt;
  v.ndim = 1;
  v.shape[0] = n;
  v.strides[0] = 1;
  return v;
}

template <class T>
static void check_sgd(mt_dtype dt, double lr, double mom, double wd, int nesterov, int has_buf) {
  T p[N], g[N], b[N], po_cpu[N], bo_cpu[N], po[N], bo[N];
  for (int i = 0; i < N; i++) {
    p[i] = stored<T>(next_value());
    g[i] = stored<T>(next_value());
    b[i] = stored<T>(next_value());
  }
  mti_attrs at = {};
  at.s0 = lr, at.s1 = mom, at.s2 = wd, at.n_ints = 1, at.ints[0] = nesterov;
  if (has_buf) at.flags |= MTI_FLAG_PRESENT(2);
  mti_view in[3] = {view_of(p, dt, N), view_of(g, dt, N), view_of(b, dt, N)};
  mti_view out[2] = {view_of(po_cpu, dt, N), view_of(bo_cpu, dt, mom > 0 ? N : 0)};
  CHECK(mti_cpu_run(MTI_OP_SGD_STEP, in, 3, &at, out) == MT_OK, "cpu sgd_step: %s",
        mt_last_error());
  sgd_scalars<typename optim_compute<T>::type> k =
      make_sgd_scalars<typename optim_compute<T>::type>(&at);
  CHECK(k.mode == (!(mom > 0) ? 0 : has_buf ? 2 : 1), "mode %d", k.mode);
  for (int i = 0; i < N; i++) {
    sgd_element(p[i], g[i], b[i], k, &po[i], &bo[i]);
    CHECK(memcmp(&po[i], &po_cpu[i], sizeof(T)) == 0,
          "sgd %s lr %g mom %g wd %g nesterov %d buf %d: param %d: cuda %.9g, cpu %.9g",
          mt_dtype_name(dt), lr, mom, wd, nesterov, has_buf, i, as_double(po[i]),
          as_double(po_cpu[i]));
    if (mom > 0)
      CHECK(memcmp(&bo[i], &bo_cpu[i], sizeof(T)) == 0,
            "sgd %s: buffer %d: cuda %.9g, cpu %.9g", mt_dtype_name(dt), i, as_double(bo[i]),
            as_double(bo_cpu[i]));
  }
}

template <class T> static void check_adamw(mt_dtype dt, double lr, double b1, double b2,
                                           double eps, double wd, int step) {
  T p[N], g[N], m[N], v[N], cpu[3][N], po[N], mo[N], vo[N];
  for (int i = 0; i < N; i++) {
    p[i] = stored<T>(next_value());
    g[i] = stored<T>(next_value());
    m[i] = stored<T>(next_value() * 0.1);
    v[i] = stored<T>(fabs(next_value()));
  }
  mti_attrs at = {};
  at.s0 = lr, at.s1 = b1, at.s2 = b2, at.n_ints = MTI_ADAMW_N_INTS;
  at.ints[MTI_ADAMW_INT_EPS] = mti_optim_double_bits(eps);
  at.ints[MTI_ADAMW_INT_WEIGHT_DECAY] = mti_optim_double_bits(wd);
  double taken = step - 1, counted = 0; /* the step input: steps before this one */
  mti_view in[5] = {view_of(p, dt, N), view_of(g, dt, N), view_of(m, dt, N), view_of(v, dt, N),
                    {&taken, MT_FLOAT64, 0, {0}, {0}}};
  mti_view out[4] = {view_of(cpu[0], dt, N), view_of(cpu[1], dt, N), view_of(cpu[2], dt, N),
                     {&counted, MT_FLOAT64, 0, {0}, {0}}};
  CHECK(mti_cpu_run(MTI_OP_ADAMW_STEP, in, 5, &at, out) == MT_OK, "cpu adamw_step: %s",
        mt_last_error());
  CHECK(counted == step, "cpu adamw_step: step out %g, expected %d", counted, step);
  adamw_scalars<typename optim_compute<T>::type> k =
      make_adamw_scalars<typename optim_compute<T>::type>(&at);
  adamw_at_step(&k, taken + 1);
  for (int i = 0; i < N; i++) {
    adamw_element(p[i], g[i], m[i], v[i], k, &po[i], &mo[i], &vo[i]);
    const T *got[3] = {&po[i], &mo[i], &vo[i]};
    for (int j = 0; j < 3; j++)
      CHECK(memcmp(got[j], &cpu[j][i], sizeof(T)) == 0,
            "adamw %s step %d: output %d element %d: cuda %.9g, cpu %.9g", mt_dtype_name(dt),
            step, j, i, as_double(*got[j]), as_double(cpu[j][i]));
  }
}

template <class T> static void check_dtype(mt_dtype dt) {
  check_sgd<T>(dt, 0.1, 0, 0, 0, 0);
  check_sgd<T>(dt, 0.05, 0, 0.01, 0, 0);
  check_sgd<T>(dt, 0.05, 0.9, 0, 0, 0);
  check_sgd<T>(dt, 0.05, 0.9, 0.1, 0, 1);
  check_sgd<T>(dt, 0.02, 0.8, 0.1, 1, 0);
  check_sgd<T>(dt, 0.02, 0.8, 0, 1, 1);
  check_adamw<T>(dt, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1);
  check_adamw<T>(dt, 0.1, 0.8, 0.99, 1e-6, 0.0, 7);
  check_adamw<T>(dt, 0.01, 0.0, 0.5, 0.0, 0.5, 1000);
}

int main(void) {
  check_dtype<float>(MT_FLOAT32);
  check_dtype<double>(MT_FLOAT64);
  check_dtype<__half>(MT_FLOAT16);
  check_dtype<__nv_bfloat16>(MT_BFLOAT16);
  return host_check_report();
}
