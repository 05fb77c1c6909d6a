/*
 * id_numbering.c - first-appearance numbering with an open-addressing table
 * (linear in the ids: graph messages carry thousands of them).
 */
#include "core/id_numbering.h"

#include <stdlib.h>

#include "core/error.h"

typedef struct slot {
  uint64_t id; /* 0: empty */
  int64_t number;
} slot;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return x ^ (x >> 33);
}

mt_status mti_number_ids(const char *fn, const uint64_t *ids, size_t n, int64_t *param,
                         size_t *nparams) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  slot *t = calloc(cap, sizeof *t);
  if (!t) return mti_error_oom(fn, cap * sizeof *t);
  size_t count = 0;
  for (size_t k = 0; k < n; k++) {
    param[k] = -1;
    if (!ids[k]) continue;
    size_t i = (size_t)mix(ids[k]) & (cap - 1);
    while (t[i].id && t[i].id != ids[k]) i = (i + 1) & (cap - 1);
    if (!t[i].id) t[i] = (slot){ids[k], (int64_t)count++};
    param[k] = t[i].number;
  }
  free(t);
  *nparams = count;
  return MT_OK;
}
