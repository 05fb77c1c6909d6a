/*
 * dispatch.c - checks an op's tensor arguments, infers its output and runs
 * it where its inputs live.
 *
 * An op runs where its inputs live: on host memory through the cpu backend
 * (cpu tensors, and modal tensors made while remote execution was off), or
 * recorded into the pending graph of the inputs' worker session.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api/tensor_impl.h"
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

/* Present inputs are non-NULL and share one device, which goes to *device. */
static mt_status check_inputs(const char *fn, int n, const mt_tensor *const *in,
                              const char *const *names, const mti_attrs *at, mti_op_kind kind,
                              mt_device *device, int *remote) {
  int first = -1;
  for (int i = 0; i < n; i++) {
    int optional = kind == MTI_KIND_LAYER_NORM && i > 0;
    if (optional && !(at->flags & (i == 1 ? MTI_FLAG_HAS_WEIGHT : MTI_FLAG_HAS_BIAS))) continue;
    mt_status s = mti_check_tensor(fn, names[i], in[i]);
    if (s) return s;
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

/* Records op on remote inputs; returns the output tensor. */
static mt_tensor *record(const char *fn, mti_op op, int n, const mt_tensor *const *in,
                         const mti_attrs *at, const mti_meta *meta, mt_device device) {
  mti_remote_view inline_views[MTI_INLINE_INPUTS];
  mti_remote_view *views = inline_views;
  if (n > MTI_INLINE_INPUTS && !(views = malloc(sizeof *views * (size_t)n)))
    return mti_error_oom(fn, sizeof *views * (size_t)n), NULL;
  for (int i = 0; i < n; i++) {
    if (in[i]) views[i] = mti_tensor_remote_view(in[i]);
    else views[i].buf = NULL, views[i].ndim = 0, views[i].offset = 0;
  }
  mti_remote_buffer *b = mti_remote_record(fn, device.index, op, n, views, at, meta);
  if (views != inline_views) free(views);
  size_t nbytes = (size_t)mti_shape_numel(meta->ndim, meta->shape) * mt_dtype_size(meta->dtype);
  mti_storage *s = b ? mti_storage_remote(fn, b, nbytes) : NULL;
  return s ? mti_tensor_wrap(fn, s, meta, device) : NULL;
}

/* Runs op on host inputs with the cpu backend; returns the output tensor. */
static mt_tensor *run_host(const char *fn, mti_op op, int n, const mti_view *views,
                           const mti_attrs *at, const mti_meta *meta, mt_device device) {
  mt_tensor *out = mti_tensor_new(fn, meta, device);
  if (!out) return NULL;
  mti_view ov = mti_tensor_host_view(out);
  if (mti_cpu_run(op, views, n, at, &ov)) {
    mt_tensor_free(out);
    return NULL;
  }
  return out;
}

mt_tensor *mti_run_op(mti_op op, int n, const mt_tensor *const *in, const char *const *names,
                      const mti_attrs *at) {
  const mti_op_info *info = mti_op_get((int)op);
  char fn[48];
  snprintf(fn, sizeof fn, "mt_%s", info->name);
  mt_device device;
  int remote = 0;
  op_scratch sc;
  if (check_inputs(fn, n, in, names, at, info->kind, &device, &remote) ||
      scratch_init(fn, &sc, n))
    return NULL;
  for (int i = 0; i < n; i++) {
    if (!in[i]) continue; /* absent optional input: never read */
    sc.metas[i] = mti_tensor_meta(in[i]);
    if (!remote) sc.views[i] = mti_tensor_host_view(in[i]);
  }
  mti_meta meta;
  mt_tensor *out = NULL;
  if (!mti_infer(op, n, sc.metas, at, &meta))
    out = remote ? record(fn, op, n, in, at, &meta, device)
                 : run_host(fn, op, n, sc.views, at, &meta, device);
  scratch_free(&sc);
  return out;
}

mt_tensor *mti_run_creation(mti_op op, mt_device device, int ndim, const int64_t *shape,
                            const mti_attrs *at) {
  const mti_op_info *info = mti_op_get((int)op);
  char fn[48];
  snprintf(fn, sizeof fn, "mt_%s", info->name);
  mti_meta meta = {.ndim = ndim};
  for (int i = 0; i < ndim; i++) meta.shape[i] = shape[i];
  if (mti_infer(op, 0, NULL, at, &meta)) return NULL;
  if (mti_device_is_remote(device)) return record(fn, op, 0, NULL, at, &meta, device);
  return run_host(fn, op, 0, NULL, at, &meta, device);
}
