/*
 * worker.h - what every call handler shares: options, backend, memory
 * budgets and counters. Set up before the server starts, read-only after
 * (budgets and counters are atomic).
 */
#ifndef MTW_WORKER_H
#define MTW_WORKER_H

#include <stdint.h>
#include <time.h>

#include "backend.h"
#include "core/protocol.h" /* MTI_PROTOCOL_VERSION, method paths, limits */
#include "options.h"
#include "stats.h"
#include "storage.h"

typedef struct mtw_worker {
  const mtw_options *options;
  mtw_backend *backend;
  int device_count;
  mtw_memory *memory; /* one budget per device */
  mtw_stats stats;
  struct timespec started; /* CLOCK_MONOTONIC */
} mtw_worker;

/* Checks a client's protocol version and op table; MT_OK, or
 * MT_ERR_UNSUPPORTED with the reason in buf. */
mt_status mtw_check_compatible(uint32_t protocol_version, uint64_t op_table_hash,
                               uint32_t op_count, char *buf, size_t len);

#endif
