/*
 * wire.c - decoding with an allocation budget, encoding, and download
 * chunks assembled around their payload.
 */
#include "wire.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <stdlib.h>
#include <string.h>

typedef struct budget {
  size_t left;
} budget;

static void *budget_alloc(void *data, size_t size) {
  budget *b = data;
  if (size > b->left) return NULL;
  b->left -= size;
  return malloc(size);
}

static void budget_free(void *data, void *p) {
  (void)data;
  free(p);
}

ProtobufCMessage *mtw_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  size_t len = GRPC_SLICE_LENGTH(all);
  budget b = {MTW_UNPACK_FLOOR_BYTES};
  if (len <= (SIZE_MAX - b.left) / MTW_UNPACK_BYTES_PER_WIRE_BYTE)
    b.left += len * MTW_UNPACK_BYTES_PER_WIRE_BYTE;
  ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, len, GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return m;
}

void mtw_unpacked_free(ProtobufCMessage *m) {
  /* The budget allocator's memory is plain malloc: the default frees it. */
  if (m) protobuf_c_message_free_unpacked(m, NULL);
}

grpc_byte_buffer *mtw_pack(const ProtobufCMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return NULL;
  protobuf_c_message_pack(m, buf);
  grpc_slice slice = grpc_slice_new(buf, len, free);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* ---- Upload without decoding the payload ---- */

/* Below this size the generic decoder is as good. */
#define PEEK_MIN_MESSAGE 4096
#define PEEK_HEAD 64 /* more than the fields before the payload can take */

/* Reads a varint at *p (before end); 0 on success. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* The first n bytes of bb (n at most its length) into buf. */
static int copy_head(grpc_byte_buffer *bb, uint8_t *buf, size_t n) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
  size_t got = 0;
  grpc_slice s;
  while (got < n && grpc_byte_buffer_reader_next(&r, &s)) {
    size_t k = GRPC_SLICE_LENGTH(s) < n - got ? GRPC_SLICE_LENGTH(s) : n - got;
    memcpy(buf + got, GRPC_SLICE_START_PTR(s), k);
    got += k;
    grpc_slice_unref(s);
  }
  grpc_byte_buffer_reader_destroy(&r);
  return got == n ? 0 : -1;
}

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

int mtw_peek_upload(grpc_byte_buffer *bb, mtw_upload_header *h) {
  size_t total = grpc_byte_buffer_length(bb);
  if (total < PEEK_MIN_MESSAGE) return 0;
  uint8_t head[PEEK_HEAD];
  if (copy_head(bb, head, sizeof head)) return 0;
  const uint8_t *p = head, *end = head + sizeof head;
  uint64_t v, len;
  /* ClientMessage field 2 (upload), which must span the whole message */
  if (*p++ != ((2 << 3) | WIRE_LEN) || get_varint(&p, end, &len) ||
      len != total - (size_t)(p - head))
    return 0;
  memset(h, 0, sizeof *h);
  unsigned last_field = 0;
  for (;;) {
    uint64_t tag;
    if (get_varint(&p, end, &tag)) return 0;
    unsigned field = (unsigned)(tag >> 3), type = (unsigned)(tag & 7);
    if (field <= last_field || field > 5) return 0; /* out of order, repeated, unknown */
    last_field = field;
    if (field == 5) {
      if (type != WIRE_LEN || get_varint(&p, end, &len)) return 0;
      h->data_pos = (size_t)(p - head);
      /* the payload must run to the end: nothing may follow it */
      if (len != total - h->data_pos) return 0;
      h->data_len = (size_t)len;
      return 1;
    }
    if (type != WIRE_VARINT || get_varint(&p, end, &v)) return 0;
    switch (field) {
    case 1: h->id = v; break;
    case 2: h->dtype = (int32_t)(uint32_t)v; break; /* int32: the low 32 bits */
    case 3: h->numel = (int64_t)v; break;
    default: h->offset = v; break;
    }
  }
}

int mtw_bytes_each(grpc_byte_buffer *bb, size_t pos,
                   int (*sink)(void *ctx, const uint8_t *p, size_t n), void *ctx) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
  int rc = 0;
  grpc_slice s;
  while (rc == 0 && grpc_byte_buffer_reader_next(&r, &s)) {
    size_t n = GRPC_SLICE_LENGTH(s);
    const uint8_t *start = GRPC_SLICE_START_PTR(s);
    if (pos >= n) {
      pos -= n;
    } else {
      rc = sink(ctx, start + pos, n - pos);
      pos = 0;
    }
    grpc_slice_unref(s);
  }
  grpc_byte_buffer_reader_destroy(&r);
  return rc;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Wire tags: (field number << 3) | wire type (0 varint, 2 length-delimited). */
enum {
  TAG_WORKER_CHUNK = (3 << 3) | 2,
  TAG_CHUNK_REQUEST_ID = (1 << 3) | 0,
  TAG_CHUNK_STATUS = (2 << 3) | 2,
  TAG_CHUNK_OFFSET = (3 << 3) | 0,
  TAG_CHUNK_DATA = (4 << 3) | 2,
  TAG_CHUNK_LAST = (5 << 3) | 0
};

grpc_byte_buffer *mtw_chunk_message(uint64_t request_id, uint64_t offset, int last,
                                    grpc_slice data) {
  size_t n = GRPC_SLICE_LENGTH(data);
  /* The status is an empty Status (code 0 = MT_OK), present so that every
   * reply carries one. */
  size_t inner = 1 + varint_size(request_id) + 2 + 1 + varint_size(offset) + (last ? 2 : 0) + 1 +
                 varint_size(n) + n;
  uint8_t head[64];
  size_t h = 0;
  head[h++] = TAG_WORKER_CHUNK;
  h += put_varint(head + h, inner);
  head[h++] = TAG_CHUNK_REQUEST_ID;
  h += put_varint(head + h, request_id);
  head[h++] = TAG_CHUNK_STATUS;
  head[h++] = 0;
  head[h++] = TAG_CHUNK_OFFSET;
  h += put_varint(head + h, offset);
  if (last) {
    head[h++] = TAG_CHUNK_LAST;
    head[h++] = 1;
  }
  head[h++] = TAG_CHUNK_DATA;
  h += put_varint(head + h, n);
  grpc_slice slices[2] = {grpc_slice_from_copied_buffer((const char *)head, h), data};
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, 2);
  grpc_slice_unref(slices[0]);
  grpc_slice_unref(slices[1]);
  return bb;
}
