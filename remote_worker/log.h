/*
 * log.h - one line per event on stderr, filtered by level.
 *
 * Never log tensor data or tokens; text that came from the wire goes through
 * mtw_log_sanitize first.
 */
#ifndef MTW_LOG_H
#define MTW_LOG_H

#include <stddef.h>

#include "core/error.h" /* MTI_PRINTF */

typedef enum mtw_log_level {
  MTW_LOG_ERROR = 0,
  MTW_LOG_WARN = 1,
  MTW_LOG_INFO = 2,
  MTW_LOG_DEBUG = 3
} mtw_log_level;

/* Parses "error", "warn", "info" or "debug"; 0 on success, -1 otherwise. */
int mtw_log_level_parse(const char *s, mtw_log_level *out);

/* Sets the threshold; call before any thread is started. */
void mtw_log_set_level(mtw_log_level level);

int mtw_log_enabled(mtw_log_level level);

/* Writes "modaltensor-worker[pid] TIME LEVEL: message\n" with one write. */
void mtw_log(mtw_log_level level, const char *fmt, ...) MTI_PRINTF(2, 3);

/* Copies at most len-1 printable ASCII characters of s into buf (others
 * become '?'), so free text from a client cannot forge log lines. */
const char *mtw_log_sanitize(char *buf, size_t len, const char *s);

#endif
