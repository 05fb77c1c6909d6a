/*
 * content.c - content addressing on the client's side. A session knows
 * which digests its worker holds (announced in Opened, or sent by this
 * session) and sends those uploads by reference, keeping their bytes until
 * the next sync answers: a worker that turns out not to hold them after
 * all (evicted, a cache file that failed its check) asks with Need, and
 * gets them at once, within that same sync.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "remote/client.h"

int content_known(const session *s, const uint8_t d[MTI_DIGEST_BYTES]) {
  for (size_t i = 0; i < s->n_known; i++)
    if (!memcmp(s->known[i], d, MTI_DIGEST_BYTES)) return 1;
  return 0;
}

void content_learn(session *s, const uint8_t d[MTI_DIGEST_BYTES]) {
  if (content_known(s, d)) return;
  if (s->n_known == s->cap_known) {
    size_t cap = s->cap_known ? 2 * s->cap_known : 64;
    void *p = realloc(s->known, cap * sizeof *s->known);
    if (!p) return; /* a hint only: the bytes are sent again */
    s->known = p;
    s->cap_known = cap;
  }
  memcpy(s->known[s->n_known++], d, MTI_DIGEST_BYTES);
}

/* Opened.held is a hint: entries that are not digests are skipped. */
void content_learn_opened(session *s, const Modaltensor__V1__Opened *o) {
  for (size_t i = 0; i < o->n_held && i < MTI_HELD_MAX; i++)
    if (o->held[i].len == MTI_DIGEST_BYTES) content_learn(s, o->held[i].data);
}

/* Takes over h->data (freed here on failure). */
mt_status content_hold(const char *fn, session *s, const held_upload *h) {
  if (s->n_held == s->cap_held) {
    size_t cap = s->cap_held ? 2 * s->cap_held : 16;
    void *p = realloc(s->held, cap * sizeof *s->held);
    if (!p) {
      free(h->data);
      return mti_error_oom(fn, cap * sizeof *s->held);
    }
    s->held = p;
    s->cap_held = cap;
  }
  s->held[s->n_held++] = *h;
  s->held_bytes += h->len;
  atomic_fetch_add_explicit(&registry.counters.bytes_skipped, h->len, memory_order_relaxed);
  atomic_fetch_add_explicit(&registry.counters.uploads_skipped, 1, memory_order_relaxed);
  return MT_OK;
}

static held_upload *find_held(session *s, uint64_t id) {
  for (size_t i = 0; i < s->n_held; i++)
    if (s->held[i].id == id) return &s->held[i];
  return NULL;
}

/* A Need names a storage this session sent by reference, with the same
 * digest, and only once (the bytes are dropped once sent); anything else
 * is a worker this client cannot trust to be in step with it. */
mt_status content_answer_need(const char *fn, session *s, const Modaltensor__V1__Need *need) {
  held_upload *h = find_held(s, need->id);
  if (!h || !h->data)
    return mti_error(MT_ERR_REMOTE,
                     "%s: worker %s asked (Need) for the bytes of storage %llu, which this "
                     "session did not send by reference (or already sent): a malformed reply",
                     fn, s->w->target, (unsigned long long)need->id);
  if (need->digest.len != MTI_DIGEST_BYTES || memcmp(need->digest.data, h->digest, MTI_DIGEST_BYTES))
    return mti_error(MT_ERR_REMOTE,
                     "%s: worker %s asked (Need) for the bytes of storage %llu under another "
                     "digest than the one sent: a malformed reply",
                     fn, s->w->target, (unsigned long long)need->id);
  atomic_fetch_sub_explicit(&registry.counters.bytes_skipped, h->len, memory_order_relaxed);
  atomic_fetch_sub_explicit(&registry.counters.uploads_skipped, 1, memory_order_relaxed);
  if (!s->need_waited) /* the Needs of one sync come together: one more round trip */
    atomic_fetch_add_explicit(&registry.counters.round_trips, 1, memory_order_relaxed);
  s->need_waited = 1;
  mt_status st = transfer_send_bytes(fn, s, h);
  free(h->data);
  h->data = NULL;
  return st;
}

/* After a sync answered: every reference before it was resolved. */
void content_release(session *s) {
  for (size_t i = 0; i < s->n_held; i++) free(s->held[i].data);
  s->n_held = 0;
  s->held_bytes = 0;
  s->need_waited = 0;
}

/* The session ended: what its worker held is learned again at the next Open. */
void content_forget(session *s) {
  content_release(s);
  s->n_known = 0;
}
