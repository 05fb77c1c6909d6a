/*
 * stats.h - counters per session and in total, read by the Stats call.
 *
 * A session's thread is the only writer of its counters; Stats calls read
 * them from other threads, so every counter is atomic (relaxed: they are
 * statistics, not synchronisation). The registry's mutex only guards the
 * list of sessions, so a session cannot vanish while Stats reads it.
 */
#ifndef MTW_STATS_H
#define MTW_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "modaltensor.pb-c.h"

typedef enum mtw_counter {
  MTW_GRAPHS,
  MTW_NODES,
  MTW_SYNCS,
  MTW_BYTES_IN,  /* upload payload */
  MTW_BYTES_OUT, /* download payload */
  MTW_LIVE_TENSORS,
  MTW_LIVE_BYTES,
  MTW_MESSAGES, /* client messages received on session streams */
  MTW_COUNTER_COUNT
} mtw_counter;

typedef struct mtw_counters {
  _Atomic uint64_t v[MTW_COUNTER_COUNT];
} mtw_counters;

/* One open session's counters; lives inside the session. */
typedef struct mtw_session_stats {
  uint64_t session_id;
  mtw_counters counters;
  struct mtw_session_stats *prev, *next;
} mtw_session_stats;

typedef struct mtw_stats {
  mtw_counters total; /* since start; live_* are current */
  pthread_mutex_t lock;
  mtw_session_stats *sessions;
  uint32_t open_sessions;
} mtw_stats;

void mtw_stats_init(mtw_stats *st);
void mtw_stats_destroy(mtw_stats *st);

/* Adds the session to the registry and gives it a fresh id (from 1). */
void mtw_stats_register(mtw_stats *st, mtw_session_stats *ss);
void mtw_stats_unregister(mtw_stats *st, mtw_session_stats *ss);

/* Adds delta to counter c of the session and of the total. */
void mtw_stats_add(mtw_stats *st, mtw_session_stats *ss, mtw_counter c, uint64_t delta);
void mtw_stats_sub(mtw_stats *st, mtw_session_stats *ss, mtw_counter c, uint64_t delta);

/* Fills reply (whose status the caller sets) with the sessions: all when
 * session_id is 0, else that one; and, for an admin, the worker's total
 * and open session count. Returns 0, or -1 when session_id names no open
 * session or memory ran out. Either way, release what it filled with
 * mtw_stats_reply_free. */
int mtw_stats_reply_fill(mtw_stats *st, uint64_t session_id, int admin,
                         Modaltensor__V1__StatsReply *reply);
void mtw_stats_reply_free(Modaltensor__V1__StatsReply *reply);

#endif
