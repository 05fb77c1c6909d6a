/*
 * rules.h - what a backward rule sees (internal to src/autograd).
 *
 * A rule is named in its op's GRAD column of core/ops.def,
 * GRAD(name, SAVES), and written as
 *     mt_status grad_<name>(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin)
 * g is the gradient of the op's out0 (its shape and dtype). For each input
 * i with mti_grad_needed(c, i), the rule sets gin[i] to the gradient of that
 * input, or leaves it NULL for a zero gradient. It may return a gradient in
 * out0's broadcast shape and in any floating dtype: the engine sums it back
 * over broadcast dims and casts it to the input's shape and dtype.
 *
 * Rules are written with the library's own ops (mt_mul, mt_sum, ...), so
 * they run on every device; grad mode is off while they run. Every tensor a
 * rule makes goes through T(...) (mti_grad_tmp), which frees it when the
 * rule returns (the engine keeps the ones in gin) and remembers the first
 * failure, so a chain of calls needs one check at the end: return
 * mti_grad_status(c).
 */
#ifndef MTI_AUTOGRAD_RULES_H
#define MTI_AUTOGRAD_RULES_H

#include "api/tensor_impl.h"

typedef struct mti_grad_ctx {
  mti_op op;
  const mti_attrs *at;
  int n;                         /* inputs */
  struct mti_ag_node *const *next; /* n entries: input i's node, NULL when it wants no gradient */
  const mti_meta *in_meta;       /* n entries (absent optional inputs: ndim -1) */
  mt_tensor *const *in;          /* n entries: saved inputs (S_INi), else NULL */
  mt_tensor *const *out;         /* MTI_MAX_OUTPUTS: saved outputs (S_OUTk), else NULL */
  const mti_meta *out_meta;      /* the op's outputs */
  mt_device device;
  /* scratch of the engine */
  mt_tensor **tmp; /* what the rule made (grows as it goes) */
  int ntmp, cap;
  mt_status status;
  char error[512];
} mti_grad_ctx;

typedef mt_status mti_grad_rule(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin);

static inline int mti_grad_needed(const mti_grad_ctx *c, int i) { return c->next[i] != NULL; }

/* Registers t (a result of an op in the rule) to be freed when the rule
 * returns; on NULL keeps the first error. Returns t. */
mt_tensor *mti_grad_tmp(mti_grad_ctx *c, mt_tensor *t);
#define T(expr) mti_grad_tmp(c, (expr))

/* MT_OK, or the first failure of the rule's calls (its message restored). */
mt_status mti_grad_status(mti_grad_ctx *c);

/* Zeros of meta's shape and dtype on the rule's device (registered). */
mt_tensor *mti_grad_zeros(mti_grad_ctx *c, const mti_meta *m);

/* A scalar of dtype on the rule's device, 0-d (registered). */
mt_tensor *mti_grad_scalar(mti_grad_ctx *c, double value, mt_dtype dtype);

/* g (a reduction's result over dims_mask of in, kept or not) expanded back
 * to in's shape (a view; registered). */
mt_tensor *mti_grad_unreduce(mti_grad_ctx *c, const mt_tensor *g, const mti_meta *in,
                             uint32_t dims_mask, int keepdim);

/* Runs op on inputs with attrs (an op with no public function; registered). */
mt_tensor *mti_grad_run(mti_grad_ctx *c, mti_op op, int n, const mt_tensor *const *in,
                        const mti_attrs *at);

/* Runs op on inputs with attrs as mti_grad_run, all nout outputs into outs
 * (each registered); MT_OK or the failure (outs then NULL). */
mt_status mti_grad_run_multi(mti_grad_ctx *c, mti_op op, int n, const mt_tensor *const *in,
                             const mti_attrs *at, mt_tensor **outs);

/* layer_norm's or rms_norm's gradients (op: LAYER_NORM_BACKWARD or
 * RMS_NORM_BACKWARD) by their fused node (rules_nn.c). */
mt_status mti_grad_row_norm(mti_grad_ctx *c, mti_op op, const mt_tensor *g, mt_tensor **gin);

/* The rules, one per GRAD(name, ...) of core/ops.def. */
#define NOGRAD
#define GRAD(rule, saves) mti_grad_rule grad_##rule;
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, G) G
#include "core/ops.def"
#undef MT_OP
#undef GRAD
#undef NOGRAD

#endif
