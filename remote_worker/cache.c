/*
 * cache.c - the content store: a directory of files named by the SHA-256
 * of their bytes, kept within a byte limit by least recent use (the file's
 * mtime, so that the order survives restarts), written by a thread of its
 * own, and an index of live blocks.
 */
#define _GNU_SOURCE /* O_CLOEXEC under -std=c11 */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

typedef struct file_entry {
  uint8_t digest[MTI_SHA256_BYTES];
  uint64_t size;
  uint64_t used; /* a clock: larger is more recent */
} file_entry;

typedef struct live_entry {
  uint8_t digest[MTI_SHA256_BYTES];
  mtw_block *blk;
} live_entry;

/* A file to write: bytes of stage, or of blk (referenced). */
typedef struct pending_file {
  uint8_t digest[MTI_SHA256_BYTES];
  mtw_block *blk;
  void *stage;
  size_t len;
  struct pending_file *next;
} pending_file;

struct mtw_content {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t writer;
  int writing, stopping; /* the writer thread runs; it is told to end */
  pending_file *pending, *pending_tail;
  pending_file *writing_now; /* taken from the queue, being written */
  size_t pending_bytes;      /* bytes held by the queue and writing_now */
  char *dir; /* NULL: no cache directory */
  uint64_t max_bytes, bytes, clock, tmp_seq;
  file_entry *files;
  size_t nfiles, cap_files;
  live_entry *live;
  size_t nlive, cap_live;
};

#define TMP_PREFIX "tmp-"

/* Bytes waiting for the writer at most. Queued bytes are host copies or
 * references that keep a freed storage's block alive, charged to no
 * session: a disk slower than the uploads must not grow them without
 * bound. A file that does not fit is not cached (a later run uploads it
 * again); correctness never depends on the cache. */
#define PENDING_MAX_BYTES ((size_t)1 << 30)

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t cap2 = *cap ? 2 * *cap : 64;
  while (cap2 < need) cap2 *= 2;
  void *p = realloc(*arr, cap2 * elem);
  if (!p) return -1;
  *arr = p;
  *cap = cap2;
  return 0;
}

static int parse_hex(const char *name, uint8_t d[MTI_SHA256_BYTES]) {
  if (strlen(name) != 2 * MTI_SHA256_BYTES) return -1;
  for (int i = 0; i < MTI_SHA256_BYTES; i++) {
    unsigned v;
    if (sscanf(name + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", name[2 * i]) ||
        !strchr("0123456789abcdef", name[2 * i + 1]))
      return -1;
    d[i] = (uint8_t)v;
  }
  return 0;
}

static void file_path(const mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], char *out,
                      size_t len) {
  char hex[2 * MTI_SHA256_BYTES + 1];
  mti_digest_hex(d, hex);
  snprintf(out, len, "%s/%s", c->dir, hex);
}

static ssize_t find_file(const mtw_content *c, const uint8_t d[MTI_SHA256_BYTES]) {
  for (size_t i = 0; i < c->nfiles; i++)
    if (!memcmp(c->files[i].digest, d, MTI_SHA256_BYTES)) return (ssize_t)i;
  return -1;
}

/* Removes entry i and its file. Under the lock. */
static void drop_file(mtw_content *c, size_t i) {
  char path[4096];
  file_path(c, c->files[i].digest, path, sizeof path);
  if (unlink(path) && errno != ENOENT) mtw_log(MTW_LOG_WARN, "cache: cannot remove %s: %s", path, strerror(errno));
  c->bytes -= c->files[i].size;
  c->files[i] = c->files[--c->nfiles];
}

/* Evicts least recently used files until the rest and `room` more bytes
 * fit. Under the lock. */
static void evict_for(mtw_content *c, uint64_t room) {
  while (c->nfiles && (c->bytes > c->max_bytes || room > c->max_bytes - c->bytes)) {
    size_t oldest = 0;
    for (size_t i = 1; i < c->nfiles; i++)
      if (c->files[i].used < c->files[oldest].used) oldest = i;
    mtw_log(MTW_LOG_DEBUG, "cache: evicting %llu bytes", (unsigned long long)c->files[oldest].size);
    drop_file(c, oldest);
  }
}

static void evict(mtw_content *c) { evict_for(c, 0); }

static int by_mtime(const void *a, const void *b) {
  const file_entry *x = a, *y = b;
  return x->used < y->used ? -1 : x->used > y->used;
}

/* Reads the directory into the index; the clock continues from the files'
 * order by mtime. */
static int scan_dir(mtw_content *c, char *err, size_t err_len) {
  DIR *dp = opendir(c->dir);
  if (!dp) {
    snprintf(err, err_len, "--cache-dir %s: %s", c->dir, strerror(errno));
    return -1;
  }
  struct dirent *de;
  while ((de = readdir(dp))) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
    struct stat sb;
    if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
      unlink(path); /* a write that never finished */
      continue;
    }
    file_entry e;
    if (parse_hex(de->d_name, e.digest) || stat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
    e.size = (uint64_t)sb.st_size;
    e.used = (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec;
    if (grow((void **)&c->files, &c->cap_files, c->nfiles + 1, sizeof e)) break;
    c->files[c->nfiles++] = e;
    c->bytes += e.size;
  }
  closedir(dp);
  if (c->nfiles) qsort(c->files, c->nfiles, sizeof *c->files, by_mtime); /* files may be NULL */
  for (size_t i = 0; i < c->nfiles; i++) c->files[i].used = ++c->clock;
  return 0;
}

static void *writer_main(void *arg);

mtw_content *mtw_content_open(const char *dir, uint64_t max_bytes, char *err, size_t err_len) {
  mtw_content *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->wake, NULL);
  c->max_bytes = max_bytes;
  if (dir) {
    if (mkdir(dir, 0700) && errno != EEXIST) {
      snprintf(err, err_len, "--cache-dir %s: %s", dir, strerror(errno));
      free(c);
      return NULL;
    }
    if (!(c->dir = strdup(dir)) || scan_dir(c, err, err_len)) {
      mtw_content_close(c);
      return NULL;
    }
    evict(c);
    c->writing = pthread_create(&c->writer, NULL, writer_main, c) == 0;
    if (!c->writing) mtw_log(MTW_LOG_WARN, "cache %s: no writer thread: nothing new is kept", dir);
    mtw_log(MTW_LOG_INFO, "cache %s: %zu files, %llu bytes (limit %llu)", dir, c->nfiles,
            (unsigned long long)c->bytes, (unsigned long long)max_bytes);
  }
  return c;
}

void mtw_content_close(mtw_content *c) {
  if (!c) return;
  if (c->writing) {
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->writer, NULL);
  }
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->lock);
  free(c->files);
  free(c->live);
  free(c->dir);
  free(c);
}

static int write_all(int fd, const void *p, size_t len) {
  for (size_t done = 0; done < len;) {
    ssize_t n = write(fd, (const char *)p + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

/* Writes the bytes to a temporary file and renames it into place, so that
 * a reader never sees a partial file under a digest's name. */
static int write_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], const void *host,
                      size_t len) {
  char tmp[4096], path[4096];
  pthread_mutex_lock(&c->lock);
  unsigned long long seq = ++c->tmp_seq;
  pthread_mutex_unlock(&c->lock);
  snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "%d-%llu", c->dir, (int)getpid(), seq);
  file_path(c, d, path, sizeof path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  int rc = write_all(fd, host, len);
  if (close(fd)) rc = -1;
  if (!rc) rc = rename(tmp, path);
  if (rc) {
    mtw_log(MTW_LOG_WARN, "cache: cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  return rc;
}

static int have_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES]) {
  pthread_mutex_lock(&c->lock);
  ssize_t i = find_file(c, d);
  if (i >= 0) c->files[i].used = ++c->clock;
  pthread_mutex_unlock(&c->lock);
  return i >= 0;
}

/* Writes one queued file (its bytes checked once more: a live block may
 * have been written since) and enters it in the index. Its bytes stay
 * readable to copy_pending until pending_release. */
static void write_pending(mtw_content *c, pending_file *p) {
  const void *host = p->stage;
  if (!host) host = p->blk->backend->ops->host_address(p->blk->backend, p->blk->ptr);
  uint8_t got[MTI_SHA256_BYTES];
  int ok = host && !mti_sha256("cache", host, p->len, got) && !memcmp(got, p->digest, sizeof got);
  if (!ok || have_file(c, p->digest)) return;
  /* room first, so that once the new file is visible the evicted are gone */
  pthread_mutex_lock(&c->lock);
  evict_for(c, p->len);
  pthread_mutex_unlock(&c->lock);
  if (!write_file(c, p->digest, host, p->len)) {
    pthread_mutex_lock(&c->lock);
    if (find_file(c, p->digest) < 0 &&
        !grow((void **)&c->files, &c->cap_files, c->nfiles + 1, sizeof *c->files)) {
      file_entry *e = &c->files[c->nfiles++];
      memcpy(e->digest, p->digest, MTI_SHA256_BYTES);
      e->size = p->len;
      e->used = ++c->clock;
      c->bytes += p->len;
    }
    evict(c);
    pthread_mutex_unlock(&c->lock);
  }
}

/* Under the lock: readers (copy_pending) may be looking at p. */
static void pending_release(pending_file *p) {
  if (p->blk) mtw_block_unref(p->blk);
  free(p->stage);
  free(p);
}

/* The writer thread: queued files in order, until told to stop (what is
 * queued by then is still written). */
static void *writer_main(void *arg) {
  mtw_content *c = arg;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (!c->pending && !c->stopping) pthread_cond_wait(&c->wake, &c->lock);
    pending_file *p = c->pending;
    if (!p) break;
    if (!(c->pending = p->next)) c->pending_tail = NULL;
    p->next = NULL;
    c->writing_now = p;
    pthread_mutex_unlock(&c->lock);
    write_pending(c, p);
    pthread_mutex_lock(&c->lock);
    c->writing_now = NULL;
    c->pending_bytes -= p->len;
    pending_release(p);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

int mtw_content_file_wanted(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], size_t len) {
  if (!c->writing || len > c->max_bytes || have_file(c, d)) return 0;
  pthread_mutex_lock(&c->lock);
  int room = len <= PENDING_MAX_BYTES - c->pending_bytes;
  pthread_mutex_unlock(&c->lock);
  return room;
}

void mtw_content_put_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], mtw_block *blk,
                          void *stage, size_t len) {
  int wanted = c->writing && len <= c->max_bytes && !have_file(c, d);
  pending_file *p = wanted ? calloc(1, sizeof *p) : NULL;
  if (!p) {
    free(stage);
    return;
  }
  memcpy(p->digest, d, MTI_SHA256_BYTES);
  p->stage = stage;
  p->len = len;
  pthread_mutex_lock(&c->lock);
  if (len > PENDING_MAX_BYTES - c->pending_bytes) {
    pthread_mutex_unlock(&c->lock);
    mtw_log(MTW_LOG_DEBUG, "cache: %zu bytes not cached: %zu bytes already wait for the disk",
            len, c->pending_bytes);
    pending_release(p);
    return;
  }
  c->pending_bytes += len;
  if (!stage) mtw_block_ref(p->blk = blk);
  if (c->pending_tail) c->pending_tail->next = p;
  else c->pending = p;
  c->pending_tail = p;
  pthread_cond_signal(&c->wake);
  pthread_mutex_unlock(&c->lock);
}

static int read_all(int fd, void *p, size_t len) {
  for (size_t done = 0; done < len;) {
    ssize_t n = read(fd, (char *)p + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

/* Forgets the file of d (and deletes it) after it failed its check. */
static void drop_bad(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], const char *why) {
  char hex[2 * MTI_SHA256_BYTES + 1];
  mti_digest_hex(d, hex);
  mtw_log(MTW_LOG_WARN, "cache: dropping %s: %s", hex, why);
  pthread_mutex_lock(&c->lock);
  ssize_t i = find_file(c, d);
  if (i >= 0) drop_file(c, (size_t)i);
  pthread_mutex_unlock(&c->lock);
}

/* Copies the bytes of a file still waiting for the writer into dst (under
 * the lock: the writer frees them once written). 1 when there was one. */
static int copy_pending(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], void *dst, size_t len) {
  int found = 0;
  pthread_mutex_lock(&c->lock);
  for (pending_file *p = c->writing_now ? c->writing_now : c->pending; p && !found;
       p = p == c->writing_now ? c->pending : p->next) {
    if (p->len != len || memcmp(p->digest, d, MTI_SHA256_BYTES)) continue;
    const void *host = p->stage ? p->stage
                                : p->blk->backend->ops->host_address(p->blk->backend, p->blk->ptr);
    if (host) memcpy(dst, host, len);
    found = host != NULL;
  }
  pthread_mutex_unlock(&c->lock);
  return found;
}

/* Checks bytes read from the store against d. */
static int matches(const void *data, size_t len, const uint8_t d[MTI_SHA256_BYTES]) {
  uint8_t got[MTI_SHA256_BYTES];
  return !mti_sha256("cache", data, len, got) && !memcmp(got, d, MTI_SHA256_BYTES);
}

int mtw_content_read_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], void *dst,
                          size_t len) {
  if (!c->dir) return 0;
  pthread_mutex_lock(&c->lock);
  ssize_t i = find_file(c, d);
  if (i >= 0) c->files[i].used = ++c->clock;
  pthread_mutex_unlock(&c->lock);
  if (i < 0) return copy_pending(c, d, dst, len) && matches(dst, len, d);
  char path[4096];
  file_path(c, d, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) || (uint64_t)sb.st_size != len || read_all(fd, dst, len)) {
    if (fd >= 0) close(fd);
    drop_bad(c, d, "missing, unreadable or of another size");
    return 0;
  }
  futimens(fd, NULL); /* the LRU order, for the next start */
  close(fd);
  if (!matches(dst, len, d)) {
    drop_bad(c, d, "its bytes do not match their digest");
    return 0;
  }
  return 1;
}

void mtw_content_live_add(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], mtw_block *blk) {
  pthread_mutex_lock(&c->lock);
  if (!grow((void **)&c->live, &c->cap_live, c->nlive + 1, sizeof *c->live)) {
    memcpy(c->live[c->nlive].digest, d, MTI_SHA256_BYTES);
    c->live[c->nlive++].blk = blk;
  }
  pthread_mutex_unlock(&c->lock);
}

void mtw_content_live_remove(mtw_content *c, const mtw_block *blk) {
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->nlive; i++)
    if (c->live[i].blk == blk) {
      c->live[i] = c->live[--c->nlive];
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

mtw_block *mtw_content_live_find(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], size_t len) {
  mtw_block *found = NULL;
  pthread_mutex_lock(&c->lock);
  for (size_t i = c->nlive; i-- > 0 && !found;)
    if (!memcmp(c->live[i].digest, d, MTI_SHA256_BYTES) && c->live[i].blk->nbytes == len) {
      found = c->live[i].blk;
      mtw_block_ref(found); /* its session may let it go while we read it */
    }
  pthread_mutex_unlock(&c->lock);
  return found;
}

static int by_recent(const void *a, const void *b) { return -by_mtime(a, b); }

size_t mtw_content_held(mtw_content *c, uint8_t (*out)[MTI_SHA256_BYTES], size_t max) {
  size_t n = 0;
  pthread_mutex_lock(&c->lock);
  for (size_t i = c->nlive; i-- > 0 && n < max;)
    memcpy(out[n++], c->live[i].digest, MTI_SHA256_BYTES);
  if (c->nfiles) qsort(c->files, c->nfiles, sizeof *c->files, by_recent); /* files may be NULL */
  for (size_t i = 0; i < c->nfiles && n < max; i++)
    memcpy(out[n++], c->files[i].digest, MTI_SHA256_BYTES);
  pthread_mutex_unlock(&c->lock);
  return n;
}
