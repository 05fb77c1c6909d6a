/*
 * test_cuda_reduce_host.cu - host-side checks of the CUDA reduction and
 * index_select logic (remote_worker/cuda/cuda_reduce.cuh), without a GPU.
 *
 * The geometry normalisation (red_geom_init), the launch plans (red_plan,
 * red_plan_join), the per-lane loop (reduce_lane) and the combine rules
 * (sum/prod wrap, NaN-winning max/min, first-index argmax/argmin) are
 * __host__ __device__; here they run on the host in exactly the order the
 * kernel uses them: every lane of every group and split, the warp
 * butterfly (lane l takes lane l ^ m for m = G/2 .. 1), the block step
 * (warp results joined in warp order), then the join pass over the
 * partials. Results are compared with a naive reduction of the original
 * strided view in its own dim order, for random shapes (0-d included),
 * strides (negative, zero, permuted, gapped) and dim masks, and a few
 * large shapes that take the block-per-output, column and split paths.
 * index_select's wrap_index and matmul's operand setup (1-d operands,
 * broadcast batch dims, any strides) are checked against direct
 * computations of numpy's rules.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "cuda/cuda_reduce.cuh"

#include "host_check.h"

using namespace mtw;

/* xorshift64*: reproducible test data */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd() {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static int64_t rnd_below(int64_t n) { return (int64_t)(rnd() % (uint64_t)n); }

/* A strided view over a storage vector: data = &store[base]. */
struct test_view {
  int ndim;
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  int64_t base, span; /* storage needed: span elements */
};

/* Random view: a permuted row-major layout with gaps, some dims flipped,
 * some broadcast (stride 0). */
static test_view random_view(int ndim, const int64_t *shape) {
  test_view v;
  v.ndim = ndim;
  int order[MT_MAX_DIMS];
  for (int d = 0; d < ndim; d++) order[d] = d, v.shape[d] = shape[d];
  for (int d = ndim - 1; d > 0; d--) {
    int j = (int)rnd_below(d + 1), t = order[d];
    order[d] = order[j], order[j] = t;
  }
  int64_t s = 1 + rnd_below(2);
  for (int i = ndim - 1; i >= 0; i--) {
    int d = order[i];
    v.strides[d] = s;
    s *= shape[d] + rnd_below(2);
  }
  int64_t lo = 0, hi = 0;
  for (int d = 0; d < ndim; d++) {
    if (rnd_below(5) == 0) v.strides[d] = 0;
    if (rnd_below(3) == 0) v.strides[d] = -v.strides[d];
    int64_t ext = shape[d] > 0 ? (shape[d] - 1) * v.strides[d] : 0;
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  v.base = -lo;
  v.span = hi - lo + 1;
  return v;
}

static int64_t view_offset(const test_view &v, const int64_t *idx) {
  int64_t off = v.base;
  for (int d = 0; d < v.ndim; d++) off += idx[d] * v.strides[d];
  return off;
}

/* ---- the kernel, run on the host ---- */

/* What block_combine / group_combine leave in lane 0 of a group of G. */
template <class Op>
static typename Op::acc combine_group(const Op &op, std::vector<typename Op::acc> lanes, int G) {
  typedef typename Op::acc acc;
  int W = G < 32 ? G : 32;
  std::vector<acc> warp_results;
  for (int w0 = 0; w0 < G; w0 += W) {
    for (int m = W / 2; m > 0; m /= 2) {
      std::vector<acc> next(lanes);
      for (int l = 0; l < W; l++) next[w0 + l] = op.combine(lanes[w0 + l], lanes[w0 + (l ^ m)]);
      lanes = next;
    }
    warp_results.push_back(lanes[w0]);
  }
  acc r = warp_results[0];
  for (size_t w = 1; w < warp_results.size(); w++) r = op.combine(r, warp_results[w]);
  return r;
}

/* One launch of plan p over x: results[o] (in kept order) when partial is
 * NULL, else partial[o * splits + split]. Returns out offsets in kouts. */
template <class Op, class In>
static void run_pass(const Op &op, const In *x, const red_params &p,
                     std::vector<typename Op::acc> *partial, std::vector<typename Op::acc> *res,
                     std::vector<int64_t> *kouts) {
  typedef typename Op::acc acc;
  int G = p.group;
  CHECK(G >= 1 && G <= RED_BLOCK && (G & (G - 1)) == 0, "group %d", G);
  CHECK(p.threads % 32 == 0 && p.threads <= RED_BLOCK && p.blocks * (p.threads / G) >= p.g.nout,
        "blocks %lld cover %lld outputs",
        (long long)p.blocks, (long long)p.g.nout);
  CHECK(p.splits * p.chunk >= p.g.count && (p.splits - 1) * p.chunk < p.g.count,
        "splits %lld x chunk %lld for count %lld", (long long)p.splits, (long long)p.chunk,
        (long long)p.g.count);
  for (int64_t o = 0; o < p.g.nout; o++) {
    for (int64_t s = 0; s < p.splits; s++) {
      std::vector<acc> lanes(G);
      int64_t kout = 0;
      for (int l = 0; l < G; l++) lanes[l] = reduce_lane(op, x, p, o, l, s, &kout);
      acc a = combine_group(op, lanes, G);
      if (partial) (*partial)[o * p.splits + s] = a;
      else (*res)[o] = a, (*kouts)[o] = kout;
    }
  }
}

/* The reduction as launch_reduce enqueues it; PIn: how pass 2 reads partials. */
template <class Op, class PIn, class In>
static void run_reduce(const Op &op, const In *data, const red_geom &g,
                       std::vector<typename Op::acc> *res, std::vector<int64_t> *kouts) {
  typedef typename Op::acc acc;
  red_params p = red_plan(g, 0.0);
  res->assign(g.nout, op.identity());
  kouts->assign(g.nout, -1);
  const In *x = data + g.in_base;
  if (p.splits == 1) {
    run_pass(op, x, p, (std::vector<acc> *)NULL, res, kouts);
    return;
  }
  std::vector<acc> part(g.nout * p.splits);
  run_pass(op, x, p, &part, res, kouts);
  red_params q = red_plan_join(p);
  run_pass(op, (const PIn *)part.data(), q, (std::vector<acc> *)NULL, res, kouts);
}

/* ---- the naive reference ---- */

/* For each output element (row-major over the kept dims of the original
 * order), the storage offsets of its reduced elements in row-major order
 * of the reduced dims. */
static std::vector<std::vector<int64_t>> naive_groups(const test_view &v, uint32_t mask) {
  int64_t nout = 1, count = 1;
  for (int d = 0; d < v.ndim; d++) {
    if (mask >> d & 1u) count *= v.shape[d];
    else nout *= v.shape[d];
  }
  std::vector<std::vector<int64_t>> groups(nout);
  int64_t total = nout * count, idx[MT_MAX_DIMS];
  for (int64_t e = 0; e < total; e++) {
    int64_t rem = e, o = 0, ostride = 1;
    for (int d = v.ndim - 1; d >= 0; d--) {
      idx[d] = rem % v.shape[d];
      rem /= v.shape[d];
    }
    for (int d = v.ndim - 1; d >= 0; d--) {
      if (mask >> d & 1u) continue;
      o += idx[d] * ostride;
      ostride *= v.shape[d];
    }
    groups[o].push_back(view_offset(v, idx));
  }
  return groups;
}

/* ---- cases ---- */

static void check_case(const test_view &v, uint32_t mask, bool arg, const std::vector<float> &fs,
                       const std::vector<int32_t> &is, const std::vector<int8_t> &bs) {
  red_geom g;
  red_geom_init(&g, v.ndim, v.shape, v.strides, mask, arg);
  std::vector<std::vector<int64_t>> groups = naive_groups(v, mask);
  CHECK((int64_t)groups.size() == g.nout, "nout %lld vs %zu", (long long)g.nout, groups.size());
  if (g.nout == 0 || g.count == 0) return;
  std::vector<int64_t> kouts;
  if (arg) {
    for (int alt = 0; alt < 2; alt++) {
      arg_op<float> af{alt != 0};
      std::vector<arg_op<float>::acc> rf;
      run_reduce<arg_op<float>, arg_op<float>::acc>(af, fs.data() + v.base, g, &rf, &kouts);
      arg_op<int32_t> ai{alt != 0};
      std::vector<arg_op<int32_t>::acc> ri;
      run_reduce<arg_op<int32_t>, arg_op<int32_t>::acc>(ai, is.data() + v.base, g, &ri, &kouts);
      std::vector<char> hit(g.nout, 0);
      for (int64_t o = 0; o < g.nout; o++) {
        int64_t q = g.out_base + kouts[o];
        CHECK(q >= 0 && q < g.nout && !hit[q], "arg: output %lld goes to %lld", (long long)o,
              (long long)q);
        if (q < 0 || q >= g.nout) continue;
        hit[q] = 1;
        const std::vector<int64_t> &grp = groups[q];
        int64_t bf = 0, bi = 0;
        for (size_t k = 1; k < grp.size(); k++) {
          float x = fs[grp[k]], b = fs[grp[bf]];
          bool nb = b != b, nx = x != x;
          if (!nb && (nx || (alt ? x < b : x > b))) bf = (int64_t)k;
          if (alt ? is[grp[k]] < is[grp[bi]] : is[grp[k]] > is[grp[bi]]) bi = (int64_t)k;
        }
        CHECK(rf[o].i == bf, "arg%s float: index %lld, expected %lld (output %lld)",
              alt ? "min" : "max", (long long)rf[o].i, (long long)bf, (long long)o);
        CHECK(ri[o].i == bi, "arg%s int32: index %lld, expected %lld", alt ? "min" : "max",
              (long long)ri[o].i, (long long)bi);
      }
    }
    return;
  }
  int_sum_op isum{false, MT_INT64}, iprod{true, MT_INT64};
  float_sum_op<float> fsum{false};
  extreme_op<float> fmax{false}, fmin{true};
  extreme_op<int32_t> imax{false};
  extreme_op<bool8> bmax{false};
  int_sum_op bsum{false, MT_INT64};
  /* bool storage as the host may send it: any non-zero byte is true */
  std::vector<bool8> bb(bs.size());
  for (size_t i = 0; i < bs.size(); i++) bb[i].v = bs[i] ? (uint8_t)(1 + i % 3) : 0;
  std::vector<uint64_t> rs, rp;
  std::vector<double> rfs;
  std::vector<float> rmax, rmin;
  std::vector<int32_t> rimax;
  std::vector<uint8_t> rbmax;
  std::vector<uint64_t> rbsum;
  std::vector<int64_t> k1, k2, k3, k4, k5, k6, k7, k8;
  run_reduce<int_sum_op, int64_t>(isum, is.data() + v.base, g, &rs, &k1);
  run_reduce<int_sum_op, int64_t>(iprod, bs.data() + v.base, g, &rp, &k2);
  run_reduce<float_sum_op<float>, double>(fsum, fs.data() + v.base, g, &rfs, &k3);
  run_reduce<extreme_op<float>, float>(fmax, fs.data() + v.base, g, &rmax, &k4);
  run_reduce<extreme_op<float>, float>(fmin, fs.data() + v.base, g, &rmin, &k5);
  run_reduce<extreme_op<int32_t>, int32_t>(imax, is.data() + v.base, g, &rimax, &k6);
  run_reduce<extreme_op<bool8>, uint8_t>(bmax, bb.data() + v.base, g, &rbmax, &k7);
  run_reduce<int_sum_op, int64_t>(bsum, bb.data() + v.base, g, &rbsum, &k8);
  std::vector<char> hit(g.nout, 0);
  for (int64_t o = 0; o < g.nout; o++) {
    int64_t q = g.out_base + k1[o];
    CHECK(q >= 0 && q < g.nout && !hit[q], "output %lld goes to %lld", (long long)o, (long long)q);
    if (q < 0 || q >= g.nout) continue;
    hit[q] = 1;
    CHECK(k2[o] == k1[o] && k3[o] == k1[o] && k6[o] == k1[o] && k7[o] == k1[o],
          "out offsets agree");
    const std::vector<int64_t> &grp = groups[q];
    uint64_t s = 0, prod = 1;
    double fsum_ref = 0, fabs_sum = 0;
    float mx = -INFINITY, mn = INFINITY;
    int32_t imx = INT32_MIN;
    bool bany = false, has_nan = false;
    uint64_t btrue = 0;
    for (int64_t off : grp) {
      s += (uint64_t)(int64_t)is[off];
      prod *= (uint64_t)(int64_t)bs[off];
      fsum_ref += fs[off];
      fabs_sum += fabs(fs[off]);
      if (fs[off] != fs[off]) has_nan = true;
      else mx = fs[off] > mx ? fs[off] : mx, mn = fs[off] < mn ? fs[off] : mn;
      imx = is[off] > imx ? is[off] : imx;
      bany = bany || bs[off] != 0;
      btrue += bs[off] != 0;
    }
    CHECK(rs[o] == s, "sum int32: %lld, expected %lld", (long long)rs[o], (long long)s);
    CHECK(rp[o] == prod, "prod int8: %llu, expected %llu", (unsigned long long)rp[o],
          (unsigned long long)prod);
    if (has_nan) {
      CHECK(rfs[o] != rfs[o], "sum with a NaN: %g", rfs[o]);
      CHECK(rmax[o] != rmax[o] && rmin[o] != rmin[o], "amax/amin with a NaN: %g %g", rmax[o],
            rmin[o]);
    } else {
      CHECK(fabs(rfs[o] - fsum_ref) <= 1e-12 * fabs_sum + 1e-300, "sum float: %.17g vs %.17g",
            rfs[o], fsum_ref);
      CHECK(rmax[o] == mx && rmin[o] == mn, "amax/amin: %g %g, expected %g %g", rmax[o], rmin[o],
            mx, mn);
    }
    CHECK(rimax[o] == imx, "amax int32: %d, expected %d", rimax[o], imx);
    CHECK(rbmax[o] == (uint8_t)bany, "amax bool: %d, expected %d", (int)rbmax[o], (int)bany);
    CHECK(rbsum[o] == btrue, "sum bool (bytes 1..3): %llu, expected %llu",
          (unsigned long long)rbsum[o], (unsigned long long)btrue);
  }
}

/* Storage of n elements: floats with NaNs (when nans), small integers (ties
 * for arg reductions), int8 values for products (wrapping) and bools as 0/1. */
static void fill_data(int64_t n, bool nans, std::vector<float> *fs, std::vector<int32_t> *is,
                      std::vector<int8_t> *bs) {
  fs->resize(n);
  is->resize(n);
  bs->resize(n);
  for (int64_t i = 0; i < n; i++) {
    (*fs)[i] = (float)rnd_below(2001) / 100.0f - 10.0f;
    if (nans && rnd_below(50) == 0) (*fs)[i] = NAN;
    (*is)[i] = (int32_t)rnd_below(7) - 3 + (rnd_below(100) == 0 ? INT32_MAX / 2 : 0);
    (*bs)[i] = (int8_t)(rnd_below(4) != 0);
  }
}

static void random_cases(int n_cases) {
  for (int c = 0; c < n_cases; c++) {
    int ndim = (int)rnd_below(5);
    int64_t shape[MT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) shape[d] = rnd_below(6);
    if (rnd_below(4) == 0) for (int d = 0; d < ndim; d++) shape[d] = shape[d] ? shape[d] : 1;
    test_view v = random_view(ndim, shape);
    std::vector<float> fs;
    std::vector<int32_t> is;
    std::vector<int8_t> bs;
    fill_data(v.span, rnd_below(3) == 0, &fs, &is, &bs);
    uint32_t mask = ndim ? (uint32_t)rnd_below((int64_t)1 << ndim) : 0;
    check_case(v, mask, false, fs, is, bs);
    if (ndim) check_case(v, 1u << rnd_below(ndim), true, fs, is, bs);
    else check_case(v, 0, true, fs, is, bs);
  }
}

/* Shapes that take the block-per-output path (count >= 1024), the column
 * path (innermost dim kept), splits and the join pass. */
static void large_cases() {
  static const int64_t shapes[][3] = {
      {3, 5000, 0}, {5000, 70, 0}, {100000, 0, 0}, {2, 3000, 7}, {40, 40, 40}, {1, 70000, 3},
      {20000, 32, 0}, {9000, 9, 0},
  };
  for (const auto &sh : shapes) {
    int ndim = sh[1] == 0 ? 1 : sh[2] == 0 ? 2 : 3;
    for (uint32_t mask = 1; mask < (1u << ndim); mask++) {
      test_view v = random_view(ndim, sh);
      std::vector<float> fs;
      std::vector<int32_t> is;
      std::vector<int8_t> bs;
      fill_data(v.span, (mask & 1u) != 0, &fs, &is, &bs);
      check_case(v, mask, false, fs, is, bs);
      for (int d = 0; d < ndim; d++)
        if (mask >> d & 1u) check_case(v, 1u << d, true, fs, is, bs);
    }
  }
}

/* The plans of a few shapes: which path, how many splits. */
static void plan_cases() {
  int64_t full[1] = {64 << 20}, st1[1] = {1};
  red_geom g;
  red_geom_init(&g, 1, full, st1, 1u, 0);
  red_params p = red_plan(g, 0.0);
  CHECK(p.group == RED_BLOCK && p.splits == RED_TARGET_BLOCKS && p.blocks == 1,
        "sum of 64M: group %d splits %lld", p.group, (long long)p.splits);
  red_params q = red_plan_join(p);
  CHECK(q.group == RED_BLOCK && q.g.count == p.splits && q.splits == 1, "join of 64M");
  int64_t sq[2] = {8192, 8192}, sqs[2] = {8192, 1};
  red_geom_init(&g, 2, sq, sqs, 1u, 0); /* over rows: column path */
  p = red_plan(g, 0.0);
  CHECK(p.group == 1 && p.blocks == 32 && p.splits == 128, "column sum: group %d splits %lld",
        p.group, (long long)p.splits);
  int64_t tall[2] = {1000000, 32}, talls[2] = {32, 1}; /* sum([1e6, 32], dim=0) */
  red_geom_init(&g, 2, tall, talls, 1u, 0);
  p = red_plan(g, 0.0);
  int64_t k0, k31, unused;
  offsets2(g.nkept, g.kshape, g.kstride, g.kostride, 0, &k0, &unused);
  offsets2(g.nkept, g.kshape, g.kstride, g.kostride, 31, &k31, &unused);
  CHECK(p.group == 1 && p.threads == 32 && p.splits >= 1024 && k31 - k0 == 31,
        "32 columns: a warp reads a row's 32 consecutive values, rows split (group %d, "
        "threads %d, splits %lld)",
        p.group, p.threads, (long long)p.splits);
  red_geom_init(&g, 2, sq, sqs, 2u, 0); /* over the last dim: a block per row */
  p = red_plan(g, 0.0);
  CHECK(p.group == RED_BLOCK && p.blocks == 8192 && p.splits == 1, "row sum: group %d",
        p.group);
  int64_t tr[2] = {8192, 8192}, trs[2] = {1, 8192}; /* a transpose, reduced over dim 0 */
  red_geom_init(&g, 2, tr, trs, 1u, 0);
  CHECK(g.nred == 1 && g.rstride[0] == 1 && g.nkept == 1 && g.kstride[0] == 8192 &&
            g.kostride[0] == 1,
        "transpose normalised");
  int64_t c3[3] = {4, 5, 6}, c3s[3] = {30, 6, 1};
  red_geom_init(&g, 3, c3, c3s, 5u, 0); /* dims 0 and 2 reduced: not adjacent */
  CHECK(g.nred == 2 && g.nkept == 1 && g.kostride[0] == 1, "split reduced dims");
  red_geom_init(&g, 3, c3, c3s, 3u, 0); /* dims 0, 1 merge */
  CHECK(g.nred == 1 && g.rshape[0] == 20 && g.rstride[0] == 6, "merged reduced dims");
  int64_t fl[2] = {3, 4}, fls[2] = {-4, 1};
  red_geom_init(&g, 2, fl, fls, 2u, 0); /* flipped kept dim */
  CHECK(g.in_base == -8 && g.out_base == 2 && g.kostride[0] == -1 && g.kstride[0] == 4,
        "flipped kept dim: in_base %lld out_base %lld", (long long)g.in_base,
        (long long)g.out_base);
  int64_t ar[1] = {5}, ars[1] = {-1};
  red_geom_init(&g, 1, ar, ars, 1u, 1); /* arg: the reduced dim keeps its direction */
  CHECK(g.in_base == 0 && g.rstride[0] == -1, "arg keeps a flipped reduced dim");
  /* Tensors beyond 2^31 elements: the grids stay within CUDA's limits
   * (gridDim.x < 2^31, gridDim.y <= 65535) on every path. */
  static const int64_t big[][2] = {{(int64_t)1 << 34, 1}, {(int64_t)1 << 20, (int64_t)1 << 20},
                                   {3, (int64_t)1 << 33},  {(int64_t)1 << 33, 3},
                                   {(int64_t)1 << 32, 2},  {2, (int64_t)1 << 32}};
  for (const auto &sh : big) {
    int64_t bst[2] = {sh[1], 1};
    for (uint32_t mask = 1; mask < 4u; mask++) {
      red_geom_init(&g, 2, sh, bst, mask, 0);
      p = red_plan(g, 0.0);
      bool ok = p.blocks >= 1 && p.blocks < ((int64_t)1 << 31) && p.splits >= 1 &&
                p.splits <= 65535 && p.splits * p.chunk >= g.count;
      if (p.splits > 1) {
        red_params j = red_plan_join(p);
        ok = ok && j.blocks >= 1 && j.blocks < ((int64_t)1 << 31);
      }
      CHECK(ok, "grid of [%lld, %lld] mask %u: blocks %lld splits %lld", (long long)sh[0],
            (long long)sh[1], mask, (long long)p.blocks, (long long)p.splits);
    }
  }
}

static void index_cases() {
  CHECK(wrap_index(0, 5) == 0 && wrap_index(4, 5) == 4, "in range");
  CHECK(wrap_index(-1, 5) == 4 && wrap_index(-5, 5) == 0, "negative entries count from the end");
  CHECK(wrap_index(5, 5) == -1 && wrap_index(-6, 5) == -1, "out of range");
  CHECK(wrap_index(0, 0) == -1 && wrap_index(-1, 0) == -1, "empty dim");
  CHECK(wrap_index(INT64_MAX, 5) == -1 && wrap_index(INT64_MIN, 5) == -1, "extremes");
  CHECK(wrap_index(INT64_MAX - 1, INT64_MAX) == INT64_MAX - 1, "largest size");
}

/* ---- matmul operands ---- */

/* A random operand of ndim dims: batch dims from `batch` (right-aligned,
 * some set to 1 to broadcast), then the matrix dims. */
static test_view matmul_operand(int ndim, const int64_t *batch, int nbatch, int64_t r, int64_t c,
                                bool left) {
  int64_t shape[MT_MAX_DIMS];
  int vb = ndim > 2 ? ndim - 2 : 0;
  for (int d = 0; d < vb; d++) {
    int64_t full = batch[nbatch - vb + d];
    shape[d] = rnd_below(3) == 0 ? 1 : full;
  }
  if (ndim == 1) shape[0] = left ? c : r;
  else shape[ndim - 2] = r, shape[ndim - 1] = c;
  return random_view(ndim, shape);
}

/* mm_problem_init and mm_batch_offsets against numpy.matmul's rules written
 * out directly, on int32 data (wrapping products), for 1-d to 4-d operands
 * with broadcast batch dims and any strides. */
static void matmul_cases(int n_cases) {
  for (int c = 0; c < n_cases; c++) {
    int an = 1 + (int)rnd_below(4), bn = 1 + (int)rnd_below(4);
    int64_t batch[2] = {1 + rnd_below(3), 1 + rnd_below(3)};
    int64_t m = 1 + rnd_below(4), k = rnd_below(4), n = 1 + rnd_below(4);
    test_view av = matmul_operand(an, batch, 2, m, k, true);
    test_view bv = matmul_operand(bn, batch, 2, k, n, false);
    /* out shape: broadcast batch dims, then m and n where the operands have them */
    int ab = an > 2 ? an - 2 : 0, bb = bn > 2 ? bn - 2 : 0, nb = ab > bb ? ab : bb, on = 0;
    int64_t oshape[MT_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
      int ad = d - (nb - ab), bd = d - (nb - bb);
      int64_t sa = ad >= 0 ? av.shape[ad] : 1, sb = bd >= 0 ? bv.shape[bd] : 1;
      oshape[on++] = sa > sb ? sa : sb;
    }
    if (an >= 2) oshape[on++] = m;
    if (bn >= 2) oshape[on++] = n;
    std::vector<float> fs;
    std::vector<int32_t> ad, bd;
    std::vector<int8_t> bs;
    fill_data(av.span, false, &fs, &ad, &bs);
    fill_data(bv.span, false, &fs, &bd, &bs);
    mti_view a = {ad.data() + av.base, MT_INT32, an, {0}, {0}};
    mti_view b = {bd.data() + bv.base, MT_INT32, bn, {0}, {0}};
    for (int d = 0; d < an; d++) a.shape[d] = av.shape[d], a.strides[d] = av.strides[d];
    for (int d = 0; d < bn; d++) b.shape[d] = bv.shape[d], b.strides[d] = bv.strides[d];
    mm_problem p;
    mm_problem_init(&p, a, b, on, oshape);
    int64_t total = 1;
    for (int d = 0; d < on; d++) total *= oshape[d];
    CHECK(p.batch * p.m * p.n == total, "matmul: %lld x %lld x %lld for %lld outputs",
          (long long)p.batch, (long long)p.m, (long long)p.n, (long long)total);
    CHECK(p.k == k, "matmul: k %lld, expected %lld", (long long)p.k, (long long)k);
    for (int64_t t = 0; t < p.batch; t++) {
      int64_t oa, ob, bidx[MT_MAX_DIMS], rem = t;
      mm_batch_offsets(p, t, &oa, &ob);
      for (int d = nb - 1; d >= 0; d--) bidx[d] = rem % oshape[d], rem /= oshape[d];
      int64_t ra = av.base, rb = bv.base;
      for (int d = 0; d < ab; d++)
        ra += (av.shape[d] == 1 ? 0 : bidx[d + nb - ab]) * av.strides[d];
      for (int d = 0; d < bb; d++)
        rb += (bv.shape[d] == 1 ? 0 : bidx[d + nb - bb]) * bv.strides[d];
      for (int64_t i = 0; i < p.m; i++)
        for (int64_t j = 0; j < p.n; j++) {
          uint32_t got = 0, want = 0;
          for (int64_t kk = 0; kk < k; kk++) {
            const int32_t *pa = (const int32_t *)a.data, *pb = (const int32_t *)b.data;
            got += (uint32_t)pa[oa + i * p.a.rs + kk * p.a.cs] *
                   (uint32_t)pb[ob + kk * p.b.rs + j * p.b.cs];
            int64_t ea = ra + (an >= 2 ? i * av.strides[an - 2] : 0) + kk * av.strides[an - 1];
            int64_t eb = rb + (bn >= 2 ? kk * bv.strides[bn - 2] + j * bv.strides[bn - 1]
                                       : kk * bv.strides[0]);
            want += (uint32_t)ad[ea] * (uint32_t)bd[eb];
          }
          CHECK(got == want, "matmul %dd @ %dd: batch %lld [%lld, %lld]: %u, expected %u", an,
                bn, (long long)t, (long long)i, (long long)j, got, want);
        }
    }
  }
}

int main(void) {
  plan_cases();
  index_cases();
  random_cases(3000);
  large_cases();
  matmul_cases(2000);
  return host_check_report();
}
