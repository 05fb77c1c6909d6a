/*
 * transport.h - gRPC C core plumbing of the client: channels, unary calls
 * and the bidirectional Session stream. Knows messages only as protobuf-c
 * structs; knows nothing of tensors.
 */
#ifndef MTI_TRANSPORT_H
#define MTI_TRANSPORT_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "modaltensor.h"
#include "modaltensor.pb-c.h"

#include "remote/address.h"

typedef struct mti_channel mti_channel;
typedef struct mti_stream mti_stream;

/* How to reach a worker, beyond its address. */
typedef struct mti_channel_config {
  const char *token;     /* sent as "authorization: Bearer TOKEN"; NULL or "": none */
  mti_tls_mode tls_mode; /* MODALTENSOR_TLS, for addresses without a scheme */
  const char *tls_ca;    /* MODALTENSOR_TLS_CA: PEM file of the CAs to trust; NULL: gRPC's
                          * default roots (the system's) */
} mti_channel_config;

/* A channel to address (any form of address.h), TLS or plain as address.h
 * decides. MT_ERR_INVALID_ARGUMENT for a malformed address, an unreadable
 * CA file, or a token that would travel in clear to a non-loopback host. */
mt_status mti_channel_create(const char *fn, const char *address, const mti_channel_config *cfg,
                             mti_channel **out);
void mti_channel_destroy(mti_channel *ch);

/* Starts connecting ch in the background (no wait), so that the transport
 * is up, or nearly, when the first call needs it. */
void mti_channel_connect(mti_channel *ch);
const char *mti_channel_target(const mti_channel *ch);

/* After a wait on ch ran out of time: when ch speaks TLS and its last
 * connection attempt failed in the TLS handshake, sets that error
 * (MT_ERR_UNAVAILABLE, naming MODALTENSOR_TLS_CA) and returns it; MT_OK
 * when nothing points at TLS. Takes at most a few seconds. */
mt_status mti_channel_tls_failure(const char *fn, mti_channel *ch);

/* One unary call of method with request req; the reply is unpacked with
 * reply_desc into *reply (free with protobuf_c_message_free_unpacked).
 * Waits at most timeout_ms, including for the server to come up. */
mt_status mti_channel_unary(const char *fn, mti_channel *ch, const char *method,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                            ProtobufCMessage **reply);

/* Opens a Session stream (no message sent yet), waiting at most timeout_ms
 * for the worker to accept connections: MT_ERR_TIMEOUT when none did. */
mt_status mti_stream_open(const char *fn, mti_channel *ch, int64_t timeout_ms, mti_stream **out);

/* Sends msg; returns when gRPC has taken it (flow control may make that
 * wait, at most timeout_ms). */
mt_status mti_stream_send(const char *fn, mti_stream *s, const ProtobufCMessage *msg,
                          int64_t timeout_ms);

/* Receives the next WorkerMessage, waiting at most timeout_ms. */
mt_status mti_stream_recv(const char *fn, mti_stream *s, int64_t timeout_ms,
                          Modaltensor__V1__WorkerMessage **out);

/* The first message the worker sent (unread) before the stream failed: a
 * refusal that explains why a send failed. MT_ERR_UNAVAILABLE if none. */
mt_status mti_stream_recv_left(const char *fn, mti_stream *s,
                               Modaltensor__V1__WorkerMessage **out);

/* Ends the stream (cancelling it if still open) and frees it. */
void mti_stream_close(mti_stream *s);

#endif
