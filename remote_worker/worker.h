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
  struct mtw_content *content; /* tensor bytes by digest (cache.h) */
  struct timespec started; /* CLOCK_MONOTONIC */
  uint64_t max_node_work;  /* elements one node may touch (mti_op_work) */
} mtw_worker;

/* The default work limits: about a minute of one core, and what an H100
 * does in seconds (a 32768^3 matmul is 2^45). */
#define MTW_DEFAULT_NODE_WORK_CPU (1ull << 38)
#define MTW_DEFAULT_NODE_WORK_CUDA (1ull << 46)

/* Opens the backend and sets up budgets and counters from o (kept, not
 * copied); 0 on success, else -1 with the reason on stderr. */
int mtw_worker_setup(mtw_worker *w, const mtw_options *o);

/* Frees what mtw_worker_setup made, closing the backend. */
void mtw_worker_teardown(mtw_worker *w);

/* Checks a client's protocol version and op table; MT_OK, or
 * MT_ERR_UNSUPPORTED with the reason in buf. */
mt_status mtw_check_compatible(uint32_t protocol_version, uint64_t op_table_hash,
                               uint32_t op_count, char *buf, size_t len);

#endif
