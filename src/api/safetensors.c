/*
 * safetensors.c - weights on disk in the Hugging Face safetensors format:
 * mt_safetensors_open/count/name/get/close and mt_safetensors_save.
 *
 * open maps the file read-only and checks its header whole
 * (core/safetensors_header.c) and that the data ends where the file does;
 * get copies one tensor's bytes into a new tensor on the device asked for
 * (mt_from_data: a modal device receives it as any upload, content-addressed),
 * so tensors outlive the handle. save writes the header and the data to a
 * temporary file beside path and renames it over path: a reader never sees
 * half a file.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/tensor_impl.h"
#include "core/error.h"
#include "core/safetensors_header.h"

struct mt_safetensors {
  void *map;
  size_t map_len;
  const unsigned char *data; /* the data section, after the header */
  mti_st_header header;
};

/* ------------------------------------------------------------ reading */

static mt_status open_error(const char *path, const char *what) {
  return mti_error(errno == ENOENT ? MT_ERR_INVALID_ARGUMENT : MT_ERR_INTERNAL,
                   "mt_safetensors_open: %s: %s: %s", path, what, strerror(errno));
}

/* Maps path read-only; its size in *len. */
static void *map_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return open_error(path, "cannot open"), NULL;
  struct stat st;
  void *map = NULL;
  if (fstat(fd, &st) != 0) {
    open_error(path, "cannot stat");
  } else if (!S_ISREG(st.st_mode)) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "mt_safetensors_open: %s: not a regular file", path);
  } else if (st.st_size < 8) {
    mti_error(MT_ERR_INVALID_ARGUMENT,
              "mt_safetensors_open: %s: %lld bytes, too short for a safetensors file", path,
              (long long)st.st_size);
  } else {
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) map = NULL, open_error(path, "cannot map");
    *len = (size_t)st.st_size;
  }
  close(fd);
  return map;
}

/* The header length (little-endian u64) at the start of the file. */
static uint64_t header_length(const unsigned char *p) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
  return n;
}

mt_safetensors *mt_safetensors_open(const char *path) {
  if (!path) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_safetensors_open: path: NULL"), NULL;
  mt_safetensors *f = calloc(1, sizeof *f);
  if (!f) return mti_error_oom("mt_safetensors_open", sizeof *f), NULL;
  f->map = map_file(path, &f->map_len);
  if (!f->map) return free(f), NULL;
  const unsigned char *bytes = f->map;
  uint64_t n = header_length(bytes);
  mt_status st = MT_OK;
  if (n > MTI_SAFETENSORS_MAX_HEADER || n > f->map_len - 8)
    st = mti_error(MT_ERR_INVALID_ARGUMENT, "mt_safetensors_open: %s: header of %llu bytes in a "
                   "file of %zu", path, (unsigned long long)n, f->map_len);
  if (!st) st = mti_st_parse("mt_safetensors_open", (const char *)bytes + 8, (size_t)n, &f->header);
  if (!st && f->header.data_bytes != f->map_len - 8 - n)
    st = mti_error(MT_ERR_INVALID_ARGUMENT, "mt_safetensors_open: %s: the tensors hold %llu "
                   "bytes, the file has %llu after the header", path,
                   (unsigned long long)f->header.data_bytes,
                   (unsigned long long)(f->map_len - 8 - n));
  if (st) {
    mt_safetensors_close(f);
    return NULL;
  }
  f->data = bytes + 8 + n;
  return f;
}

int mt_safetensors_count(const mt_safetensors *f) { return f ? f->header.count : 0; }

const char *mt_safetensors_name(const mt_safetensors *f, int i) {
  if (!f || i < 0 || i >= f->header.count) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "mt_safetensors_name: %s", f ? "i: out of range" : "f: NULL");
    return NULL;
  }
  return f->header.entries[i].name;
}

static const mti_st_entry *find(const mt_safetensors *f, const char *name) {
  for (int i = 0; i < f->header.count; i++)
    if (!strcmp(f->header.entries[i].name, name)) return &f->header.entries[i];
  return NULL;
}

/* bool bytes other than 0 and 1 are not bools. */
static int bools_valid(const unsigned char *p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i] > 1) return 0;
  return 1;
}

mt_tensor *mt_safetensors_get(const mt_safetensors *f, const char *name, mt_device device) {
  static const char fn[] = "mt_safetensors_get";
  if (!f || !name)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: NULL", fn, f ? "name" : "f"), NULL;
  const mti_st_entry *e = find(f, name);
  if (!e)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: no tensor named \"%s\"", fn, name), NULL;
  if (!e->known)
    return mti_error(MT_ERR_DTYPE, "%s: \"%s\": dtype %s has no libmodaltensor dtype", fn,
                     name, e->dtype), NULL;
  const unsigned char *bytes = f->data + e->begin;
  if (e->dtype_value == MT_BOOL && !bools_valid(bytes, e->end - e->begin))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: \"%s\": BOOL bytes other than 0 and 1", fn,
                     name), NULL;
  return mt_from_data(e->end > e->begin ? bytes : NULL, e->ndim, e->shape, e->dtype_value,
                      device);
}

void mt_safetensors_close(mt_safetensors *f) {
  if (!f) return;
  mti_st_header_free(&f->header);
  if (f->map) munmap(f->map, f->map_len);
  free(f);
}

/* ------------------------------------------------------------ writing */

/* A growing text buffer; a failed growth is remembered. */
typedef struct text {
  char *s;
  size_t len, cap;
  int failed;
} text;

static void put(text *t, const char *s, size_t n) {
  if (t->failed) return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *grown = realloc(t->s, cap);
    if (!grown) {
      t->failed = 1;
      return;
    }
    t->s = grown, t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

/* s as a JSON string: quotes, backslashes and control bytes escaped. */
static void put_json_string(text *t, const char *s) {
  put(t, "\"", 1);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\', esc[1] = (char)ch;
      put(t, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      put(t, esc, 6);
    } else {
      put(t, (const char *)&ch, 1);
    }
  }
  put(t, "\"", 1);
}

static mt_status check_save_args(const char *fn, const char *path, int n,
                                 const char *const *names, const mt_tensor *const *tensors) {
  if (!path || n < 0 || (n > 0 && (!names || !tensors)))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s", fn,
                     !path ? "path: NULL" : n < 0 ? "n: negative" : "names, tensors: NULL");
  for (int i = 0; i < n; i++) {
    if (!names[i] || !names[i][0] || !strcmp(names[i], "__metadata__"))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: names[%d]: %s", fn, i,
                       !names[i] ? "NULL" : !names[i][0] ? "empty" : "__metadata__ is reserved");
    if (mti_check_tensor(fn, "tensors[i]", tensors[i])) return mt_last_status();
    for (int j = 0; j < i; j++)
      if (!strcmp(names[i], names[j]))
        return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: names[%d]: \"%s\" is given twice", fn, i,
                         names[i]);
  }
  return MT_OK;
}

/* The header: each tensor's dtype, shape and offsets in order, padded with
 * spaces to a multiple of 8 bytes (as the reference writer does, so the
 * data starts aligned). */
static mt_status build_header(const char *fn, int n, const char *const *names,
                              const mt_tensor *const *tensors, text *h) {
  uint64_t offset = 0;
  put_str(h, "{");
  for (int i = 0; i < n; i++) {
    const mt_tensor *t = tensors[i];
    char buf[96];
    put_str(h, i ? "," : "");
    put_json_string(h, names[i]);
    snprintf(buf, sizeof buf, ":{\"dtype\":\"%s\",\"shape\":[",
             mti_st_dtype_name(mt_tensor_dtype(t)));
    put_str(h, buf);
    for (int d = 0; d < mt_ndim(t); d++) {
      snprintf(buf, sizeof buf, d ? ",%lld" : "%lld", (long long)mt_shape(t, d));
      put_str(h, buf);
    }
    uint64_t bytes = (uint64_t)mt_numel(t) * mt_dtype_size(mt_tensor_dtype(t));
    snprintf(buf, sizeof buf, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
             (unsigned long long)(offset + bytes));
    put_str(h, buf);
    offset += bytes;
  }
  put_str(h, "}");
  while (!h->failed && (h->len + 8) % 8) put_str(h, " ");
  return h->failed ? mti_error_oom(fn, h->len) : MT_OK;
}

/* Writes tensor t's bytes (row-major) to out. */
static mt_status write_tensor(const char *fn, FILE *out, const mt_tensor *t) {
  size_t bytes = (size_t)mt_numel(t) * mt_dtype_size(mt_tensor_dtype(t));
  if (bytes == 0) return MT_OK;
  void *buf = malloc(bytes);
  if (!buf) return mti_error_oom(fn, bytes);
  mt_status st = mt_to_host(t, buf, bytes);
  if (!st && fwrite(buf, 1, bytes, out) != bytes)
    st = mti_error(MT_ERR_INTERNAL, "%s: writing: %s", fn, strerror(errno));
  free(buf);
  return st;
}

mt_status mt_safetensors_save(const char *path, int n, const char *const *names,
                              const mt_tensor *const *tensors) {
  static const char fn[] = "mt_safetensors_save";
  mt_status st = check_save_args(fn, path, n, names, tensors);
  if (st) return st;
  text h = {0};
  if ((st = build_header(fn, n, names, tensors, &h))) return free(h.s), st;
  size_t tmp_len = strlen(path) + 32;
  char *tmp = malloc(tmp_len);
  if (!tmp) return free(h.s), mti_error_oom(fn, tmp_len);
  snprintf(tmp, tmp_len, "%s.tmp-%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "wb");
  if (!out) {
    st = mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: cannot create: %s", fn, tmp, strerror(errno));
  } else {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if (fwrite(len8, 1, 8, out) != 8 || fwrite(h.s, 1, h.len, out) != h.len)
      st = mti_error(MT_ERR_INTERNAL, "%s: writing %s: %s", fn, tmp, strerror(errno));
    for (int i = 0; i < n && !st; i++) st = write_tensor(fn, out, tensors[i]);
    if (fclose(out) != 0 && !st)
      st = mti_error(MT_ERR_INTERNAL, "%s: writing %s: %s", fn, tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
      st = mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: cannot rename into place: %s", fn, path,
                     strerror(errno));
    if (st) unlink(tmp);
  }
  free(tmp);
  free(h.s);
  return st;
}
