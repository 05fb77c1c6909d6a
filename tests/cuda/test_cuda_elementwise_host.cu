/*
 * test_cuda_elementwise_host.cu - the CUDA elementwise and random kernels
 * checked on a machine without a GPU.
 *
 * The kernel files are included whole. Their host logic (dtype and path
 * choice, dim coalescing, chunking, scalars, staging) is run unchanged with
 * an executor that, instead of launching kernels, loops over the very
 * element functions the kernels call (contig_vector, strided_element, ...),
 * on host memory; the results are compared with mti_cpu_run, the reference.
 * What this cannot show: the kernels' grid-stride loops and launch
 * configuration, and the device's own math library (sinf, expf, erfcxf,
 * ... differ between host and device by an ulp or two); exact ops use no
 * math library and are compared bit for bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda/cuda_elementwise.cu"
#include "cuda/cuda_random.cu"

extern "C" {
#include "cpu/cpu_kernels.h"
}

#include "host_check.h"

using namespace mtw::ew;
using mtw::bits_of;
using mtw::bool8;
using mtw::convert;
using mtw::widen;

/* ---- the host executor: element code in plain loops, launches counted ---- */

struct host_exec {
  mutable int contig_runs = 0, strided_runs = 0, where_runs = 0, copies = 0, transposes = 0;
  mutable std::vector<void *> scratches;
  mutable unsigned fault = 0; /* the stream's fault word */

  template <class Op, class S, class D> void contig(const Op &op, const contig_args &a) const {
    contig_runs++;
    int64_t nvec = a.n / vector_len<S>;
    for (int64_t v = 0; v < nvec; v++) contig_vector<Op, S, D>(op, a, v);
    for (int64_t i = nvec * vector_len<S>; i < a.n; i++) contig_element<Op, S, D>(op, a, i);
  }
  template <class B> void where_bits(const contig_args &a) const {
    where_runs++;
    int64_t nvec = a.n / vector_len<B>;
    for (int64_t v = 0; v < nvec; v++) where_vector<B>(a, v);
    for (int64_t i = nvec * vector_len<B>; i < a.n; i++) where_element<B>(a, i);
  }
  template <class Op, class CT> void strided(const Op &op, const strided_args &a) const {
    strided_runs++;
    for (uint32_t i = 0; i < a.n; i++) strided_element<Op, CT>(op, a, i);
  }
  /* Tile by tile, each element copied directly: checks that the tiles
   * cover out and where they start (not the kernel's shared-memory walk). */
  template <class B> void transpose(const tile_args &a) const {
    transposes++;
    const int64_t kn = a.shape[a.k], in_n = a.shape[a.nd - 1];
    for (int64_t t = 0; t < a.tiles; t++) {
      tile_origin o = tile_origin_of(a, t);
      for (int64_t kk = 0; kk < TILE && o.k0 + kk < kn; kk++)
        for (int64_t ii = 0; ii < TILE && o.i0 + ii < in_n; ii++)
          ((B *)a.out)[o.out_off + kk * a.out_stride[a.k] + ii] =
              ((const B *)a.in)[o.in_off + kk + ii * a.in_stride[a.nd - 1]];
    }
  }
  template <class S>
  void arange(S *out, int64_t stride, int64_t n, double start, double step) const {
    for (int64_t i = 0; i < n; i++) arange_element<S>(out, stride, i, start, step);
  }
  void copy(void *dst, const void *src, size_t bytes) const {
    copies++;
    memcpy(dst, src, bytes);
  }
  void *scratch(size_t bytes) const {
    scratches.push_back(aligned_alloc(256, (bytes + 255) / 256 * 256));
    return scratches.back();
  }
  unsigned *fault_word() const { return &fault; }
  mt_status done(const char *) const { return MT_OK; }
  ~host_exec() {
    for (void *p : scratches) free(p);
  }
};

/* ---- tensors on the host ---- */

/* Special and ordinary values every dtype gets (stored with mt_cast's
 * rules: integers saturate, NaN becomes 0). */
static const double VALUES[] = {
    0.0,   -0.0,  1.0,    -1.0,    0.5,     -0.5,     1.5,     -1.5,   2.5,     -2.5,
    2.0,   3.0,   -3.0,   7.0,     -7.0,    100.25,   -100.75, 127.6,  -128.7,  255.5,
    256.0, 65504, 65520,  -70000,  2147483647.0, -2147483649.0, 1e10, -1e10, 9.3e18, -9.3e18,
    1e30,  -1e30, 3.4e38, 1e300,   1e-3,    1e-8,     1e-40,   1e-310, 0.1,     NAN,
    INFINITY, -INFINITY, 33.0, -17.0, 5.0, 1.0 / 3.0, 0.7, -0.7, 3.5, -21.9};
static const int NV = (int)(sizeof VALUES / sizeof VALUES[0]);

struct host_tensor {
  void *mem = nullptr;
  mti_view v;
  host_tensor(mt_dtype d, int ndim, const int64_t *shape, size_t extra_elems = 0) {
    memset(&v, 0, sizeof v);
    v.dtype = d;
    v.ndim = ndim;
    for (int i = 0; i < ndim; i++) v.shape[i] = shape[i];
    mti_shape_contiguous_strides(ndim, v.shape, v.strides);
    size_t bytes = ((size_t)mti_shape_numel(ndim, v.shape) + extra_elems) * mt_dtype_size(d);
    mem = aligned_alloc(256, (bytes + 256) / 256 * 256);
    memset(mem, 0xa5, (bytes + 256) / 256 * 256);
    v.data = mem;
  }
  host_tensor(const host_tensor &) = delete;
  host_tensor &operator=(const host_tensor &) = delete;
  ~host_tensor() { free(mem); }
  /* Element i (row-major) = VALUES[(i * mul + add) % NV]; bool also gets
   * a byte 2 now and then (non-zero is true). */
  void fill(int mul, int add) {
    int64_t n = mti_shape_numel(v.ndim, v.shape);
    size_t size = mt_dtype_size(v.dtype);
    for (int64_t i = 0; i < n; i++) {
      char *p = (char *)mem + i * (int64_t)size;
      mti_store_double(p, v.dtype, VALUES[(i * mul + add) % NV]);
      if (v.dtype == MT_BOOL && *p && i % 5 == 0) *p = 2;
    }
  }
};

static int64_t view_offset(const mti_view &v, int64_t i) {
  int64_t off = 0;
  for (int d = v.ndim - 1; d >= 0; d--) {
    off += (i % v.shape[d]) * v.strides[d];
    i /= v.shape[d];
  }
  return off;
}

/* Distance in ulps between two floats of dtype d given as bit patterns
 * (NaN and NaN are 0 apart; -0 and +0 one apart). */
static uint64_t ulp_distance(uint64_t a, uint64_t b, int bits) {
  uint64_t sign = (uint64_t)1 << (bits - 1);
  auto ordered = [&](uint64_t x) -> int64_t {
    return (x & sign) ? -(int64_t)(x & (sign - 1)) - 1 : (int64_t)x;
  };
  int64_t d = ordered(a) - ordered(b);
  return (uint64_t)(d < 0 ? -d : d);
}

static bool is_nan_bits(uint64_t x, mt_dtype d) {
  switch (d) {
  case MT_FLOAT16: return (x & 0x7fff) > 0x7c00;
  case MT_BFLOAT16: return (x & 0x7fff) > 0x7f80;
  case MT_FLOAT32: return (x & 0x7fffffffu) > 0x7f800000u;
  default: return (x & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
  }
}

/* Largest ulp distance seen per op (inexact ops only), for the report. */
static uint64_t worst_ulps[MTI_OP_COUNT][MTI_NUM_DTYPES];

/* Compares out views a (ours) and b (cpu) element by element: integers and
 * bool exactly (bool as zero/non-zero), floats within tol ulps (NaN matches
 * any NaN; with tol 0 the bits must agree, zero signs included). */
static void compare_views(const char *what, mti_op op, const mti_view &a, const mti_view &b,
                          uint64_t tol) {
  int64_t n = mti_shape_numel(a.ndim, a.shape);
  size_t size = mt_dtype_size(a.dtype);
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 3; i++) {
    uint64_t x = 0, y = 0;
    memcpy(&x, (char *)a.data + view_offset(a, i) * (int64_t)size, size);
    memcpy(&y, (char *)b.data + view_offset(b, i) * (int64_t)size, size);
    bool ok;
    if (a.dtype == MT_BOOL) {
      ok = (x != 0) == (y != 0);
    } else if (!mti_dtype_is_float(a.dtype)) {
      ok = x == y;
    } else if (is_nan_bits(x, a.dtype) || is_nan_bits(y, a.dtype)) {
      ok = is_nan_bits(x, a.dtype) && is_nan_bits(y, a.dtype);
    } else {
      uint64_t dist = ulp_distance(x, y, (int)size * 8);
      ok = tol ? dist <= tol : x == y;
      if (dist > worst_ulps[op][a.dtype]) worst_ulps[op][a.dtype] = dist;
    }
    if (!ok) bad++;
    CHECK(ok, "%s: element %lld: cuda %.17g, cpu %.17g (bits %llx vs %llx)", what, (long long)i,
           mti_load_double((char *)a.data + view_offset(a, i) * (int64_t)size, a.dtype),
           mti_load_double((char *)b.data + view_offset(b, i) * (int64_t)size, b.dtype),
           (unsigned long long)x, (unsigned long long)y);
  }
}

/* ulps allowed between our element code and the cpu's: 0 (bit-identical)
 * except for ops that go through a math library (different on each side). */
static uint64_t tolerance(mti_op op, mt_dtype out, const mti_attrs *at) {
  switch (op) {
  case MTI_OP_POW_SCALAR:
    if ((float)at->s0 == 2.0f) return 0;
    break;
  case MTI_OP_POW:
  case MTI_OP_EXP:
  case MTI_OP_LOG:
  case MTI_OP_SIN:
  case MTI_OP_COS:
  case MTI_OP_TANH:
  case MTI_OP_SIGMOID:
  case MTI_OP_GELU:
  case MTI_OP_SILU:
  case MTI_OP_GELU_TANH: break; /* the cpu's float32 tanh is vmath's */
  default: return 0;
  }
  switch (out) {
  case MT_FLOAT16:
  case MT_BFLOAT16: return 1;
  case MT_FLOAT32: return 8;
  default: return 2;
  }
}

/* Runs op on views in both ways and compares; out is contiguous, or for
 * COPY a transposed view when transposed_out. Returns the executor's
 * counters through *x. */
static void check_op(const char *what, mti_op op, int n, const mti_view *in, const mti_attrs *at,
                     host_exec *x, bool transposed_out = false) {
  mti_meta meta[3], om;
  for (int k = 0; k < n; k++) {
    meta[k].dtype = in[k].dtype;
    meta[k].ndim = in[k].ndim;
    for (int d = 0; d < in[k].ndim; d++) meta[k].shape[d] = in[k].shape[d];
  }
  if (mti_infer(op, n, meta, at, &om) != MT_OK) return; /* refused: nothing to compare */
  host_tensor ours(om.dtype, om.ndim, om.shape), cpu(om.dtype, om.ndim, om.shape);
  if (transposed_out && om.ndim == 2) {
    for (host_tensor *t : {&ours, &cpu}) {
      t->v.strides[0] = 1;
      t->v.strides[1] = om.shape[0];
    }
  }
  mt_status s1 = elementwise(*x, op, in, n, at, &ours.v);
  mt_status s2 = mti_cpu_run(op, in, n, at, &cpu.v);
  /* An integer divisor 0: the cpu's error, the fault word on the GPU. */
  bool zero_divisor = s2 == MT_ERR_INVALID_ARGUMENT && strstr(mt_last_error(), "division by zero");
  unsigned fault = zero_divisor ? MTW_CUDA_FAULT(op, MTW_CUDA_FAULT_ZERO_DIVISOR) : 0u;
  CHECK(s1 == MT_OK && (s2 == MT_OK || zero_divisor), "%s: status %d (cuda) %d (cpu)", what,
         (int)s1, (int)s2);
  CHECK(x->fault == fault, "%s: fault word %#x, expected %#x", what, x->fault, fault);
  compare_views(what, op, ours.v, cpu.v, tolerance(op, om.dtype, at));
}

static const char *op_name(mti_op op) { return mti_op_get((int)op)->name; }

/* ---- element ops over all dtypes and layouts ---- */

/* Unary-like ops (one tensor input): contiguous, reversed and 0-d inputs. */
static void test_one_input_ops() {
  static const double scalars_s0[] = {2.0, 3.0, 2.5, -1.0, -2.0, 0.0, 0.5, 300.0, 1e20, -1e20, 63};
  static const double clamp_bounds[][2] = {{-1.5, 2.5}, {0.0, 0.0}, {3.0, -3.0},
                                           {-INFINITY, INFINITY}, {-1e30, 100.7}, {0.5, 0.5},
                                           {-200.0, 1e10}};
  /* leaky_relu and elu read s0; nan_to_num s0..s2 (NaN, +inf, -inf) */
  static const double params[][3] = {{0.01, 3.4028234663852886e38, -3.4028234663852886e38},
                                     {-2.0, 1e10, -7.0}, {0.0, INFINITY, 2.0},
                                     {NAN, -INFINITY, 1e300}};
  for (int op = 0; op < MTI_OP_COUNT; op++) {
    mti_op_kind kind = mti_op_get(op)->kind;
    bool one = kind == MTI_KIND_UNARY || kind == MTI_KIND_UNARY_FLOAT || kind == MTI_KIND_SCALAR ||
               kind == MTI_KIND_CLAMP || kind == MTI_KIND_CAST || kind == MTI_KIND_COPY ||
               kind == MTI_KIND_PREDICATE || kind == MTI_KIND_UNARY_PARAM ||
               ((kind == MTI_KIND_LOGICAL || kind == MTI_KIND_BITWISE) &&
                mti_op_get(op)->arity == 1);
    if (!one) continue;
    int nattr = kind == MTI_KIND_SCALAR ? (int)(sizeof scalars_s0 / sizeof scalars_s0[0])
                : kind == MTI_KIND_CLAMP ? (int)(sizeof clamp_bounds / sizeof clamp_bounds[0])
                : kind == MTI_KIND_UNARY_PARAM ? (int)(sizeof params / sizeof params[0])
                : kind == MTI_KIND_CAST || kind == MTI_KIND_COPY ? MTI_NUM_DTYPES
                                                                   : 1;
    for (int d = 0; d < MTI_NUM_DTYPES; d++) {
      int64_t shape[1] = {NV};
      host_tensor a((mt_dtype)d, 1, shape);
      a.fill(1, 0);
      mti_view reversed = a.v;
      reversed.data = (char *)a.mem + (NV - 1) * (int64_t)mt_dtype_size((mt_dtype)d);
      reversed.strides[0] = -1;
      mti_view scalar0 = a.v;
      scalar0.ndim = 0;
      scalar0.data = (char *)a.mem + 7 * (int64_t)mt_dtype_size((mt_dtype)d);
      for (int k = 0; k < nattr; k++) {
        mti_attrs at;
        memset(&at, 0, sizeof at);
        if (kind == MTI_KIND_SCALAR) at.s0 = scalars_s0[k];
        if (kind == MTI_KIND_CLAMP) at.s0 = clamp_bounds[k][0], at.s1 = clamp_bounds[k][1];
        if (kind == MTI_KIND_UNARY_PARAM) at.s0 = params[k][0];
        if (op == MTI_OP_NAN_TO_NUM) at.s1 = params[k][1], at.s2 = params[k][2];
        if (kind == MTI_KIND_CAST || kind == MTI_KIND_COPY) at.dtype = k;
        const mti_view *views[3] = {&a.v, &reversed, &scalar0};
        for (int l = 0; l < 3; l++) {
          char what[160];
          snprintf(what, sizeof what, "%s(%s, layout %d, s0 %g, s1 %g, dtype %d)",
                   op_name((mti_op)op), mt_dtype_name((mt_dtype)d), l, at.s0, at.s1, at.dtype);
          host_exec x;
          check_op(what, (mti_op)op, 1, views[l], &at, &x);
        }
      }
    }
  }
}

/* Two-input ops on every pair of dtypes: the full grid of value pairs by
 * broadcasting ([NV, 1] with [1, NV]), the same pairs as contiguous arrays,
 * and as a transposed and a reversed view. */
static void test_two_input_ops() {
  for (int op = 0; op < MTI_OP_COUNT; op++) {
    mti_op_kind kind = mti_op_get(op)->kind;
    bool two = kind == MTI_KIND_BINARY || kind == MTI_KIND_COMPARE ||
               kind == MTI_KIND_BINARY_FLOAT || kind == MTI_KIND_DIVISION ||
               ((kind == MTI_KIND_LOGICAL || kind == MTI_KIND_BITWISE) &&
                mti_op_get(op)->arity == 2);
    if (!two) continue;
    for (int da = 0; da < MTI_NUM_DTYPES; da++) {
      for (int db = 0; db < MTI_NUM_DTYPES; db++) {
        int64_t col[2] = {NV, 1}, row[2] = {1, NV}, grid[2] = {NV, NV};
        host_tensor a((mt_dtype)da, 2, col), b((mt_dtype)db, 2, row);
        a.fill(1, 0);
        b.fill(1, 0);
        host_tensor fa((mt_dtype)da, 2, grid), fb((mt_dtype)db, 2, grid);
        fa.fill(1, 0);          /* a[i][j] = V[(i*NV + j) % NV] = V[j] */
        fb.fill(NV + 1, 0);     /* b[i][j] = V[(i*NV*(NV+1) + j*(NV+1)) % NV] */
        mti_view ta = fa.v;     /* transposed */
        ta.strides[0] = 1;
        ta.strides[1] = NV;
        mti_view rb = fb.v;     /* both dims reversed */
        rb.data = (char *)fb.mem + (NV * NV - 1) * (int64_t)mt_dtype_size((mt_dtype)db);
        rb.strides[0] = -NV;
        rb.strides[1] = -1;
        mti_view layouts[3][2] = {{a.v, b.v}, {fa.v, fb.v}, {ta, rb}};
        mti_attrs at;
        memset(&at, 0, sizeof at);
        for (int l = 0; l < 3; l++) {
          char what[160];
          snprintf(what, sizeof what, "%s(%s, %s, layout %d)", op_name((mti_op)op),
                   mt_dtype_name((mt_dtype)da), mt_dtype_name((mt_dtype)db), l);
          host_exec x;
          check_op(what, (mti_op)op, 2, layouts[l], &at, &x);
        }
      }
    }
  }
}

/* where: conditions of three dtypes, values of every pair of dtypes, both
 * broadcast and contiguous. */
static void test_where() {
  static const mt_dtype conds[] = {MT_BOOL, MT_FLOAT32, MT_INT8};
  for (mt_dtype dc : conds) {
    for (int da = 0; da < MTI_NUM_DTYPES; da++) {
      for (int db = 0; db < MTI_NUM_DTYPES; db++) {
        int64_t shape[1] = {NV};
        host_tensor c(dc, 1, shape), a((mt_dtype)da, 1, shape), b((mt_dtype)db, 1, shape);
        c.fill(3, 1);
        a.fill(1, 0);
        b.fill(1, 5);
        mti_view bcast[3] = {c.v, a.v, b.v};
        bcast[0].ndim = 2;
        bcast[0].shape[0] = 1, bcast[0].shape[1] = NV;
        bcast[0].strides[0] = 0, bcast[0].strides[1] = 1;
        bcast[1].ndim = 2;
        bcast[1].shape[0] = NV, bcast[1].shape[1] = 1;
        bcast[1].strides[0] = 1, bcast[1].strides[1] = 0;
        mti_view flat[3] = {c.v, a.v, b.v};
        mti_attrs at;
        memset(&at, 0, sizeof at);
        char what[160];
        snprintf(what, sizeof what, "where(%s, %s, %s)", mt_dtype_name(dc),
                 mt_dtype_name((mt_dtype)da), mt_dtype_name((mt_dtype)db));
        host_exec x1, x2;
        check_op(what, MTI_OP_WHERE, 3, bcast, &at, &x1);
        check_op(what, MTI_OP_WHERE, 3, flat, &at, &x2);
        if (dc == MT_BOOL && da == db)
          CHECK(x2.where_runs == 1, "%s: contiguous where with a bool condition selects bits",
                 what);
      }
    }
  }
}

/* masked_fill of a [7, NV] a of every dtype with bool masks of every
 * broadcast (bytes 2 among the true ones), values that fit and ones that
 * do not (refused by mti_infer on both sides). */
static void test_masked_fill() {
  static const double fills[] = {-1.5, 0.0, 300.0, NAN, INFINITY, -0.0, 1e10};
  for (int d = 0; d < MTI_NUM_DTYPES; d++) {
    int64_t shape[2] = {7, NV}, row[2] = {1, NV}, col[2] = {7, 1};
    host_tensor a((mt_dtype)d, 2, shape), full(MT_BOOL, 2, shape), r(MT_BOOL, 2, row),
        c(MT_BOOL, 2, col);
    a.fill(1, 0);
    full.fill(3, 1);
    r.fill(7, 2);
    c.fill(1, 1);
    mti_view scalar = c.v;
    scalar.ndim = 0;
    const mti_view masks[] = {full.v, r.v, c.v, scalar};
    for (int m = 0; m < 4; m++)
      for (double v : fills) {
        mti_attrs at;
        memset(&at, 0, sizeof at);
        at.s0 = v;
        mti_view in[2] = {a.v, masks[m]};
        char what[160];
        snprintf(what, sizeof what, "masked_fill(%s, mask %d, %g)", mt_dtype_name((mt_dtype)d),
                 m, v);
        host_exec x;
        check_op(what, MTI_OP_MASKED_FILL, 2, in, &at, &x);
      }
  }
}

/* full and arange into every dtype. */
static void test_creation() {
  static const double fills[] = {0.0, 1.0, -1.0, 2.5, NAN, INFINITY, -0.0, 1e10, 300.0, -129.5};
  static const double aranges[][2] = {{0, 1}, {-3, 0.5}, {1e15, 0.1}, {0.1, 0.2}, {5, -0.75}};
  for (int d = 0; d < MTI_NUM_DTYPES; d++) {
    for (int64_t n : {(int64_t)1, (int64_t)3, (int64_t)37, (int64_t)64}) {
      for (double v : fills) {
        mti_attrs at;
        memset(&at, 0, sizeof at);
        at.s0 = v;
        at.dtype = d;
        host_tensor ours((mt_dtype)d, 1, &n), cpu((mt_dtype)d, 1, &n);
        host_exec x;
        CHECK(elementwise(x, MTI_OP_FULL, NULL, 0, &at, &ours.v) == MT_OK, "full");
        CHECK(mti_cpu_run(MTI_OP_FULL, NULL, 0, &at, &cpu.v) == MT_OK, "full (cpu)");
        compare_views("full", MTI_OP_FULL, ours.v, cpu.v, 0);
      }
      for (auto &ar : aranges) {
        mti_attrs at;
        memset(&at, 0, sizeof at);
        at.s0 = ar[0];
        at.s1 = ar[1];
        at.dtype = d;
        host_tensor ours((mt_dtype)d, 1, &n), cpu((mt_dtype)d, 1, &n);
        host_exec x;
        CHECK(elementwise(x, MTI_OP_ARANGE, NULL, 0, &at, &ours.v) == MT_OK, "arange");
        CHECK(mti_cpu_run(MTI_OP_ARANGE, NULL, 0, &at, &cpu.v) == MT_OK, "arange (cpu)");
        compare_views("arange", MTI_OP_ARANGE, ours.v, cpu.v, 0);
      }
    }
  }
}

/* copy_ into a transposed destination, from a broadcast source, and from
 * a view overlapping the destination (staged through scratch). */
static void test_copy_layouts() {
  for (int ds = 0; ds < MTI_NUM_DTYPES; ds++) {
    for (int dd = 0; dd < MTI_NUM_DTYPES; dd++) {
      int64_t shape[2] = {9, NV};
      host_tensor src((mt_dtype)ds, 2, shape);
      src.fill(1, 3);
      mti_attrs at;
      memset(&at, 0, sizeof at);
      at.dtype = dd;
      char what[160];
      snprintf(what, sizeof what, "copy(%s -> %s)", mt_dtype_name((mt_dtype)ds),
               mt_dtype_name((mt_dtype)dd));
      host_exec x1, x2;
      check_op(what, MTI_OP_COPY, 1, &src.v, &at, &x1, true);
      CHECK(x1.transposes == (ds == dd), "%s: same-dtype transposed copies go by tiles", what);
      mti_view row = src.v; /* [1, NV] broadcast down 7 rows */
      row.shape[0] = 1;
      int64_t shape7[2] = {7, NV};
      host_tensor ours((mt_dtype)dd, 2, shape7), cpu((mt_dtype)dd, 2, shape7);
      mti_view wide = mti_view_broadcast_to(&row, 2, shape7);
      CHECK(elementwise(x2, MTI_OP_COPY, &wide, 1, &at, &ours.v) == MT_OK, "%s", what);
      CHECK(mti_cpu_run(MTI_OP_COPY, &wide, 1, &at, &cpu.v) == MT_OK, "%s", what);
      compare_views(what, MTI_OP_COPY, ours.v, cpu.v, 0);
    }
    /* overlap: t[1:] = t[:-1] on one buffer, both ways */
    int64_t n = 40;
    host_tensor ours((mt_dtype)ds, 1, &n), cpu((mt_dtype)ds, 1, &n);
    ours.fill(1, 0);
    cpu.fill(1, 0);
    mti_attrs at;
    memset(&at, 0, sizeof at);
    at.dtype = ds;
    size_t size = mt_dtype_size((mt_dtype)ds);
    for (host_tensor *t : {&ours, &cpu}) t->v.shape[0] = n - 1;
    mti_view src_o = ours.v, dst_o = ours.v, src_c = cpu.v, dst_c = cpu.v;
    dst_o.data = (char *)ours.mem + size;
    dst_c.data = (char *)cpu.mem + size;
    host_exec x;
    CHECK(elementwise(x, MTI_OP_COPY, &src_o, 1, &at, &dst_o) == MT_OK, "overlap copy");
    CHECK(mti_cpu_run(MTI_OP_COPY, &src_c, 1, &at, &dst_c) == MT_OK, "overlap copy (cpu)");
    CHECK(x.scratches.size() == 1, "overlapping copy stages through scratch");
    ours.v.shape[0] = cpu.v.shape[0] = n;
    compare_views("overlapping copy", MTI_OP_COPY, ours.v, cpu.v, 0);
  }
}

/* Batched transposes ([3, 40, 37] permuted to [3, 37, 40], made
 * contiguous) and a transpose with an inner dim, by tiles. */
static void test_transposes() {
  for (int d = 0; d < MTI_NUM_DTYPES; d++) {
    int64_t shape[4] = {3, 40, 37, 2};
    for (int nd : {3, 4}) {
      host_tensor src((mt_dtype)d, nd, shape);
      src.fill(1, 0);
      mti_view perm = src.v;
      perm.shape[1] = shape[2], perm.shape[2] = shape[1];
      perm.strides[1] = src.v.strides[2], perm.strides[2] = src.v.strides[1];
      mti_attrs at;
      memset(&at, 0, sizeof at);
      at.dtype = d;
      host_tensor ours((mt_dtype)d, nd, perm.shape), cpu((mt_dtype)d, nd, perm.shape);
      host_exec x;
      CHECK(elementwise(x, MTI_OP_COPY, &perm, 1, &at, &ours.v) == MT_OK, "transpose");
      CHECK(mti_cpu_run(MTI_OP_COPY, &perm, 1, &at, &cpu.v) == MT_OK, "transpose (cpu)");
      compare_views("transpose", MTI_OP_COPY, ours.v, cpu.v, 0);
      CHECK(x.transposes == (nd == 3 ? 1 : 0), "%d-d transpose: tiles %d", nd, x.transposes);
    }
  }
}

/* The path each layout takes (what the device will run). */
static void test_paths() {
  int64_t n = 1000, n2[2] = {10, 100}, n1[2] = {1, 100};
  mti_attrs at;
  memset(&at, 0, sizeof at);
  host_tensor f1(MT_FLOAT32, 1, &n), f2(MT_FLOAT32, 1, &n), i1(MT_INT32, 1, &n);
  host_tensor g(MT_FLOAT32, 2, n2), r(MT_FLOAT32, 2, n1), out(MT_FLOAT32, 1, &n);
  host_tensor h(MT_FLOAT16, 1, &n), o16(MT_FLOAT16, 1, &n), o32(MT_FLOAT32, 1, &n);
  mti_view in[2] = {f1.v, f2.v};
  host_exec x1;
  elementwise(x1, MTI_OP_ADD, in, 2, &at, &out.v);
  CHECK(x1.contig_runs == 1 && x1.strided_runs == 0, "contiguous f32 add: vector kernel");
  mti_view in2[2] = {g.v, r.v};
  host_tensor out2(MT_FLOAT32, 2, n2);
  host_exec x2;
  elementwise(x2, MTI_OP_MUL, in2, 2, &at, &out2.v);
  CHECK(x2.strided_runs == 1 && x2.contig_runs == 0, "broadcast mul: strided kernel");
  mti_view in3[2] = {f1.v, i1.v};
  host_exec x3;
  elementwise(x3, MTI_OP_ADD, in3, 2, &at, &out.v);
  CHECK(x3.strided_runs == 1, "mixed dtypes: strided kernel");
  mti_view off = f1.v; /* misaligned by one element */
  off.data = (char *)f1.mem + 4;
  off.shape[0] = n - 1;
  mti_view in4[2] = {off, off};
  mti_view out4 = out.v;
  out4.shape[0] = n - 1;
  host_exec x4;
  elementwise(x4, MTI_OP_SUB, in4, 2, &at, &out4);
  CHECK(x4.strided_runs == 1 && x4.contig_runs == 0, "misaligned: strided kernel");
  host_exec x5;
  at.dtype = MT_FLOAT32;
  elementwise(x5, MTI_OP_CAST, &h.v, 1, &at, &o32.v);
  CHECK(x5.contig_runs == 1, "f16 -> f32 cast: vector kernel");
  host_exec x6;
  at.dtype = MT_FLOAT16;
  elementwise(x6, MTI_OP_COPY, &h.v, 1, &at, &o16.v);
  CHECK(x6.copies == 1, "same-dtype contiguous copy: one memcpy");
  host_exec x7;
  elementwise(x7, MTI_OP_GELU, &h.v, 1, &at, &o16.v);
  CHECK(x7.contig_runs == 1, "f16 gelu: vector kernel");
  host_tensor b16(MT_BOOL, 1, &n), i32(MT_INT32, 1, &n);
  host_exec x9;
  elementwise(x9, MTI_OP_ISNAN, &h.v, 1, &at, &b16.v);
  CHECK(x9.contig_runs == 1, "f16 isnan: vector kernel with a bool out");
  host_exec x10;
  elementwise(x10, MTI_OP_ISFINITE, &i1.v, 1, &at, &b16.v);
  CHECK(x10.strided_runs == 1 && ((uint8_t *)b16.mem)[n - 1] == 1,
         "isfinite of integers: a fill of true");
  mti_view in11[2] = {i1.v, i1.v};
  host_exec x11;
  ((int32_t *)i1.mem)[n - 1] = 0;
  elementwise(x11, MTI_OP_FMOD, in11, 2, &at, &i32.v);
  CHECK(x11.strided_runs == 1 &&
             x11.fault == MTW_CUDA_FAULT(MTI_OP_FMOD, MTW_CUDA_FAULT_ZERO_DIVISOR),
         "int32 fmod by a 0 at the end: 1-d strided kernel, the fault word set");
  int64_t zero = 0;
  host_tensor empty(MT_FLOAT32, 1, &zero);
  mti_view in8[2] = {empty.v, empty.v};
  host_exec x8;
  CHECK(elementwise(x8, MTI_OP_ADD, in8, 2, &at, &empty.v) == MT_OK &&
             x8.contig_runs + x8.strided_runs == 0,
         "empty tensors enqueue nothing");
}

/* Chunks of huge layouts (no memory behind them): each at most 2^31
 * elements, together all of them, in order for a contiguous out. */
static void test_chunks() {
  static const int64_t shapes[][3] = {{3, (INT64_C(1) << 31) + 5, 1}, {1 << 20, 3000, 1},
                                      {5, 7, 1 << 30},                 {2, 3, 4}};
  for (auto &shape : shapes) {
    mti_view out, in;
    memset(&out, 0, sizeof out);
    out.dtype = MT_FLOAT32;
    out.ndim = 3;
    for (int d = 0; d < 3; d++) out.shape[d] = shape[d];
    mti_shape_contiguous_strides(3, out.shape, out.strides);
    in = out;
    in.shape[0] = 1; /* broadcast along dim 0 */
    in.data = (void *)(uintptr_t)4096;
    out.data = (void *)(uintptr_t)4096;
    plan p;
    plan_init(&p, "test", &in, 1, &out);
    int64_t total = 0, numel = shape[0] * shape[1] * shape[2];
    bool ok = true;
    for_each_chunk(p, [&](const strided_args &a) {
      int64_t n = 1;
      for (int d = 0; d < a.nd; d++) n *= a.shape[d];
      ok = ok && n == (int64_t)a.n && n <= CHUNK_LIMIT && n > 0;
      ok = ok && (int64_t)((uintptr_t)a.base[0] - 4096) == total * 4;
      total += n;
    });
    CHECK(ok && total == numel, "chunks of [%lld, %lld, %lld]", (long long)shape[0],
           (long long)shape[1], (long long)shape[2]);
  }
}

/* ---- random: the layout of philox.h, bit for bit ---- */

template <class S> static void check_random(mti_op op, mt_dtype d, int64_t n, uint64_t seed) {
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.seed = seed;
  at.dtype = d;
  host_tensor cpu(d, 1, &n);
  CHECK(mti_cpu_random(op, &at, &cpu.v) == MT_OK, "cpu random");
  for (bool vector : {false, true}) {
    host_tensor ours(d, 1, &n);
    const int E = mtw::rnd::block_values<S, false>::E;
    for (uint64_t b = 0; b < (uint64_t)((n + E - 1) / E); b++) {
      if (op == MTI_OP_RANDN)
        mtw::rnd::random_block<S, true>((S *)ours.mem, n, seed, b, vector);
      else
        mtw::rnd::random_block<S, false>((S *)ours.mem, n, seed, b, vector);
    }
    char what[96];
    snprintf(what, sizeof what, "%s(%s, n %lld, seed %llu)", op_name(op), mt_dtype_name(d),
             (long long)n, (unsigned long long)seed);
    compare_views(what, op, ours.v, cpu.v, 0);
    CHECK(memcmp((char *)ours.mem + n * (int64_t)sizeof(S),
                  (char *)cpu.mem + n * (int64_t)sizeof(S), 16) == 0,
           "%s: nothing written past the end", what);
  }
}

static void test_random() {
  for (mti_op op : {MTI_OP_RAND, MTI_OP_RANDN})
    for (int64_t n : {1, 2, 3, 4, 5, 7, 33, 1000})
      for (uint64_t seed : {UINT64_C(0), UINT64_C(1), UINT64_C(0xdeadbeefcafe)}) {
        check_random<__half>(op, MT_FLOAT16, n, seed);
        check_random<__nv_bfloat16>(op, MT_BFLOAT16, n, seed);
        check_random<float>(op, MT_FLOAT32, n, seed);
        check_random<double>(op, MT_FLOAT64, n, seed);
      }
}

/* ---- element functions on hand-picked values ---- */

static void test_hand_values() {
  op_arith add{{}, MTI_OP_ADD}, mx{{}, MTI_OP_MAXIMUM}, mn{{}, MTI_OP_MINIMUM};
  CHECK(add((int64_t)INT64_MAX, (int64_t)1) == INT64_MIN, "int64 add wraps");
  CHECK((int8_t)add((int64_t)127, (int64_t)1) == -128, "int8 add wraps after narrowing");
  CHECK(isnan(mx(1.0f, NAN)) && isnan(mx(NAN, 1.0f)) && isnan(mn(NAN, -INFINITY)),
         "maximum/minimum propagate NaN");
  CHECK(mti_int_pow(2, -1) == 0 && mti_int_pow(-1, -3) == -1 && mti_int_pow(1, -7) == 1 &&
             mti_int_pow(0, 0) == 1 && mti_int_pow(3, 4) == 81,
         "integer pow");
  op_unary neg{{}, MTI_OP_NEG}, abs_{{}, MTI_OP_ABS}, relu{{}, MTI_OP_RELU},
      sign{{}, MTI_OP_SIGN}, round_{{}, MTI_OP_ROUND};
  CHECK((int8_t)abs_((int64_t)-128) == -128 && neg((int64_t)INT64_MIN) == INT64_MIN,
         "abs/neg of the most negative integer wrap");
  CHECK(isnan(relu(NAN)) && signbit(relu(-0.0f)) && isnan(sign(NAN)) && signbit(sign(-0.0)),
         "relu and sign keep NaN and -0");
  CHECK(round_(2.5f) == 2.0f && round_(3.5f) == 4.0f && round_(-0.5) == 0.0 &&
             signbit(round_(-0.5)),
         "round half to even");
  op_clamp clamp;
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.s0 = 3, at.s1 = -3;
  clamp.s = scalars_for(MTI_OP_CLAMP, MT_FLOAT32, &at);
  CHECK(clamp(10.0f) == -3.0f && isnan(clamp(NAN)), "clamp: lo > hi gives hi, NaN stays");
  CHECK(gelu_f32(INFINITY) == INFINITY && isnan(gelu_f32(-INFINITY)) && gelu_f32(0.0f) == 0.0f,
         "gelu at the ends");
  CHECK(mti_wrap_to_u64(-1.0) == UINT64_MAX &&
             mti_wrap_to_u64(18446744073709551616.0 + 4096.0) == 4096,
         "scalars wrap modulo 2^64");
  CHECK(mti_pow_exponent(1e300) % 2 == 0 && mti_pow_exponent(-1e300) < 0,
         "huge exponents stay even");
  CHECK(convert<int32_t>(3e9f) == INT32_MAX && convert<uint8_t>(-5.0) == 0 &&
             convert<int64_t>((double)NAN) == 0 && convert<int8_t>((int64_t)300) == 44,
         "conversions saturate floats, wrap integers");
  CHECK(widen(convert<__half>(65520.0f)) == INFINITY &&
             widen(convert<__half>(2049.0f)) == 2048.0f,
         "float16 rounds to nearest even");
  CHECK(mti_int_floor_divide(INT64_MIN, -1) == INT64_MIN && mti_int_floor_divide(-7, 2) == -4 &&
             mti_int_remainder(-7, 2) == 1 && mti_int_fmod(-7, 2) == -1 &&
             mti_int_remainder(7, -2) == -1 && mti_int_floor_divide(5, 0) == 0,
         "integer division rounds down, remainder takes b's sign, INT64_MIN / -1 wraps");
  op_division floor_div{{}, MTI_OP_FLOOR_DIVIDE, nullptr, 0};
  CHECK(signbit(floor_div(-0.5f, 4.0f)) && floor_div(1.0f, 0.0f) == INFINITY &&
             floor_div(7.0, -2.0) == -4.0,
         "float floor_divide: zero signs, b = 0, rounding down");
  unsigned fault = 0;
  op_division rem{{}, MTI_OP_REMAINDER, &fault, 0x1234u};
  CHECK(rem((int64_t)5, (int64_t)0) == 0 && fault == 0x1234u, "an integer divisor 0 faults");
  rem.code = 0x99u;
  rem((int64_t)5, (int64_t)0);
  CHECK(fault == 0x1234u, "the first fault stays");
  op_unary_param n2n{{}, MTI_OP_NAN_TO_NUM, {}};
  memset(&at, 0, sizeof at);
  at.s0 = 1, at.s1 = 2, at.s2 = 3;
  n2n.s = scalars_for(MTI_OP_NAN_TO_NUM, MT_FLOAT64, &at);
  CHECK(n2n((double)NAN) == 1 && n2n((double)INFINITY) == 2 && n2n(-(double)INFINITY) == 3 &&
             n2n(-0.25) == -0.25,
         "nan_to_num reads s0..s2");
  bool8 two = {2};
  CHECK(convert<bool8>(two).v == 1 && convert<int32_t>(two) == 1 && convert<float>(two) == 1.0f,
         "a bool byte 2 reads as true, 1");
}

/* ---- NaN bits ---- */

/* NaNs of dtype d with both signs, quiet and signalling, payloads high and
 * low: n patterns into bits[]. */
static int nan_patterns(mt_dtype d, uint64_t *bits) {
  static const uint64_t f16[] = {0x7e00, 0xfe00, 0x7c01, 0x7d55, 0xffff, 0x7e3f};
  static const uint64_t bf16[] = {0x7fc0, 0xffc0, 0x7f81, 0x7faa, 0xffff, 0x7fc1};
  static const uint64_t f32[] = {0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa5a5a5, 0xffffffff,
                                 0x7fc0e001};
  static const uint64_t f64[] = {0x7ff8000000000000, 0xfff8000000000000, 0x7ff0000000000001,
                                 0x7ffa5a5a5a5a5a5a, 0xffffffffffffffff, 0x7ff80000e0000001};
  const uint64_t *src = d == MT_FLOAT16 ? f16 : d == MT_BFLOAT16 ? bf16 : d == MT_FLOAT32 ? f32 : f64;
  for (int i = 0; i < 6; i++) bits[i] = src[i];
  return 6;
}

/* Casts NaN payloads between every pair of floating dtypes, contiguous
 * (vector path) and strided: the bits must be the cpu's, which keeps sign
 * and payload (the CUDA intrinsics would give one canonical NaN). */
static void test_nan_bits() {
  const mt_dtype floats[] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};
  for (mt_dtype ds : floats)
    for (mt_dtype dd : floats)
      for (bool strided : {false, true}) {
        uint64_t bits[6];
        int np = nan_patterns(ds, bits);
        int64_t n = 64;
        host_tensor src(ds, 1, &n, n), ours(dd, 1, &n), cpu(dd, 1, &n);
        size_t size = mt_dtype_size(ds);
        for (int64_t i = 0; i < 2 * n; i++) memcpy((char *)src.mem + i * size, &bits[i % np], size);
        if (strided) src.v.strides[0] = 2;
        mti_attrs at;
        memset(&at, 0, sizeof at);
        at.dtype = dd;
        host_exec x;
        CHECK(elementwise(x, MTI_OP_CAST, &src.v, 1, &at, &ours.v) == MT_OK, "cast");
        CHECK(mti_cpu_run(MTI_OP_CAST, &src.v, 1, &at, &cpu.v) == MT_OK, "cast (cpu)");
        char what[96];
        snprintf(what, sizeof what, "NaN bits of cast %s -> %s%s", mt_dtype_name(ds),
                 mt_dtype_name(dd), strided ? " (strided)" : "");
        CHECK(memcmp(ours.mem, cpu.mem, (size_t)n * mt_dtype_size(dd)) == 0, "%s", what);
      }
  /* a float16/bfloat16 op whose input is rounded to it first (via) */
  float payload = mti_bits_f32(0xffa5a5a5u);
  CHECK(bits_of(convert<__half>(payload)) == mti_f32_to_f16(payload) &&
             bits_of(convert<__nv_bfloat16>(payload)) == mti_f32_to_bf16(payload) &&
             bits_of(elem<__half>::store(payload)) == 0xff2du,
         "16-bit stores keep the sign and payload of a NaN");
}

int main() {
  test_hand_values();
  test_nan_bits();
  test_one_input_ops();
  test_two_input_ops();
  test_where();
  test_masked_fill();
  test_creation();
  test_copy_layouts();
  test_transposes();
  test_paths();
  test_chunks();
  test_random();
  printf("inexact ops, largest ulp distance to the cpu (host math library):\n");
  for (int op = 0; op < MTI_OP_COUNT; op++)
    for (int d = 0; d < MTI_NUM_DTYPES; d++)
      if (worst_ulps[op][d])
        printf("  %s %s: %llu\n", op_name((mti_op)op), mt_dtype_name((mt_dtype)d),
               (unsigned long long)worst_ulps[op][d]);
  return host_check_report();
}
