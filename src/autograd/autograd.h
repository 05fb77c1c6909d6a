/*
 * autograd.h - reverse-mode differentiation on the client (internal).
 *
 * A tensor that requires grad carries a node of the tape (t->grad_fn): a
 * leaf's own accumulator, or the op that made it. The api/ layer calls the
 * hooks below; mt_backward walks the nodes and emits ordinary ops through
 * the rules of src/autograd/rules_*.c, so a backward runs wherever the
 * forward ran (on a modal device, into the same lazy graph).
 */
#ifndef MTI_AUTOGRAD_H
#define MTI_AUTOGRAD_H

#include "api/tensor_impl.h"

/* 1 when grad mode is on in this thread and some input requires grad: the
 * caller then records its result with one of the functions below. */
int mti_ag_wanted(int n, const mt_tensor *const *in);

/* Records op's node for outs[0] (the differentiable output), keeping the
 * inputs and outputs the op's GRAD column names. */
mt_status mti_ag_record_op(mti_op op, int n, const mt_tensor *const *in, const mti_attrs *at,
                           mt_tensor *const *outs);

/* How a view (or a move) was made from its input: what its backward undoes. */
typedef enum mti_ag_view_kind {
  MTI_AG_RESHAPE, /* reshape, squeeze, unsqueeze: the gradient is reshaped back */
  MTI_AG_PERMUTE, /* permute, transpose: dims[] is the forward permutation */
  MTI_AG_SLICE,   /* slice: dim, start, step; the gradient goes into zeros */
  MTI_AG_EXPAND,  /* expand: the gradient is summed back to the input's shape */
  MTI_AG_MOVE     /* mt_to, contiguous, clone: back to the input's device and dtype */
} mti_ag_view_kind;

typedef struct mti_ag_view {
  mti_ag_view_kind kind;
  int dim;
  int64_t start, step;
  int dims[MT_MAX_DIMS];
} mti_ag_view;

/* Records out as made from in by a view or move (out has no node yet). */
mt_status mti_ag_record_view(const char *fn, const mt_tensor *in, mt_tensor *out,
                             const mti_ag_view *how);

/* Gives out in's node: out is another handle on the same values (mt_to
 * without a copy), the same leaf or the same result. */
void mti_ag_share(const mt_tensor *in, mt_tensor *out);

/* Checks that fn may write src into dst in place under grad mode: a dst
 * or a src that requires grad is refused (the write would be invisible to
 * the backward). */
mt_status mti_ag_check_write(const char *fn, const mt_tensor *dst, const mt_tensor *src);

/* 1 when no recorded op made t (it requires no grad, or is a marked leaf). */
int mti_ag_is_leaf(const mt_tensor *t);

/* Drops t's reference to its node (mt_tensor_free). */
void mti_ag_release(mt_tensor *t);

#endif
