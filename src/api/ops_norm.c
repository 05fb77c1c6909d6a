/*
 * ops_norm.c - the public functions of the normalisations and losses:
 * rms_norm, group_norm, batch_norm, cross_entropy.
 *
 * Their nodes keep the statistics the backward needs as extra outputs
 * (ops.def's rows say which); the public functions return the main result
 * and free the rest. batch_norm's node is pure: the running stats are
 * updated here, with the library's own ops and mt_copy_, so the update runs
 * wherever x lives (recorded into the lazy graph on a modal device).
 */
#include <math.h>

#include "api/tensor_impl.h"
#include "core/dtype.h"
#include "core/error.h"

/* Runs op and keeps output 0, freeing the others. */
static mt_tensor *first_output(mti_op op, int n, const mt_tensor *const *in,
                               const char *const *names, const mti_attrs *at) {
  mt_tensor *outs[MTI_MAX_OUTPUTS];
  const mti_op_info *info = mti_op_get((int)op);
  if (mti_run_op_multi(op, n, in, names, at, outs)) return NULL;
  for (int k = 1; k < info->nout; k++) mt_tensor_free(outs[k]);
  return outs[0];
}

mt_tensor *mt_rms_norm(const mt_tensor *a, const mt_tensor *weight, double eps) {
  static const char *const names[] = {"a", "weight"};
  const mt_tensor *in[2] = {a, weight};
  mti_attrs at = {0};
  at.s0 = eps;
  return mti_run_op(MTI_OP_RMS_NORM, 2, in, names, &at);
}

mt_tensor *mt_group_norm(const mt_tensor *a, int64_t groups, const mt_tensor *weight,
                         const mt_tensor *bias, double eps) {
  static const char *const names[] = {"a", "weight", "bias"};
  const mt_tensor *in[3] = {a, weight, bias};
  mti_attrs at = {0};
  at.s0 = eps;
  at.n_ints = 1;
  at.ints[0] = groups;
  return first_output(MTI_OP_GROUP_NORM, 3, in, names, &at);
}

mt_tensor *mt_cross_entropy(const mt_tensor *logits, const mt_tensor *target, int64_t ignore_index,
                            double label_smoothing) {
  static const char *const names[] = {"logits", "target"};
  const mt_tensor *in[2] = {logits, target};
  mti_attrs at = {0};
  at.s0 = label_smoothing;
  at.n_ints = 1;
  at.ints[0] = ignore_index;
  return first_output(MTI_OP_CROSS_ENTROPY, 2, in, names, &at);
}

/* ---- batch_norm ---- */

/* A running stat that training will update: on x's device, floating, 1-D
 * of x's channels (checked before the op runs, so that a bad one leaves
 * nothing half done). */
static mt_status check_running(const char *fn, const char *name, const mt_tensor *r,
                               const mt_tensor *x) {
  if (!mti_device_equal(r->device, x->device) ||
      mti_tensor_is_remote(r) != mti_tensor_is_remote(x)) {
    char a[48], b[48];
    return mti_error(MT_ERR_DEVICE, "%s: %s is on %s, x is on %s", fn, name,
                     mti_device_str(a, sizeof a, r->device), mti_device_str(b, sizeof b, x->device));
  }
  if (!mti_dtype_is_float(r->dtype))
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected a floating dtype", fn, name,
                     mt_dtype_name(r->dtype));
  if (r->ndim != 1 || x->ndim < 2 || r->shape[0] != x->shape[1])
    return mti_error(MT_ERR_SHAPE, "%s: %s: must be 1-d of size %lld (the channels of x)", fn,
                     name, x->ndim >= 2 ? (long long)x->shape[1] : -1LL);
  return MT_OK;
}

/* running = (1 - momentum) * running + momentum * stat * factor */
static mt_tensor *running_update(const mt_tensor *running, const mt_tensor *stat, double factor,
                                 double momentum) {
  mt_tensor *kept = mt_mul_scalar(running, 1.0 - momentum);
  mt_tensor *added = mt_mul_scalar(stat, momentum * factor);
  mt_tensor *sum = kept && added ? mt_add(kept, added) : NULL;
  mt_tensor_free(kept);
  mt_tensor_free(added);
  return sum;
}

/* The training update of both running stats from the batch mean and
 * biased var of x (unbiased for the running var). */
static mt_status update_running(mt_tensor *running_mean, mt_tensor *running_var,
                                const mt_tensor *x, const mt_tensor *mean, const mt_tensor *var,
                                double momentum) {
  int64_t n = mt_numel(x) / x->shape[1];
  mt_tensor *new_mean = running_update(running_mean, mean, 1.0, momentum);
  mt_tensor *new_var = new_mean ? running_update(running_var, var, (double)n / (double)(n - 1),
                                                 momentum)
                                : NULL;
  mt_status s = new_mean && new_var ? MT_OK : mt_last_status();
  if (!s) s = mt_copy_(running_mean, new_mean);
  if (!s) s = mt_copy_(running_var, new_var);
  mt_tensor_free(new_mean);
  mt_tensor_free(new_var);
  return s;
}

mt_tensor *mt_batch_norm(const mt_tensor *x, mt_tensor *running_mean, mt_tensor *running_var,
                         const mt_tensor *weight, const mt_tensor *bias, int training,
                         double momentum, double eps) {
  const char *fn = "mt_batch_norm";
  static const char *const names[] = {"x", "running_mean", "running_var", "weight", "bias"};
  if (mti_check_tensor(fn, "x", x)) return NULL;
  if (!running_mean != !running_var) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: running_mean, running_var: give both or neither", fn);
    return NULL;
  }
  if (!training && !running_mean) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: running_mean, running_var: required when not "
              "training (eval mode normalises with them)", fn);
    return NULL;
  }
  int update = training && running_mean;
  if (update) {
    if (!isfinite(momentum)) {
      mti_error(MT_ERR_INVALID_ARGUMENT, "%s: momentum: %g is not finite", fn, momentum);
      return NULL;
    }
    if (check_running(fn, "running_mean", running_mean, x) ||
        check_running(fn, "running_var", running_var, x))
      return NULL;
  }
  /* training: the node computes batch stats and gets no running ones */
  const mt_tensor *in[5] = {x, training ? NULL : running_mean, training ? NULL : running_var,
                            weight, bias};
  mti_attrs at = {0};
  at.s0 = eps;
  mt_tensor *outs[3];
  if (mti_run_op_multi(MTI_OP_BATCH_NORM, 5, in, names, &at, outs)) return NULL;
  mt_status s = update ? update_running(running_mean, running_var, x, outs[1], outs[2], momentum)
                       : MT_OK;
  mt_tensor_free(outs[1]);
  mt_tensor_free(outs[2]);
  if (s) {
    mt_tensor_free(outs[0]);
    return NULL;
  }
  return outs[0];
}
