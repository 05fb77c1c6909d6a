/*
 * digest.c - SHA-256 through OpenSSL's EVP interface (the SHA256_* calls
 * are deprecated in OpenSSL 3; EVP picks the SHA-NI code where the CPU
 * has it).
 */
#include "core/digest.h"

#include <openssl/evp.h>
#include <stdio.h>

#include "core/error.h"

mti_hasher *mti_hasher_new(const char *fn) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    mti_error_oom(fn, sizeof(void *));
    return NULL;
  }
  return (mti_hasher *)ctx;
}

void mti_hasher_update(mti_hasher *h, const void *data, size_t len) {
  if (len) EVP_DigestUpdate((EVP_MD_CTX *)h, data, len);
}

void mti_hasher_finish(mti_hasher *h, uint8_t out[MTI_SHA256_BYTES]) {
  unsigned int n = 0;
  EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n);
  EVP_MD_CTX_free((EVP_MD_CTX *)h);
}

void mti_hasher_free(mti_hasher *h) { EVP_MD_CTX_free((EVP_MD_CTX *)h); }

mt_status mti_sha256(const char *fn, const void *data, size_t len, uint8_t out[MTI_SHA256_BYTES]) {
  mti_hasher *h = mti_hasher_new(fn);
  if (!h) return mt_last_status();
  mti_hasher_update(h, data, len);
  mti_hasher_finish(h, out);
  return MT_OK;
}

void mti_digest_hex(const uint8_t d[MTI_SHA256_BYTES], char out[2 * MTI_SHA256_BYTES + 1]) {
  for (int i = 0; i < MTI_SHA256_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}
