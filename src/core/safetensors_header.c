/*
 * safetensors_header.c - a strict parser for the JSON header of a
 * safetensors file (safetensors_header.h).
 *
 * Written here rather than taken from a JSON library: the header is a small
 * fixed grammar (one object of entries, strings, arrays of integers), and it
 * needs what general parsers do not give together: exact 64-bit integers
 * (offsets past 2^53 must not round), duplicate names refused, unknown
 * fields refused, and a bounded, allocation-light pass that is fuzzed
 * (fuzz/fuzz_safetensors.c). Anything outside the grammar is an error that
 * says where.
 */
#include "core/safetensors_header.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct cursor {
  const char *fn;
  const char *s;
  size_t len, at;
} cursor;

/* Sets the error with the byte offset; returns its status. */
static mt_status bad(const cursor *c, const char *what) {
  return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: header byte %zu: %s", c->fn, c->at, what);
}

static void skip_space(cursor *c) {
  while (c->at < c->len && (c->s[c->at] == ' ' || c->s[c->at] == '\t' ||
                            c->s[c->at] == '\n' || c->s[c->at] == '\r'))
    c->at++;
}

/* Consumes ch (after white space); 0 if it is not next. */
static int take(cursor *c, char ch) {
  skip_space(c);
  if (c->at < c->len && c->s[c->at] == ch) {
    c->at++;
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------ strings */

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char ch = p[i];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* One \u escape at c->s[c->at] (after the backslash and 'u'), with its
 * low surrogate when it is a high one, as a code point. */
static mt_status unicode_escape(cursor *c, unsigned *cp) {
  unsigned hi, lo;
  if (c->len - c->at < 4 || !hex4(c->s + c->at, &hi)) return bad(c, "bad \\u escape");
  c->at += 4;
  if (hi >= 0xdc00 && hi < 0xe000) return bad(c, "lone low surrogate");
  if (hi < 0xd800 || hi >= 0xdc00) return *cp = hi, MT_OK;
  if (c->len - c->at < 6 || c->s[c->at] != '\\' || c->s[c->at + 1] != 'u' ||
      !hex4(c->s + c->at + 2, &lo) || lo < 0xdc00 || lo >= 0xe000)
    return bad(c, "high surrogate without its low one");
  c->at += 6;
  *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
  return MT_OK;
}

/* A JSON string, unescaped into a new NUL-terminated buffer (*out; the
 * caller frees). */
static mt_status parse_string(cursor *c, char **out) {
  *out = NULL;
  if (!take(c, '"')) return bad(c, "expected a string");
  size_t start = c->at;
  while (c->at < c->len && c->s[c->at] != '"') c->at += c->s[c->at] == '\\' ? 2 : 1;
  if (c->at >= c->len) return bad(c, "unterminated string");
  size_t end = c->at;
  char *o = malloc(end - start + 1); /* unescaping never grows it */
  if (!o) return mti_error_oom(c->fn, end - start + 1);
  size_t n = 0;
  mt_status st = MT_OK;
  for (c->at = start; c->at < end && st == MT_OK;) {
    unsigned char ch = (unsigned char)c->s[c->at++];
    if (ch < 0x20) {
      c->at--;
      st = bad(c, "control character in a string");
    } else if (ch != '\\') {
      o[n++] = (char)ch;
    } else {
      char e = c->s[c->at++];
      static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
      const char *hit = e ? strchr(from, e) : NULL;
      unsigned cp = 0;
      if (hit) o[n++] = to[hit - from];
      else if (e == 'u' && (st = unicode_escape(c, &cp)) == MT_OK) n += put_utf8(o + n, cp);
      else if (e != 'u') st = bad(c, "unknown escape");
    }
  }
  if (st != MT_OK) return free(o), st;
  o[n] = '\0';
  if (strlen(o) != n) return free(o), bad(c, "NUL in a string");
  c->at = end + 1;
  *out = o;
  return MT_OK;
}

/* ------------------------------------------------------------ numbers */

/* A non-negative integer without sign, fraction or exponent, exactly, up
 * to max. */
static mt_status parse_uint(cursor *c, uint64_t max, uint64_t *out) {
  skip_space(c);
  size_t start = c->at;
  uint64_t v = 0;
  while (c->at < c->len && c->s[c->at] >= '0' && c->s[c->at] <= '9') {
    unsigned d = (unsigned)(c->s[c->at++] - '0');
    if (v > (max - d) / 10) return bad(c, "integer too large");
    v = v * 10 + d;
  }
  if (c->at == start) return bad(c, "expected a non-negative integer");
  if (c->at - start > 1 && c->s[start] == '0') return bad(c, "integer with a leading zero");
  if (c->at < c->len && strchr(".eE-+", c->s[c->at])) return bad(c, "expected an integer");
  *out = v;
  return MT_OK;
}

/* [n, n, ...] of at most most integers up to max each; *count gets how many. */
static mt_status parse_uint_list(cursor *c, uint64_t max, int most, uint64_t *v, int *count) {
  *count = 0;
  if (!take(c, '[')) return bad(c, "expected '['");
  if (take(c, ']')) return MT_OK;
  do {
    if (*count == most) return bad(c, "list too long");
    mt_status st = parse_uint(c, max, &v[(*count)++]);
    if (st) return st;
  } while (take(c, ','));
  return take(c, ']') ? MT_OK : bad(c, "expected ',' or ']'");
}

/* ------------------------------------------------------------ dtypes */

static const struct {
  const char *name;
  unsigned size;
  int known;
  mt_dtype dtype;
} dtypes[] = {
    {"BOOL", 1, 1, MT_BOOL},     {"U8", 1, 1, MT_UINT8},      {"I8", 1, 1, MT_INT8},
    {"I16", 2, 1, MT_INT16},     {"I32", 4, 1, MT_INT32},     {"I64", 8, 1, MT_INT64},
    {"F16", 2, 1, MT_FLOAT16},   {"BF16", 2, 1, MT_BFLOAT16}, {"F32", 4, 1, MT_FLOAT32},
    {"F64", 8, 1, MT_FLOAT64},   {"U16", 2, 0, MT_BOOL},      {"U32", 4, 0, MT_BOOL},
    {"U64", 8, 0, MT_BOOL},      {"F8_E4M3", 1, 0, MT_BOOL},  {"F8_E5M2", 1, 0, MT_BOOL},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof *dtypes))

const char *mti_st_dtype_name(mt_dtype d) {
  for (int i = 0; i < N_DTYPES; i++)
    if (dtypes[i].known && dtypes[i].dtype == d) return dtypes[i].name;
  return "?";
}

/* ------------------------------------------------------------ entries */

/* The bytes of e's shape in its dtype (item size size), or an error when
 * they overflow or differ from end - begin. */
static mt_status check_extent(cursor *c, const mti_st_entry *e, unsigned size) {
  uint64_t bytes = size;
  for (int d = 0; d < e->ndim; d++) {
    uint64_t n = (uint64_t)e->shape[d];
    if (n && bytes > UINT64_MAX / n) return bad(c, "shape too large");
    bytes *= n;
  }
  if (e->end < e->begin || e->end - e->begin != bytes)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: tensor \"%s\": data_offsets [%llu, %llu] do not hold its %llu bytes",
                     c->fn, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                     (unsigned long long)bytes);
  return MT_OK;
}

static mt_status parse_dtype(cursor *c, mti_st_entry *e, unsigned *size) {
  char *s;
  mt_status st = parse_string(c, &s);
  if (st) return st;
  for (int i = 0; i < N_DTYPES; i++)
    if (!strcmp(s, dtypes[i].name)) {
      memcpy(e->dtype, dtypes[i].name, strlen(dtypes[i].name) + 1);
      e->known = dtypes[i].known, e->dtype_value = dtypes[i].dtype, *size = dtypes[i].size;
      free(s);
      return MT_OK;
    }
  st = mti_error(MT_ERR_INVALID_ARGUMENT, "%s: tensor \"%s\": unknown dtype \"%.16s\"", c->fn,
                 e->name, s);
  free(s);
  return st;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} into e (whose name
 * is set). */
static mt_status parse_entry(cursor *c, mti_st_entry *e) {
  enum { DTYPE = 1, SHAPE = 2, OFFSETS = 4 };
  unsigned seen = 0, size = 0;
  if (!take(c, '{')) return bad(c, "expected a tensor's '{'");
  do {
    char *key;
    mt_status st = parse_string(c, &key);
    if (st) return st;
    unsigned field = !strcmp(key, "dtype") ? DTYPE : !strcmp(key, "shape") ? SHAPE
                     : !strcmp(key, "data_offsets") ? OFFSETS : 0;
    free(key);
    if (!field) return bad(c, "unknown field in a tensor (expected dtype, shape, data_offsets)");
    if (seen & field) return bad(c, "field given twice");
    if (!take(c, ':')) return bad(c, "expected ':'");
    seen |= field;
    uint64_t v[MT_MAX_DIMS + 1];
    int n;
    if (field == DTYPE) {
      st = parse_dtype(c, e, &size);
    } else if (field == SHAPE) {
      st = parse_uint_list(c, (uint64_t)INT64_MAX, MT_MAX_DIMS + 1, v, &n);
      if (!st && n > MT_MAX_DIMS) st = bad(c, "more dims than MT_MAX_DIMS");
      for (int d = 0; !st && d < n; d++) e->shape[d] = (int64_t)v[d];
      e->ndim = n;
    } else {
      st = parse_uint_list(c, UINT64_MAX, 2, v, &n);
      if (!st && n != 2) st = bad(c, "data_offsets needs [begin, end]");
      e->begin = v[0], e->end = v[1];
    }
    if (st) return st;
  } while (take(c, ','));
  if (!take(c, '}')) return bad(c, "expected ',' or '}'");
  if (seen != (DTYPE | SHAPE | OFFSETS))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: tensor \"%s\": needs dtype, shape and "
                     "data_offsets", c->fn, e->name);
  return check_extent(c, e, size);
}

/* "__metadata__": {"key": "value", ...}: checked, not kept. */
static mt_status parse_metadata(cursor *c) {
  if (!take(c, '{')) return bad(c, "__metadata__ must be an object of strings");
  if (take(c, '}')) return MT_OK;
  do {
    char *s;
    mt_status st = parse_string(c, &s);
    free(s);
    if (!st && !take(c, ':')) st = bad(c, "expected ':'");
    if (!st) st = parse_string(c, &s), free(s);
    if (st) return st;
  } while (take(c, ','));
  return take(c, '}') ? MT_OK : bad(c, "expected ',' or '}'");
}

/* ------------------------------------------------------------ the header */

static int by_offsets(const void *a, const void *b) {
  const mti_st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const mti_st_entry *const *)a)->name, (*(const mti_st_entry *const *)b)->name);
}

/* Names unique, offsets tiling [0, data_bytes); sorts h by offsets. */
static mt_status check_layout(const char *fn, mti_st_header *h) {
  if (h->count == 0) return MT_OK;
  qsort(h->entries, (size_t)h->count, sizeof *h->entries, by_offsets);
  uint64_t at = 0;
  for (int i = 0; i < h->count; i++) {
    const mti_st_entry *e = &h->entries[i];
    if (e->begin != at)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: tensor \"%s\" starts at byte %llu of the "
                       "data, expected %llu (tensors must cover it without gaps or overlaps)",
                       fn, e->name, (unsigned long long)e->begin, (unsigned long long)at);
    at = e->end;
  }
  h->data_bytes = at;
  const mti_st_entry **names = malloc(sizeof *names * (size_t)h->count);
  if (!names) return mti_error_oom(fn, sizeof *names * (size_t)h->count);
  for (int i = 0; i < h->count; i++) names[i] = &h->entries[i];
  qsort(names, (size_t)h->count, sizeof *names, by_name);
  mt_status st = MT_OK;
  for (int i = 1; i < h->count && st == MT_OK; i++)
    if (!strcmp(names[i - 1]->name, names[i]->name))
      st = mti_error(MT_ERR_INVALID_ARGUMENT, "%s: tensor \"%s\" is named twice", fn,
                     names[i]->name);
  free(names);
  return st;
}

/* Room for one more entry in h (grown by doubling). */
static mti_st_entry *append(const char *fn, mti_st_header *h, int *cap) {
  if (h->count == *cap) {
    int more = *cap ? 2 * *cap : 16;
    mti_st_entry *grown = realloc(h->entries, sizeof *grown * (size_t)more);
    if (!grown) return mti_error_oom(fn, sizeof *grown * (size_t)more), NULL;
    h->entries = grown, *cap = more;
  }
  mti_st_entry *e = &h->entries[h->count++];
  memset(e, 0, sizeof *e);
  return e;
}

static mt_status parse_object(cursor *c, mti_st_header *h) {
  int cap = 0, metadata = 0;
  if (!take(c, '{')) return bad(c, "the header must be a JSON object");
  if (take(c, '}')) return MT_OK;
  do {
    char *name;
    mt_status st = parse_string(c, &name);
    if (!st && !take(c, ':')) st = bad(c, "expected ':'");
    if (st) return free(name), st;
    if (!strcmp(name, "__metadata__")) {
      free(name);
      if (metadata++) return bad(c, "__metadata__ given twice");
      st = parse_metadata(c);
    } else {
      mti_st_entry *e = append(c->fn, h, &cap);
      if (!e) return free(name), mt_last_status();
      e->name = name;
      st = parse_entry(c, e);
    }
    if (st) return st;
  } while (take(c, ','));
  if (!take(c, '}')) return bad(c, "expected ',' or '}'");
  skip_space(c);
  return c->at == c->len ? MT_OK : bad(c, "bytes after the header's object");
}

mt_status mti_st_parse(const char *fn, const char *json, size_t len, mti_st_header *h) {
  memset(h, 0, sizeof *h);
  cursor c = {fn, json, len, 0};
  mt_status st = parse_object(&c, h);
  if (!st) st = check_layout(fn, h);
  if (st) mti_st_header_free(h);
  return st;
}

void mti_st_header_free(mti_st_header *h) {
  for (int i = 0; i < h->count; i++) free(h->entries[i].name);
  free(h->entries);
  memset(h, 0, sizeof *h);
}
