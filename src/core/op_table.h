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
#define MT_OP(NAME, name, KIND, ARITY) MTI_OP_##NAME,
#include "ops.def"
#undef MT_OP
  MTI_OP_COUNT
} mti_op;

typedef enum mti_op_kind {
  MTI_KIND_FILL,         /* out = value                                 */
  MTI_KIND_ARANGE,       /* out[i] = start + i * step                   */
  MTI_KIND_RANDOM,       /* Philox stream from seed                     */
  MTI_KIND_COPY,         /* out = convert(broadcast(in0))               */
  MTI_KIND_BINARY,       /* arithmetic in the promoted dtype            */
  MTI_KIND_COMPARE,      /* bool result, computed in the promoted dtype */
  MTI_KIND_LOGICAL,      /* bool result from bool inputs (1 or 2)       */
  MTI_KIND_SCALAR,       /* in0 op scalar s0                            */
  MTI_KIND_UNARY,        /* keeps the dtype                             */
  MTI_KIND_UNARY_FLOAT,  /* floating result                             */
  MTI_KIND_WHERE,        /* in0 ? in1 : in2                             */
  MTI_KIND_CLAMP,        /* clamp(in0, s0, s1)                          */
  MTI_KIND_CAST,         /* out dtype = attrs.dtype                     */
  MTI_KIND_REDUCE,       /* over attrs.dims_mask                        */
  MTI_KIND_ARGREDUCE,    /* over attrs.dim                              */
  MTI_KIND_SOFTMAX,      /* along attrs.dim                             */
  MTI_KIND_LAYER_NORM,   /* over the last dim; eps = s0                 */
  MTI_KIND_MATMUL,
  MTI_KIND_CAT,          /* along attrs.dim                             */
  MTI_KIND_INDEX_SELECT  /* in0 along attrs.dim by in1                  */
} mti_op_kind;

/* Flags in mti_attrs.flags */
enum {
  MTI_FLAG_KEEPDIM = 1u << 0,     /* reductions keep reduced dims           */
  MTI_FLAG_HAS_WEIGHT = 1u << 1,  /* layer_norm: in[1] is present          */
  MTI_FLAG_HAS_BIAS = 1u << 2,    /* layer_norm: in[2] is present          */
  MTI_FLAG_TF32 = 1u << 3         /* matmul: float32 may use TF32 (GPU)    */
};

/* Inputs of an op beyond its tensors. Dims are already normalised to
 * 0..ndim-1 (mti_infer checks them again: wire input is not trusted). */
typedef struct mti_attrs {
  double s0, s1;       /* scalar; clamp lo/hi; fill value; arange start/step; eps */
  uint64_t seed;       /* rand/randn */
  uint32_t dims_mask;  /* reductions: bit d set = dim d reduced            */
  int32_t dim;         /* argreduce, softmax, cat, index_select            */
  int32_t dtype;       /* output dtype of fill/arange/random/copy/cast     */
  uint32_t flags;      /* MTI_FLAG_*                                       */
} mti_attrs;

/* What an op needs to know of a tensor to infer its output: no data. */
typedef struct mti_meta {
  mt_dtype dtype;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
} mti_meta;

typedef struct mti_op_info {
  const char *name;   /* "add" */
  mti_op_kind kind;
  int arity;          /* -1: variable (at least 1) */
} mti_op_info;

/* Static description of op; NULL when op is out of range. */
const mti_op_info *mti_op_get(int op);

/* Decides the output dtype and shape of `op` applied to n inputs with
 * attributes at, for creation ops the output shape comes in *out (ndim and
 * shape) and is only checked. Validates everything (arity, dtypes, dims,
 * shapes, attribute ranges). On failure sets the thread's error, naming
 * "mt_<name>", and returns its status. */
mt_status mti_infer(mti_op op, int n, const mti_meta *in, const mti_attrs *at, mti_meta *out);

/* FNV-1a hash over the number, name, kind and arity of the first count ops
 * (count is clamped to MTI_OP_COUNT). Ops are only appended, so a peer with
 * count ops is compatible when the hashes of that prefix agree. */
uint64_t mti_op_table_hash(int count);

#endif
