/*
 * stats.c - the counter registry.
 */
#include "stats.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

void mtw_stats_init(mtw_stats *st) {
  for (int i = 0; i < MTW_COUNTER_COUNT; i++) atomic_init(&st->total.v[i], 0);
  pthread_mutex_init(&st->lock, NULL);
  st->sessions = NULL;
  st->open_sessions = 0;
}

void mtw_stats_destroy(mtw_stats *st) { pthread_mutex_destroy(&st->lock); }

/* 62 random bits (positive as an int64, never 0), from the kernel; a
 * clock-mixed fallback only where getrandom fails. */
static uint64_t random_id(void) {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    v = ((uint64_t)now.tv_sec * 1000000007u) ^ (uint64_t)now.tv_nsec * 0x9e3779b97f4a7c15ull;
  }
  v >>= 2;
  return v ? v : 1;
}

/* A session id no open session has (st locked). Unguessable: naming one
 * is what lets a client read its session's counters (server.c). */
static uint64_t unused_session_id(const mtw_stats *st) {
  for (;;) {
    uint64_t id = random_id();
    const mtw_session_stats *ss = st->sessions;
    while (ss && ss->session_id != id) ss = ss->next;
    if (!ss) return id;
  }
}

void mtw_stats_register(mtw_stats *st, mtw_session_stats *ss) {
  for (int i = 0; i < MTW_COUNTER_COUNT; i++) atomic_init(&ss->counters.v[i], 0);
  pthread_mutex_lock(&st->lock);
  ss->session_id = unused_session_id(st);
  ss->prev = NULL;
  ss->next = st->sessions;
  if (st->sessions) st->sessions->prev = ss;
  st->sessions = ss;
  st->open_sessions++;
  pthread_mutex_unlock(&st->lock);
}

void mtw_stats_unregister(mtw_stats *st, mtw_session_stats *ss) {
  pthread_mutex_lock(&st->lock);
  if (ss->prev) ss->prev->next = ss->next;
  else st->sessions = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  st->open_sessions--;
  pthread_mutex_unlock(&st->lock);
}

void mtw_stats_add(mtw_stats *st, mtw_session_stats *ss, mtw_counter c, uint64_t delta) {
  atomic_fetch_add_explicit(&ss->counters.v[c], delta, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->total.v[c], delta, memory_order_relaxed);
}

void mtw_stats_sub(mtw_stats *st, mtw_session_stats *ss, mtw_counter c, uint64_t delta) {
  atomic_fetch_sub_explicit(&ss->counters.v[c], delta, memory_order_relaxed);
  atomic_fetch_sub_explicit(&st->total.v[c], delta, memory_order_relaxed);
}

static Modaltensor__V1__Counters *counters_message(const mtw_counters *c) {
  Modaltensor__V1__Counters *m = malloc(sizeof *m);
  if (!m) return NULL;
  modaltensor__v1__counters__init(m);
  uint64_t v[MTW_COUNTER_COUNT];
  for (int i = 0; i < MTW_COUNTER_COUNT; i++)
    v[i] = atomic_load_explicit(&c->v[i], memory_order_relaxed);
  m->graphs = v[MTW_GRAPHS];
  m->nodes = v[MTW_NODES];
  m->syncs = v[MTW_SYNCS];
  m->bytes_in = v[MTW_BYTES_IN];
  m->bytes_out = v[MTW_BYTES_OUT];
  m->live_tensors = v[MTW_LIVE_TENSORS];
  m->live_bytes = v[MTW_LIVE_BYTES];
  m->messages = v[MTW_MESSAGES];
  return m;
}

static Modaltensor__V1__SessionCounters *session_message(const mtw_session_stats *ss) {
  Modaltensor__V1__SessionCounters *m = malloc(sizeof *m);
  if (!m) return NULL;
  modaltensor__v1__session_counters__init(m);
  m->session_id = ss->session_id;
  m->counters = counters_message(&ss->counters);
  if (!m->counters) {
    free(m);
    return NULL;
  }
  return m;
}

int mtw_stats_reply_fill(mtw_stats *st, uint64_t session_id, int admin,
                         Modaltensor__V1__StatsReply *reply) {
  int rc = 0;
  pthread_mutex_lock(&st->lock);
  if (admin) {
    reply->open_sessions = st->open_sessions;
    reply->total = counters_message(&st->total);
    if (!reply->total) rc = -1;
  }
  size_t wanted = 0;
  for (const mtw_session_stats *ss = st->sessions; ss; ss = ss->next)
    wanted += session_id == 0 || ss->session_id == session_id;
  reply->sessions = wanted ? calloc(wanted, sizeof *reply->sessions) : NULL;
  if (wanted && !reply->sessions) rc = -1;
  for (const mtw_session_stats *ss = st->sessions; ss && rc == 0; ss = ss->next) {
    if (session_id && ss->session_id != session_id) continue;
    Modaltensor__V1__SessionCounters *m = session_message(ss);
    if (!m) rc = -1;
    else reply->sessions[reply->n_sessions++] = m;
  }
  pthread_mutex_unlock(&st->lock);
  if (session_id && wanted == 0) rc = -1;
  return rc;
}

void mtw_stats_reply_free(Modaltensor__V1__StatsReply *reply) {
  for (size_t i = 0; i < reply->n_sessions; i++) {
    free(reply->sessions[i]->counters);
    free(reply->sessions[i]);
  }
  free(reply->sessions);
  free(reply->total);
  reply->sessions = NULL;
  reply->n_sessions = 0;
  reply->total = NULL;
}
