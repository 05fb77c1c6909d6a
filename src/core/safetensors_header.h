/*
 * safetensors_header.h - the header of a safetensors file, parsed and
 * checked whole (https://github.com/huggingface/safetensors, "Format").
 *
 * A file is: an 8-byte little-endian header length N, N bytes of JSON, then
 * the data. The JSON is an object: each key names a tensor with
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (offsets
 * into the data, which the tensors must cover exactly, in order and
 * without gaps or overlaps), and the optional "__metadata__" maps strings
 * to strings. No I/O here: the parser sees bytes, so it is fuzzed alone.
 */
#ifndef MTI_SAFETENSORS_HEADER_H
#define MTI_SAFETENSORS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "modaltensor.h"

/* Most header bytes accepted (the format's reference implementation
 * refuses more than 100 MB too). */
#define MTI_SAFETENSORS_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct mti_st_entry {
  char *name;        /* NUL-terminated, unescaped */
  char dtype[12];    /* the file's spelling: "F32", "BF16", "U16", ... */
  int known;         /* 1 when dtype is one of ours (then `dtype_value`) */
  mt_dtype dtype_value;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  uint64_t begin, end; /* byte offsets into the data */
} mti_st_entry;

typedef struct mti_st_header {
  mti_st_entry *entries; /* in the order of their offsets */
  int count;
  uint64_t data_bytes;   /* the data the entries cover: the last end */
} mti_st_header;

/* Parses json[0..len) (the header bytes) into h. Checks everything: JSON
 * syntax, unique names, each entry's fields (every dtype of the format is
 * accepted; `known` says whether we can load it), shapes of at most
 * MT_MAX_DIMS non-negative sizes whose bytes match end - begin, offsets
 * that tile [0, data_bytes) exactly. On failure h is empty and the thread's
 * error names fn and what is wrong (MT_ERR_INVALID_ARGUMENT). */
mt_status mti_st_parse(const char *fn, const char *json, size_t len, mti_st_header *h);

/* Frees h's entries (h may be empty). */
void mti_st_header_free(mti_st_header *h);

/* The file's dtype spelling of d ("F32", ...). */
const char *mti_st_dtype_name(mt_dtype d);

#endif
