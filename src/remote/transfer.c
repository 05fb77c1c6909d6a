/*
 * transfer.c - uploads (chunks of about 1 MiB, without waiting) and downloads
 * (a sync point) of a session. Uploads from MTI_CONTENT_MIN_BYTES up are
 * named by their SHA-256 (a Content first), and go by reference when the
 * worker holds those bytes already (content.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/protocol.h"
#include "remote/client.h"


/* ------------------------------------------------------------ progress */

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static mt_modal_progress_fn progress_fn;
static void *progress_ctx;
static uint64_t progress_min;

void mti_remote_set_progress(mt_modal_progress_fn fn, void *ctx, uint64_t min_bytes) {
  pthread_mutex_lock(&progress_lock);
  progress_fn = fn;
  progress_ctx = ctx;
  progress_min = min_bytes;
  pthread_mutex_unlock(&progress_lock);
}

/* One transfer's reports (fn NULL: none wanted). */
typedef struct progress {
  mt_modal_progress_fn fn;
  void *ctx;
  mt_modal_transfer kind;
  int device;
  uint64_t done, total;
} progress;

/* Reads the setting once per transfer and reports its start. */
static progress progress_start(mt_modal_transfer kind, int device, uint64_t total) {
  progress p = {NULL, NULL, kind, device, 0, total};
  pthread_mutex_lock(&progress_lock);
  if (progress_fn && total >= progress_min) {
    p.fn = progress_fn;
    p.ctx = progress_ctx;
  }
  pthread_mutex_unlock(&progress_lock);
  if (p.fn) p.fn(p.ctx, kind, device, 0, total);
  return p;
}

static void progress_add(progress *p, uint64_t n) {
  p->done += n;
  if (p->fn && n) p->fn(p->ctx, p->kind, p->device, p->done, p->total);
}

/* ------------------------------------------------------------- uploads */

/* Sends one Upload chunk of b. */
static mt_status send_chunk(const char *fn, session *s, const mti_remote_buffer *b,
                            uint64_t offset, const void *data, size_t len) {
  Modaltensor__V1__Upload up = MODALTENSOR__V1__UPLOAD__INIT;
  up.id = b->id;
  up.dtype = (int32_t)b->dtype;
  up.numel = b->numel;
  up.offset = offset;
  up.data.len = len;
  up.data.data = (uint8_t *)data;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD;
  m.upload = &up;
  mt_status st = session_send(fn, s, &m);
  if (!st) {
    s->dirty = 1;
    atomic_fetch_add_explicit(&registry.counters.bytes_up, len, memory_order_relaxed);
  }
  return st;
}

/* Streams len contiguous bytes of b in chunks. */
static mt_status send_bytes(const char *fn, session *s, const mti_remote_buffer *b,
                            const void *data, size_t len) {
  mt_status st = MT_OK;
  progress p = progress_start(MT_MODAL_UPLOAD, b->device, len);
  for (size_t off = 0; !st && off < len; off += MTI_CHUNK_BYTES) {
    size_t n = len - off < MTI_CHUNK_BYTES ? len - off : MTI_CHUNK_BYTES;
    st = send_chunk(fn, s, b, off, (const char *)data + off, n);
    if (!st) progress_add(&p, n);
  }
  return st;
}

/* Streams src's values, row-major, in chunks: contiguous sources go
 * straight from their memory, others through one staging chunk. */
static mt_status upload_values(const char *fn, session *s, const mti_remote_buffer *b,
                               const mti_view *src) {
  size_t esize = mt_dtype_size(src->dtype), total = (size_t)b->numel * esize;
  int contiguous = mti_shape_is_contiguous(src->ndim, src->shape, src->strides);
  if (total == 0) return send_chunk(fn, s, b, 0, NULL, 0);
  if (contiguous) return send_bytes(fn, s, b, src->data, total);
  /* Strided: walk the elements in row-major order into a staging chunk. */
  size_t per_chunk = MTI_CHUNK_BYTES / esize;
  char *stage = malloc(per_chunk * esize);
  if (!stage) return mti_error_oom(fn, per_chunk * esize);
  int64_t idx[MT_MAX_DIMS] = {0};
  mt_status st = MT_OK;
  size_t filled = 0, sent = 0;
  progress p = progress_start(MT_MODAL_UPLOAD, b->device, total);
  for (int64_t e = 0; !st && e < b->numel; e++) {
    int64_t off = 0;
    for (int d = 0; d < src->ndim; d++) off += idx[d] * src->strides[d];
    memcpy(stage + filled * esize, (const char *)src->data + off * (int64_t)esize, esize);
    if (++filled == per_chunk || e + 1 == b->numel) {
      st = send_chunk(fn, s, b, sent, stage, filled * esize);
      sent += filled * esize;
      if (!st) progress_add(&p, filled * esize);
      filled = 0;
    }
    for (int d = src->ndim - 1; d >= 0 && ++idx[d] == src->shape[d]; d--) idx[d] = 0;
  }
  free(stage);
  return st;
}

/* The bytes of an upload sent by reference, which the worker asked for. */
mt_status transfer_send_bytes(const char *fn, session *s, const held_upload *h) {
  mti_remote_buffer b = {s, s->generation, h->id, h->dtype, h->numel, h->device};
  return send_bytes(fn, s, &b, h->data, h->len);
}

static mt_status send_content(const char *fn, session *s, const mti_remote_buffer *b,
                              const uint8_t digest[MTI_DIGEST_BYTES], int bytes_follow) {
  Modaltensor__V1__Content c = MODALTENSOR__V1__CONTENT__INIT;
  c.id = b->id;
  c.dtype = (int32_t)b->dtype;
  c.numel = b->numel;
  c.digest = (ProtobufCBinaryData){MTI_DIGEST_BYTES, (uint8_t *)digest};
  c.bytes_follow = bytes_follow;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_CONTENT;
  m.content = &c;
  mt_status st = session_send(fn, s, &m);
  if (!st) s->dirty = 1;
  return st;
}

/* A row-major copy of src's values (len bytes) in new memory. */
static void *gather_values(const char *fn, const mti_view *src, size_t len) {
  char *out = malloc(len ? len : 1);
  if (!out) {
    mti_error_oom(fn, len);
    return NULL;
  }
  size_t esize = mt_dtype_size(src->dtype);
  int64_t idx[MT_MAX_DIMS] = {0};
  for (size_t e = 0; e * esize < len; e++) {
    int64_t off = 0;
    for (int d = 0; d < src->ndim; d++) off += idx[d] * src->strides[d];
    memcpy(out + e * esize, (const char *)src->data + off * (int64_t)esize, esize);
    for (int d = src->ndim - 1; d >= 0 && ++idx[d] == src->shape[d]; d--) idx[d] = 0;
  }
  return out;
}

/* Bytes held for references (until the next sync) stay below this: past
 * it, a sync point resolves the references first. */
#define HELD_MAX_BYTES ((size_t)512 << 20)

/* Sends the bytes by reference: when the worker announced them (or this
 * session sent them), and also before its Opened is read, when nothing is
 * known yet: a program's second run then sends nothing, at the price of a
 * Need (one round trip within the sync) in a first run. The bytes are kept
 * until the next sync answers. Takes over copy (a row-major copy, or NULL
 * when data is the caller's). */
static mt_status upload_by_reference(const char *fn, session *s, const mti_remote_buffer *b,
                                     const uint8_t digest[MTI_DIGEST_BYTES], const void *data,
                                     void *copy, size_t len) {
  mt_status st = MT_OK;
  if (s->n_held && s->held_bytes + len > HELD_MAX_BYTES) st = session_sync_locked(fn, s);
  if (!st && !copy && !(copy = malloc(len))) st = mti_error_oom(fn, len);
  if (st) {
    free(copy);
    return st;
  }
  if (copy != data) memcpy(copy, data, len);
  held_upload h = {b->id, b->dtype, b->numel, {0}, copy, len, b->device};
  memcpy(h.digest, digest, MTI_DIGEST_BYTES);
  if ((st = content_hold(fn, s, &h))) return st;
  content_learn(s, digest); /* held now, or once the Need is answered */
  return send_content(fn, s, b, digest, 0);
}

/* A large upload: its SHA-256 first, then by reference or with its bytes
 * (which the worker checks and keeps for later sessions). */
static mt_status upload_content(const char *fn, session *s, const mti_remote_buffer *b,
                                const mti_view *src, size_t len) {
  int contiguous = mti_shape_is_contiguous(src->ndim, src->shape, src->strides);
  void *copy = contiguous ? NULL : gather_values(fn, src, len);
  const void *data = contiguous ? src->data : copy;
  uint8_t digest[MTI_DIGEST_BYTES];
  mt_status st = data ? mti_sha256(fn, data, len, digest) : mt_last_status();
  if (st) {
    free(copy);
    return st;
  }
  if (s->opened_pending || content_known(s, digest))
    return upload_by_reference(fn, s, b, digest, data, copy, len);
  st = send_content(fn, s, b, digest, 1);
  if (!st) st = send_bytes(fn, s, b, data, len);
  if (!st) content_learn(s, digest);
  free(copy);
  return st;
}

mti_remote_buffer *mti_remote_upload(const char *fn, int device, const mti_view *src) {
  session *s = session_lock_inputs(fn, device, 0, NULL);
  if (!s) return NULL;
  mti_remote_buffer *b =
      recorder_new_buffer(fn, s, device, src->dtype, mti_shape_numel(src->ndim, src->shape));
  /* Pending nodes go first so that the worker sees ops in program order. */
  mt_status st = b ? recorder_send_pending(fn, s) : mt_last_status();
  size_t len = b ? (size_t)b->numel * mt_dtype_size(src->dtype) : 0;
  if (!st) st = len >= MTI_CONTENT_MIN_BYTES ? upload_content(fn, s, b, src, len)
                                             : upload_values(fn, s, b, src);
  if (!st && registry.eager) st = session_sync_locked(fn, s);
  pthread_mutex_unlock(&s->lock);
  if (st) {
    free(b);
    return NULL;
  }
  return b;
}

static mt_status send_download(const char *fn, session *s, const mti_remote_view *view,
                               uint64_t *id) {
  rec_view rv;
  recorder_set_view(&rv, view);
  Modaltensor__V1__TensorView tv;
  recorder_fill_view(&tv, &rv);
  Modaltensor__V1__Download dl = MODALTENSOR__V1__DOWNLOAD__INIT;
  dl.request_id = *id = ++s->next_request;
  dl.view = &tv;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD;
  m.download = &dl;
  return session_send(fn, s, &m);
}

/* Receives the chunks of download id (of modal:device) into dst. A failed
 * view keeps the worker's status and message. */
static mt_status recv_download(const char *fn, session *s, int device, uint64_t id, void *dst,
                               size_t nbytes) {
  progress p = progress_start(MT_MODAL_DOWNLOAD, device, nbytes);
  for (;;) {
    Modaltensor__V1__WorkerMessage *reply;
    mt_status st = session_recv(fn, s, &reply);
    if (st) return st;
    int last = 1;
    if (reply->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_CHUNK ||
        reply->chunk->request_id != id) {
      st = mti_error(MT_ERR_REMOTE, "%s: worker %s sent an unexpected message", fn, s->w->target);
    } else {
      const Modaltensor__V1__DownloadChunk *c = reply->chunk;
      last = c->last;
      if ((st = client_status(c->status)))
        mti_error(st, "%s: %s", fn, c->status->message);
      else if (c->offset > nbytes || c->data.len > nbytes - c->offset)
        st = mti_error(MT_ERR_REMOTE, "%s: worker %s sent bytes past the end", fn, s->w->target);
      else if (c->data.len) {
        memcpy((char *)dst + c->offset, c->data.data, c->data.len);
        progress_add(&p, c->data.len);
      }
      atomic_fetch_add_explicit(&registry.counters.bytes_down, c->data.len, memory_order_relaxed);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (st && !last) session_lost(s); /* the rest of the answer cannot be matched any more */
    if (st || last) return st;
  }
}

mt_status mti_remote_download(const char *fn, const mti_remote_view *view, void *dst,
                              size_t nbytes) {
  session *s = session_lock_inputs(fn, view->buf->device, 1, view);
  if (!s) return mt_last_status();
  uint64_t dl_id, sync_id;
  mt_status st = recorder_send_pending(fn, s);
  if (!st) st = send_download(fn, s, view, &dl_id);
  if (!st) st = session_send_sync(fn, s, &sync_id);
  if (!st) {
    mt_status view_st = recv_download(fn, s, view->buf->device, dl_id, dst, nbytes);
    char view_msg[512];
    snprintf(view_msg, sizeof view_msg, "%s", mt_last_error());
    st = s->stream ? session_wait_sync(fn, s, sync_id) : view_st;
    if (view_st) st = mti_error(view_st, "%s", view_msg); /* the view's own failure first */
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}

