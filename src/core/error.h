/*
 * error.h - the per-thread last status and message.
 */
#ifndef MTI_ERROR_H
#define MTI_ERROR_H

#include "modaltensor.h"

#if defined(__GNUC__)
#define MTI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MTI_PRINTF(f, a)
#endif

/* Records status and a printf-formatted message for this thread and
 * returns status, so callers can write `return mti_error(...)`.
 * Convention: "mt_function: argument: reason". */
mt_status mti_error(mt_status status, const char *fmt, ...) MTI_PRINTF(2, 3);

/* The out-of-memory error for fn, allocating nothing itself. */
mt_status mti_error_oom(const char *fn, size_t nbytes);

#endif
