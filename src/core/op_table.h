/*
 * op_table.h - operations, their attributes, and shape/dtype inference.
 *
 * Shared by the in-process path, the remote client (which records nodes) and
 * the worker (which validates nodes from the wire): all of them decide an
 * op's output with mti_infer(), so the rules exist once.
 */
#ifndef MTI_OP_TABLE_H
#define MTI_OP_TABLE_H

#include <stdint.h>

#include "modaltensor.h"

typedef enum mti_op {
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, GRAD) MTI_OP_##NAME,
#include "ops.def"
#undef MT_OP
  MTI_OP_COUNT
} mti_op;

typedef enum mti_op_kind {
#define MT_KIND(NAME, doc) MTI_KIND_##NAME,
#include "kinds.def"
#undef MT_KIND
} mti_op_kind;

/* Number of kinds (not an enumerator, so that switches need not name it). */
enum {
  MTI_KIND_COUNT = 0
#define MT_KIND(NAME, doc) +1
#include "kinds.def"
#undef MT_KIND
};

/* Most outputs an op has (ops.def's NOUT). */
#define MTI_MAX_OUTPUTS 4
/* Most inputs an op with a fixed arity has. */
#define MTI_MAX_FIXED_INPUTS 8
/* Length of the integer-list attribute (pads, shifts, repeats, k, ...). */
#define MTI_MAX_INT_ATTRS 16

/* Flags in mti_attrs.flags */
enum {
  MTI_FLAG_KEEPDIM = 1u << 0,     /* reductions keep reduced dims           */
  MTI_FLAG_TF32 = 1u << 1,        /* matmul: float32 may use TF32 (GPU)    */
  MTI_FLAG_DESCENDING = 1u << 2,  /* sort, argsort: descending; topk: largest */
  MTI_FLAG_REPLACEMENT = 1u << 5, /* multinomial: draw with replacement     */
  MTI_FLAG_PAD_REFLECT = 1u << 6, /* pad: reflect (neither flag: constant)  */
  MTI_FLAG_PAD_REPLICATE = 1u << 7, /* pad: replicate the edge              */
  MTI_FLAG_CAUSAL = 1u << 8,      /* attention: query i sees keys j <= i   */
  MTI_FLAG_PRESENT_SHIFT = 16     /* MTI_FLAG_PRESENT(i): optional input i is given */
};
#define MTI_FLAG_PRESENT(i) (1u << (MTI_FLAG_PRESENT_SHIFT + (i)))
#define MTI_FLAG_HAS_WEIGHT MTI_FLAG_PRESENT(1) /* layer_norm: in[1] is present */
#define MTI_FLAG_HAS_BIAS MTI_FLAG_PRESENT(2)   /* layer_norm: in[2] is present */

/* The slots of mti_attrs an op may use (its ops.def ATTRS schema): one bit
 * per slot, and the flags it accepts shifted by MTI_ATTR_FLAG_SHIFT. */
enum {
  MTI_ATTR_S0 = 1u << 0,
  MTI_ATTR_S1 = 1u << 1,
  MTI_ATTR_S2 = 1u << 2,
  MTI_ATTR_SEED = 1u << 3,
  MTI_ATTR_DIMS = 1u << 4,
  MTI_ATTR_DIM = 1u << 5,
  MTI_ATTR_DTYPE = 1u << 6,
  MTI_ATTR_INTS = 1u << 7,
  MTI_ATTR_FLAG_SHIFT = 8
};

/* Inputs of an op beyond its tensors: a fixed set of typed slots, which
 * the op's schema names. Dims are already normalised to 0..ndim-1 (mti_infer
 * checks them again: wire input is not trusted). */
typedef struct mti_attrs {
  double s0, s1, s2;   /* scalars: fill value; arange start/step; clamp lo/hi; eps; ... */
  uint64_t seed;       /* random ops */
  uint32_t dims_mask;  /* bit d set = dim d (reductions, flip)             */
  int32_t dim;         /* one dim: argreduce, softmax, cat, index_select   */
  int32_t dtype;       /* output dtype of fill/arange/random/copy/cast     */
  uint32_t flags;      /* MTI_FLAG_*                                       */
  int32_t n_ints;      /* used length of ints                              */
  int64_t ints[MTI_MAX_INT_ATTRS]; /* integer list: pads, shifts, repeats, k */
} mti_attrs;

/* What an op needs to know of a tensor to infer its output: no data. */
typedef struct mti_meta {
  mt_dtype dtype;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
} mti_meta;

typedef struct mti_op_info {
  const char *name;   /* "add" */
  const char *fn;     /* "mt_add": messages name the public function */
  mti_op_kind kind;
  int arity;          /* -1: variable (at least 1) */
  int nout;           /* outputs, 1..MTI_MAX_OUTPUTS */
  uint32_t optional;  /* bit i: input i may be absent */
  uint32_t attrs;     /* schema: MTI_ATTR_* slots | flags << MTI_ATTR_FLAG_SHIFT */
} mti_op_info;

/* Static description of op; NULL when op is out of range. */
const mti_op_info *mti_op_get(int op);

/* "REDUCE" for MTI_KIND_REDUCE; "?" out of range. */
const char *mti_kind_name(mti_op_kind kind);

/* 1 when input i of op may be absent (ops.def's OPTIONAL; inputs past the
 * mask's 32 bits, of variable-arity ops, never are). */
static inline int mti_input_optional(const mti_op_info *info, int i) {
  return i < 32 && (info->optional >> i & 1u);
}

/* 1 when input i of op is given: a required input, or an optional one whose
 * MTI_FLAG_PRESENT(i) is set. Absent inputs carry no meta and no data. */
static inline int mti_input_present(const mti_op_info *info, const mti_attrs *at, int i) {
  return !mti_input_optional(info, i) || (at->flags & MTI_FLAG_PRESENT(i)) != 0;
}

/* Decides the dtype and shape of each of op's outputs (out holds the op's
 * nout entries) for n inputs with attributes at; for creation ops the
 * output shape comes in out[0] (ndim and shape) and is only checked.
 * Validates everything (arity, dtypes, dims, shapes, attribute ranges). On
 * failure sets the thread's error, naming "mt_<name>", and returns its
 * status. */
mt_status mti_infer(mti_op op, int n, const mti_meta *in, const mti_attrs *at, mti_meta *out);

/* Checks that at uses only the slots and flags of op's schema (unused
 * slots zero, n_ints in range): for attributes from the wire. Sets the
 * error naming "mt_<name>" and the slot. */
mt_status mti_attrs_check(mti_op op, const mti_attrs *at);

/* The elements a node of op touches, as the worker's work limit counts
 * them: every element of every input view (a broadcast view counts all
 * it reaches) and output, plus for a contraction (matmul) its
 * multiply-adds. Kinds whose work grows faster than their operands add
 * their rule here. Saturates at UINT64_MAX; in and out are as mti_infer's
 * (n inputs, the op's nout outputs). */
uint64_t mti_op_work(mti_op op, int n, const mti_meta *in, const mti_meta *out);

/* mti_op_work plus the rules that need the node's attributes: a pool
 * (POOL2D) counts its output times its kernel (ints[0] x ints[1]). The
 * worker's work limit counts this one. */
uint64_t mti_op_work_attrs(mti_op op, int n, const mti_meta *in, const mti_attrs *at,
                           const mti_meta *out);

/* FNV-1a hash over the number, name, kind, arity, outputs, optional inputs
 * and attribute schema of the first count ops
 * (count is clamped to MTI_OP_COUNT). Ops are only appended, so a peer with
 * count ops is compatible when the hashes of that prefix agree. */
uint64_t mti_op_table_hash(int count);

#endif
