/*
 * error.c - the per-thread last status and message.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

#define MTI_ERROR_MAX 512

static _Thread_local mt_status last_status = MT_OK;
static _Thread_local char last_message[MTI_ERROR_MAX];

mt_status mti_error(mt_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  last_status = status;
  return status;
}

mt_status mti_error_oom(const char *fn, size_t nbytes) {
  return mti_error(MT_ERR_OUT_OF_MEMORY, "%s: out of memory allocating %zu bytes", fn, nbytes);
}

mt_status mt_last_status(void) { return last_status; }

const char *mt_last_error(void) { return last_message; }

void mt_clear_error(void) {
  last_status = MT_OK;
  last_message[0] = '\0';
}

const char *mt_status_name(mt_status s) {
  switch (s) {
  case MT_OK: return "MT_OK";
  case MT_ERR_INVALID_ARGUMENT: return "MT_ERR_INVALID_ARGUMENT";
  case MT_ERR_SHAPE: return "MT_ERR_SHAPE";
  case MT_ERR_DTYPE: return "MT_ERR_DTYPE";
  case MT_ERR_DEVICE: return "MT_ERR_DEVICE";
  case MT_ERR_OUT_OF_MEMORY: return "MT_ERR_OUT_OF_MEMORY";
  case MT_ERR_UNSUPPORTED: return "MT_ERR_UNSUPPORTED";
  case MT_ERR_REMOTE: return "MT_ERR_REMOTE";
  case MT_ERR_UNAVAILABLE: return "MT_ERR_UNAVAILABLE";
  case MT_ERR_TIMEOUT: return "MT_ERR_TIMEOUT";
  case MT_ERR_UNAUTHENTICATED: return "MT_ERR_UNAUTHENTICATED";
  case MT_ERR_INTERNAL: return "MT_ERR_INTERNAL";
  }
  return "MT_ERR_UNKNOWN";
}
