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

typedef struct mti_channel mti_channel;
typedef struct mti_stream mti_stream;

/* A channel to target ("unix:PATH" or "host:port" on loopback); token may be
 * NULL. Non-loopback targets are refused (MT_ERR_UNSUPPORTED): they need
 * TLS, which this build does not speak. */
mt_status mti_channel_create(const char *fn, const char *target, const char *token,
                             mti_channel **out);
void mti_channel_destroy(mti_channel *ch);
const char *mti_channel_target(const mti_channel *ch);

/* One unary call of method with request req; the reply is unpacked with
 * reply_desc into *reply (free with protobuf_c_message_free_unpacked).
 * Waits at most timeout_ms, including for the server to come up. */
mt_status mti_channel_unary(const char *fn, mti_channel *ch, const char *method,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                            ProtobufCMessage **reply);

/* Opens a Session stream (no message sent yet), waiting at most timeout_ms
 * for the worker to accept connections. */
mt_status mti_stream_open(const char *fn, mti_channel *ch, int64_t timeout_ms, mti_stream **out);

/* Sends msg; returns when gRPC has taken it (flow control may make that
 * wait, at most timeout_ms). */
mt_status mti_stream_send(const char *fn, mti_stream *s, const ProtobufCMessage *msg,
                          int64_t timeout_ms);

/* Receives the next WorkerMessage, waiting at most timeout_ms. */
mt_status mti_stream_recv(const char *fn, mti_stream *s, int64_t timeout_ms,
                          Modaltensor__V1__WorkerMessage **out);

/* Ends the stream (cancelling it if still open) and frees it. */
void mti_stream_close(mti_stream *s);

#endif
