/*
 * elementwise.c - the driver of the elementwise kinds: fill, arange,
 * copy/cast, binary, compare, logical, scalar, unary, where, clamp, and the
 * general elementwise kinds of 0.2 (bitwise, predicates, division, ...).
 *
 * An op runs as a leaf kernel (elementwise_kernels.c) over contiguous arrays
 * of one compute dtype ct (float16/bfloat16 compute in float32). The driver
 * coalesces the operands' dims, splits the elements across threads and walks
 * rows of the innermost dim. An operand that already is a contiguous array
 * of the dtype the kernel wants is used in place; any other (strided,
 * broadcast, another dtype) is converted block by block into a per-thread
 * buffer, and so is the result on its way out.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <omp.h>
#include <stdatomic.h>

#include "core/dtype.h"
#include "core/elementwise_rules.h"
#include "core/error.h"
#include "cpu_kernels.h"
#include "elementwise_kernels.h"

/* Elements per staged block: 4 buffers of 8-byte elements stay in L1/L2. */
#define BLOCK 1024
#define MAX_OPERANDS 4 /* out + up to 3 inputs */

/* Operand 0 is out, 1..nin the inputs, all of out's shape. */
typedef struct ew_layout {
  int nd, nops;
  int64_t shape[MT_MAX_DIMS];
  int64_t stride[MAX_OPERANDS][MT_MAX_DIMS];
} ew_layout;

/* Drops size-1 dims and merges neighbours contiguous in every operand. */
static void layout_init(ew_layout *l, const mti_view *out, const mti_view *in, int nin) {
  l->nops = nin + 1;
  int nd = 0;
  for (int d = 0; d < out->ndim; d++) {
    if (out->shape[d] == 1) continue;
    int merge = nd > 0;
    for (int k = 0; k < l->nops && merge; k++) {
      int64_t s = k ? in[k - 1].strides[d] : out->strides[d];
      merge = l->stride[k][nd - 1] == s * out->shape[d];
    }
    if (merge) {
      l->shape[nd - 1] *= out->shape[d];
    } else {
      l->shape[nd] = out->shape[d];
      nd++;
    }
    for (int k = 0; k < l->nops; k++)
      l->stride[k][nd - 1] = k ? in[k - 1].strides[d] : out->strides[d];
  }
  if (nd == 0) { /* one element */
    l->shape[0] = 1;
    for (int k = 0; k < l->nops; k++) l->stride[k][0] = 1;
    nd = 1;
  }
  l->nd = nd;
}

/* What one op needs per chunk. want[k] is the dtype the kernel reads or
 * writes for operand k; an input whose via[k] differs from want[k] is first
 * rounded to via[k] (an integer operand of a float16 op becomes float16
 * before the float32 arithmetic, as in PyTorch); direct[k] says the
 * operand's memory can be passed as it is (that dtype, unit inner stride). */
typedef struct ew_job {
  mti_ew_kernel kernel;
  mti_ew_scalars sc;
  ew_layout l;
  char *base[MAX_OPERANDS];
  mt_dtype dtype[MAX_OPERANDS], want[MAX_OPERANDS], via[MAX_OPERANDS];
  int64_t size[MAX_OPERANDS];
  int direct[MAX_OPERANDS], all_direct;
} ew_job;

/* What a thread's staging buffers hold: an operand broadcast along the
 * inner dim is filled once and reused while its element stays the same. */
typedef struct ew_staged {
  const char *from[MAX_OPERANDS];
  int64_t count[MAX_OPERANDS];
} ew_staged;

#define STAGE_AS(T)                                                     \
  do {                                                                  \
    T *d = (T *)buf;                                                    \
    const T *s = (const T *)p;                                          \
    if (ss == 0)                                                        \
      for (int64_t i = 0; i < n; i++) d[i] = s[0];                      \
    else                                                                \
      for (int64_t i = 0; i < n; i++) d[i] = s[i * ss];                 \
  } while (0)

/* n elements of a same-dtype operand at stride ss into buf: a fill for a
 * broadcast (ss 0), a gather otherwise (element sizes 1 to 8 bytes); the
 * generic conversion costs more than the kernel on these short rows. */
static void stage_same_dtype(const char *p, size_t size, int64_t ss, char *buf, int64_t n) {
  switch (size) {
  case 1: STAGE_AS(uint8_t); break;
  case 2: STAGE_AS(uint16_t); break;
  case 4: STAGE_AS(uint32_t); break;
  default: STAGE_AS(uint64_t); break;
  }
}
#undef STAGE_AS

/* Input k's n elements at p as a contiguous array of want[k] in buf. */
static void stage_input(const ew_job *j, int k, const char *p, int64_t n, char *buf,
                        ew_staged *st) {
  int64_t ss = j->l.stride[k][j->l.nd - 1];
  if (ss == 0 && st->from[k] == p && st->count[k] >= n) return;
  st->from[k] = ss == 0 ? p : NULL;
  st->count[k] = n;
  if (j->dtype[k] == j->want[k]) {
    stage_same_dtype(p, (size_t)j->size[k], ss, buf, n);
  } else if (j->via[k] != j->want[k]) { /* the 16-bit via values use the upper half */
    mti_cpu_convert_row(p, j->dtype[k], ss, buf + BLOCK * 4, j->via[k], 1, n);
    mti_cpu_convert_row(buf + BLOCK * 4, j->via[k], 1, buf, j->want[k], 1, n);
  } else {
    mti_cpu_convert_row(p, j->dtype[k], ss, buf, j->want[k], 1, n);
  }
}

/* Runs the kernel on n elements of the inner dim at element offsets off[k]. */
static void run_chunk(const ew_job *j, const int64_t *off, int64_t n, char *scratch,
                      ew_staged *st) {
  const ew_layout *l = &j->l;
  int last = l->nd - 1;
  const void *in[MAX_OPERANDS - 1];
  for (int k = 1; k < l->nops; k++) {
    const char *p = j->base[k] + off[k] * j->size[k];
    if (j->direct[k]) {
      in[k - 1] = p;
    } else {
      char *buf = scratch + (size_t)k * BLOCK * 8;
      stage_input(j, k, p, n, buf, st);
      in[k - 1] = buf;
    }
  }
  char *o = j->base[0] + off[0] * j->size[0];
  if (j->direct[0]) {
    j->kernel(o, in, n, &j->sc);
  } else {
    j->kernel(scratch, in, n, &j->sc);
    mti_cpu_convert_row(scratch, j->want[0], 1, o, j->dtype[0], l->stride[0][last], n);
  }
}

/* Elements [begin, end) in row-major order: rows of the last dim, walked
 * with an odometer over the outer dims, cut into blocks when staging. */
static void run_range(const ew_job *j, int64_t begin, int64_t end, char *scratch) {
  const ew_layout *l = &j->l;
  int last = l->nd - 1;
  int64_t inner = l->shape[last];
  int64_t row = begin / inner, col = begin % inner;
  int64_t idx[MT_MAX_DIMS], off[MAX_OPERANDS];
  for (int k = 0; k < l->nops; k++) off[k] = col * l->stride[k][last];
  for (int d = last - 1; d >= 0; d--) {
    idx[d] = row % l->shape[d];
    row /= l->shape[d];
    for (int k = 0; k < l->nops; k++) off[k] += idx[d] * l->stride[k][d];
  }
  int64_t most = j->all_direct ? INT64_MAX : BLOCK;
  ew_staged staged = {{NULL}, {0}};
  for (int64_t pos = begin; pos < end;) {
    int64_t n = inner - col < end - pos ? inner - col : end - pos;
    n = n < most ? n : most;
    run_chunk(j, off, n, scratch, &staged);
    pos += n;
    col += n;
    for (int k = 0; k < l->nops; k++) off[k] += n * l->stride[k][last];
    if (col < inner) continue;
    for (int k = 0; k < l->nops; k++) off[k] -= inner * l->stride[k][last];
    col = 0;
    for (int d = last - 1; d >= 0; d--) { /* next row */
      for (int k = 0; k < l->nops; k++) off[k] += l->stride[k][d];
      if (++idx[d] < l->shape[d]) break;
      for (int k = 0; k < l->nops; k++) off[k] -= l->shape[d] * l->stride[k][d];
      idx[d] = 0;
    }
  }
}

/* Threads for `work` elements: one below MTI_CPU_PARALLEL_MIN (or inside a
 * parallel region), and at least half of that per thread above it. */
static int threads_for(int64_t work) { return mti_cpu_threads_for(work, MTI_CPU_PARALLEL_MIN / 2); }

/* A small op whose operands all are dense arrays of the dtypes the kernel
 * wants runs as one kernel call, without the layout and the odometer (which
 * would cost more than its arithmetic). Returns 0, doing nothing, when that
 * does not apply. */
static int run_flat(const ew_job *j, const mti_view *out, const mti_view *in, int nin,
                    int64_t numel) {
  if (numel >= MTI_CPU_PARALLEL_MIN) return 0;
  const void *src[MAX_OPERANDS - 1];
  for (int k = 0; k <= nin; k++) {
    const mti_view *v = k ? &in[k - 1] : out;
    if (v->dtype != j->want[k] || !mti_shape_is_contiguous(v->ndim, v->shape, v->strides))
      return 0;
    if (k) src[k - 1] = v->data;
  }
  j->kernel(out->data, src, numel, &j->sc);
  return 1;
}

/* Runs a prepared job over out's elements, threaded above the minimum. */
static mt_status run_job(const char *fn, ew_job *j, const mti_view *out, const mti_view *in,
                         int nin) {
  int64_t numel = mti_shape_numel(out->ndim, out->shape);
  if (numel == 0 || run_flat(j, out, in, nin, numel)) return MT_OK;
  layout_init(&j->l, out, in, nin);
  int last = j->l.nd - 1;
  j->all_direct = 1;
  for (int k = 0; k <= nin; k++) {
    const mti_view *v = k ? &in[k - 1] : out;
    j->base[k] = v->data;
    j->dtype[k] = v->dtype;
    j->size[k] = (int64_t)mt_dtype_size(v->dtype);
    j->direct[k] = v->dtype == j->want[k] && j->l.stride[k][last] == 1;
    j->all_direct &= j->direct[k];
  }
  int nt = threads_for(numel);
  size_t per_thread = (size_t)MAX_OPERANDS * BLOCK * 8;
  char *scratch = NULL;
  if (!j->all_direct && !(scratch = malloc(per_thread * (size_t)nt)))
    return mti_error_oom(fn, per_thread * (size_t)nt);
  if (nt == 1) {
    run_range(j, 0, numel, scratch);
  } else {
#pragma omp parallel num_threads(nt)
    {
      /* Cuts at multiples of 64 elements keep threads off each other's
       * cache lines in contiguous output. */
      int64_t parts = omp_get_num_threads(), me = omp_get_thread_num();
      int64_t begin = numel * me / parts / 64 * 64;
      int64_t end = me + 1 == parts ? numel : numel * (me + 1) / parts / 64 * 64;
      run_range(j, begin, end, scratch ? scratch + per_thread * (size_t)me : NULL);
    }
  }
  free(scratch);
  return MT_OK;
}

/* ---- scalars ---- */

static void set_scalars(mti_ew_scalars *sc, mti_op op, mt_dtype ct, const mti_attrs *at) {
  double v[2] = {at->s0, at->s1};
  for (int k = 0; k < 2; k++) {
    sc->f[k] = (float)v[k];
    sc->d[k] = v[k];
    sc->u[k] = mti_wrap_to_u64(v[k]);
    sc->i[k] = 0;
    if (mti_dtype_is_float(ct)) continue;
    if (op == MTI_OP_POW_SCALAR) sc->i[k] = mti_pow_exponent(v[k]);
    if (op == MTI_OP_CLAMP) sc->i[k] = mti_clamp_bound(v[k], k, ct);
  }
  sc->f[2] = (float)at->s2; /* s2 is read only as a float (nan_to_num's neginf) */
  sc->d[2] = at->s2;
}

/* ---- kinds ---- */

static mt_status fill(const mti_view *out, double value) {
  uint64_t one; /* room for one element of any dtype */
  mti_store_double(&one, out->dtype, value);
  mti_view src = {.data = &one, .dtype = out->dtype, .ndim = 0};
  src = mti_view_broadcast_to(&src, out->ndim, out->shape);
  return mti_cpu_convert(&src, out);
}

/* out[i] = start + i * step in double, converted block by block. */
static mt_status arange(const mti_view *out, double start, double step) {
  int64_t n = out->ndim ? out->shape[0] : 1, stride = out->ndim ? out->strides[0] : 1;
  int64_t blocks = (n + BLOCK - 1) / BLOCK;
  size_t size = mt_dtype_size(out->dtype);
#pragma omp parallel for schedule(static) num_threads(threads_for(n))
  for (int64_t b = 0; b < blocks; b++) {
    double vals[BLOCK];
    int64_t first = b * BLOCK, len = n - first < BLOCK ? n - first : BLOCK;
    for (int64_t i = 0; i < len; i++) vals[i] = start + (double)(first + i) * step;
    char *dst = (char *)out->data + first * stride * (int64_t)size;
    mti_cpu_convert_row((const char *)vals, MT_FLOAT64, 1, dst, out->dtype, stride, len);
  }
  return MT_OK;
}

/* masked_fill as a where: mask ? value : a, with the value one element of
 * out's dtype broadcast to out's shape. */
static mt_status masked_fill(const char *fn, const mti_view *in, double value,
                             const mti_view *out) {
  uint64_t one; /* room for one element of any dtype */
  mti_store_double(&one, out->dtype, value);
  mti_view v = {.data = &one, .dtype = out->dtype, .ndim = 0};
  mti_view ops[3] = {in[1], mti_view_broadcast_to(&v, out->ndim, out->shape), in[0]};
  ew_job j; /* run_job fills the layout and per-operand fields */
  j.sc.zero_divisor = NULL;
  mt_dtype ct = mti_compute_dtype(out->dtype);
  j.kernel = mti_ew_kernel_for(MTI_OP_WHERE, ct);
  j.want[0] = j.want[2] = j.via[2] = j.want[3] = j.via[3] = ct;
  j.want[1] = j.via[1] = MT_BOOL;
  return run_job(fn, &j, out, ops, 3);
}

/* The integer division ops fail on a divisor 0, as PyTorch's
 * ZeroDivisionError (the kernels flag it; float division gives inf/NaN). */
static mt_status run_division(const char *fn, ew_job *j, const mti_view *out,
                              const mti_view *in) {
  atomic_int zero = 0;
  j->sc.zero_divisor = &zero;
  mt_status s = run_job(fn, j, out, in, 2);
  if (s == MT_OK && atomic_load(&zero))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: b: integer division by zero", fn);
  return s;
}

mt_status mti_cpu_elementwise(mti_op op, const mti_view *in, int n, const mti_attrs *at,
                              const mti_view *out) {
  const mti_op_info *info = mti_op_get((int)op);
  const char *fn = info ? info->fn : "mti_cpu_elementwise";
  mti_op_kind kind = info ? info->kind : MTI_KIND_RANDOM;
  if (kind == MTI_KIND_FILL) return fill(out, at->s0);
  if (kind == MTI_KIND_ARANGE) return arange(out, at->s0, at->s1);
  if (kind == MTI_KIND_COPY || kind == MTI_KIND_CAST) return mti_cpu_convert(&in[0], out);
  if (kind == MTI_KIND_MASKED_FILL) return masked_fill(fn, in, at->s0, out);

  ew_job j; /* run_job fills the layout and per-operand fields */
  j.sc.zero_divisor = NULL;
  mt_dtype ct = mti_compute_dtype(out->dtype);
  if (kind == MTI_KIND_COMPARE) ct = mti_compute_dtype(mti_promote(in[0].dtype, in[1].dtype));
  if (kind == MTI_KIND_LOGICAL) ct = MT_BOOL;
  if (kind == MTI_KIND_PREDICATE) ct = mti_compute_dtype(in[0].dtype);
  /* Integers and bool are never NaN or inf, and nan_to_num leaves them. */
  if (kind == MTI_KIND_PREDICATE && !mti_dtype_is_float(ct))
    return fill(out, op == MTI_OP_ISFINITE);
  if (kind == MTI_KIND_UNARY_PARAM && !mti_dtype_is_float(ct))
    return mti_cpu_convert(&in[0], out);
  if (kind == MTI_KIND_UNARY && mti_unary_is_identity(op, ct))
    return mti_cpu_convert(&in[0], out);
  j.kernel = mti_ew_kernel_for(op, ct);
  if (!j.kernel || n < 1 || n > MAX_OPERANDS - 1)
    return mti_error(MT_ERR_INTERNAL, "%s: no cpu kernel for %s", fn, mt_dtype_name(ct));
  set_scalars(&j.sc, op, ct, at);
  j.want[0] = kind == MTI_KIND_COMPARE || kind == MTI_KIND_LOGICAL ||
                      kind == MTI_KIND_PREDICATE ? MT_BOOL : ct;
  for (int k = 1; k <= n; k++) j.want[k] = j.via[k] = ct;
  if (kind == MTI_KIND_WHERE) j.want[1] = j.via[1] = MT_BOOL;
  if (kind == MTI_KIND_BINARY || kind == MTI_KIND_COMPARE || kind == MTI_KIND_BINARY_FLOAT ||
      kind == MTI_KIND_DIVISION) {
    mt_dtype common = mti_promote(in[0].dtype, in[1].dtype);
    for (int k = 1; k <= 2; k++)
      if (common != ct && mti_dtype_is_float(common) && in[k - 1].dtype != common)
        j.via[k] = common;
  }
  if (kind == MTI_KIND_DIVISION) return run_division(fn, &j, out, in);
  return run_job(fn, &j, out, in, n);
}
