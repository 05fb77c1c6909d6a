/*
 * cuda_reduce.cuh - device helpers shared by the reduction, normalisation,
 * gather and matmul kernels: warp and block combines of any value type,
 * loads of an element whose dtype is known only at run time, and the index
 * math and combine rules of the reductions, index_select and matmul, written
 * __host__ __device__ so that a host test checks them (tests/cuda).
 */
#ifndef MTW_CUDA_REDUCE_CUH
#define MTW_CUDA_REDUCE_CUH

#include <stdint.h>
#include <string.h>

#include <cuda/std/limits>
#include <cuda/std/type_traits>

#include "cuda_common.cuh"

namespace mtw {

enum { FULL_WARP = 0xffffffffu };

/* ---- shuffles and group combines ---- */

/* __shfl_xor_sync for any trivially copyable value of at most 8 bytes
 * (bool, int8, half, ..., double); arg pairs have their own overload. */
template <class T> __device__ __forceinline__ T shfl_xor(T v, int lane_mask) {
  static_assert(sizeof(T) <= 8, "shfl_xor: value wider than 8 bytes");
  if (sizeof(T) <= 4) {
    unsigned u = 0;
    memcpy(&u, &v, sizeof(T));
    u = __shfl_xor_sync(FULL_WARP, u, lane_mask);
    memcpy(&v, &u, sizeof(T));
  } else {
    unsigned long long u = 0;
    memcpy(&u, &v, sizeof(T));
    u = __shfl_xor_sync(FULL_WARP, u, lane_mask);
    memcpy(&v, &u, sizeof(T));
  }
  return v;
}

/* Combines v with op.combine over aligned groups of `width` lanes (a power
 * of two <= 32); every lane of a group ends with the group's result. A
 * butterfly: the combine order is fixed, so results are deterministic. */
template <class Op, class T>
__device__ __forceinline__ T group_combine(const Op &op, T v, int width) {
  for (int m = width / 2; m > 0; m /= 2) v = op.combine(v, shfl_xor(v, m));
  return v;
}

/* Combines v over the whole block (blockDim.x a multiple of 32, at most
 * 1024); every thread gets the result. All threads must call it. `smem`
 * holds 32 values; it is free again when the function returns. */
template <class Op, class T>
__device__ __forceinline__ T block_combine(const Op &op, T v, T *smem) {
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = group_combine(op, v, 32);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  T r = smem[0];
  for (int w = 1; w < nwarps; w++) r = op.combine(r, smem[w]);
  __syncthreads();
  return r;
}

/* ---- elements of a dtype known at run time ---- */

/* Element `off` of p (dtype d) converted by mt_cast's rules to storage type
 * To. For data that is small, or whose kernels are not worth a template per
 * input dtype (staging of integer inputs, weights, matmul tiles). */
template <class To>
__host__ __device__ __forceinline__ To load_as(const void *p, mt_dtype d, int64_t off) {
  MTW_DISPATCH(d, return convert<To>(((const scalar_t *)p)[off]));
  return To();
}

/* Stores v (any storage or compute type) into element `off` of p (dtype d). */
template <class From>
__host__ __device__ __forceinline__ void store_as(void *p, mt_dtype d, int64_t off, From v) {
  MTW_DISPATCH(d, ((scalar_t *)p)[off] = convert<scalar_t>(v); return);
}

/* The storage type a kernel computes in for floating results: float32, or
 * float64 for float64 (float16/bfloat16 compute in float32, as the cpu). */
template <class T> struct float_compute { typedef float type; };
template <> struct float_compute<double> { typedef double type; };

/* ---- index math (host and device) ---- */

/* Offsets of the i-th element, in row-major order of shape, in two arrays
 * that share the shape (an input and an output). */
__host__ __device__ inline void offsets2(int ndim, const int64_t *shape, const int64_t *s1,
                                         const int64_t *s2, int64_t i, int64_t *o1, int64_t *o2) {
  int64_t a = 0, b = 0;
  for (int k = ndim - 1; k >= 0; k--) {
    int64_t q = i / shape[k], r = i - q * shape[k];
    a += r * s1[k];
    b += r * s2[k];
    i = q;
  }
  *o1 = a;
  *o2 = b;
}

/* Offset of the i-th element in row-major order of (shape, strides). */
__host__ __device__ inline int64_t offset1(int ndim, const int64_t *shape, const int64_t *strides,
                                           int64_t i) {
  int64_t a = 0;
  for (int k = ndim - 1; k >= 0; k--) {
    int64_t q = i / shape[k];
    a += (i - q * shape[k]) * strides[k];
    i = q;
  }
  return a;
}

/*
 * A reduction's geometry, normalised as the cpu does (src/cpu/reduce.c):
 * size-1 dims dropped, negative strides flipped (the reduced dim of an arg
 * reduction excepted: its order is the index), dims sorted by decreasing
 * |stride|; then split into the kept dims (with out's strides, so that a
 * kept index maps to its input and output element) and the reduced dims,
 * and adjacent dims of each list merged where their strides allow. Linear
 * kept index o and reduced index r are row-major over these lists, so that
 * consecutive indices walk the smallest strides.
 */
struct red_geom {
  int64_t in_base;  /* element offset of the (flipped) origin in the input */
  int64_t out_base; /* and in out */
  int nkept, nred;
  int64_t kshape[MT_MAX_DIMS], kstride[MT_MAX_DIMS], kostride[MT_MAX_DIMS];
  int64_t rshape[MT_MAX_DIMS], rstride[MT_MAX_DIMS];
  int64_t nout, count;
};

/* Builds g for the view (ndim, shape, strides) reduced over the dims in
 * mask into a contiguous out (keepdim's size-1 dims change no stride). arg:
 * an arg reduction, whose reduced dim keeps its direction. */
__host__ __device__ inline void red_geom_init(red_geom *g, int ndim, const int64_t *shape,
                                              const int64_t *strides, uint32_t mask, int arg) {
  int64_t sz[MT_MAX_DIMS], st[MT_MAX_DIMS], os[MT_MAX_DIMS], ostride[MT_MAX_DIMS], o = 1;
  int red[MT_MAX_DIMS], n = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    ostride[d] = o;
    if (!(mask >> d & 1u)) o *= shape[d];
  }
  g->in_base = g->out_base = 0;
  g->nout = g->count = 1;
  for (int d = 0; d < ndim; d++) {
    int is_red = (int)(mask >> d & 1u);
    if (is_red) g->count *= shape[d];
    else g->nout *= shape[d];
    if (shape[d] == 1) continue;
    int64_t s = strides[d], os_d = is_red ? 0 : ostride[d];
    if (s < 0 && !(arg && is_red)) {
      g->in_base += (shape[d] - 1) * s;
      s = -s;
      if (!is_red) {
        g->out_base += (shape[d] - 1) * os_d;
        os_d = -os_d;
      }
    }
    int at = n++;
    while (at > 0 && (st[at - 1] < 0 ? -st[at - 1] : st[at - 1]) < (s < 0 ? -s : s)) {
      sz[at] = sz[at - 1], st[at] = st[at - 1], os[at] = os[at - 1], red[at] = red[at - 1];
      at--;
    }
    sz[at] = shape[d], st[at] = s, os[at] = os_d, red[at] = is_red;
  }
  g->nkept = g->nred = 0;
  for (int i = 0; i < n; i++) {
    if (red[i]) {
      int j = g->nred;
      if (j && g->rstride[j - 1] == st[i] * sz[i]) {
        g->rshape[j - 1] *= sz[i];
        g->rstride[j - 1] = st[i];
      } else {
        g->rshape[j] = sz[i], g->rstride[j] = st[i], g->nred++;
      }
    } else {
      int j = g->nkept;
      if (j && g->kstride[j - 1] == st[i] * sz[i] && g->kostride[j - 1] == os[i] * sz[i]) {
        g->kshape[j - 1] *= sz[i];
        g->kstride[j - 1] = st[i];
        g->kostride[j - 1] = os[i];
      } else {
        g->kshape[j] = sz[i], g->kstride[j] = st[i], g->kostride[j] = os[i], g->nkept++;
      }
    }
  }
}

/* ---- reduction policies ----
 * An Op object has: acc (the partial result type), identity(), combine(a, b)
 * (associative and commutative, so that any tree gives the cpu's result up
 * to float rounding), from(x, r) (input element or partial x at reduced
 * index r) and store(out, off, a, mean_div) into out's dtype (device only).
 * Sum and product, max and min share a kernel, told apart by the member
 * `alt` (a branch that is uniform across the grid), to halve the number of
 * instantiations. */

template <class T> __host__ __device__ inline bool is_nan(T v) { return v != v; }

/* Sums (products when alt) of bool and integers: uint64, wrapping; out is
 * int64, or float32 for a mean (the sum as int64 divided in float64; the
 * mean of one element converts it directly, as the cpu's copy does). */
struct int_sum_op {
  typedef uint64_t acc;
  bool alt;
  mt_dtype od;
  __host__ __device__ acc identity() const { return alt ? 1u : 0u; }
  __host__ __device__ acc combine(acc a, acc b) const { return alt ? a * b : a + b; }
  template <class In> __host__ __device__ acc from(In x, int64_t) const {
    return (acc)widen(x); /* a bool byte counts as 0 or 1 */
  }
  __device__ void store(void *out, int64_t off, acc a, double mean_div) const {
    if (od != MT_FLOAT32) ((int64_t *)out)[off] = (int64_t)a;
    else if (mean_div > 0) ((float *)out)[off] = convert<float>((double)(int64_t)a / mean_div);
    else ((float *)out)[off] = convert<float>((int64_t)a); /* a mean of one element */
  }
};

/* Sums (products when alt) of floats: float64, rounded once into out's
 * dtype S (the input's). A mean divides first. */
template <class S> struct float_sum_op {
  typedef double acc;
  bool alt;
  __host__ __device__ acc identity() const { return alt ? 1.0 : 0.0; }
  __host__ __device__ acc combine(acc a, acc b) const { return alt ? a * b : a + b; }
  template <class In> __host__ __device__ acc from(In x, int64_t) const {
    return (double)widen(x);
  }
  __device__ void store(void *out, int64_t off, acc a, double mean_div) const {
    ((S *)out)[off] = convert<S>(mean_div > 0 ? a / mean_div : a);
  }
};

/* The type extremes compare in: float32 for 16-bit floats, else the type. */
template <class T> struct cmp_type { typedef T type; };
template <> struct cmp_type<__half> { typedef float type; };
template <> struct cmp_type<__nv_bfloat16> { typedef float type; };
template <> struct cmp_type<bool8> { typedef uint8_t type; }; /* 0 or 1 */

/* amax (amin when alt) of storage type S: a NaN operand wins and stays
 * (v > NaN is false); the identity is the lowest (highest) value. */
template <class S> struct extreme_op {
  typedef typename cmp_type<S>::type acc;
  bool alt;
  __host__ __device__ acc identity() const {
    if constexpr (is_floating<acc>::value) return alt ? (acc)INFINITY : -(acc)INFINITY;
    else if constexpr (::cuda::std::is_same<acc, bool>::value) return alt;
    else return alt ? ::cuda::std::numeric_limits<acc>::max()
                    : ::cuda::std::numeric_limits<acc>::lowest();
  }
  __host__ __device__ acc combine(acc a, acc b) const {
    bool take = alt ? b < a : b > a;
    return take || is_nan(b) ? b : a;
  }
  template <class In> __host__ __device__ acc from(In x, int64_t) const {
    return (acc)widen(x);
  }
  __device__ void store(void *out, int64_t off, acc a, double) const {
    ((S *)out)[off] = convert<S>(a);
  }
};

/* A value and its index along the reduced dim; index -1: nothing yet. */
template <class V> struct arg_pair {
  V v;
  int64_t i;
};

template <class V> __device__ __forceinline__ arg_pair<V> shfl_xor(arg_pair<V> p, int m) {
  p.v = shfl_xor(p.v, m);
  p.i = shfl_xor(p.i, m);
  return p;
}

/* argmax (argmin when alt) compared in type V: v beats b when it is larger
 * (smaller) or a NaN beside a number; between equals (or two NaNs) the
 * lower index wins, so the result is the first index whatever the combine
 * order. out is int64. */
template <class V> struct arg_op {
  typedef arg_pair<V> acc;
  bool alt;
  __host__ __device__ bool beats(V v, V b) const {
    return (alt ? v < b : v > b) || (is_nan(v) && !is_nan(b));
  }
  __host__ __device__ acc identity() const { return acc{V(), -1}; }
  __host__ __device__ acc combine(acc a, acc b) const {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    if (beats(b.v, a.v)) return b;
    if (beats(a.v, b.v)) return a;
    return b.i < a.i ? b : a;
  }
  template <class In> __host__ __device__ acc from(In x, int64_t r) const {
    return acc{(V)widen(x), r};
  }
  __host__ __device__ acc from(acc p, int64_t) const { return p; }
  __device__ void store(void *out, int64_t off, acc a, double) const {
    ((int64_t *)out)[off] = a.i;
  }
};

/* ---- a reduction's launch plan ---- */

enum {
  RED_BLOCK = 256,          /* threads per block                                  */
  RED_TARGET_BLOCKS = 4096, /* blocks worth launching: several waves on any GPU   */
  RED_MIN_PER_THREAD = 16,  /* reduced elements a thread takes at least per split */
  RED_WHOLE_BLOCK_MIN = 1024, /* reduced extents from here on get a block per output */
  RED_MIN_COLUMNS = 8          /* kept inner extents from here on read a row per warp */
};

/* One launch of the reduction kernel. Group (blockIdx.x, threadIdx.x /
 * group) reduces output o = blockIdx.x * (threads / group) + threadIdx.x
 * / group over split blockIdx.y, i.e. reduced indices [split * chunk,
 * min(count, (split + 1) * chunk)). */
struct red_params {
  red_geom g;      /* input offsets relative to the kernel's x (in_base applied) */
  int group;       /* lanes per output: 1..32 (a power of two) or RED_BLOCK      */
  int threads;     /* per block: RED_BLOCK, or fewer warps for few columns        */
  int64_t splits;  /* pieces of the reduced range per output                     */
  int64_t chunk;   /* reduced elements per split                                 */
  double mean_div; /* > 0: divide by it (mean)                                   */
  int64_t blocks;  /* grid x */
};

__host__ __device__ inline int64_t cdiv64(int64_t a, int64_t b) { return (a + b - 1) / b; }

__host__ __device__ inline int pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

/* Lanes per output: one when the innermost dim is kept (threads run along
 * it, so a warp reads a row's consecutive columns) and it has at least
 * RED_MIN_COLUMNS outputs; else a block for long reduced extents, or the
 * power of two that covers short ones (up to a warp). Lanes along the
 * reduced dim of a kept-inner layout would each read one element per
 * memory sector, a few times the bytes the sum needs. */
__host__ __device__ inline int red_group(const red_geom &g) {
  int64_t rin = g.nred ? g.rstride[g.nred - 1] : 0, kin = g.nkept ? g.kstride[g.nkept - 1] : 0;
  if (rin < 0) rin = -rin;
  bool kept_inner = g.nkept && g.nred && kin < rin;
  if (kept_inner && g.nout >= RED_MIN_COLUMNS) return 1;
  if (g.count >= RED_WHOLE_BLOCK_MIN) return RED_BLOCK;
  return pow2_at_least(g.count < 32 ? g.count : 32);
}

/* Pass 1 for g; splits > 1 when the outputs alone launch fewer than
 * RED_TARGET_BLOCKS blocks and the reduced extent is long enough (so few
 * columns are split along the reduced dim, in blocks of as many warps as
 * the columns need). The plan depends on the shape alone, so results are
 * reproducible. */
__host__ __device__ inline red_params red_plan(const red_geom &g, double mean_div) {
  red_params p;
  p.g = g;
  p.group = red_group(g);
  p.threads = RED_BLOCK;
  if (p.group == 1 && g.nout < RED_BLOCK) p.threads = (int)cdiv64(g.nout, 32) * 32;
  p.mean_div = mean_div;
  p.blocks = cdiv64(g.nout, p.threads / p.group);
  int64_t splits = 1;
  if (p.blocks < RED_TARGET_BLOCKS) {
    int64_t most = cdiv64(g.count, (int64_t)p.group * RED_MIN_PER_THREAD);
    splits = cdiv64(RED_TARGET_BLOCKS, p.blocks);
    if (splits > most) splits = most;
    if (splits < 1) splits = 1;
  }
  p.chunk = cdiv64(g.count, splits);
  p.splits = cdiv64(g.count, p.chunk);
  return p;
}

/* Pass 2 after pass p (p.splits > 1): the partials, stored at [o * splits
 * + split], as an input of shape [kept..., splits] reduced over its last dim
 * into out. */
__host__ __device__ inline red_params red_plan_join(const red_params &p) {
  red_params q = p;
  int64_t s = p.splits;
  for (int k = p.g.nkept - 1; k >= 0; k--) {
    q.g.kstride[k] = s;
    s *= p.g.kshape[k];
  }
  q.g.nred = 1;
  q.g.rshape[0] = q.g.count = p.splits;
  q.g.rstride[0] = 1;
  q.splits = 1;
  q.chunk = p.splits;
  q.group = p.splits >= RED_WHOLE_BLOCK_MIN / 4 ? RED_BLOCK
                                                : pow2_at_least(p.splits < 32 ? p.splits : 32);
  q.threads = RED_BLOCK;
  q.blocks = cdiv64(p.g.nout, RED_BLOCK / q.group);
  return q;
}

/* What lane `lane` of output o's group contributes to split `split`: its
 * reduced indices lane, lane + group, ... of the split, combined in index
 * order (four loads in flight when the reduced dims are one). *kout gets
 * out's offset of o. The kernel then combines the group's lanes. */
template <class Op, class In>
__host__ __device__ inline typename Op::acc reduce_lane(const Op &op, const In *x,
                                                        const red_params &p, int64_t o, int lane,
                                                        int64_t split, int64_t *kout) {
  typedef typename Op::acc acc;
  const red_geom &g = p.g;
  const int G = p.group;
  int64_t r0 = split * p.chunk, r1 = g.count < r0 + p.chunk ? g.count : r0 + p.chunk, kin;
  offsets2(g.nkept, g.kshape, g.kstride, g.kostride, o, &kin, kout);
  const In *row = x + kin;
  acc a = op.identity();
  if (g.nred == 1) {
    int64_t rs = g.rstride[0], r = r0 + lane;
    for (; r + 3 * G < r1; r += 4 * G) {
      In v0 = row[r * rs], v1 = row[(r + G) * rs], v2 = row[(r + 2 * G) * rs],
         v3 = row[(r + 3 * G) * rs];
      a = op.combine(a, op.from(v0, r));
      a = op.combine(a, op.from(v1, r + G));
      a = op.combine(a, op.from(v2, r + 2 * G));
      a = op.combine(a, op.from(v3, r + 3 * G));
    }
    for (; r < r1; r += G) a = op.combine(a, op.from(row[r * rs], r));
  } else {
    for (int64_t r = r0 + lane; r < r1; r += G)
      a = op.combine(a, op.from(row[offset1(g.nred, g.rshape, g.rstride, r)], r));
  }
  return a;
}

/* ---- index_select ---- */

/* Position of index entry v in [0, size), or -1 when out of range (negative
 * entries count from the end): v + size is formed unsigned, below 2 * size
 * exactly when v is in range. */
__host__ __device__ inline int64_t wrap_index(int64_t v, int64_t size) {
  uint64_t u = (uint64_t)v + (uint64_t)size;
  if (u >= 2 * (uint64_t)size) return -1;
  return (int64_t)(u >= (uint64_t)size ? u - (uint64_t)size : u);
}

/* ---- matmul operands ---- */

/* One operand as batches of rows x cols matrices, its batch strides
 * aligned to out's batch dims (0 where it is broadcast). */
struct mm_operand {
  const void *data;
  mt_dtype dtype;
  int64_t rows, cols, rs, cs;
  int64_t bstride[MT_MAX_DIMS];
};

struct mm_problem {
  int nb; /* batch dims of out */
  int64_t bshape[MT_MAX_DIMS];
  int64_t batch, m, n, k;
  mm_operand a, b;
};

/* Reads view v as the left (a) or right (b) operand, as the cpu's
 * operand_init: a 1-d a is one row, a 1-d b one column; a batch dim is
 * broadcast when v lacks it or has size 1 there. */
__host__ __device__ inline void mm_operand_init(mm_operand *op, const mti_view &v, bool left,
                                                int nb, const int64_t *bshape) {
  int nd = v.ndim, vbatch = nd >= 2 ? nd - 2 : 0;
  op->data = v.data;
  op->dtype = v.dtype;
  if (nd == 1 && left) {
    op->rows = 1, op->cols = v.shape[0];
    op->rs = op->cols, op->cs = v.strides[0];
  } else if (nd == 1) {
    op->rows = v.shape[0], op->cols = 1;
    op->rs = v.strides[0], op->cs = 1;
  } else {
    op->rows = v.shape[nd - 2], op->cols = v.shape[nd - 1];
    op->rs = v.strides[nd - 2], op->cs = v.strides[nd - 1];
  }
  for (int d = 0; d < nb; d++) {
    int vd = d - (nb - vbatch);
    bool broadcast = vd < 0 || v.shape[vd] != bshape[d] || bshape[d] == 1;
    op->bstride[d] = broadcast ? 0 : v.strides[vd];
  }
}

/* a @ b into an out of (out_ndim, out_shape) (mti_infer's shape): out is
 * [batch, m, n] contiguous whatever dims the 1-d rules drop. */
__host__ __device__ inline void mm_problem_init(mm_problem *p, const mti_view &a,
                                                const mti_view &b, int out_ndim,
                                                const int64_t *out_shape) {
  p->nb = out_ndim - (a.ndim > 1) - (b.ndim > 1);
  p->batch = 1;
  for (int d = 0; d < p->nb; d++) {
    p->bshape[d] = out_shape[d];
    p->batch *= out_shape[d];
  }
  mm_operand_init(&p->a, a, true, p->nb, p->bshape);
  mm_operand_init(&p->b, b, false, p->nb, p->bshape);
  p->m = p->a.rows, p->k = p->a.cols, p->n = p->b.cols;
}

/* Element offsets of batch t's matrices in a and b. */
__host__ __device__ inline void mm_batch_offsets(const mm_problem &p, int64_t t, int64_t *oa,
                                                 int64_t *ob) {
  int64_t ra = 0, rb = 0;
  for (int d = p.nb - 1; d >= 0; d--) {
    int64_t i = t % p.bshape[d];
    t /= p.bshape[d];
    ra += i * p.a.bstride[d];
    rb += i * p.b.bstride[d];
  }
  *oa = ra;
  *ob = rb;
}

} /* namespace mtw */

#endif
