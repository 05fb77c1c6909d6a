/*
 * digest.h - SHA-256 (OpenSSL's libcrypto) for content-addressed tensor
 * bytes, shared by the client and the worker.
 */
#ifndef MTI_DIGEST_H
#define MTI_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "modaltensor.h"

#define MTI_SHA256_BYTES 32

/* An incremental SHA-256; opaque (an EVP_MD_CTX). */
typedef struct mti_hasher mti_hasher;

/* A new hasher; NULL with MT_ERR_OUT_OF_MEMORY set. */
mti_hasher *mti_hasher_new(const char *fn);
void mti_hasher_update(mti_hasher *h, const void *data, size_t len);
/* Writes the digest of everything updated so far and frees h. */
void mti_hasher_finish(mti_hasher *h, uint8_t out[MTI_SHA256_BYTES]);
/* Frees h without a digest (NULL is a no-op). */
void mti_hasher_free(mti_hasher *h);

/* The SHA-256 of len bytes at data; MT_ERR_OUT_OF_MEMORY when no hasher
 * could be made. */
mt_status mti_sha256(const char *fn, const void *data, size_t len, uint8_t out[MTI_SHA256_BYTES]);

/* The digest in lower-case hex (65 bytes with the terminator). */
void mti_digest_hex(const uint8_t d[MTI_SHA256_BYTES], char out[2 * MTI_SHA256_BYTES + 1]);

#endif
