/*
 * fake_call.c - call.h without gRPC's server: messages come from the fuzz
 * input, replies are checked and dropped. Single-threaded, like a session.
 */
#include <stdio.h>
#include <stdlib.h>

#include <grpc/byte_buffer_reader.h>

#include "call.h"
#include "fuzz_worker.h"
#include "modaltensor.pb-c.h"

static struct {
  const uint8_t *data, *first;
  size_t size, pos, first_len;
} feed;

void fake_call_feed(const uint8_t *data, size_t size, const uint8_t *first, size_t first_len) {
  feed.data = data;
  feed.size = size;
  feed.pos = 0;
  feed.first = first;
  feed.first_len = first_len;
}

static grpc_byte_buffer *buffer_of(const uint8_t *p, size_t n) {
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)p, n);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

int mtw_call_start(mtw_call *c) {
  c->started = 1;
  return 0;
}

/* The next record; a truncated last record is delivered as far as it
 * goes, and the end of the input is the client's half-close. */
mtw_recv_result mtw_call_recv(mtw_call *c, int64_t timeout_ms, const char *why,
                              grpc_byte_buffer **out) {
  (void)c, (void)timeout_ms, (void)why;
  *out = NULL;
  if (feed.first) {
    *out = buffer_of(feed.first, feed.first_len);
    feed.first = NULL;
    return MTW_RECV_MESSAGE;
  }
  if (feed.size - feed.pos < 2) return MTW_RECV_END;
  size_t len = (size_t)feed.data[feed.pos] | (size_t)feed.data[feed.pos + 1] << 8;
  feed.pos += 2;
  if (len > feed.size - feed.pos) len = feed.size - feed.pos;
  *out = buffer_of(feed.data + feed.pos, len);
  feed.pos += len;
  return MTW_RECV_MESSAGE;
}

/* With FUZZ_WORKER_VERBOSE set, what each reply says (for writing seeds). */
static void print_reply(const Modaltensor__V1__WorkerMessage *m) {
  const Modaltensor__V1__Status *st =
      m->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED ? m->opened->status
      : m->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE ? m->sync_done->status
      : m->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_CHUNK
          ? m->chunk->status
          : NULL;
  fprintf(stderr, "reply %d: status %d %s\n", (int)m->kind_case, st ? st->code : 0,
          st && st->message ? st->message : "");
}

/* A reply the worker cannot encode, or one that does not decode, is a bug
 * the fuzzer must see: abort. */
int mtw_call_send(mtw_call *c, grpc_byte_buffer *bb, int64_t timeout_ms, const char *why) {
  (void)c, (void)timeout_ms, (void)why;
  if (!bb) return -1;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) abort();
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  Modaltensor__V1__WorkerMessage *m = modaltensor__v1__worker_message__unpack(
      NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  grpc_byte_buffer_destroy(bb);
  if (!m) {
    fprintf(stderr, "fuzz_worker: the worker sent a reply that does not decode\n");
    abort();
  }
  if (getenv("FUZZ_WORKER_VERBOSE")) print_reply(m);
  modaltensor__v1__worker_message__free_unpacked(m, NULL);
  return 0;
}

/* A fuzz input never cancels: nothing to watch. */
int mtw_call_watch(mtw_call *c) {
  (void)c;
  return 0;
}

const atomic_int *mtw_call_stop_flag(mtw_call *c) { return &c->stop; }

int mtw_call_cancelled(mtw_call *c) {
  (void)c;
  return 0;
}

void mtw_call_finish(mtw_call *c, grpc_status_code code, const char *details) {
  (void)c, (void)code, (void)details;
}
