/*
 * test_cuda_attention_host.cu - host-side checks of the fused attention
 * kernel's logic (remote_worker/cuda/cuda_attention.cuh), without a GPU.
 *
 * The kernel's walk is replayed on the host with its own __host__
 * __device__ helpers: blocks of ATTN_ROWS rows, tiles of ATTN_KEYS keys
 * (one per lane), causal tiles skipped with attn_key_end, keys hidden with
 * attn_key_visible, the online max/sum with attn_nanmax, attn_shift and
 * attn_lse, batch offsets of broadcast operands with attn_batch_offset.
 * Its results (output and logsumexp) must match the cpu backend
 * (mti_cpu_run), whose own tiling differs (64-row blocks, 64-key tiles), for
 * shapes around the tile edges, causal with L < S and L > S, masks with
 * fully masked rows, and heads broadcast. Also: every row of every batch
 * entry is covered by exactly one block, and the shared memory of the
 * largest shapes fits an A100's per-block opt-in (163 KiB) in float32.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "cuda/cuda_attention.cuh"

extern "C" {
#include "cpu/cpu_backend.h"
}

#include "host_check.h"

using namespace mtw;

/* Deterministic values in [-2, 2), multiples of 1/8. */
static float value_at(uint64_t i) {
  uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
  return (float)((int64_t)((z >> 33) % 32) - 16) / 8.0f;
}

struct shape_case {
  int64_t b, h, hk, len, keys, e, ev;
  int causal, mask; /* mask: 0 none, 1 bool [L, S] with a fully masked row 0 */
};

/* The kernel's walk for one block (batch entry bi, rows from i0), with the
 * warp's lanes as a loop. q [b, h, L, E] contiguous; k, v [b, hk, S, *]. */
static void replay_block(const attn_params &p, const float *q, const float *k, const float *v,
                         const uint8_t *mask, int64_t bi, int64_t i0, float *out, float *lse) {
  const float *qb = q + attn_batch_offset(p, bi, p.q_batch);
  const float *kb = k + attn_batch_offset(p, bi, p.k_batch);
  const float *vb = v + attn_batch_offset(p, bi, p.v_batch);
  int64_t mb = p.has_mask ? attn_batch_offset(p, bi, p.m_batch) : 0;
  for (int r = 0; r < ATTN_ROWS; r++) {
    int64_t row = i0 + r;
    if (row >= p.len) continue;
    float m = -INFINITY, l = 0;
    std::vector<float> acc((size_t)p.ev, 0.0f);
    int64_t end = attn_key_end(p, i0);
    for (int64_t j0 = 0; j0 < end; j0 += ATTN_KEYS) {
      float s[ATTN_KEYS], pj[ATTN_KEYS], tmax = -INFINITY;
      for (int lane = 0; lane < ATTN_KEYS; lane++) {
        int64_t key = j0 + lane;
        float x = 0;
        for (int64_t c = 0; c < p.e && key < p.keys; c++)
          x += qb[row * p.q_row + c * p.q_col] * kb[key * p.k_row + c * p.k_col];
        x *= (float)p.scale;
        if (p.has_mask && key < p.keys)
          x += mask[mb + row * p.m_row + key * p.m_col] ? 0.0f : -INFINITY;
        if (!attn_key_visible(p, row, key)) x = -INFINITY;
        s[lane] = x;
        tmax = attn_nanmax(tmax, x);
      }
      float mx = attn_nanmax(m, tmax), shift = attn_shift(mx), alpha = expf(m - shift), sum = 0;
      for (int lane = 0; lane < ATTN_KEYS; lane++) sum += pj[lane] = expf(s[lane] - shift);
      l = l * alpha + sum;
      m = mx;
      int nk = end - j0 < ATTN_KEYS ? (int)(end - j0) : ATTN_KEYS;
      for (int64_t c = 0; c < p.ev; c++) {
        float a = acc[(size_t)c] * alpha;
        for (int j = 0; j < nk; j++) a += pj[j] * vb[(j0 + j) * p.v_row + c * p.v_col];
        acc[(size_t)c] = a;
      }
    }
    int64_t at = bi * p.len + row;
    for (int64_t c = 0; c < p.ev; c++) out[at * p.ev + c] = p.keys ? acc[(size_t)c] / l : 0.0f;
    lse[at] = attn_lse(m, l);
  }
}

static bool close(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabsf(a - b) <= 1e-5f * fmaxf(1.0f, fmaxf(fabsf(a), fabsf(b)));
}

static void check_case(const shape_case &sc) {
  int64_t nq = sc.b * sc.h * sc.len * sc.e, nk = sc.b * sc.hk * sc.keys * sc.e;
  int64_t nv = sc.b * sc.hk * sc.keys * sc.ev, nrow = sc.b * sc.h * sc.len;
  std::vector<float> q((size_t)nq + 1), k((size_t)nk + 1), v((size_t)nv + 1);
  for (int64_t i = 0; i < nq; i++) q[(size_t)i] = value_at((uint64_t)i);
  for (int64_t i = 0; i < nk; i++) k[(size_t)i] = value_at((uint64_t)i + 100000);
  for (int64_t i = 0; i < nv; i++) v[(size_t)i] = value_at((uint64_t)i + 200000);
  std::vector<uint8_t> mask((size_t)(sc.len * sc.keys) + 1);
  for (int64_t i = 0; i < sc.len * sc.keys; i++)
    mask[(size_t)i] = i >= sc.keys && value_at((uint64_t)i + 300000) > -1.0f;

  attn_params p;
  memset(&p, 0, sizeof p);
  p.nbatch = 2;
  p.batch_shape[0] = sc.b;
  p.batch_shape[1] = sc.h;
  p.batch = sc.b * sc.h;
  p.len = sc.len, p.keys = sc.keys, p.e = sc.e, p.ev = sc.ev;
  p.scale = 1.0 / sqrt((double)sc.e);
  p.causal = sc.causal;
  p.has_mask = sc.mask;
  p.q_batch[0] = sc.h * sc.len * sc.e, p.q_batch[1] = sc.len * sc.e;
  p.q_row = sc.e, p.q_col = 1;
  p.k_batch[0] = sc.hk * sc.keys * sc.e, p.k_batch[1] = sc.hk == 1 ? 0 : sc.keys * sc.e;
  p.k_row = sc.e, p.k_col = 1;
  p.v_batch[0] = sc.hk * sc.keys * sc.ev, p.v_batch[1] = sc.hk == 1 ? 0 : sc.keys * sc.ev;
  p.v_row = sc.ev, p.v_col = 1;
  p.m_row = sc.keys, p.m_col = 1; /* [L, S], broadcast over batch and heads */

  std::vector<float> out((size_t)(nrow * sc.ev) + 1, NAN), lse((size_t)nrow + 1, NAN);
  std::vector<int> covered((size_t)nrow + 1, 0);
  int64_t blocks = p.batch * attn_row_blocks(p.len);
  for (int64_t blk = 0; blk < blocks; blk++) {
    int64_t nb = attn_row_blocks(p.len), bi = blk / nb, i0 = blk % nb * ATTN_ROWS;
    for (int r = 0; r < ATTN_ROWS && i0 + r < p.len; r++) covered[(size_t)(bi * p.len + i0 + r)]++;
    replay_block(p, q.data(), k.data(), v.data(), mask.data(), bi, i0, out.data(), lse.data());
  }
  for (int64_t i = 0; i < nrow; i++)
    CHECK(covered[(size_t)i] == 1, "row %lld covered %d times", (long long)i, covered[(size_t)i]);

  mti_view in[4] = {{q.data(), MT_FLOAT32, 4, {sc.b, sc.h, sc.len, sc.e}, {0}},
                    {k.data(), MT_FLOAT32, 4, {sc.b, sc.hk, sc.keys, sc.e}, {0}},
                    {v.data(), MT_FLOAT32, 4, {sc.b, sc.hk, sc.keys, sc.ev}, {0}},
                    {mask.data(), MT_BOOL, 2, {sc.len, sc.keys}, {0}}};
  for (int i = 0; i < 4; i++) mti_shape_contiguous_strides(in[i].ndim, in[i].shape, in[i].strides);
  std::vector<float> cpu_out((size_t)(nrow * sc.ev) + 1), cpu_lse((size_t)nrow + 1);
  mti_view outs[2] = {{cpu_out.data(), MT_FLOAT32, 4, {sc.b, sc.h, sc.len, sc.ev}, {0}},
                      {cpu_lse.data(), MT_FLOAT32, 3, {sc.b, sc.h, sc.len}, {0}}};
  for (int i = 0; i < 2; i++)
    mti_shape_contiguous_strides(outs[i].ndim, outs[i].shape, outs[i].strides);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.s0 = NAN;
  at.flags = (sc.causal ? MTI_FLAG_CAUSAL : 0) | (sc.mask ? MTI_FLAG_PRESENT(3) : 0);
  CHECK(mti_cpu_run(MTI_OP_SCALED_DOT_PRODUCT_ATTENTION, in, 4, &at, outs) == MT_OK,
        "cpu attention failed");
  int shown = 0;
  for (int64_t i = 0; i < nrow * sc.ev && shown < 5; i++)
    if (!close(out[(size_t)i], cpu_out[(size_t)i])) {
      shown++;
      CHECK(false, "L %lld S %lld causal %d mask %d: out[%lld] = %g, cpu %g", (long long)sc.len,
            (long long)sc.keys, sc.causal, sc.mask, (long long)i, out[(size_t)i],
            cpu_out[(size_t)i]);
    }
  for (int64_t i = 0; i < nrow; i++)
    CHECK(close(lse[(size_t)i], cpu_lse[(size_t)i]), "lse[%lld] = %g, cpu %g", (long long)i,
          lse[(size_t)i], cpu_lse[(size_t)i]);
}

int main(void) {
  static const shape_case cases[] = {
      {1, 1, 1, 5, 7, 4, 3, 0, 0},      {2, 3, 3, 17, 33, 8, 5, 0, 0},
      {1, 2, 2, 16, 32, 8, 8, 1, 0},    {1, 2, 2, 40, 100, 8, 4, 1, 0},
      {1, 1, 1, 100, 9, 8, 4, 1, 0},    {2, 2, 1, 1, 77, 16, 16, 0, 0},
      {1, 2, 2, 20, 45, 8, 40, 0, 1},   {1, 1, 1, 33, 0, 8, 4, 0, 0},
      {1, 1, 1, 70, 70, 64, 64, 1, 0},
  };
  for (const shape_case &c : cases) check_case(c);
  /* the largest features fit an A100's opt-in shared memory in float32 */
  CHECK(attn_smem_bytes(ATTN_MAX_FEATURES, ATTN_MAX_FEATURES, sizeof(float)) <= 163 * 1024,
        "float32 E = Ev = 256 needs %zu bytes",
        attn_smem_bytes(ATTN_MAX_FEATURES, ATTN_MAX_FEATURES, sizeof(float)));
  CHECK(attn_smem_bytes(64, 64, sizeof(float)) <= 48 * 1024, "E = Ev = 64 needs the opt-in");
  return host_check_report();
}
