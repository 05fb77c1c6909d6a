/*
 * fuzz_safetensors.c - the safetensors header parser (core/safetensors_header.c)
 * on arbitrary bytes. An accepted header must keep the parser's promises:
 * entries in offset order tiling [0, data_bytes), extents that match their
 * shapes, names unique; anything else is a bug, reported by abort().
 */
#include <stdlib.h>
#include <string.h>

#include "core/safetensors_header.h"
#include "fuzz_worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

/* The promises of a parsed header (see safetensors_header.h). */
static void check_header(const mti_st_header *h) {
  uint64_t at = 0;
  for (int i = 0; i < h->count; i++) {
    const mti_st_entry *e = &h->entries[i];
    if (e->begin != at || e->end < e->begin || e->ndim < 0 || e->ndim > MT_MAX_DIMS) abort();
    for (int d = 0; d < e->ndim; d++)
      if (e->shape[d] < 0) abort();
    for (int j = 0; j < i; j++)
      if (!strcmp(h->entries[j].name, e->name)) abort();
    at = e->end;
  }
  if (h->count && at != h->data_bytes) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mti_st_header h;
  if (mti_st_parse("fuzz", (const char *)data, size, &h) == MT_OK) {
    check_header(&h);
    mti_st_header_free(&h);
  }
  return 0;
}
