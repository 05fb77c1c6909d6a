/*
 * cache.h - the worker's content store: tensor bytes by SHA-256, from a
 * cache directory that outlives sessions and restarts (--cache-dir, LRU
 * within --cache-max-bytes) and from live storages of every session.
 *
 * Bytes enter only after their digest was checked, and are checked again
 * whenever they are read: a file or a live storage that no longer matches
 * is dropped, never served. Thread-safe (one lock; file reads and writes
 * happen outside it).
 */
#ifndef MTW_CACHE_H
#define MTW_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/digest.h"
#include "storage.h"

typedef struct mtw_content mtw_content;

/* The store; dir NULL: live storages only. Reads the directory's index
 * (file names are digests in hex; temporary files left by a crash are
 * removed) and evicts down to max_bytes. NULL with the reason in err when
 * the directory cannot be made or read. */
mtw_content *mtw_content_open(const char *dir, uint64_t max_bytes, char *err, size_t err_len);
void mtw_content_close(mtw_content *c);

/* 1 when mtw_content_put_file would queue len bytes named d now (a cache
 * directory, within its limit, not held yet, room in the writer's queue):
 * lets a caller skip the host copy of a file that would not be written. */
int mtw_content_file_wanted(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], size_t len);

/* Queues checked bytes named d for the cache directory, written by the
 * store's own thread (writing 64 MiB takes half a second on a slow disk:
 * not in the session's way). The bytes are stage (len of them, malloc'd:
 * the store frees it), or, when stage is NULL, blk's own (host-readable)
 * memory, which a reference keeps alive until written. The thread checks
 * them against d once more, writes a temporary file, renames it into
 * place, and evicts the least recently used files beyond the limit.
 * Failures only cost the cache entry. */
void mtw_content_put_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], mtw_block *blk,
                          void *stage, size_t len);

/* Reads the cached bytes named d, exactly len of them, into dst (host
 * memory) and checks them: 1 when they match, else 0 (a file that does not
 * match, or has another size, is deleted). */
int mtw_content_read_file(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], void *dst,
                          size_t len);

/* Registers blk (whose bytes were checked against d) as a source; a block
 * is registered once. mtw_content_live_remove before its storage lets it
 * go, or when its bytes turn out to have changed. */
void mtw_content_live_add(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], mtw_block *blk);
void mtw_content_live_remove(mtw_content *c, const mtw_block *blk);
/* A live block of len bytes registered under d, with a reference taken
 * (the caller unrefs it, and checks its bytes: they may have been written
 * since); NULL when none. */
mtw_block *mtw_content_live_find(mtw_content *c, const uint8_t d[MTI_SHA256_BYTES], size_t len);
/* Up to max digests held (live first, then files, most recent first) into
 * out; returns how many. */
size_t mtw_content_held(mtw_content *c, uint8_t (*out)[MTI_SHA256_BYTES], size_t max);

#endif
