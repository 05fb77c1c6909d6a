/*
 * wt_session.h - session-level helpers for the worker tests: handshake,
 * uploads, graphs, downloads and syncs built from protobuf-c messages.
 */
#ifndef WT_SESSION_H
#define WT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/op_table.h"
#include "modaltensor.h"
#include "wire_client.h"

#define WT_TIMEOUT_MS 120000

typedef struct wt_session {
  wc_stream *stream;
  uint64_t id;
  uint64_t next_request;
} wt_session;

/* Opens a session speaking this build's protocol and op table; 0 when the
 * worker answered Opened with MT_OK. */
int wt_open(wc_channel *ch, wt_session *s);
/* Half-closes, waits for the status, frees; returns the gRPC status. */
grpc_status_code wt_close(wt_session *s);

/* The Open message of this build (tests tamper with copies of it). */
Modaltensor__V1__Open wt_open_message(void);

/* Uploads numel elements of dtype from data as storage id, in chunks of
 * chunk_bytes; 0 when every message was sent. */
int wt_upload(wt_session *s, uint64_t id, mt_dtype dtype, int64_t numel, const void *data,
              size_t chunk_bytes);
int wt_upload_chunk(wt_session *s, uint64_t id, int32_t dtype, int64_t numel, uint64_t offset,
                    const void *data, size_t len);
int wt_free(wt_session *s, size_t n, const uint64_t *ids);

/* Sends Sync and waits for SyncDone: its status code (>= 0), or -1 when
 * the stream failed. msg (may be NULL) receives the status message. */
int wt_sync(wt_session *s, char *msg, size_t len);

/* A view for downloads and node inputs; strides NULL means row-major
 * (none are sent). */
typedef struct wt_view {
  uint64_t id;
  int64_t offset;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int has_strides;
  int64_t strides[MT_MAX_DIMS];
} wt_view;

wt_view wt_view_of(uint64_t id, int ndim, const int64_t *shape);
wt_view wt_view_strided(uint64_t id, int64_t offset, int ndim, const int64_t *shape,
                        const int64_t *strides);

/* Downloads v into buf (at most cap bytes; *got tells how many came) and
 * returns the status code of the reply (>= 0), or -1 when the stream
 * failed or the chunks were malformed. */
int wt_download(wt_session *s, const wt_view *v, void *buf, size_t cap, size_t *got, char *msg,
                size_t len);

/* Downloads v handing each chunk to each (which returns 0 to go on), for
 * tensors too big to hold twice. Returns as wt_download. */
int wt_download_each(wt_session *s, const wt_view *v,
                     int (*each)(void *ctx, uint64_t offset, const void *data, size_t len),
                     void *ctx, char *msg, size_t len);

/* ---- graphs ---- */

#define WT_MAX_NODES 16
#define WT_MAX_INPUTS 4

typedef struct wt_graph {
  Modaltensor__V1__Graph graph;
  Modaltensor__V1__Node nodes[WT_MAX_NODES];
  Modaltensor__V1__Node *node_ptrs[WT_MAX_NODES];
  Modaltensor__V1__Attrs attrs[WT_MAX_NODES];
  Modaltensor__V1__TensorView inputs[WT_MAX_NODES][WT_MAX_INPUTS];
  Modaltensor__V1__TensorView *input_ptrs[WT_MAX_NODES][WT_MAX_INPUTS];
  Modaltensor__V1__TensorView into[WT_MAX_NODES];
  wt_view input_views[WT_MAX_NODES][WT_MAX_INPUTS];
  wt_view into_views[WT_MAX_NODES];
  Modaltensor__V1__Output outputs[WT_MAX_NODES][MTI_MAX_OUTPUTS];
  Modaltensor__V1__Output *output_ptrs[WT_MAX_NODES][MTI_MAX_OUTPUTS];
  int64_t out_shapes[WT_MAX_NODES][MTI_MAX_OUTPUTS][MT_MAX_DIMS];
} wt_graph;

void wt_graph_init(wt_graph *g);
/* Appends a node producing output_id (0 for none) of out_dtype and
 * out_shape; its attrs are zero (set them through the returned node). */
Modaltensor__V1__Node *wt_graph_node(wt_graph *g, mti_op op, uint64_t output_id,
                                     mt_dtype out_dtype, int out_ndim, const int64_t *out_shape);
/* Appends another output to the last node (ops with several outputs). */
void wt_graph_output(wt_graph *g, uint64_t output_id, mt_dtype out_dtype, int out_ndim,
                     const int64_t *out_shape);
/* Appends an input view to the last node. */
void wt_graph_input(wt_graph *g, const wt_view *v);
/* Makes the last node write into v instead of a new storage. */
void wt_graph_into(wt_graph *g, const wt_view *v);
int wt_graph_send(wt_session *s, wt_graph *g);

/* A typical worker is still serving: a new session uploads two tensors,
 * adds them and reads the right sum back. 0 when all of that worked. */
int wt_check_serving(const char *addr, const char *token);

#endif
