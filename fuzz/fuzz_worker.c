/*
 * fuzz_worker.c - libFuzzer entry: one input is one session served by the
 * worker's own session code (see fuzz_worker.h).
 */
#include "fuzz_worker.h"

#include <grpc/grpc.h>
#include <stdlib.h>
#include <string.h>

#include "core/op_table.h"
#include "core/protocol.h"
#include "log.h"
#include "session.h"
#include "worker.h"

static mtw_options options;
static mtw_worker worker;
static uint8_t open_bytes[256];
static size_t open_len;

/* This build's Open, as the library sends it. */
static void pack_open(void) {
  Modaltensor__V1__Open open = MODALTENSOR__V1__OPEN__INIT;
  open.protocol_version = MTI_PROTOCOL_VERSION;
  open.op_count = MTI_OP_COUNT;
  open.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  open.client = "fuzz_worker";
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &open;
  open_len = modaltensor__v1__client_message__pack(&m, open_bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  grpc_init();
  mtw_log_set_level(MTW_LOG_ERROR);
  options.backend = "cpu";
  options.max_memory = FUZZ_MAX_MEMORY;
  options.max_node_work = FUZZ_MAX_NODE_WORK;
  options.idle_timeout_s = 1;
  options.log_level = MTW_LOG_ERROR;
  if (mtw_worker_setup(&worker, &options)) abort();
  pack_open();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int raw_open = data[0] & FUZZ_FLAG_RAW_OPEN;
  fake_call_feed(data + 1, size - 1, raw_open ? NULL : open_bytes, open_len);
  mtw_call call;
  memset(&call, 0, sizeof call);
  mtw_session_serve(&worker, &call);
  return 0;
}
