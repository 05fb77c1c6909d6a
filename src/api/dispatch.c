/*
 * dispatch.c - checks an op's tensor arguments, infers its output and runs
 * it where its inputs live.
 *
 * An op runs where its inputs live: on host memory through the cpu backend
 * (cpu tensors, and modal tensors made while remote execution was off), or
 * recorded into the pending graph of the inputs' worker session.
 */
#include <stdlib.h>

#include "api/tensor_impl.h"
#include "autograd/autograd.h"
#include "core/error.h"
#include "cpu/cpu_backend.h"

/* Inputs of ops with up to this many tensors need no heap scratch. */
#define MTI_INLINE_INPUTS 4

typedef struct op_scratch {
  mti_meta meta_inline[MTI_INLINE_INPUTS];
  mti_view view_inline[MTI_INLINE_INPUTS];
  mti_meta *metas;
  mti_view *views;
} op_scratch;

static mt_status scratch_init(const char *fn, op_scratch *s, int n) {
  s->metas = s->meta_inline;
  s->views = s->view_inline;
  if (n <= MTI_INLINE_INPUTS) return MT_OK;
  s->metas = malloc(sizeof(mti_meta) * (size_t)n);
  s->views = malloc(sizeof(mti_view) * (size_t)n);
  if (!s->metas || !s->views) {
    free(s->metas);
    free(s->views);
    return mti_error_oom(fn, (sizeof(mti_meta) + sizeof(mti_view)) * (size_t)n);
  }
  return MT_OK;
}

static void scratch_free(op_scratch *s) {
  if (s->metas != s->meta_inline) free(s->metas);
  if (s->views != s->view_inline) free(s->views);
}

/* Present inputs are non-NULL and share one device, which goes to *device.
 * A NULL optional input is absent: its MTI_FLAG_PRESENT bit stays clear. */
static mt_status check_inputs(const mti_op_info *info, int n, const mt_tensor *const *in,
                              const char *const *names, uint32_t *present, mt_device *device,
                              int *remote) {
  const char *fn = info->fn;
  int first = -1;
  for (int i = 0; i < n; i++) {
    if (mti_input_optional(info, i) && !in[i]) continue;
    mt_status s = mti_check_tensor(fn, names[i], in[i]);
    if (s) return s;
    if (mti_input_optional(info, i)) *present |= MTI_FLAG_PRESENT(i);
    if (first < 0) {
      first = i;
      continue;
    }
    if (!mti_device_equal(in[i]->device, in[first]->device)) {
      char a[48], b[48];
      return mti_error(MT_ERR_DEVICE, "%s: %s is on %s, %s is on %s", fn, names[first],
                       mti_device_str(a, sizeof a, in[first]->device), names[i],
                       mti_device_str(b, sizeof b, in[i]->device));
    }
    if (mti_tensor_is_remote(in[i]) != mti_tensor_is_remote(in[first])) {
      const char *here = mti_tensor_is_remote(in[i]) ? names[first] : names[i];
      const char *there = mti_tensor_is_remote(in[i]) ? names[i] : names[first];
      return mti_error(MT_ERR_DEVICE,
                       "%s: %s lives in-process (made while remote execution was off) and %s "
                       "on a worker; move one with mt_to", fn, here, there);
    }
  }
  *device = in[first]->device;
  *remote = mti_tensor_is_remote(in[first]);
  return MT_OK;
}

/* Frees outs[0..nout) and sets them to NULL. */
static void free_outputs(int nout, mt_tensor **outs) {
  for (int k = 0; k < nout; k++) {
    mt_tensor_free(outs[k]);
    outs[k] = NULL;
  }
}

/* Wraps the op's recorded buffers (taking them) into tensors; on failure
 * releases the rest and frees what was made. */
static mt_status wrap_remote(const char *fn, int nout, mti_remote_buffer **bufs,
                             const mti_meta *metas, mt_device device, mt_tensor **outs) {
  mt_status st = MT_OK;
  for (int k = 0; k < nout; k++) {
    outs[k] = NULL;
    if (st) {
      mti_remote_release(bufs[k]);
      continue;
    }
    const mti_meta *m = &metas[k];
    size_t nbytes = (size_t)mti_shape_numel(m->ndim, m->shape) * mt_dtype_size(m->dtype);
    mti_storage *s = mti_storage_remote(fn, bufs[k], nbytes); /* releases b on failure */
    if (!s || !(outs[k] = mti_tensor_wrap(fn, s, m, device))) st = mt_last_status();
  }
  if (st) free_outputs(nout, outs);
  return st;
}

/* Records op on remote inputs, making its nout output tensors. */
static mt_status record(const mti_op_info *info, mti_op op, int n, const mt_tensor *const *in,
                        const mti_attrs *at, const mti_meta *metas, mt_device device,
                        mt_tensor **outs) {
  const char *fn = info->fn;
  mti_remote_view inline_views[MTI_INLINE_INPUTS];
  mti_remote_view *views = inline_views;
  if (n > MTI_INLINE_INPUTS && !(views = malloc(sizeof *views * (size_t)n)))
    return mti_error_oom(fn, sizeof *views * (size_t)n);
  for (int i = 0; i < n; i++) {
    if (in[i]) views[i] = mti_tensor_remote_view(in[i]);
    else views[i].buf = NULL, views[i].ndim = 0, views[i].offset = 0;
  }
  mti_remote_buffer *bufs[MTI_MAX_OUTPUTS];
  mt_status st = mti_remote_record(fn, device.index, op, n, views, at, metas, bufs);
  if (views != inline_views) free(views);
  return st ? st : wrap_remote(fn, info->nout, bufs, metas, device, outs);
}

/* Runs op on host inputs with the cpu backend, making its output tensors. */
static mt_status run_host(const mti_op_info *info, mti_op op, int n, const mti_view *views,
                          const mti_attrs *at, const mti_meta *metas, mt_device device,
                          mt_tensor **outs) {
  mti_view ov[MTI_MAX_OUTPUTS];
  for (int k = 0; k < info->nout; k++) {
    if (!(outs[k] = mti_tensor_new(info->fn, &metas[k], device))) {
      free_outputs(k, outs);
      return mt_last_status();
    }
    ov[k] = mti_tensor_host_view(outs[k]);
  }
  mt_status st = mti_cpu_run(op, views, n, at, ov);
  if (st) free_outputs(info->nout, outs);
  return st;
}

mt_status mti_run_op_multi(mti_op op, int n, const mt_tensor *const *in,
                           const char *const *names, const mti_attrs *at_in, mt_tensor **outs) {
  const mti_op_info *info = mti_op_get((int)op);
  for (int k = 0; k < info->nout; k++) outs[k] = NULL;
  mt_device device;
  int remote = 0;
  uint32_t present = 0;
  op_scratch sc;
  if (check_inputs(info, n, in, names, &present, &device, &remote) ||
      scratch_init(info->fn, &sc, n))
    return mt_last_status();
  /* Only ops with optional inputs need a copy of the attrs (for the
   * presence flags): the others take the caller's as they are. */
  mti_attrs with_present;
  const mti_attrs *at = at_in;
  if (info->optional) {
    with_present = *at_in;
    with_present.flags |= present;
    at = &with_present;
  }
  for (int i = 0; i < n; i++) {
    if (!in[i]) continue; /* absent optional input: never read */
    sc.metas[i] = mti_tensor_meta(in[i]);
    if (!remote) sc.views[i] = mti_tensor_host_view(in[i]);
  }
  mti_meta metas[MTI_MAX_OUTPUTS];
  mt_status st = mti_infer(op, n, sc.metas, at, metas);
  if (!st)
    st = remote ? record(info, op, n, in, at, metas, device, outs)
                : run_host(info, op, n, sc.views, at, metas, device, outs);
  scratch_free(&sc);
  if (!st && mti_ag_wanted(n, in) && (st = mti_ag_record_op(op, n, in, at, outs)))
    free_outputs(info->nout, outs);
  return st;
}

mt_tensor *mti_run_op(mti_op op, int n, const mt_tensor *const *in, const char *const *names,
                      const mti_attrs *at) {
  mt_tensor *out[MTI_MAX_OUTPUTS];
  if (mti_run_op_multi(op, n, in, names, at, out)) return NULL;
  /* Outputs past the first are statistics kept for a backward (attention's
   * logsumexp, ...), not the caller's result: released here. */
  for (int k = 1; k < mti_op_get((int)op)->nout; k++) mt_tensor_free(out[k]);
  return out[0];
}

mt_tensor *mti_run_creation(mti_op op, mt_device device, int ndim, const int64_t *shape,
                            const mti_attrs *at) {
  const mti_op_info *info = mti_op_get((int)op);
  mti_meta meta = {.ndim = ndim};
  for (int i = 0; i < ndim; i++) meta.shape[i] = shape[i];
  if (mti_infer(op, 0, NULL, at, &meta)) return NULL;
  mt_tensor *out = NULL;
  if (mti_device_is_remote(device)) record(info, op, 0, NULL, at, &meta, device, &out);
  else run_host(info, op, 0, NULL, at, &meta, device, &out);
  return out;
}
