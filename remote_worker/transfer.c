/*
 * transfer.c - Upload (chunks into a new storage) and Download (a view's
 * values back as chunks).
 */
#include <grpc/slice.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "log.h"
#include "session.h"
#include "validate.h"
#include "wire.h"

/* ------------------------------------------------------------- Upload */

/* Fails an upload in progress: the storage keeps its id, failed, and
 * ignores its remaining chunks. */
static void upload_fail(mtw_session *s, mtw_storage *st, mt_status status, const char *fmt, ...)
    MTI_PRINTF(4, 5);
static void upload_fail(mtw_session *s, mtw_storage *st, mt_status status, const char *fmt, ...) {
  char msg[MTW_MESSAGE_MAX];
  int n = snprintf(msg, sizeof msg, "upload to storage %llu: ", (unsigned long long)st->id);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  mtw_session_defer(s, status, "%s", msg);
  mtw_storage_fail(s, st, status, msg);
}

/* The first chunk: checks dtype and size, then makes the storage (failed,
 * when the checks or the allocation fail). NULL when there is none. */
static mtw_storage *upload_begin(mtw_session *s, const mtw_upload_header *u) {
  char msg[MTW_MESSAGE_MAX];
  int n = snprintf(msg, sizeof msg, "upload to storage %llu: ", (unsigned long long)u->id);
  mt_status status = MT_OK;
  mtw_storage *st = NULL;
  if (!mti_dtype_valid(u->dtype)) {
    status = MT_ERR_DTYPE;
    snprintf(msg + n, sizeof msg - (size_t)n, "dtype %d is not a dtype", (int)u->dtype);
  } else if (u->numel < 0 || u->numel > INT64_MAX / (int64_t)mt_dtype_size((mt_dtype)u->dtype)) {
    status = MT_ERR_INVALID_ARGUMENT;
    snprintf(msg + n, sizeof msg - (size_t)n, "numel %lld is negative or too large for %s",
             (long long)u->numel, mt_dtype_name((mt_dtype)u->dtype));
  } else if (mtw_storage_create(s, u->id, (mt_dtype)u->dtype, u->numel, &st) != MT_OK) {
    status = mt_last_status();
    snprintf(msg + n, sizeof msg - (size_t)n, "%s", mt_last_error());
  }
  if (status != MT_OK) {
    mtw_session_defer(s, status, "%s", msg);
    mtw_storage_create_failed(s, u->id, status, msg);
    st = mtw_table_find(&s->table, u->id);
  }
  if (st) st->uploading = 1;
  return st;
}

typedef struct upload_sink {
  mtw_session *s;
  char *dst;
  mti_hasher *hasher; /* NULL: the bytes are not named by a digest */
} upload_sink;

static int upload_piece(void *ctx, const uint8_t *p, size_t n) {
  upload_sink *k = ctx;
  const mtw_backend *b = k->s->worker->backend;
  if (k->hasher) mti_hasher_update(k->hasher, p, n);
  if (b->ops->upload(k->s->stream, k->dst, p, n) != MT_OK) return -1;
  k->dst += n;
  return 0;
}

/* Copies the chunk's payload to dst, straight from where it lies (hashing
 * it on the way when the storage is named by a digest). */
static mt_status copy_payload(mtw_session *s, const mtw_upload_chunk *c, mtw_storage *st,
                              char *dst) {
  upload_sink k = {s, dst, st->hasher};
  if (c->data) return upload_piece(&k, c->data, c->h.data_len) ? mt_last_status() : MT_OK;
  return mtw_bytes_each(c->bb, c->h.data_pos, upload_piece, &k) ? mt_last_status() : MT_OK;
}

static void content_check(mtw_session *s, mtw_storage *st);

int mtw_session_upload(mtw_session *s, const mtw_upload_chunk *c) {
  const mtw_upload_header *u = &c->h;
  if (u->id == 0) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT, "upload: 0 is not an id");
    return 0;
  }
  mtw_storage *st = mtw_table_find(&s->table, u->id);
  if (!st) {
    if (u->offset != 0) {
      mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT,
                        "upload to storage %llu: a chunk at offset %llu, but no chunk at offset 0 "
                        "made the storage",
                        (unsigned long long)u->id, (unsigned long long)u->offset);
      return 0;
    }
    st = upload_begin(s, u);
    if (!st) return 0;
  } else if (!st->uploading || (st->fail_status == MT_OK && st->received == st->nbytes)) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT,
                      "upload to storage %llu: the id is in use (uploads make new storages)",
                      (unsigned long long)u->id);
    return 0;
  }
  if (st->fail_status != MT_OK) return 0; /* already reported */
  size_t len = u->data_len;
  if (u->offset != st->received) {
    upload_fail(s, st, MT_ERR_INVALID_ARGUMENT, "a chunk at offset %llu, expected %llu",
                (unsigned long long)u->offset, (unsigned long long)st->received);
  } else if ((u->numel != 0 && u->numel != st->numel) ||
             (u->dtype != 0 && u->dtype != (int32_t)st->dtype)) {
    upload_fail(s, st, MT_ERR_INVALID_ARGUMENT,
                "a chunk says dtype %d and numel %lld, the first said %d and %lld", (int)u->dtype,
                (long long)u->numel, (int)st->dtype, (long long)st->numel);
  } else if (len > st->nbytes - st->received) {
    upload_fail(s, st, MT_ERR_INVALID_ARGUMENT,
                "a chunk of %zu bytes at offset %llu passes the end (%llu bytes)", len,
                (unsigned long long)u->offset, (unsigned long long)st->nbytes);
  } else if (len) {
    if (copy_payload(s, c, st, (char *)st->block->ptr + st->received) != MT_OK) {
      upload_fail(s, st, mt_last_status(), "%s", mt_last_error());
      return 0;
    }
    st->received += len;
    mtw_stats_add(&s->worker->stats, &s->stats, MTW_BYTES_IN, len);
    if (st->hasher && st->received == st->nbytes) content_check(s, st);
  }
  return 0;
}

/* ------------------------------------------------------------ Content */

/* A host copy of a block the host cannot read in place; NULL with the
 * error set. */
static void *stage_block(mtw_session *s, const mtw_block *blk) {
  void *stage = malloc(blk->nbytes ? blk->nbytes : 1);
  if (!stage) {
    mti_error_oom("content", blk->nbytes);
    return NULL;
  }
  if (s->worker->backend->ops->download(s->stream, stage, blk->ptr, blk->nbytes) != MT_OK) {
    free(stage);
    return NULL;
  }
  return stage;
}

/* Offers the checked bytes of st to later sessions: as a live source, and
 * as a file of the cache directory (written in the background, from stage
 * when given: taken over; else from the block or a host copy of it). */
static void content_keep(mtw_session *s, mtw_storage *st, void *stage) {
  const mtw_backend *b = s->worker->backend;
  size_t n = (size_t)st->nbytes;
  if (!stage && !b->ops->host_address(s->worker->backend, st->block->ptr) &&
      mtw_content_file_wanted(s->worker->content, st->digest, n))
    stage = stage_block(s, st->block);
  if (stage || b->ops->host_address(s->worker->backend, st->block->ptr))
    mtw_content_put_file(s->worker->content, st->digest, st->block, stage, n);
  if (!st->live) mtw_content_live_add(s->worker->content, st->digest, st->block);
  st->live = 1;
}

/* The whole of a storage named by a digest has arrived: its bytes must
 * match, or it fails. */
static void content_check(mtw_session *s, mtw_storage *st) {
  uint8_t got[MTI_SHA256_BYTES];
  mti_hasher_finish(st->hasher, got);
  st->hasher = NULL;
  if (st->awaiting) s->awaiting--;
  st->awaiting = 0;
  if (memcmp(got, st->digest, sizeof got)) {
    upload_fail(s, st, MT_ERR_INVALID_ARGUMENT, "its bytes do not match the SHA-256 of its Content");
    return;
  }
  content_keep(s, st, NULL);
}

/* Copies a live block of another storage with st's digest into dst (host
 * memory) and checks the copy: 1 when it matches. A block whose bytes have
 * changed since is no longer offered. */
static int live_copy(mtw_session *s, const mtw_storage *st, void *dst) {
  mtw_content *c = s->worker->content;
  mtw_block *src = mtw_content_live_find(c, st->digest, (size_t)st->nbytes);
  if (!src) return 0;
  const mtw_backend *b = s->worker->backend;
  const void *host = b->ops->host_address(s->worker->backend, src->ptr);
  int ok = src->device == s->device;
  if (ok && host) memcpy(dst, host, src->nbytes);
  else if (ok) ok = b->ops->download(s->stream, dst, src->ptr, src->nbytes) == MT_OK;
  uint8_t got[MTI_SHA256_BYTES];
  if (ok && (mti_sha256("content", dst, src->nbytes, got) || memcmp(got, st->digest, sizeof got))) {
    mtw_content_live_remove(c, src);
    ok = 0;
  }
  mtw_block_unref(src);
  return ok;
}

/* Fills st from the content store (a cache file, else a live storage of
 * any session), checked: 1 when it could. */
static int content_fill(mtw_session *s, mtw_storage *st) {
  const mtw_backend *b = s->worker->backend;
  size_t n = (size_t)st->nbytes;
  void *host = (void *)b->ops->host_address(s->worker->backend, st->block->ptr);
  /* a host copy on the way to the device counts against the session as a
   * download's staging does; without room the client sends the bytes */
  uint64_t staged = host || !n || mtw_session_reserve(s, n, NULL) ? 0 : n;
  void *stage = staged ? malloc(n) : NULL;
  void *dst = host ? host : stage;
  if (!dst) {
    mtw_session_release(s, staged);
    return 0;
  }
  int found = mtw_content_read_file(s->worker->content, st->digest, dst, n) || live_copy(s, st, dst);
  if (found && stage && b->ops->upload(s->stream, st->block->ptr, stage, n) != MT_OK) found = 0;
  mtw_session_release(s, staged); /* the copy leaves the session (cache queue or free) */
  if (found) {
    st->received = st->nbytes;
    content_keep(s, st, stage);
  } else {
    free(stage);
  }
  return found;
}

static int send_need(mtw_session *s, const mtw_storage *st) {
  Modaltensor__V1__Need need = MODALTENSOR__V1__NEED__INIT;
  need.id = st->id;
  need.digest = (ProtobufCBinaryData){MTI_SHA256_BYTES, (uint8_t *)st->digest};
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_NEED;
  m.need = &need;
  mtw_log(MTW_LOG_DEBUG, "session %llu: storage %llu: bytes not held, Need sent",
          (unsigned long long)s->stats.session_id, (unsigned long long)st->id);
  return mtw_session_reply(s, &m);
}

int mtw_session_content(mtw_session *s, const Modaltensor__V1__Content *c) {
  if (c->id == 0 || mtw_table_find(&s->table, c->id)) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT, "content: %s", c->id ? "the id is in use"
                                                                         : "0 is not an id");
    return 0;
  }
  if (c->digest.len != MTI_SHA256_BYTES) {
    char msg[MTW_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "content of storage %llu: a digest of %zu bytes, not %u (SHA-256)",
             (unsigned long long)c->id, c->digest.len, MTI_SHA256_BYTES);
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT, "%s", msg);
    mtw_storage_create_failed(s, c->id, MT_ERR_INVALID_ARGUMENT, msg);
    return 0;
  }
  mtw_upload_header h = {c->id, c->dtype, c->numel, 0, 0, 0};
  mtw_storage *st = upload_begin(s, &h);
  if (!st || st->fail_status != MT_OK) return 0;
  memcpy(st->digest, c->digest.data, MTI_SHA256_BYTES);
  if (!c->bytes_follow && content_fill(s, st)) return 0;
  if (!(st->hasher = mti_hasher_new("content"))) {
    upload_fail(s, st, mt_last_status(), "%s", mt_last_error());
    return 0;
  }
  if (st->nbytes == 0) {
    content_check(s, st);
    return 0;
  }
  if (c->bytes_follow) return 0;
  st->awaiting = 1;
  s->awaiting++;
  return send_need(s, st);
}

/* ----------------------------------------------------------- Download */

static int send_message(mtw_session *s, grpc_byte_buffer *bb) {
  char why[128];
  snprintf(why, sizeof why, "session %llu: the client stopped reading downloads",
           (unsigned long long)s->stats.session_id);
  return mtw_call_send(s->call, bb, s->worker->options->idle_timeout_s * 1000, why);
}

/* The one chunk of a download that failed. */
static int send_failure(mtw_session *s, uint64_t request_id, mt_status status, const char *msg) {
  Modaltensor__V1__Status st = MODALTENSOR__V1__STATUS__INIT;
  st.code = (int32_t)status;
  st.message = (char *)msg;
  Modaltensor__V1__DownloadChunk chunk = MODALTENSOR__V1__DOWNLOAD_CHUNK__INIT;
  chunk.request_id = request_id;
  chunk.status = &st;
  chunk.last = 1;
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_CHUNK;
  m.chunk = &chunk;
  mtw_log(MTW_LOG_DEBUG, "session %llu: download %llu failed: %s",
          (unsigned long long)s->stats.session_id, (unsigned long long)request_id, msg);
  return send_message(s, mtw_pack(&m.base));
}

static void block_unref_cb(void *blk) { mtw_block_unref(blk); }

/* Bytes a download stages per backend call when the host cannot read the
 * device memory in place: 8 chunks, so that the cuda backend's 8 pinned
 * slots all have a copy in flight (one chunk at a time would leave seven
 * idle and wait for each), and one malloc serves 8 chunks. */
#define DOWNLOAD_WINDOW ((size_t)8 * MTI_CHUNK_BYTES)

/* A host copy of a run of chunks, shared by their slices: freed with the
 * last slice gRPC releases. */
typedef struct staged_window {
  atomic_int refs;
  size_t begin, len; /* bytes [begin, begin + len) of the download */
  char data[];
} staged_window;

static void window_unref(void *w) {
  staged_window *win = w;
  if (win && atomic_fetch_sub(&win->refs, 1) == 1) free(win);
}

/* What chunks of one download are cut from: the block in place (host
 * non-NULL), or the current staged window. */
typedef struct download_source {
  mtw_session *s;
  mtw_block *blk;
  size_t begin; /* the download's first byte in blk */
  const char *host;
  staged_window *window;
} download_source;

/* Stages bytes [at, at + len) of the download into a new window, replacing
 * the previous one (its slices keep it alive); -1 with the error set. */
static int stage_window(download_source *src, size_t at, size_t len) {
  const mtw_backend *b = src->s->worker->backend;
  staged_window *w = malloc(sizeof *w + len);
  if (!w) return -1;
  atomic_init(&w->refs, 1);
  w->begin = at;
  w->len = len;
  if (b->ops->download(src->s->stream, w->data, (char *)src->blk->ptr + src->begin + at, len)) {
    free(w);
    return -1;
  }
  window_unref(src->window);
  src->window = w;
  return 0;
}

/* Bytes [at, at + n) of the download (n <= MTI_CHUNK_BYTES, of total bytes)
 * as a slice: the block's own memory when the host can read it (a
 * reference keeps it alive while gRPC sends), else a part of the staged
 * window, staging the next one first when at is past it. */
static int chunk_slice(download_source *src, size_t at, size_t n, size_t total, grpc_slice *out) {
  if (src->host) {
    mtw_block_ref(src->blk);
    *out = grpc_slice_new_with_user_data((void *)(src->host + src->begin + at), n,
                                         block_unref_cb, src->blk);
    return 0;
  }
  staged_window *w = src->window;
  if (!w || at >= w->begin + w->len) {
    size_t len = total - at < DOWNLOAD_WINDOW ? total - at : DOWNLOAD_WINDOW;
    if (stage_window(src, at, len)) return -1;
    w = src->window;
  }
  atomic_fetch_add(&w->refs, 1);
  *out = grpc_slice_new_with_user_data(w->data + (at - w->begin), n, window_unref, w);
  return 0;
}

/* Sends bytes [begin, begin + nbytes) of blk as chunks of at most
 * MTI_CHUNK_BYTES; 0 on success, -1 when the stream broke, 1 when staging
 * failed before anything was sent (the caller reports it). */
static int send_chunks(mtw_session *s, uint64_t request_id, mtw_block *blk, size_t begin,
                       size_t nbytes) {
  mtw_backend *b = s->worker->backend;
  download_source src = {s, blk, begin, b->ops->host_address(b, blk->ptr), NULL};
  size_t done = 0;
  int rc = 0;
  do {
    size_t n = nbytes - done < MTI_CHUNK_BYTES ? nbytes - done : MTI_CHUNK_BYTES;
    grpc_slice data;
    if (chunk_slice(&src, done, n, nbytes, &data)) {
      rc = done ? -1 : 1;
      break;
    }
    int last = done + n == nbytes;
    /* counted before the send completes: the client may ask for the
     * counters as soon as it has the bytes */
    mtw_stats_add(&s->worker->stats, &s->stats, MTW_BYTES_OUT, n);
    if (send_message(s, mtw_chunk_message(request_id, done, last, data))) {
      rc = -1;
      break;
    }
    done += n;
  } while (done < nbytes);
  window_unref(src.window);
  return rc;
}

/* A row-major copy of a strided view in a new block. The caller has
 * reserved its bytes in the budget. NULL with the error set. */
static mtw_block *gather(mtw_session *s, const mti_view *src, size_t nbytes) {
  const mtw_backend *b = s->worker->backend;
  mtw_block *blk = mtw_block_new(s->worker->backend, s->device, s->stream, nbytes);
  if (!blk) return NULL;
  mti_view dst = *src;
  dst.data = blk->ptr;
  mti_shape_contiguous_strides(dst.ndim, dst.shape, dst.strides);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.dtype = (int32_t)src->dtype;
  if (b->ops->run(s->stream, MTI_OP_COPY, src, 1, &at, &dst) != MT_OK) {
    mtw_block_unref(blk);
    return NULL;
  }
  return blk;
}

int mtw_session_download(mtw_session *s, const Modaltensor__V1__Download *d) {
  uint64_t rid = d->request_id;
  const Modaltensor__V1__TensorView *tv = d->view;
  char msg[MTW_MESSAGE_MAX];
  if (!tv) return send_failure(s, rid, MT_ERR_INVALID_ARGUMENT, "download: no view given");
  mtw_storage *st = tv->id ? mtw_table_find(&s->table, tv->id) : NULL;
  if (!st) {
    snprintf(msg, sizeof msg, "download: no storage %llu in this session",
             (unsigned long long)tv->id);
    return send_failure(s, rid, MT_ERR_INVALID_ARGUMENT, msg);
  }
  if (st->fail_status != MT_OK) return send_failure(s, rid, st->fail_status, mtw_storage_failure(st));
  if (st->received != st->nbytes) {
    snprintf(msg, sizeof msg, "download: storage %llu is incomplete (%llu of %llu bytes uploaded)",
             (unsigned long long)tv->id, (unsigned long long)st->received,
             (unsigned long long)st->nbytes);
    return send_failure(s, rid, MT_ERR_INVALID_ARGUMENT, msg);
  }
  size_t es = mt_dtype_size(st->dtype);
  mtw_view_desc v;
  if (mtw_view_check("download: view", tv->offset, tv->n_shape, tv->shape, tv->n_strides,
                     tv->strides, st->numel, es, &v) != MT_OK)
    return send_failure(s, rid, mt_last_status(), mt_last_error());
  size_t nbytes = (size_t)v.numel * es;
  if (nbytes == 0) return send_message(s, mtw_chunk_message(rid, 0, 1, grpc_empty_slice()));

  mtw_block *src = st->block;
  size_t begin = (size_t)v.offset * es, staged = 0;
  if (!mti_shape_is_contiguous(v.ndim, v.shape, v.strides)) {
    /* strided: a row-major copy first, charged to the budget meanwhile */
    mti_view view = {(char *)st->block->ptr + begin, st->dtype, v.ndim, {0}, {0}};
    memcpy(view.shape, v.shape, sizeof v.shape);
    memcpy(view.strides, v.strides, sizeof v.strides);
    if (mtw_session_reserve(s, nbytes, "download: a row-major copy"))
      return send_failure(s, rid, MT_ERR_OUT_OF_MEMORY, mt_last_error());
    staged = nbytes;
    src = gather(s, &view, nbytes);
    if (!src) {
      mtw_session_release(s, staged);
      snprintf(msg, sizeof msg, "download: %s", mt_last_error());
      return send_failure(s, rid, mt_last_status(), msg);
    }
    begin = 0;
  } else {
    mtw_block_ref(src);
  }
  int rc = send_chunks(s, rid, src, begin, nbytes);
  mtw_block_unref(src);
  mtw_session_release(s, staged);
  if (rc == 1)
    return send_failure(s, rid, MT_ERR_OUT_OF_MEMORY, "download: out of memory staging a chunk");
  return rc;
}
