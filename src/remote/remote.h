/*
 * remote.h - the client side of the modal device, as src/api sees it.
 *
 * Modal tensors made while remote execution is on live in a worker: their
 * storage is an mti_remote_buffer (a session-scoped id on one worker device).
 * Ops on them are recorded into the session's pending graph and sent at sync
 * points (mti_remote_download, mti_remote_synchronize), when the pending
 * graph passes its size threshold, or after every op with MODALTENSOR_EAGER=1.
 *
 * Devices are numbered across the configured workers (MODALTENSOR_WORKER, a
 * comma-separated list of addresses, or MODALTENSOR_WORKER_FILE, a file
 * holding one, read again on every reconnect) in list order; with none
 * configured the
 * library starts a local worker on first use and stops it at mt_shutdown or
 * process exit.
 *
 * Every function that can fail sets the thread's error (naming fn) and
 * returns its status or NULL. All functions are thread-safe.
 */
#ifndef MTI_REMOTE_H
#define MTI_REMOTE_H

#include "core/op_table.h"
#include "core/shape.h"

typedef struct mti_remote_buffer mti_remote_buffer;

/* A view of a remote buffer, as an op input or a download source. */
typedef struct mti_remote_view {
  mti_remote_buffer *buf;
  int64_t offset; /* elements */
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS]; /* elements */
} mti_remote_view;

/* ---- devices ---- */

/* Number of modal devices over all workers; connects (and starts the local
 * worker) on first use. 0 when none answers (the error says why). */
int mti_remote_device_count(void);

/* MT_OK when modal device `index` exists and its worker answers;
 * MT_ERR_UNAVAILABLE (no worker, naming the address tried and why),
 * MT_ERR_DEVICE (index past the count), MT_ERR_UNAUTHENTICATED, ... */
mt_status mti_remote_check_device(const char *fn, int index);

mt_status mti_remote_device_properties(const char *fn, int index, mt_device_properties *out);

/* The worker's bytes of live blocks and of all blocks it holds (live and
 * cached) on device index, asked afresh (a Hello call). They cover the work
 * the worker has received: mti_remote_synchronize first to include all that
 * is queued. Both 0 from a worker that predates these numbers. */
mt_status mti_remote_memory_usage(const char *fn, int index, int64_t *allocated,
                                  int64_t *reserved);

/* Sends everything pending for device index and waits until the worker has
 * run it; returns the first deferred error since the last sync. */
mt_status mti_remote_synchronize(const char *fn, int index);

/* Syncs every device that has work out: all Syncs are sent before any
 * answer is awaited (one round trip for all). The first failure. */
mt_status mti_remote_synchronize_all(const char *fn);

/* The process's counters since start or the last reset (mt_modal_stats). */
void mti_remote_stats(mt_modal_stats *out);
void mti_remote_stats_reset(void);

/* mt_modal_set_progress: the function told of transfers of min_bytes up. */
void mti_remote_set_progress(mt_modal_progress_fn fn, void *ctx, uint64_t min_bytes);

/* Closes every session and stops a worker the library started. Buffers that
 * are still alive report MT_ERR_UNAVAILABLE afterwards; releasing them is
 * still safe. */
void mti_remote_shutdown(void);

/* mt_modal_configure: keeps copies of cfg's settings (NULL: none) for the
 * next time the configuration is read. */
mt_status mti_remote_configure(const char *fn, const mt_modal_config *cfg);

/* ---- buffers ---- */

/* dtype, element count and device index of b. */
mt_dtype mti_remote_buffer_dtype(const mti_remote_buffer *b);
int64_t mti_remote_buffer_numel(const mti_remote_buffer *b);
int mti_remote_buffer_device(const mti_remote_buffer *b);

/* A new buffer on device holding a copy of src (any strides, host memory),
 * sent in chunks of about 1 MiB. Ordered with recorded ops. */
mti_remote_buffer *mti_remote_upload(const char *fn, int device, const mti_view *src);

/* Copies the values of view (row-major, view's dtype) into dst, which holds
 * exactly nbytes. A sync point: flushes, waits, reports the view's failure
 * or the session's deferred error. */
mt_status mti_remote_download(const char *fn, const mti_remote_view *view, void *dst,
                              size_t nbytes);

/* Drops the caller's reference; the worker frees the buffer with the next
 * message that goes to it. NULL is a no-op. */
void mti_remote_release(mti_remote_buffer *b);

/* ---- ops ---- */

/* Records op on n input views (in[i].buf NULL: absent optional input) into
 * device's pending graph, producing one new buffer per output of the op in
 * outs, of metas' dtypes and shapes (the caller inferred metas with
 * mti_infer). For creation ops n is 0. On failure outs are all NULL. */
mt_status mti_remote_record(const char *fn, int device, mti_op op, int n,
                            const mti_remote_view *in, const mti_attrs *at,
                            const mti_meta *metas, mti_remote_buffer **outs);

/* Records a COPY of src into the existing view dst (mt_copy_). */
mt_status mti_remote_record_into(const char *fn, const mti_remote_view *src,
                                 const mti_attrs *at, const mti_remote_view *dst);

#endif
