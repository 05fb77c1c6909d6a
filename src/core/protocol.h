/*
 * protocol.h - constants of the wire protocol shared by the client library
 * and the worker (proto/modaltensor.proto is the message contract).
 */
#ifndef MTI_PROTOCOL_H
#define MTI_PROTOCOL_H

/* Bumped when the meaning of existing messages changes (2: Node.outputs,
 * Attrs.s2 and Attrs.ints; 3: Content, Need, Opened.held,
 * Graph.template_id and Invoke). */
#define MTI_PROTOCOL_VERSION 3u

/* Uploads of at least this many bytes are named by their SHA-256 (below,
 * hashing and holding a copy cost more than resending). */
#define MTI_CONTENT_MIN_BYTES (1u << 20)
#define MTI_DIGEST_BYTES 32u
/* The most digests an Opened announces. */
#define MTI_HELD_MAX 4096u

/* Graph templates a session may keep on its worker (Graph.template_id). */
#define MTI_TEMPLATES_MAX 64u

/* gRPC method paths of service modaltensor.v1.Worker. */
#define MTI_METHOD_HELLO "/modaltensor.v1.Worker/Hello"
#define MTI_METHOD_HEALTH "/modaltensor.v1.Worker/Health"
#define MTI_METHOD_STATS "/modaltensor.v1.Worker/Stats"
#define MTI_METHOD_SESSION "/modaltensor.v1.Worker/Session"

/* Bulk data moves in chunks of this size (measured here: 1 MiB messages on a
 * stream run at raw-TCP speed; one huge message is several times slower). */
#define MTI_CHUNK_BYTES (1u << 20)

/* Largest message either side accepts; graphs are split to stay below it. */
#define MTI_MAX_MESSAGE_BYTES (16u << 20)

#endif
