/*
 * wire_client.h - a raw gRPC client for testing modaltensor-worker.
 *
 * Speaks to the worker the way the library will, but one level lower: the
 * tests can send any bytes, half-finished messages or crafted ids. Every
 * call has a deadline, so a misbehaving worker fails a test instead of
 * hanging it.
 */
#ifndef WC_WIRE_CLIENT_H
#define WC_WIRE_CLIENT_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

#include "modaltensor.pb-c.h"

#define WC_METHOD(name) "/modaltensor.v1.Worker/" name

typedef struct wc_channel wc_channel;
typedef struct wc_stream wc_stream;

/* A channel to target ("127.0.0.1:port"); token NULL sends no
 * authorization metadata. NULL when grpc refuses the target. */
wc_channel *wc_connect(const char *target, const char *token);

/* The same over TLS, trusting the CA certificates in ca_pem (PEM text). */
wc_channel *wc_connect_tls(const char *target, const char *token, const char *ca_pem);
void wc_channel_free(wc_channel *ch);

/* Sends req_len bytes to a unary method and waits (timeout_ms) for the end.
 * On OK, *reply (malloc'ed, free it) holds the reply bytes. details (may be
 * NULL) receives the status details. Returns the gRPC status. */
grpc_status_code wc_unary(wc_channel *ch, const char *method, const void *req, size_t req_len,
                          uint8_t **reply, size_t *reply_len, char *details, size_t details_len,
                          int timeout_ms);

/* Hello/Stats with messages; NULL on a transport failure. Free the replies
 * with protobuf_c_message_free_unpacked(&r->base, NULL). */
Modaltensor__V1__HelloReply *wc_hello(wc_channel *ch, uint32_t protocol_version, uint64_t hash,
                                      uint32_t op_count);
Modaltensor__V1__StatsReply *wc_stats(wc_channel *ch, uint64_t session_id);

/* Opens a Session stream on method (normally WC_METHOD("Session")); every
 * operation on it must finish within timeout_ms of opening. */
wc_stream *wc_stream_open(wc_channel *ch, const char *method, int timeout_ms);

/* Sends raw bytes as one message; 0 on success. */
int wc_stream_send_bytes(wc_stream *s, const void *buf, size_t len);
/* Sends a packed ClientMessage; 0 on success. */
int wc_stream_send(wc_stream *s, const Modaltensor__V1__ClientMessage *m);

/* The next reply, decoded; NULL when the stream ended or failed (see
 * wc_stream_finish for why). Free with wc_message_free. */
Modaltensor__V1__WorkerMessage *wc_stream_recv(wc_stream *s);
void wc_message_free(Modaltensor__V1__WorkerMessage *m);

/* Half-closes (if not yet) and waits for the final status. */
grpc_status_code wc_stream_finish(wc_stream *s, char *details, size_t details_len);

/* Cancels the call if it is not finished, and frees the stream. */
void wc_stream_free(wc_stream *s);

#endif
