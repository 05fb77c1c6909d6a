/*
 * cuda_elementwise.cu - the elementwise kinds on the GPU: fill, arange,
 * copy/cast, binary, compare, logical, scalar, unary, where, clamp, and the
 * general elementwise kinds of 0.2 (bitwise, predicates, atan2, division,
 * parametric unary ops, masked_fill), with the semantics of
 * src/cpu/elementwise.c (the reference). Element formulas that are more
 * than one operator or math library call are core/elementwise_rules.h's,
 * shared with the cpu.
 *
 * An op is a functor run in its compute dtype ct, chosen on the host as the
 * cpu driver chooses its leaf (float16/bfloat16 compute in float32, every
 * integer dtype in int64: see run_op). Two kernel shapes run a functor:
 *  - contig_kernel: every operand a contiguous, 16-byte aligned array of
 *    out's shape and one floating or bool dtype (the common case): 16-byte
 *    vector loads and stores in a grid-stride loop, no index division;
 *  - strided_kernel: anything else (broadcast, strided, mixed dtypes,
 *    integers). The operands' dims are coalesced first, so most broadcasts
 *    become 1-2 dim loops (a 1-d one divides nothing); indices are 32-bit
 *    (the host cuts larger tensors into chunks of at most 2^31 elements);
 *    inputs are loaded through a converting load that switches on their
 *    dtype at run time (uniform across the grid), so one kernel per (op,
 *    ct) serves every input dtype combination.
 * Same-dtype copies are a memcpy, tiles through shared memory for a
 * transpose, or a bit copy by element size; where with a bool condition is
 * a bit select; fill a bit pattern.
 *
 * The element code (what one thread does for one vector or element) is
 * __host__ __device__, and the host logic that picks paths and prepares
 * launches runs on an executor (gpu_exec here): the host test runs the same
 * logic with an executor that loops over the element code on host memory,
 * and compares with the cpu backend.
 */
#include <math.h>
#include <string.h>

#include <type_traits>

#include "cuda_common.cuh"

extern "C" {
#include "core/elementwise_rules.h"
}

namespace mtw {
namespace ew {

#define MTW_HD __host__ __device__ __forceinline__
/* Loops over operands and vector lanes unroll on the device; the host
 * compiler (which compiles the same code for the host test) has no such
 * pragma. */
#ifdef __CUDA_ARCH__
#define MTW_UNROLL _Pragma("unroll")
#else
#define MTW_UNROLL
#endif

enum { MAX_OPERANDS = 4 }; /* out + up to 3 inputs */
enum { THREADS = 256 };
enum { NO_VIA = -1 }; /* an input loaded without an intermediate rounding */
/* Elements per strided launch: indices and their sum with the grid stride
 * stay below 2^32. */
const int64_t CHUNK_LIMIT = (int64_t)1 << 31;

/* ---- element types ---- */

/* Storage type S of an operand: its compute type and conversions. */
template <class S> struct elem {
  typedef S compute;
  static MTW_HD S load(S x) { return x; }
  static MTW_HD S store(S x) { return x; }
};
template <> struct elem<bool8> {
  typedef bool compute;
  static MTW_HD bool load(bool8 x) { return widen(x); }
  static MTW_HD bool8 store(bool x) { return bool8{(uint8_t)x}; }
};
template <> struct elem<__half> {
  typedef float compute;
  static MTW_HD float load(__half x) { return widen(x); }
  static MTW_HD __half store(float x) { return to_half(x); }
};
template <> struct elem<__nv_bfloat16> {
  typedef float compute;
  static MTW_HD float load(__nv_bfloat16 x) { return widen(x); }
  static MTW_HD __nv_bfloat16 store(float x) { return to_bfloat16(x); }
};

/* The compute types' families (bool is no integer here). */
template <class T> constexpr bool is_bool_v = std::is_same<T, bool>::value;
template <class T> constexpr bool is_int_v = std::is_integral<T>::value && !is_bool_v<T>;
template <class T> constexpr bool is_float_v = std::is_floating_point<T>::value;

/* ---- math on float and double alike ---- */

MTW_HD float m_pow(float x, float y) { return powf(x, y); }
MTW_HD double m_pow(double x, double y) { return pow(x, y); }
MTW_HD float m_fabs(float x) { return fabsf(x); }
MTW_HD double m_fabs(double x) { return fabs(x); }
MTW_HD float m_floor(float x) { return floorf(x); }
MTW_HD double m_floor(double x) { return floor(x); }
MTW_HD float m_ceil(float x) { return ceilf(x); }
MTW_HD double m_ceil(double x) { return ceil(x); }
MTW_HD float m_rint(float x) { return rintf(x); } /* half to even */
MTW_HD double m_rint(double x) { return rint(x); }
MTW_HD float m_exp(float x) { return expf(x); }
MTW_HD double m_exp(double x) { return exp(x); }
MTW_HD float m_log(float x) { return logf(x); }
MTW_HD double m_log(double x) { return log(x); }
MTW_HD float m_sqrt(float x) { return sqrtf(x); } /* correctly rounded (-prec-sqrt) */
MTW_HD double m_sqrt(double x) { return sqrt(x); }
MTW_HD float m_sin(float x) { return sinf(x); }
MTW_HD double m_sin(double x) { return sin(x); }
MTW_HD float m_cos(float x) { return cosf(x); }
MTW_HD double m_cos(double x) { return cos(x); }
MTW_HD float m_tanh(float x) { return tanhf(x); }
MTW_HD double m_tanh(double x) { return tanh(x); }

/* The math library of 0.2's float ops, m_<fn> in both precisions. */
#define MTW_MATH1(fn)                                                                       \
  MTW_HD float m_##fn(float x) { return fn##f(x); }                                        \
  MTW_HD double m_##fn(double x) { return fn(x); }
#define MTW_MATH2(fn)                                                                       \
  MTW_HD float m_##fn(float x, float y) { return fn##f(x, y); }                            \
  MTW_HD double m_##fn(double x, double y) { return fn(x, y); }
MTW_MATH1(erf)
MTW_MATH1(erfc)
MTW_MATH1(log1p)
MTW_MATH1(expm1)
MTW_MATH1(log2)
MTW_MATH1(log10)
MTW_MATH1(tan)
MTW_MATH1(asin)
MTW_MATH1(acos)
MTW_MATH1(atan)
MTW_MATH1(sinh)
MTW_MATH1(cosh)
MTW_MATH1(asinh)
MTW_MATH1(acosh)
MTW_MATH1(atanh)
MTW_MATH1(trunc)
MTW_MATH2(atan2)
MTW_MATH2(fmod)
#undef MTW_MATH1
#undef MTW_MATH2

/* The float rules of core/elementwise_rules.h (mti_<rule>_f32 / _f64) as
 * r_<rule> overloads. */
#define MTW_RULE(rule, PARAMS_F, ARGS, PARAMS_D)                                            \
  MTW_HD float r_##rule PARAMS_F { return mti_##rule##_f32 ARGS; }                         \
  MTW_HD double r_##rule PARAMS_D { return mti_##rule##_f64 ARGS; }
MTW_RULE(softplus, (float x), (x), (double x))
MTW_RULE(mish, (float x), (x), (double x))
MTW_RULE(gelu_tanh, (float x), (x), (double x))
MTW_RULE(isnan, (float x), (x), (double x))
MTW_RULE(isinf, (float x), (x), (double x))
MTW_RULE(isfinite, (float x), (x), (double x))
MTW_RULE(remainder, (float x, float y), (x, y), (double x, double y))
MTW_RULE(floor_divide, (float x, float y), (x, y), (double x, double y))
MTW_RULE(leaky_relu, (float x, float s), (x, s), (double x, double s))
MTW_RULE(elu, (float x, float s), (x, s), (double x, double s))
MTW_RULE(nan_to_num, (float x, float n, float p, float m), (x, n, p, m),
         (double x, double n, double p, double m))
#undef MTW_RULE

/* ---- scalar operands, prepared on the host as set_scalars does ---- */

struct scalars {
  uint64_t u;   /* add/mul with an integer tensor: s0 modulo 2^64 */
  int64_t i[2]; /* integer pow exponent; integer clamp bounds; an integer masked_fill value */
  float f[3];   /* s0..s2 (s2: nan_to_num's neginf)               */
  double d[3];
};

/* Scalar k as compute type T (integers: the exponent or clamp bound). */
template <class T> MTW_HD T scalar_of(const scalars &s, int k) {
  if constexpr (std::is_same<T, float>::value) return s.f[k];
  else if constexpr (std::is_same<T, double>::value) return s.d[k];
  else if constexpr (std::is_same<T, bool>::value) return s.i[k] != 0;
  else return (T)s.i[k];
}

/* ---- the functors, generic over the compute type T ----
 * T is bool, int64_t (every integer dtype, see run_op), float or double.
 * ok<T>() says which of them mti_infer can lead to; the others are never
 * instantiated. arity is the number of tensor inputs. Integer arithmetic
 * runs in uint64_t, so that it wraps without undefined behaviour (the
 * store narrows modulo the out dtype's width). Ops of one family
 * share a functor that picks the op at run time (a branch uniform across
 * the grid), which keeps the number of kernels down. */

struct op_base {
  static constexpr bool raw = false;        /* loads move bits, no conversion */
  static constexpr bool cond_first = false; /* input 0 is where's condition  */
  static constexpr bool any_dst = false;    /* out may have any dtype (copy) */
};

/* add, sub, mul, maximum, minimum. For bool, add and maximum are or, mul
 * and minimum are and (sub is refused by mti_infer). Maximum and minimum
 * let a NaN operand win. */
struct op_arith : op_base {
  static constexpr int arity = 2;
  mti_op op;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD T operator()(T x, T y) const {
    if constexpr (is_bool_v<T>) {
      return op == MTI_OP_MUL || op == MTI_OP_MINIMUM ? x && y : x || y;
    } else if constexpr (is_int_v<T>) {
      switch (op) {
      case MTI_OP_ADD: return (T)((uint64_t)x + (uint64_t)y);
      case MTI_OP_SUB: return (T)((uint64_t)x - (uint64_t)y);
      case MTI_OP_MUL: return (T)((uint64_t)x * (uint64_t)y);
      case MTI_OP_MAXIMUM: return x > y ? x : y;
      default: return x < y ? x : y;
      }
    } else {
      switch (op) {
      case MTI_OP_ADD: return x + y;
      case MTI_OP_SUB: return x - y;
      case MTI_OP_MUL: return x * y;
      case MTI_OP_MAXIMUM: return x != x ? x : y != y ? y : x > y ? x : y;
      default: return x != x ? x : y != y ? y : x < y ? x : y;
      }
    }
  }
};

/* Division is floating only: mti_infer gives integer inputs a float32 out. */
struct op_div : op_base {
  static constexpr int arity = 2;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x, T y) const { return x / y; }
};

/* Integers by squaring, wrapping (mti_int_pow); floats by the math library. */
struct op_pow : op_base {
  static constexpr int arity = 2;
  template <class T> static constexpr bool ok() { return !is_bool_v<T>; }
  template <class T> MTW_HD T operator()(T x, T y) const {
    if constexpr (is_int_v<T>) return (T)mti_int_pow((int64_t)x, (int64_t)y);
    else return m_pow(x, y);
  }
};

/* The six comparisons (IEEE: NaN is unequal to everything). */
struct op_compare : op_base {
  static constexpr int arity = 2;
  mti_op op;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD bool operator()(T x, T y) const {
    switch (op) {
    case MTI_OP_EQ: return x == y;
    case MTI_OP_NE: return x != y;
    case MTI_OP_LT: return x < y;
    case MTI_OP_LE: return x <= y;
    case MTI_OP_GT: return x > y;
    default: return x >= y;
    }
  }
};

/* logical_and, logical_or, logical_xor on inputs converted to bool. */
struct op_logical : op_base {
  static constexpr int arity = 2;
  mti_op op;
  template <class T> static constexpr bool ok() { return is_bool_v<T>; }
  template <class T> MTW_HD bool operator()(T x, T y) const {
    if (op == MTI_OP_LOGICAL_XOR) return x != y;
    return op == MTI_OP_LOGICAL_AND ? x && y : x || y;
  }
};

/* logical_not on its input converted to bool. */
struct op_logical_not : op_base {
  static constexpr int arity = 1;
  template <class T> static constexpr bool ok() { return is_bool_v<T>; }
  template <class T> MTW_HD bool operator()(T x) const { return !x; }
};

/* add_scalar, mul_scalar: integers wrap with the scalar taken modulo 2^64. */
struct op_scalar_arith : op_base {
  static constexpr int arity = 1;
  mti_op op;
  scalars s;
  template <class T> static constexpr bool ok() { return !is_bool_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    bool add = op == MTI_OP_ADD_SCALAR;
    if constexpr (is_int_v<T>) {
      return add ? (T)((uint64_t)x + (uint64_t)s.u) : (T)((uint64_t)x * (uint64_t)s.u);
    } else {
      T v = scalar_of<T>(s, 0);
      return add ? x + v : x * v;
    }
  }
};

/* x^2 is x * x (exact), as on the cpu. */
struct op_pow_scalar : op_base {
  static constexpr int arity = 1;
  scalars s;
  template <class T> static constexpr bool ok() { return !is_bool_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    if constexpr (is_int_v<T>) {
      return (T)mti_int_pow((int64_t)x, s.i[0]);
    } else {
      T e = scalar_of<T>(s, 0);
      return e == (T)2 ? x * x : m_pow(x, e);
    }
  }
};

/* neg, abs, relu, floor, ceil, round (half to even), sign, trunc, square,
 * keeping the dtype. The identities (floor/ceil/round/trunc of integers,
 * abs/relu of uint8 and bool, sign and square of bool) are copies chosen on
 * the host, so the integer branch only sees neg, abs, relu, sign and
 * square; uint8 values are never negative, so the signed sign is uint8's
 * (x != 0). Float relu keeps NaN and -0 (x < 0 fails for both), sign keeps
 * NaN and the zero's sign; trunc and square are exact. */
struct op_unary : op_base {
  static constexpr int arity = 1;
  mti_op op;
  template <class T> static constexpr bool ok() { return !is_bool_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    if constexpr (is_int_v<T>) {
      switch (op) {
      case MTI_OP_NEG: return (T)((uint64_t)0 - (uint64_t)x);
      case MTI_OP_ABS: return x < 0 ? (T)((uint64_t)0 - (uint64_t)x) : x;
      case MTI_OP_RELU: return x > 0 ? x : (T)0;
      case MTI_OP_SQUARE: return (T)((uint64_t)x * (uint64_t)x);
      default: return (T)((x > 0) - (x < 0));
      }
    } else {
      switch (op) {
      case MTI_OP_NEG: return -x;
      case MTI_OP_ABS: return m_fabs(x);
      case MTI_OP_RELU: return x < 0 ? (T)0 : x;
      case MTI_OP_FLOOR: return m_floor(x);
      case MTI_OP_CEIL: return m_ceil(x);
      case MTI_OP_ROUND: return m_rint(x);
      case MTI_OP_TRUNC: return m_trunc(x);
      case MTI_OP_SQUARE: return x * x;
      default: return x > 0 ? (T)1 : x < 0 ? (T)-1 : x;
      }
    }
  }
};

#define MTW_FLOAT_OP(NAME, EXPR)                                                            \
  struct NAME : op_base {                                                                  \
    static constexpr int arity = 1;                                                        \
    template <class T> static constexpr bool ok() { return is_float_v<T>; }                \
    template <class T> MTW_HD T operator()(T x) const { return EXPR; }                     \
  };
MTW_FLOAT_OP(op_exp, m_exp(x))
MTW_FLOAT_OP(op_log, m_log(x))
MTW_FLOAT_OP(op_sqrt, m_sqrt(x))
MTW_FLOAT_OP(op_rsqrt, (T)1 / m_sqrt(x)) /* two roundings, as the cpu */
MTW_FLOAT_OP(op_sin, m_sin(x))
MTW_FLOAT_OP(op_cos, m_cos(x))
MTW_FLOAT_OP(op_tanh, m_tanh(x))
MTW_FLOAT_OP(op_reciprocal, (T)1 / x)
/* ---- general elementwise (0.2): the float math, a functor per op ---- */
MTW_FLOAT_OP(op_erf, m_erf(x))
MTW_FLOAT_OP(op_erfc, m_erfc(x))
MTW_FLOAT_OP(op_log1p, m_log1p(x))
MTW_FLOAT_OP(op_expm1, m_expm1(x))
MTW_FLOAT_OP(op_log2, m_log2(x))
MTW_FLOAT_OP(op_log10, m_log10(x))
MTW_FLOAT_OP(op_tan, m_tan(x))
MTW_FLOAT_OP(op_asin, m_asin(x))
MTW_FLOAT_OP(op_acos, m_acos(x))
MTW_FLOAT_OP(op_atan, m_atan(x))
MTW_FLOAT_OP(op_sinh, m_sinh(x))
MTW_FLOAT_OP(op_cosh, m_cosh(x))
MTW_FLOAT_OP(op_asinh, m_asinh(x))
MTW_FLOAT_OP(op_acosh, m_acosh(x))
MTW_FLOAT_OP(op_atanh, m_atanh(x))
MTW_FLOAT_OP(op_softplus, r_softplus(x))
MTW_FLOAT_OP(op_gelu_tanh, r_gelu_tanh(x))
MTW_FLOAT_OP(op_mish, r_mish(x))
#undef MTW_FLOAT_OP

/* 1 / (1 + e^-x) written with e = e^-|x|, which cannot overflow, so the
 * left tail keeps its relative precision (the cpu's form). */
template <class T> MTW_HD T sigmoid_of(T x) {
  T e = m_exp(-m_fabs(x));
  return (x < 0 ? e : (T)1) / ((T)1 + e);
}

/* sigmoid and silu (x * sigmoid(x)) share the overflow-free form. */
struct op_sigmoid : op_base {
  static constexpr int arity = 1;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x) const { return sigmoid_of(x); }
};

struct op_silu : op_base {
  static constexpr int arity = 1;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x) const { return x * sigmoid_of(x); }
};

/* The exact (erf) gelu, x * Phi(x), where Phi(x) = c for x < 0 and 1 - c
 * for x >= 0 with c = erfc(|x| / sqrt 2) / 2 (so that the left tail keeps
 * its relative precision, where 1 + erf(x / sqrt 2) would cancel).
 * In float, rounding erfc's argument z would scale erfc(z) by about
 * e^(2 z^2 eps), some 100 ulp at x = -10; so erfc(z) is evaluated as
 * e^(-x^2 / 2) * erfcx(z), where erfcx hardly depends on the rounding of z
 * and x^2 = hi + lo exactly (hi the rounded square, lo = fmaf(a, a, -hi)),
 * e^(-x^2 / 2) = e^(-hi / 2) (1 - lo / 2), a fused multiply-add welcome.
 * This is not the cpu's float evaluation (mti_vgeluf): the two agree to a
 * few ulp, not bit for bit. |x| is clamped at 22, past which e^(-x^2 / 2) is
 * 0 in float, so that inf gives inf and -inf NaN (-inf * 0), as on the cpu.
 * In double the cpu's form, x/2 * erfc(-x / sqrt 2) (no sum to fuse). */
MTW_HD float gelu_f32(float x) {
  float a = fminf(fabsf(x), 22.0f);
  float hi = mul_rn(a, a), lo = fmaf(a, a, -hi);
  float c = 0.5f * expf(-0.5f * hi) * (1.0f - 0.5f * lo) * erfcxf(a * 0.70710678118654752f);
  return x * (x < 0.0f ? c : 1.0f - c);
}

struct op_gelu : op_base {
  static constexpr int arity = 1;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    if constexpr (std::is_same<T, float>::value) return gelu_f32(x);
    else return 0.5 * x * erfc(-x * 0.70710678118654752440);
  }
};

/* min(max(x, lo), hi): NaN fails both tests and stays; lo > hi gives hi. */
struct op_clamp : op_base {
  static constexpr int arity = 1;
  scalars s;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD T operator()(T x) const {
    T lo = scalar_of<T>(s, 0), hi = scalar_of<T>(s, 1);
    T y = x < lo ? lo : x;
    return y > hi ? hi : y;
  }
};

/* ---- general elementwise (0.2): the other families ---- */

/* bitwise_not of integers (wrapping in int64 narrows to the dtype's own
 * bits) and of bool (logical not). */
struct op_bitwise_not : op_base {
  static constexpr int arity = 1;
  template <class T> static constexpr bool ok() { return !is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    if constexpr (is_bool_v<T>) return !x;
    else return ~x;
  }
};

/* bitwise_and, bitwise_or, bitwise_xor of integers or bools. */
struct op_bitwise : op_base {
  static constexpr int arity = 2;
  mti_op op;
  template <class T> static constexpr bool ok() { return !is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x, T y) const {
    if constexpr (is_bool_v<T>) {
      return op == MTI_OP_BITWISE_AND ? x && y : op == MTI_OP_BITWISE_OR ? x || y : x != y;
    } else {
      return op == MTI_OP_BITWISE_AND ? x & y : op == MTI_OP_BITWISE_OR ? x | y : x ^ y;
    }
  }
};

/* isnan, isinf, isfinite of floats (integers and bool are a fill, chosen
 * on the host). */
struct op_predicate : op_base {
  static constexpr int arity = 1;
  mti_op op;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD bool operator()(T x) const {
    if (op == MTI_OP_ISNAN) return r_isnan(x);
    return op == MTI_OP_ISINF ? r_isinf(x) : r_isfinite(x);
  }
};

struct op_atan2 : op_base {
  static constexpr int arity = 2;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x, T y) const { return m_atan2(x, y); }
};

/* Sets the fault word to code unless a fault is there already (the first
 * fault of a stream wins). The plain read first keeps a tensor full of
 * zero divisors from serialising on one atomic. */
MTW_HD void raise_fault(unsigned *fault, unsigned code) {
#ifdef __CUDA_ARCH__
  if (*(volatile unsigned *)fault == 0u) atomicCAS(fault, 0u, code);
#else
  if (*fault == 0u) *fault = code;
#endif
}

/* remainder, fmod, floor_divide. Integers: the rules of
 * core/elementwise_rules.h in int64, a divisor 0 raises `code` in the fault
 * word (the backend reports it at the next synchronize as the cpu's
 * "b: integer division by zero") and gives 0 as on the cpu. Floats: IEEE
 * (b = 0 gives inf or NaN), bit for bit the cpu's. */
struct op_division : op_base {
  static constexpr int arity = 2;
  mti_op op;
  unsigned *fault;
  unsigned code;
  template <class T> static constexpr bool ok() { return !is_bool_v<T>; }
  template <class T> MTW_HD T operator()(T x, T y) const {
    if constexpr (is_int_v<T>) {
      if (y == 0) raise_fault(fault, code);
      if (op == MTI_OP_REMAINDER) return mti_int_remainder(x, y);
      return op == MTI_OP_FMOD ? mti_int_fmod(x, y) : mti_int_floor_divide(x, y);
    } else {
      if (op == MTI_OP_REMAINDER) return r_remainder(x, y);
      return op == MTI_OP_FMOD ? m_fmod(x, y) : r_floor_divide(x, y);
    }
  }
};

/* leaky_relu (slope s0), elu (alpha s0), nan_to_num (s0..s2) of floats
 * (nan_to_num of integers and bool is a copy, chosen on the host). */
struct op_unary_param : op_base {
  static constexpr int arity = 1;
  mti_op op;
  scalars s;
  template <class T> static constexpr bool ok() { return is_float_v<T>; }
  template <class T> MTW_HD T operator()(T x) const {
    T s0 = scalar_of<T>(s, 0);
    if (op == MTI_OP_LEAKY_RELU) return r_leaky_relu(x, s0);
    if (op == MTI_OP_ELU) return r_elu(x, s0);
    return r_nan_to_num(x, s0, scalar_of<T>(s, 1), scalar_of<T>(s, 2));
  }
};

/* masked_fill(a, mask): the value (s0 stored in a's dtype, then loaded as
 * T: see masked_fill_scalars) where the mask is true, else a. The mask
 * loads as T (0 or 1); a's values round trip through T exactly, NaN
 * payloads included. */
struct op_masked_fill : op_base {
  static constexpr int arity = 2;
  scalars s;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD T operator()(T x, T mask) const {
    return mask != (T)0 ? scalar_of<T>(s, 0) : x;
  }
};

/* where(c, x, y): strided_element selects, loading only the value chosen. */
struct op_where : op_base {
  static constexpr int arity = 3;
  static constexpr bool cond_first = true;
  template <class T> static constexpr bool ok() { return true; }
};

/* copy/cast: loads convert to the source's compute type, the store to any
 * dtype (mt_cast's rules, cuda_common.cuh). */
struct op_copy : op_base {
  static constexpr int arity = 1;
  static constexpr bool any_dst = true;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD T operator()(T x) const { return x; }
};

/* Same-dtype copies move bits (NaN payloads and all), by element size. */
struct op_bits : op_base {
  static constexpr int arity = 1;
  static constexpr bool raw = true;
  template <class T> static constexpr bool ok() { return true; }
  template <class T> MTW_HD T operator()(T x) const { return x; }
};

/* fill: the value's bits, by element size. */
template <class B> struct op_fill : op_base {
  static constexpr int arity = 0;
  static constexpr bool raw = true;
  B bits;
  template <class T> static constexpr bool ok() { return std::is_same<T, B>::value; }
  MTW_HD B operator()() const { return bits; }
};

/* Conversions between the floating dtypes for the contiguous cast path:
 * a conversion to D's compute type with the cpu's NaN bits (float_as). */
template <class DC> struct op_float_cast : op_base {
  static constexpr int arity = 1;
  template <class T> MTW_HD DC operator()(T x) const { return float_as<DC>(x); }
};

/* op applied to its arity's leading values of x (where has no apply: see
 * strided_element). */
template <class Op, class T> MTW_HD auto apply(const Op &op, const T *x) {
  if constexpr (Op::arity == 0) return op();
  else if constexpr (Op::arity == 1) return op(x[0]);
  else return op(x[0], x[1]);
}

/* ---- element code of the kernels (host and device, for the host test) ---- */

template <class T, int N> struct alignas(sizeof(T) * N) pack {
  T v[N];
};

/* Operands of the contiguous kernels: up to 3 inputs, out, n elements. */
struct contig_args {
  const void *in[3];
  void *out;
  int64_t n;
};

/* Elements per 16-byte vector of the inputs' storage S. */
template <class S> constexpr int vector_len = 16 / (int)sizeof(S);

/* Vector v (elements v*N .. v*N+N-1) of an op whose inputs have storage S
 * and out storage D, all contiguous and aligned for N-element vectors. */
template <class Op, class S, class D>
MTW_HD void contig_vector(const Op &op, const contig_args &a, int64_t v) {
  constexpr int N = vector_len<S>;
  constexpr int NIN = Op::arity;
  typedef typename elem<S>::compute CT;
  pack<S, N> in[NIN > 0 ? NIN : 1];
  MTW_UNROLL
  for (int k = 0; k < NIN; k++) in[k] = static_cast<const pack<S, N> *>(a.in[k])[v];
  pack<D, N> out;
  MTW_UNROLL
  for (int e = 0; e < N; e++) {
    CT x[NIN > 0 ? NIN : 1];
    MTW_UNROLL
    for (int k = 0; k < NIN; k++) x[k] = elem<S>::load(in[k].v[e]);
    out.v[e] = elem<D>::store(apply(op, x));
  }
  static_cast<pack<D, N> *>(a.out)[v] = out;
}

/* Element i of the same op (the tail after the last whole vector). */
template <class Op, class S, class D>
MTW_HD void contig_element(const Op &op, const contig_args &a, int64_t i) {
  typedef typename elem<S>::compute CT;
  CT x[Op::arity > 0 ? Op::arity : 1];
  MTW_UNROLL
  for (int k = 0; k < Op::arity; k++) x[k] = elem<S>::load(static_cast<const S *>(a.in[k])[i]);
  static_cast<D *>(a.out)[i] = elem<D>::store(apply(op, x));
}

/* where with a contiguous bool condition (bytes, non-zero is true) and
 * values of out's dtype: a select of B-sized bits, vector v or element i. */
template <class B> MTW_HD void where_vector(const contig_args &a, int64_t v) {
  constexpr int N = vector_len<B>;
  pack<uint8_t, N> c = static_cast<const pack<uint8_t, N> *>(a.in[0])[v];
  pack<B, N> x = static_cast<const pack<B, N> *>(a.in[1])[v];
  pack<B, N> y = static_cast<const pack<B, N> *>(a.in[2])[v];
  MTW_UNROLL
  for (int e = 0; e < N; e++) x.v[e] = c.v[e] ? x.v[e] : y.v[e];
  static_cast<pack<B, N> *>(a.out)[v] = x;
}

template <class B> MTW_HD void where_element(const contig_args &a, int64_t i) {
  const B *x = static_cast<const B *>(a.in[1]), *y = static_cast<const B *>(a.in[2]);
  static_cast<B *>(a.out)[i] = static_cast<const uint8_t *>(a.in[0])[i] ? x[i] : y[i];
}

/* Coalesced dims of out (operand 0) and the inputs; dim nd-1 is where out
 * moves fastest. Strides in elements. */
struct strided_args {
  uint32_t n; /* elements: the product of shape */
  int nd;
  uint32_t shape[MT_MAX_DIMS];
  int64_t stride[MAX_OPERANDS][MT_MAX_DIMS];
  char *base[MAX_OPERANDS];
  int dtype[MAX_OPERANDS];
  int via[MAX_OPERANDS]; /* a 16-bit float an input is rounded to first, or NO_VIA */
};

/* Element offsets of the i-th element in every operand (32-bit division;
 * a 1-d layout divides nothing). */
template <int NOPS> MTW_HD void offsets_of(const strided_args &a, uint32_t i, int64_t *off) {
  MTW_UNROLL
  for (int k = 0; k < NOPS; k++) off[k] = 0;
  MTW_UNROLL
  for (int d = MT_MAX_DIMS - 1; d > 0; d--) {
    if (d >= a.nd) continue;
    uint32_t s = a.shape[d], q = i / s, r = i - q * s;
    MTW_UNROLL
    for (int k = 0; k < NOPS; k++) off[k] += (int64_t)r * a.stride[k][d];
    i = q;
  }
  MTW_UNROLL
  for (int k = 0; k < NOPS; k++) off[k] += (int64_t)i * a.stride[k][0];
}

/* Element off of an array of dtype d, converted to CT with mt_cast's rules;
 * a non-float input of a float16/bfloat16 op is first rounded to that
 * dtype (via), as the cpu does. */
template <class CT> MTW_HD CT load_as(const char *p, int64_t off, int d, int via) {
  if constexpr (is_int_v<CT>) { /* integer ops: only bool and integer inputs */
    switch (d) {
    case MT_BOOL: return reinterpret_cast<const uint8_t *>(p)[off] != 0;
    case MT_UINT8: return reinterpret_cast<const uint8_t *>(p)[off];
    case MT_INT8: return reinterpret_cast<const int8_t *>(p)[off];
    case MT_INT16: return reinterpret_cast<const int16_t *>(p)[off];
    case MT_INT32: return reinterpret_cast<const int32_t *>(p)[off];
    default: return reinterpret_cast<const int64_t *>(p)[off];
    }
  }
  CT v;
  switch (d) {
  case MT_BOOL: v = convert<CT>(reinterpret_cast<const uint8_t *>(p)[off] != 0); break;
  case MT_UINT8: v = convert<CT>(reinterpret_cast<const uint8_t *>(p)[off]); break;
  case MT_INT8: v = convert<CT>(reinterpret_cast<const int8_t *>(p)[off]); break;
  case MT_INT16: v = convert<CT>(reinterpret_cast<const int16_t *>(p)[off]); break;
  case MT_INT32: v = convert<CT>(reinterpret_cast<const int32_t *>(p)[off]); break;
  case MT_INT64: v = convert<CT>(reinterpret_cast<const int64_t *>(p)[off]); break;
  case MT_FLOAT16: v = convert<CT>(reinterpret_cast<const __half *>(p)[off]); break;
  case MT_BFLOAT16: v = convert<CT>(reinterpret_cast<const __nv_bfloat16 *>(p)[off]); break;
  case MT_FLOAT32: v = convert<CT>(reinterpret_cast<const float *>(p)[off]); break;
  default: v = convert<CT>(reinterpret_cast<const double *>(p)[off]); break;
  }
  if constexpr (std::is_same<CT, float>::value) {
    if (via == MT_FLOAT16) v = widen(to_half(v));
    if (via == MT_BFLOAT16) v = widen(to_bfloat16(v));
  }
  return v;
}

/* Stores a result R into out of dtype d whose compute type is R: float
 * results go to float32, float16 or bfloat16, int64 ones (every integer
 * op) wrap into d's width. */
template <class R> MTW_HD void store_as(char *p, int64_t off, int d, R v) {
  if constexpr (std::is_same<R, float>::value) {
    if (d == MT_FLOAT16) reinterpret_cast<__half *>(p)[off] = to_half(v);
    else if (d == MT_BFLOAT16) reinterpret_cast<__nv_bfloat16 *>(p)[off] = to_bfloat16(v);
    else reinterpret_cast<float *>(p)[off] = v;
  } else if constexpr (std::is_same<R, int64_t>::value) {
    switch (d) {
    case MT_UINT8: reinterpret_cast<uint8_t *>(p)[off] = (uint8_t)v; break;
    case MT_INT8: reinterpret_cast<int8_t *>(p)[off] = (int8_t)v; break;
    case MT_INT16: reinterpret_cast<int16_t *>(p)[off] = (int16_t)v; break;
    case MT_INT32: reinterpret_cast<int32_t *>(p)[off] = (int32_t)v; break;
    default: reinterpret_cast<int64_t *>(p)[off] = v; break;
    }
  } else {
    reinterpret_cast<R *>(p)[off] = v;
  }
}

/* Stores v into out of any dtype d with mt_cast's rules (copy and cast). */
template <class R> MTW_HD void store_any(char *p, int64_t off, int d, R v) {
  switch (d) {
  case MT_BOOL: reinterpret_cast<bool8 *>(p)[off] = convert<bool8>(v); break;
  case MT_UINT8: reinterpret_cast<uint8_t *>(p)[off] = convert<uint8_t>(v); break;
  case MT_INT8: reinterpret_cast<int8_t *>(p)[off] = convert<int8_t>(v); break;
  case MT_INT16: reinterpret_cast<int16_t *>(p)[off] = convert<int16_t>(v); break;
  case MT_INT32: reinterpret_cast<int32_t *>(p)[off] = convert<int32_t>(v); break;
  case MT_INT64: reinterpret_cast<int64_t *>(p)[off] = convert<int64_t>(v); break;
  case MT_FLOAT16: reinterpret_cast<__half *>(p)[off] = convert<__half>(v); break;
  case MT_BFLOAT16: reinterpret_cast<__nv_bfloat16 *>(p)[off] = convert<__nv_bfloat16>(v); break;
  case MT_FLOAT32: reinterpret_cast<float *>(p)[off] = convert<float>(v); break;
  default: reinterpret_cast<double *>(p)[off] = convert<double>(v); break;
  }
}

/* Element i of the strided op: where loads only the value it picks. */
template <class Op, class CT> MTW_HD void strided_element(const Op &op, const strided_args &a,
                                                          uint32_t i) {
  constexpr int NOPS = Op::arity + 1;
  int64_t off[NOPS];
  offsets_of<NOPS>(a, i, off);
  if constexpr (Op::cond_first) { /* selects, not indexing: off stays in registers */
    bool c = load_as<bool>(a.base[1], off[1], a.dtype[1], NO_VIA);
    CT v = c ? load_as<CT>(a.base[2], off[2], a.dtype[2], a.via[2])
             : load_as<CT>(a.base[3], off[3], a.dtype[3], a.via[3]);
    store_as(a.base[0], off[0], a.dtype[0], v);
  } else {
    CT x[Op::arity > 0 ? Op::arity : 1];
    MTW_UNROLL
    for (int k = 0; k < Op::arity; k++) {
      if constexpr (Op::raw) x[k] = reinterpret_cast<const CT *>(a.base[k + 1])[off[k + 1]];
      else x[k] = load_as<CT>(a.base[k + 1], off[k + 1], a.dtype[k + 1], a.via[k + 1]);
    }
    if constexpr (Op::any_dst) store_any(a.base[0], off[0], a.dtype[0], apply(op, x));
    else store_as(a.base[0], off[0], a.dtype[0], apply(op, x));
  }
}

/* out[i * stride] = start + i * step, in double and then converted; the
 * product and the sum are rounded separately (mul_rn, add_rn) so that no
 * fused multiply-add changes a value: the cpu rounds both. */
template <class S> MTW_HD void arange_element(S *out, int64_t stride, int64_t i, double start,
                                              double step) {
  double v = add_rn(start, mul_rn((double)i, step));
  out[i * stride] = convert<S>(v);
}

/* A transpose-like same-dtype copy: out moves fastest along its last dim
 * (stride 1), in along dim k (stride 1). Tiles of TILE x TILE elements of
 * (dim k, last dim) go through shared memory, so that both the reads and
 * the writes of a warp are contiguous. */
enum { TILE = 32, TILE_ROWS = 8 };

struct tile_args {
  char *out;
  const char *in;
  int nd, k; /* dims of the coalesced layout; dim k < nd - 1 */
  int64_t shape[MT_MAX_DIMS], out_stride[MT_MAX_DIMS], in_stride[MT_MAX_DIMS];
  int64_t ktiles, itiles, tiles; /* along dim k, along the last dim, in all */
};

/* Where tile t starts: element offsets in out and in, and its first index
 * along dim k and along the last dim. */
struct tile_origin {
  int64_t out_off, in_off, k0, i0;
};

MTW_HD tile_origin tile_origin_of(const tile_args &a, int64_t t) {
  tile_origin o;
  o.i0 = t % a.itiles * TILE;
  o.k0 = t / a.itiles % a.ktiles * TILE;
  int64_t rest = t / (a.itiles * a.ktiles);
  o.out_off = o.k0 * a.out_stride[a.k] + o.i0;
  o.in_off = o.k0 + o.i0 * a.in_stride[a.nd - 1];
  for (int d = a.nd - 2; d >= 0; d--) {
    if (d == a.k) continue;
    int64_t idx = rest % a.shape[d];
    rest /= a.shape[d];
    o.out_off += idx * a.out_stride[d];
    o.in_off += idx * a.in_stride[d];
  }
  return o;
}

/* ---- kernels: grid-stride loops over the element code ---- */

template <class Op, class S, class D>
__global__ void __launch_bounds__(THREADS) contig_kernel(Op op, contig_args a) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t nvec = a.n / vector_len<S>;
  for (int64_t v = first; v < nvec; v += step) contig_vector<Op, S, D>(op, a, v);
  for (int64_t i = nvec * vector_len<S> + first; i < a.n; i += step)
    contig_element<Op, S, D>(op, a, i);
}

template <class B> __global__ void __launch_bounds__(THREADS) where_kernel(contig_args a) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t nvec = a.n / vector_len<B>;
  for (int64_t v = first; v < nvec; v += step) where_vector<B>(a, v);
  for (int64_t i = nvec * vector_len<B> + first; i < a.n; i += step) where_element<B>(a, i);
}

template <class Op, class CT>
__global__ void __launch_bounds__(THREADS) strided_kernel(Op op, strided_args a) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += gridDim.x * blockDim.x)
    strided_element<Op, CT>(op, a, i);
}

/* One tile per block iteration: TILE x TILE_ROWS threads read it along dim
 * k (threadIdx.x runs along in's contiguous dim) into shared memory and
 * write it along the last dim (threadIdx.x along out's contiguous dim);
 * the padding column keeps the column reads free of bank conflicts. */
template <class B>
__global__ void __launch_bounds__(TILE * TILE_ROWS) transpose_kernel(tile_args a) {
  __shared__ B tile[TILE][TILE + 1];
  const int64_t kn = a.shape[a.k], in_n = a.shape[a.nd - 1];
  const int64_t in_last = a.in_stride[a.nd - 1], out_k = a.out_stride[a.k];
  const B *in = reinterpret_cast<const B *>(a.in);
  B *out = reinterpret_cast<B *>(a.out);
  for (int64_t t = blockIdx.x; t < a.tiles; t += gridDim.x) {
    tile_origin o = tile_origin_of(a, t);
    for (int j = threadIdx.y; j < TILE; j += TILE_ROWS) {
      int64_t kk = o.k0 + threadIdx.x, ii = o.i0 + j;
      if (kk < kn && ii < in_n) tile[j][threadIdx.x] = in[o.in_off + threadIdx.x + j * in_last];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < TILE; j += TILE_ROWS) {
      int64_t kk = o.k0 + j, ii = o.i0 + threadIdx.x;
      if (kk < kn && ii < in_n) out[o.out_off + j * out_k + threadIdx.x] = tile[threadIdx.x][j];
    }
    __syncthreads();
  }
}

template <class S>
__global__ void __launch_bounds__(THREADS) arange_kernel(S *out, int64_t stride, int64_t n,
                                                         double start, double step) {
  const int64_t grid = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += grid)
    arange_element<S>(out, stride, i, start, step);
}

/* The device executor: what the host logic below enqueues, on ctx's stream.
 * (The host test runs the same logic with an executor that loops over the
 * element code on host memory.) */
struct gpu_exec {
  const mtw_cuda_ctx *ctx;

  template <class Op, class S, class D> void contig(const Op &op, const contig_args &a) const {
    int64_t vectors = a.n / vector_len<S>;
    contig_kernel<Op, S, D><<<grid_for(ctx, vectors > 0 ? vectors : a.n, THREADS), THREADS, 0,
                              ctx->stream>>>(op, a);
  }
  template <class B> void where_bits(const contig_args &a) const {
    int64_t vectors = a.n / vector_len<B>;
    where_kernel<B><<<grid_for(ctx, vectors > 0 ? vectors : a.n, THREADS), THREADS, 0,
                      ctx->stream>>>(a);
  }
  template <class Op, class CT> void strided(const Op &op, const strided_args &a) const {
    strided_kernel<Op, CT><<<grid_for(ctx, a.n, THREADS), THREADS, 0, ctx->stream>>>(op, a);
  }
  template <class B> void transpose(const tile_args &a) const {
    int64_t cap = (int64_t)ctx->multiprocessors * 8;
    unsigned grid = (unsigned)(a.tiles < cap ? a.tiles : cap);
    transpose_kernel<B><<<grid, dim3(TILE, TILE_ROWS), 0, ctx->stream>>>(a);
  }
  template <class S>
  void arange(S *out, int64_t stride, int64_t n, double start, double step) const {
    arange_kernel<S><<<grid_for(ctx, n, THREADS), THREADS, 0, ctx->stream>>>(out, stride, n,
                                                                             start, step);
  }
  void copy(void *dst, const void *src, size_t bytes) const {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream);
  }
  void *scratch(size_t bytes) const { return ctx->scratch(ctx, bytes); }
  /* The stream's fault word (cuda_kernels.h), for data-dependent errors. */
  unsigned *fault_word() const { return ctx->fault; }
  /* A launch error, if any, as the session's error naming fn. */
  mt_status done(const char *fn) const { return launched(fn); }
};

/* ---- host: layouts ---- */

/* Dims of out's shape after dropping size-1 dims, ordering by out's stride
 * (largest first, so that the last dim is where out moves fastest: writes
 * coalesce even into a transposed copy_ destination) and merging
 * neighbours contiguous in every operand. Operand 0 is out. */
struct layout {
  int nd, nops;
  int64_t shape[MT_MAX_DIMS];
  int64_t stride[MAX_OPERANDS][MT_MAX_DIMS];
};

inline int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

inline void layout_init(layout *l, const mti_view *v, int nops) {
  l->nops = nops;
  int nd = 0;
  for (int d = 0; d < v[0].ndim; d++) {
    if (v[0].shape[d] == 1) continue;
    int at = nd;
    while (at > 0 && abs64(l->stride[0][at - 1]) < abs64(v[0].strides[d])) {
      l->shape[at] = l->shape[at - 1];
      for (int k = 0; k < nops; k++) l->stride[k][at] = l->stride[k][at - 1];
      at--;
    }
    l->shape[at] = v[0].shape[d];
    for (int k = 0; k < nops; k++) l->stride[k][at] = v[k].strides[d];
    nd++;
  }
  int merged = 0;
  for (int d = 0; d < nd; d++) {
    int merge = merged > 0;
    for (int k = 0; k < nops && merge; k++)
      merge = l->stride[k][merged - 1] == l->stride[k][d] * l->shape[d];
    if (merge) {
      l->shape[merged - 1] *= l->shape[d];
    } else {
      l->shape[merged] = l->shape[d];
      merged++;
    }
    for (int k = 0; k < nops; k++) l->stride[k][merged - 1] = l->stride[k][d];
  }
  if (merged == 0) { /* one element */
    l->shape[0] = 1;
    for (int k = 0; k < nops; k++) l->stride[k][0] = 1;
    merged = 1;
  }
  l->nd = merged;
}

/* 1 when every operand is one contiguous run in out's order. */
inline bool layout_contiguous(const layout &l) {
  if (l.nd != 1) return false;
  for (int k = 0; k < l.nops; k++)
    if (l.stride[k][0] != 1) return false;
  return true;
}

/* What an op's launch needs: out (operand 0) and the inputs broadcast to
 * its shape, their coalesced layout and the via dtypes. */
struct plan {
  const char *fn;
  int nops;
  mti_view v[MAX_OPERANDS];
  int via[MAX_OPERANDS];
  layout l;
};

inline void plan_init(plan *p, const char *fn, const mti_view *in, int n, const mti_view *out) {
  p->fn = fn;
  p->nops = n + 1;
  p->v[0] = *out;
  for (int k = 0; k <= n; k++) p->via[k] = NO_VIA;
  for (int k = 1; k <= n; k++) p->v[k] = mti_view_broadcast_to(&in[k - 1], out->ndim, out->shape);
  layout_init(&p->l, p->v, p->nops);
}

/* Calls launch(args) for chunks of at most CHUNK_LIMIT elements that cover
 * the layout: row ranges of dim `cut` under whole inner dims, the dims
 * above it walked on the host (only tensors past 2^31 elements have more
 * than one chunk, and every chunk but the last of a row holds more than
 * 2^30 elements). */
template <class F> void for_each_chunk(const plan &p, F launch) {
  const layout &l = p.l;
  int first = l.nd; /* dims [first, nd) fit whole into one chunk */
  int64_t inner = 1;
  while (first > 0 && inner * l.shape[first - 1] <= CHUNK_LIMIT) inner *= l.shape[--first];
  int cut = first > 0 ? first - 1 : 0;
  int64_t below = 1; /* elements per index of dim cut */
  for (int d = cut + 1; d < l.nd; d++) below *= l.shape[d];
  int64_t rows_per = CHUNK_LIMIT / below;
  strided_args a;
  memset(&a, 0, sizeof a);
  a.nd = l.nd - cut;
  for (int k = 0; k < p.nops; k++) {
    a.dtype[k] = p.v[k].dtype;
    a.via[k] = p.via[k];
    for (int d = cut; d < l.nd; d++) a.stride[k][d - cut] = l.stride[k][d];
  }
  for (int d = cut; d < l.nd; d++) a.shape[d - cut] = (uint32_t)l.shape[d];
  int64_t idx[MT_MAX_DIMS] = {0}; /* odometer over dims [0, cut) */
  for (;;) {
    for (int64_t r0 = 0; r0 < l.shape[cut]; r0 += rows_per) {
      int64_t rows = l.shape[cut] - r0 < rows_per ? l.shape[cut] - r0 : rows_per;
      for (int k = 0; k < p.nops; k++) {
        int64_t off = r0 * l.stride[k][cut];
        for (int d = 0; d < cut; d++) off += idx[d] * l.stride[k][d];
        a.base[k] = (char *)p.v[k].data + off * (int64_t)mt_dtype_size(p.v[k].dtype);
      }
      a.shape[0] = (uint32_t)rows;
      a.n = (uint32_t)(rows * below);
      launch(a);
    }
    int d = cut - 1;
    while (d >= 0 && ++idx[d] == l.shape[d]) idx[d--] = 0;
    if (d < 0) return;
  }
}

template <class X, class Op, class CT>
void run_strided(const X &exec, const plan &p, const Op &op) {
  for_each_chunk(p, [&](const strided_args &a) { exec.template strided<Op, CT>(op, a); });
}

inline contig_args contig_args_of(const plan &p) {
  contig_args a;
  memset(&a, 0, sizeof a);
  for (int k = 1; k < p.nops; k++) a.in[k - 1] = p.v[k].data;
  a.out = p.v[0].data;
  a.n = p.l.shape[0];
  return a;
}

/* 1 when p's pointers are aligned for 16-byte vectors of S (and the
 * matching vectors of D for out). */
template <class S, class D> bool vector_aligned(const plan &p) {
  constexpr size_t in_bytes = 16, out_bytes = sizeof(D) * vector_len<S>;
  if ((uintptr_t)p.v[0].data % out_bytes) return false;
  for (int k = 1; k < p.nops; k++)
    if ((uintptr_t)p.v[k].data % in_bytes) return false;
  return true;
}

/* The contiguous path for inputs of storage S (all of one dtype) when p
 * allows it; false when the strided path must run. Out is S, or bool8 for
 * ops with a bool result. */
template <class X, class Op, class S>
bool try_contig_as(const X &exec, const plan &p, const Op &op, mt_dtype in_dtype) {
  typedef typename elem<S>::compute CT;
  typedef decltype(apply(op, (const CT *)nullptr)) R;
  typedef typename std::conditional<std::is_same<R, bool>::value, bool8, S>::type D;
  mt_dtype out_dtype = std::is_same<R, bool>::value ? MT_BOOL : in_dtype;
  if (p.v[0].dtype != out_dtype) return false;
  for (int k = 1; k < p.nops; k++)
    if (p.v[k].dtype != in_dtype) return false;
  if (!vector_aligned<S, D>(p)) return false;
  exec.template contig<Op, S, D>(op, contig_args_of(p));
  return true;
}

/* Contiguous kernels exist for the floating dtypes and bool: integer
 * tensors take the strided path, 1-d there (no division). */
template <class X, class Op, class CT> bool try_contig(const X &exec, const plan &p, const Op &op) {
  if (!layout_contiguous(p.l)) return false;
  mt_dtype d = p.nops > 1 ? p.v[1].dtype : p.v[0].dtype;
  if constexpr (std::is_same<CT, float>::value) {
    if (d == MT_FLOAT16) return try_contig_as<X, Op, __half>(exec, p, op, d);
    if (d == MT_BFLOAT16) return try_contig_as<X, Op, __nv_bfloat16>(exec, p, op, d);
    return d == MT_FLOAT32 && try_contig_as<X, Op, float>(exec, p, op, d);
  } else if constexpr (std::is_same<CT, double>::value) {
    return d == MT_FLOAT64 && try_contig_as<X, Op, double>(exec, p, op, d);
  } else if constexpr (is_bool_v<CT>) {
    return d == MT_BOOL && try_contig_as<X, Op, bool8>(exec, p, op, d);
  } else {
    return false;
  }
}

inline mt_status no_kernel(const plan &p, mt_dtype ct) {
  return mti_error(MT_ERR_INTERNAL, "%s: cuda: no kernel for %s", p.fn, mt_dtype_name(ct));
}

template <class X, class Op, class CT>
mt_status run_ct(const X &exec, const plan &p, const Op &op, mt_dtype ct) {
  if constexpr (!Op::template ok<CT>()) {
    return no_kernel(p, ct);
  } else if constexpr (Op::any_dst || Op::cond_first) { /* fast paths of their own */
    run_strided<X, Op, CT>(exec, p, op);
    return exec.done(p.fn);
  } else {
    if (!try_contig<X, Op, CT>(exec, p, op)) run_strided<X, Op, CT>(exec, p, op);
    return exec.done(p.fn);
  }
}

/* Runs op in compute dtype ct. Every integer ct runs in int64: inputs
 * widen exactly, and the results of the integer ops (wrapping add, sub,
 * mul, neg, abs and pow; max, min, relu, sign, clamp with bounds already
 * saturated to ct; comparisons) narrowed modulo ct's width are ct's own, so
 * one kernel serves five dtypes. */
template <class X, class Op> mt_status run_op(const X &exec, const plan &p, const Op &op,
                                              mt_dtype ct) {
  switch (ct) {
  case MT_BOOL: return run_ct<X, Op, bool>(exec, p, op, ct);
  case MT_UINT8:
  case MT_INT8:
  case MT_INT16:
  case MT_INT32:
  case MT_INT64: return run_ct<X, Op, int64_t>(exec, p, op, ct);
  case MT_FLOAT32: return run_ct<X, Op, float>(exec, p, op, ct);
  case MT_FLOAT64: return run_ct<X, Op, double>(exec, p, op, ct);
  default: return no_kernel(p, ct);
  }
}

/* ---- host: kinds ---- */

/* Bytes [*lo, *hi) that a non-empty view touches. */
inline void view_extent(const mti_view &v, uintptr_t *lo, uintptr_t *hi) {
  int64_t first = 0, last = 0;
  for (int d = 0; d < v.ndim; d++) {
    int64_t span = (v.shape[d] - 1) * v.strides[d];
    if (span < 0) first += span;
    else last += span;
  }
  int64_t size = (int64_t)mt_dtype_size(v.dtype);
  *lo = (uintptr_t)v.data + (uintptr_t)(first * size);
  *hi = (uintptr_t)v.data + (uintptr_t)((last + 1) * size);
}

inline bool views_overlap(const mti_view &a, const mti_view &b) {
  if (!mti_shape_numel(a.ndim, a.shape) || !mti_shape_numel(b.ndim, b.shape)) return false;
  uintptr_t alo, ahi, blo, bhi;
  view_extent(a, &alo, &ahi);
  view_extent(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

/* The tiles of a transpose-like copy (see tile_args): out contiguous along
 * its last dim, in along another dim k, both long enough for tiles to pay
 * off; false for any other layout. */
inline bool transpose_tiles(const plan &p, tile_args *a) {
  const layout &l = p.l;
  int last = l.nd - 1;
  if (l.nd < 2 || l.stride[0][last] != 1 || l.shape[last] < TILE / 4) return false;
  a->k = -1;
  for (int d = 0; d < last; d++)
    if (l.stride[1][d] == 1 && l.shape[d] >= TILE / 4) a->k = d;
  if (a->k < 0) return false;
  a->out = (char *)p.v[0].data;
  a->in = (const char *)p.v[1].data;
  a->nd = l.nd;
  int64_t outer = 1;
  for (int d = 0; d < l.nd; d++) {
    a->shape[d] = l.shape[d];
    a->out_stride[d] = l.stride[0][d];
    a->in_stride[d] = l.stride[1][d];
    if (d != a->k && d != last) outer *= l.shape[d];
  }
  a->ktiles = (l.shape[a->k] + TILE - 1) / TILE;
  a->itiles = (l.shape[last] + TILE - 1) / TILE;
  a->tiles = outer * a->ktiles * a->itiles;
  return true;
}

/* Same-dtype copies by element size: one memcpy when both are one
 * contiguous run, tiles for a transpose, else the bits of each element. */
template <class X> mt_status copy_bits(const X &exec, const plan &p) {
  if (layout_contiguous(p.l)) {
    exec.copy(p.v[0].data, p.v[1].data, (size_t)p.l.shape[0] * mt_dtype_size(p.v[0].dtype));
    return exec.done(p.fn);
  }
  tile_args t;
  if (transpose_tiles(p, &t)) {
    switch (mt_dtype_size(p.v[0].dtype)) {
    case 1: exec.template transpose<uint8_t>(t); break;
    case 2: exec.template transpose<uint16_t>(t); break;
    case 4: exec.template transpose<uint32_t>(t); break;
    default: exec.template transpose<uint64_t>(t); break;
    }
    return exec.done(p.fn);
  }
  switch (mt_dtype_size(p.v[0].dtype)) {
  case 1: run_strided<X, op_bits, uint8_t>(exec, p, op_bits()); break;
  case 2: run_strided<X, op_bits, uint16_t>(exec, p, op_bits()); break;
  case 4: run_strided<X, op_bits, uint32_t>(exec, p, op_bits()); break;
  default: run_strided<X, op_bits, uint64_t>(exec, p, op_bits()); break;
  }
  return exec.done(p.fn);
}

/* Contiguous conversion from floating storage S to floating storage D
 * (casts of activations and weights), vectorised when aligned. */
template <class X, class S, class D> bool try_float_cast_to(const X &exec, const plan &p) {
  typedef op_float_cast<typename elem<D>::compute> Op;
  if constexpr (std::is_same<S, D>::value) { /* same dtype: copy_bits copies it */
    return false;
  } else {
    if (!vector_aligned<S, D>(p)) return false;
    exec.template contig<Op, S, D>(Op(), contig_args_of(p));
    return true;
  }
}

template <class X, class S> bool try_float_cast_from(const X &exec, const plan &p) {
  switch (p.v[0].dtype) {
  case MT_FLOAT16: return try_float_cast_to<X, S, __half>(exec, p);
  case MT_BFLOAT16: return try_float_cast_to<X, S, __nv_bfloat16>(exec, p);
  case MT_FLOAT32: return try_float_cast_to<X, S, float>(exec, p);
  case MT_FLOAT64: return try_float_cast_to<X, S, double>(exec, p);
  default: return false;
  }
}

template <class X> bool try_float_cast(const X &exec, const plan &p) {
  if (!layout_contiguous(p.l)) return false;
  switch (p.v[1].dtype) {
  case MT_FLOAT16: return try_float_cast_from<X, __half>(exec, p);
  case MT_BFLOAT16: return try_float_cast_from<X, __nv_bfloat16>(exec, p);
  case MT_FLOAT32: return try_float_cast_from<X, float>(exec, p);
  case MT_FLOAT64: return try_float_cast_from<X, double>(exec, p);
  default: return false;
  }
}

/* out = convert(broadcast(src)). Bool and integer sources load as int64
 * (exact), floats as their compute type; the store converts to out. */
template <class X>
mt_status convert_views(const X &exec, const char *fn, const mti_view &src, const mti_view &out) {
  plan p;
  plan_init(&p, fn, &src, 1, &out);
  if (src.dtype == out.dtype) return copy_bits(exec, p);
  if (try_float_cast(exec, p)) return exec.done(fn);
  mt_dtype ct = mti_dtype_is_float(src.dtype) ? mti_compute_dtype(src.dtype) : MT_INT64;
  return run_op(exec, p, op_copy(), ct);
}

/* COPY whose source shares memory with out: the source is first copied
 * into scratch, so that no element is overwritten before it is read. */
template <class X>
mt_status copy_staged(const X &exec, const char *fn, const mti_view &src, const mti_view &out) {
  size_t bytes = (size_t)mti_shape_numel(src.ndim, src.shape) * mt_dtype_size(src.dtype);
  mti_view tmp = src;
  if (!(tmp.data = exec.scratch(bytes))) return MT_ERR_OUT_OF_MEMORY; /* error already set */
  mti_shape_contiguous_strides(tmp.ndim, tmp.shape, tmp.strides);
  mt_status s = convert_views(exec, fn, src, tmp);
  return s ? s : convert_views(exec, fn, tmp, out);
}

/* fill: the value stored once on the host (mt_cast's rules), then its
 * bits everywhere. */
template <class X, class B> mt_status fill_bits(const X &exec, const plan &p, uint64_t one) {
  op_fill<B> op;
  memcpy(&op.bits, &one, sizeof op.bits);
  return run_ct<X, op_fill<B>, B>(exec, p, op, p.v[0].dtype);
}

template <class X>
mt_status fill(const X &exec, const char *fn, const mti_view &out, double value) {
  uint64_t one = 0;
  mti_store_double(&one, out.dtype, value);
  plan p;
  plan_init(&p, fn, NULL, 0, &out);
  switch (mt_dtype_size(out.dtype)) {
  case 1: return fill_bits<X, uint8_t>(exec, p, one);
  case 2: return fill_bits<X, uint16_t>(exec, p, one);
  case 4: return fill_bits<X, uint32_t>(exec, p, one);
  default: return fill_bits<X, uint64_t>(exec, p, one);
  }
}

template <class X>
mt_status arange(const X &exec, const char *fn, const mti_view &out, double start, double step) {
  int64_t n = out.ndim ? out.shape[0] : 1, stride = out.ndim ? out.strides[0] : 1;
  MTW_DISPATCH(out.dtype,
               exec.template arange<scalar_t>(static_cast<scalar_t *>(out.data), stride, n,
                                              start, step);
               return exec.done(fn));
  return mti_error(MT_ERR_INTERNAL, "%s: cuda: no kernel for dtype %d", fn, (int)out.dtype);
}

/* ---- scalars (the cpu's set_scalars) ---- */

inline scalars scalars_for(mti_op op, mt_dtype ct, const mti_attrs *at) {
  scalars s;
  double v[3] = {at->s0, at->s1, at->s2};
  s.u = mti_wrap_to_u64(v[0]);
  for (int k = 0; k < 3; k++) {
    s.f[k] = (float)v[k];
    s.d[k] = v[k];
  }
  for (int k = 0; k < 2; k++) {
    s.i[k] = 0;
    if (mti_dtype_is_float(ct)) continue;
    if (op == MTI_OP_POW_SCALAR) s.i[k] = mti_pow_exponent(v[k]);
    if (op == MTI_OP_CLAMP) s.i[k] = mti_clamp_bound(v[k], k == 1, ct);
  }
  return s;
}

/* masked_fill's value as the cpu uses it: stored in out's dtype d (mt_cast's
 * rules), then loaded as the compute type (slot 0 of each form). */
inline scalars masked_fill_scalars(mt_dtype d, double value) {
  uint64_t one = 0;
  mti_store_double(&one, d, value);
  const char *p = reinterpret_cast<const char *>(&one);
  scalars s;
  memset(&s, 0, sizeof s);
  if (mti_dtype_is_float(d)) {
    s.f[0] = load_as<float>(p, 0, d, NO_VIA);
    s.d[0] = load_as<double>(p, 0, d, NO_VIA);
  } else {
    s.i[0] = load_as<int64_t>(p, 0, d, NO_VIA);
  }
  return s;
}

/* The op's functor run in ct. */
template <class X>
mt_status run_by_op(const X &exec, const plan &p, mti_op op, mt_dtype ct, const scalars &s) {
  unsigned zero_divisor = MTW_CUDA_FAULT(op, MTW_CUDA_FAULT_ZERO_DIVISOR);
  switch (op) {
  case MTI_OP_ADD:
  case MTI_OP_SUB:
  case MTI_OP_MUL:
  case MTI_OP_MAXIMUM:
  case MTI_OP_MINIMUM: return run_op(exec, p, op_arith{{}, op}, ct);
  case MTI_OP_DIV: return run_op(exec, p, op_div(), ct);
  case MTI_OP_POW: return run_op(exec, p, op_pow(), ct);
  case MTI_OP_EQ:
  case MTI_OP_NE:
  case MTI_OP_LT:
  case MTI_OP_LE:
  case MTI_OP_GT:
  case MTI_OP_GE: return run_op(exec, p, op_compare{{}, op}, ct);
  case MTI_OP_LOGICAL_AND:
  case MTI_OP_LOGICAL_OR:
  case MTI_OP_LOGICAL_XOR: return run_op(exec, p, op_logical{{}, op}, ct);
  case MTI_OP_LOGICAL_NOT: return run_op(exec, p, op_logical_not(), ct);
  case MTI_OP_ADD_SCALAR:
  case MTI_OP_MUL_SCALAR: return run_op(exec, p, op_scalar_arith{{}, op, s}, ct);
  case MTI_OP_POW_SCALAR: return run_op(exec, p, op_pow_scalar{{}, s}, ct);
  case MTI_OP_NEG:
  case MTI_OP_ABS:
  case MTI_OP_RELU:
  case MTI_OP_FLOOR:
  case MTI_OP_CEIL:
  case MTI_OP_ROUND:
  case MTI_OP_SIGN:
  case MTI_OP_TRUNC:
  case MTI_OP_SQUARE: return run_op(exec, p, op_unary{{}, op}, ct);
  case MTI_OP_EXP: return run_op(exec, p, op_exp(), ct);
  case MTI_OP_LOG: return run_op(exec, p, op_log(), ct);
  case MTI_OP_SQRT: return run_op(exec, p, op_sqrt(), ct);
  case MTI_OP_RSQRT: return run_op(exec, p, op_rsqrt(), ct);
  case MTI_OP_SIN: return run_op(exec, p, op_sin(), ct);
  case MTI_OP_COS: return run_op(exec, p, op_cos(), ct);
  case MTI_OP_TANH: return run_op(exec, p, op_tanh(), ct);
  case MTI_OP_SIGMOID: return run_op(exec, p, op_sigmoid(), ct);
  case MTI_OP_GELU: return run_op(exec, p, op_gelu(), ct);
  case MTI_OP_SILU: return run_op(exec, p, op_silu(), ct);
  case MTI_OP_RECIPROCAL: return run_op(exec, p, op_reciprocal(), ct);
  case MTI_OP_CLAMP: return run_op(exec, p, op_clamp{{}, s}, ct);
  /* ---- general elementwise (0.2) ---- */
  case MTI_OP_ERF: return run_op(exec, p, op_erf(), ct);
  case MTI_OP_ERFC: return run_op(exec, p, op_erfc(), ct);
  case MTI_OP_LOG1P: return run_op(exec, p, op_log1p(), ct);
  case MTI_OP_EXPM1: return run_op(exec, p, op_expm1(), ct);
  case MTI_OP_LOG2: return run_op(exec, p, op_log2(), ct);
  case MTI_OP_LOG10: return run_op(exec, p, op_log10(), ct);
  case MTI_OP_TAN: return run_op(exec, p, op_tan(), ct);
  case MTI_OP_ASIN: return run_op(exec, p, op_asin(), ct);
  case MTI_OP_ACOS: return run_op(exec, p, op_acos(), ct);
  case MTI_OP_ATAN: return run_op(exec, p, op_atan(), ct);
  case MTI_OP_SINH: return run_op(exec, p, op_sinh(), ct);
  case MTI_OP_COSH: return run_op(exec, p, op_cosh(), ct);
  case MTI_OP_ASINH: return run_op(exec, p, op_asinh(), ct);
  case MTI_OP_ACOSH: return run_op(exec, p, op_acosh(), ct);
  case MTI_OP_ATANH: return run_op(exec, p, op_atanh(), ct);
  case MTI_OP_SOFTPLUS: return run_op(exec, p, op_softplus(), ct);
  case MTI_OP_GELU_TANH: return run_op(exec, p, op_gelu_tanh(), ct);
  case MTI_OP_MISH: return run_op(exec, p, op_mish(), ct);
  case MTI_OP_BITWISE_NOT: return run_op(exec, p, op_bitwise_not(), ct);
  case MTI_OP_BITWISE_AND:
  case MTI_OP_BITWISE_OR:
  case MTI_OP_BITWISE_XOR: return run_op(exec, p, op_bitwise{{}, op}, ct);
  case MTI_OP_ISNAN:
  case MTI_OP_ISINF:
  case MTI_OP_ISFINITE: return run_op(exec, p, op_predicate{{}, op}, ct);
  case MTI_OP_ATAN2: return run_op(exec, p, op_atan2(), ct);
  case MTI_OP_REMAINDER:
  case MTI_OP_FMOD:
  case MTI_OP_FLOOR_DIVIDE:
    return run_op(exec, p, op_division{{}, op, exec.fault_word(), zero_divisor}, ct);
  case MTI_OP_LEAKY_RELU:
  case MTI_OP_ELU:
  case MTI_OP_NAN_TO_NUM: return run_op(exec, p, op_unary_param{{}, op, s}, ct);
  case MTI_OP_MASKED_FILL:
    return run_op(exec, p, op_masked_fill{{}, masked_fill_scalars(p.v[0].dtype, s.d[0])}, ct);
  default: return mti_error(MT_ERR_INTERNAL, "%s: cuda: not an elementwise op", p.fn);
  }
}

/* where: a bit select when the condition is bool and both values already
 * have out's dtype, all contiguous and aligned; else the converting
 * strided path. */
template <class X, class B> mt_status run_where_bits(const X &exec, const plan &p) {
  bool aligned = (uintptr_t)p.v[1].data % vector_len<B> == 0;
  for (int k = 0; k < 4; k++)
    if (k != 1) aligned = aligned && (uintptr_t)p.v[k].data % 16 == 0;
  if (!aligned) return run_op(exec, p, op_where(), mti_compute_dtype(p.v[0].dtype));
  exec.template where_bits<B>(contig_args_of(p));
  return exec.done(p.fn);
}

template <class X> mt_status run_where(const X &exec, const plan &p) {
  mt_dtype d = p.v[0].dtype;
  bool bits = layout_contiguous(p.l) && p.v[1].dtype == MT_BOOL && p.v[2].dtype == d &&
              p.v[3].dtype == d;
  if (!bits) return run_op(exec, p, op_where(), mti_compute_dtype(d));
  switch (mt_dtype_size(d)) {
  case 1: return run_where_bits<X, uint8_t>(exec, p);
  case 2: return run_where_bits<X, uint16_t>(exec, p);
  case 4: return run_where_bits<X, uint32_t>(exec, p);
  default: return run_where_bits<X, uint64_t>(exec, p);
  }
}

/* The compute dtype of op (the cpu driver's choice) and the via dtypes of
 * the inputs of two-input arithmetic and comparisons. */
template <class X>
mt_status run_computed(const X &exec, plan *p, mti_op op, mti_op_kind kind, const mti_attrs *at) {
  mt_dtype ct = mti_compute_dtype(p->v[0].dtype);
  if (kind == MTI_KIND_COMPARE) ct = mti_compute_dtype(mti_promote(p->v[1].dtype, p->v[2].dtype));
  if (kind == MTI_KIND_LOGICAL) ct = MT_BOOL;
  if (kind == MTI_KIND_PREDICATE) ct = mti_compute_dtype(p->v[1].dtype);
  if (kind == MTI_KIND_BINARY || kind == MTI_KIND_COMPARE || kind == MTI_KIND_BINARY_FLOAT ||
      kind == MTI_KIND_DIVISION) {
    mt_dtype common = mti_promote(p->v[1].dtype, p->v[2].dtype);
    for (int k = 1; k <= 2; k++)
      if (common != ct && mti_dtype_is_float(common) && p->v[k].dtype != common)
        p->via[k] = common;
  }
  if (kind == MTI_KIND_WHERE) return run_where(exec, *p);
  return run_by_op(exec, *p, op, ct, scalars_for(op, ct, at));
}

/* mtw_cuda_elementwise on executor exec. */
template <class X>
mt_status elementwise(const X &exec, mti_op op, const mti_view *in, int n, const mti_attrs *at,
                      const mti_view *out) {
  char fn[48];
  op_fn(op, fn, sizeof fn);
  const mti_op_info *info = mti_op_get((int)op);
  if (!info || n < 0 || n > MAX_OPERANDS - 1)
    return mti_error(MT_ERR_INTERNAL, "%s: cuda: not an elementwise op", fn);
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  /* Kinds that need no computed kernel; the others fall through to one. */
  mti_op_kind kind = info->kind;
  if (kind == MTI_KIND_FILL) return fill(exec, fn, *out, at->s0);
  if (kind == MTI_KIND_ARANGE) return arange(exec, fn, *out, at->s0, at->s1);
  if (kind == MTI_KIND_COPY && views_overlap(in[0], *out))
    return copy_staged(exec, fn, in[0], *out);
  mt_dtype ct = mti_compute_dtype(out->dtype);
  if (kind == MTI_KIND_COPY || kind == MTI_KIND_CAST ||
      (kind == MTI_KIND_UNARY && mti_unary_is_identity(op, ct)) ||
      (kind == MTI_KIND_UNARY_PARAM && !mti_dtype_is_float(ct)))
    return convert_views(exec, fn, in[0], *out);
  /* Integers and bool are never NaN or inf. */
  if (kind == MTI_KIND_PREDICATE && !mti_dtype_is_float(in[0].dtype))
    return fill(exec, fn, *out, op == MTI_OP_ISFINITE);
  plan p;
  plan_init(&p, fn, in, n, out);
  return run_computed(exec, &p, op, info->kind, at);
}

} /* namespace ew */
} /* namespace mtw */

/* FILL, ARANGE, COPY, BINARY, COMPARE, LOGICAL, SCALAR, UNARY, UNARY_FLOAT,
 * WHERE, CLAMP, CAST and the general elementwise kinds of 0.2 (BITWISE,
 * PREDICATE, BINARY_FLOAT, DIVISION, UNARY_PARAM, MASKED_FILL), as
 * mti_cpu_run computes them. */
extern "C" mt_status mtw_cuda_elementwise(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                          int n, const mti_attrs *at, const mti_view *out) {
  return mtw::ew::elementwise(mtw::ew::gpu_exec{ctx}, op, in, n, at, out);
}
