/*
 * wire.h - protobuf-c messages in and out of gRPC byte buffers.
 */
#ifndef MTW_WIRE_H
#define MTW_WIRE_H

#include <grpc/byte_buffer.h>
#include <stddef.h>
#include <stdint.h>

#include "modaltensor.pb-c.h"

#include "core/protocol.h" /* MTI_MAX_MESSAGE_BYTES, MTI_CHUNK_BYTES */

/* Decodes bb as a message of descriptor d. Allocation while decoding is
 * capped (MTW_UNPACK_BUDGET), so a small hostile message cannot make the
 * worker allocate gigabytes of structs. NULL when bb does not decode.
 * Free with mtw_unpacked_free. */
ProtobufCMessage *mtw_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);
void mtw_unpacked_free(ProtobufCMessage *m);

/* Decoded structs may take this many bytes per byte of wire, plus a floor:
 * legitimate graphs take about 10, empty submessages up to about 55. */
#define MTW_UNPACK_BYTES_PER_WIRE_BYTE 24u
#define MTW_UNPACK_FLOOR_BYTES (1u << 20)

/* The fields of an Upload chunk, with its payload left where gRPC put it:
 * bytes [data_pos, data_pos + data_len) of the message. */
typedef struct mtw_upload_header {
  uint64_t id;
  int32_t dtype;
  int64_t numel;
  uint64_t offset;
  size_t data_pos, data_len;
} mtw_upload_header;

/* Reads a ClientMessage that holds an Upload straight from bb's slices,
 * without decoding (and so copying) its payload: 1 with *h filled when bb
 * is a large Upload in the plain layout encoders write (fields in number
 * order, each once, the payload last), else 0 and the caller decodes bb
 * with mtw_unpack. Both ways read the same values. */
int mtw_peek_upload(grpc_byte_buffer *bb, mtw_upload_header *h);

/* Hands bytes [pos, length) of bb to sink, one slice piece at a time;
 * stops at sink's first non-zero return and returns it. */
int mtw_bytes_each(grpc_byte_buffer *bb, size_t pos,
                   int (*sink)(void *ctx, const uint8_t *p, size_t n), void *ctx);

/* Encodes m into a new byte buffer; NULL when memory runs out. */
grpc_byte_buffer *mtw_pack(const ProtobufCMessage *m);

/* A WorkerMessage holding a DownloadChunk with an OK status whose bytes are the slice
 * data (taken over by the buffer): the protobuf header is encoded here and
 * the payload is never copied. NULL when memory runs out (data is
 * released all the same). */
grpc_byte_buffer *mtw_chunk_message(uint64_t request_id, uint64_t offset, int last,
                                    grpc_slice data);

#endif
