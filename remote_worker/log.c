/*
 * log.c - leveled logging to stderr.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mtw_log_level threshold = MTW_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int mtw_log_level_parse(const char *s, mtw_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (mtw_log_level)i;
      return 0;
    }
  }
  return -1;
}

void mtw_log_set_level(mtw_log_level level) { threshold = level; }

int mtw_log_enabled(mtw_log_level level) { return level <= threshold; }

void mtw_log(mtw_log_level level, const char *fmt, ...) {
  if (!mtw_log_enabled(level)) return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm utc;
  gmtime_r(&now.tv_sec, &utc);
  char line[1024];
  size_t used = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc);
  int n = snprintf(line + used, sizeof line - used, ".%03ldZ modaltensor-worker[%ld] %s: ",
                   now.tv_nsec / 1000000L, (long)getpid(), level_names[level]);
  if (n > 0) used += (size_t)n < sizeof line - used ? (size_t)n : sizeof line - used - 1;
  va_list ap;
  va_start(ap, fmt);
  n = vsnprintf(line + used, sizeof line - used, fmt, ap);
  va_end(ap);
  if (n > 0) used += (size_t)n < sizeof line - used ? (size_t)n : sizeof line - used - 1;
  line[used++] = '\n';
  /* One write per line keeps lines from different threads whole. */
  ssize_t w = write(STDERR_FILENO, line, used);
  (void)w;
}

const char *mtw_log_sanitize(char *buf, size_t len, const char *s) {
  size_t i = 0;
  for (; s && s[i] && i + 1 < len; i++) buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (len) buf[i < len ? i : len - 1] = '\0';
  return buf;
}
