/*
 * options.c - command-line parsing ("--name VALUE" or "--name=VALUE").
 */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modaltensor.h"

static const char usage[] =
    "usage: modaltensor-worker [options]\n"
    "\n"
    "Serves libmodaltensor's modal device over gRPC: clients upload tensors,\n"
    "send op graphs and download results through one stream per session.\n"
    "\n"
    "  --listen ADDR         host:port or unix:PATH (default " MTW_DEFAULT_LISTEN ");\n"
    "                        port 0 picks a free port. Once bound, the worker prints\n"
    "                        \"modaltensor-worker listening on ADDR\" on stdout.\n"
    "  --token TOKEN         require \"authorization: Bearer TOKEN\" on every call;\n"
    "                        prefer the environment variable " MTW_ENV_TOKEN ",\n"
    "                        since arguments are visible to other users in ps\n"
    "  --backend NAME        cpu, cuda or auto (default auto: cuda where built, else cpu)\n"
    "  --max-memory BYTES    tensor memory per device (suffixes K, M, G, T: powers\n"
    "                        of 1024; default: the device's memory)\n"
    "  --idle-timeout SECS   end a session that sends nothing for SECS seconds\n"
    "                        (default 3600)\n"
    "  --log-level LEVEL     error, warn, info (default) or debug; logs go to stderr\n"
    "  --exit-with-parent    exit when the parent process dies (also when\n"
    "                        " MTW_ENV_EXIT_WITH_PARENT "=1)\n"
    "  --version             print the version and exit\n"
    "  --help                print this help and exit\n"
    "\n"
    "SIGINT and SIGTERM shut the worker down cleanly (exit status 0).\n";

/* Parses a byte count with an optional binary suffix; 0 on success. */
static int parse_bytes(const char *s, uint64_t *out) {
  if (!*s || *s == '-') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  unsigned shift = 0;
  if (*end) {
    const char *units = "KMGT";
    const char *u = strchr(units, *end == 'k' ? 'K' : *end);
    if (!u || !*u) return -1;
    shift = 10u * (unsigned)(u - units + 1);
    end++;
    if (*end == 'i') end++;
    if (*end == 'B') end++;
    if (*end) return -1;
  }
  if (shift && v > (UINT64_MAX >> shift)) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}

static int parse_seconds(const char *s, int64_t *out) {
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v <= 0 || v > 100LL * 365 * 24 * 3600) return -1;
  *out = v;
  return 0;
}

static int env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

static mtw_options_result usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "modaltensor-worker: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'modaltensor-worker --help'.\n");
  return MTW_OPTIONS_ERROR;
}

/* Splits "--name=value"; otherwise the value is the next argument. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, size_t name_len) {
  if (arg[name_len] == '=') return arg + name_len + 1;
  if (*i + 1 < argc) return argv[++*i];
  return NULL;
}

static mtw_options_result apply(mtw_options *o, const char *name, const char *value) {
  if (strcmp(name, "--listen") == 0) {
    if (!*value) return usage_error("--listen: empty address%s", "");
    o->listen = value;
  } else if (strcmp(name, "--token") == 0) {
    if (!*value) return usage_error("--token: empty token%s", "");
    o->token = value;
  } else if (strcmp(name, "--backend") == 0) {
    if (strcmp(value, "cpu") && strcmp(value, "cuda") && strcmp(value, "auto"))
      return usage_error("--backend: '%s' is not cpu, cuda or auto", value);
    o->backend = value;
  } else if (strcmp(name, "--max-memory") == 0) {
    if (parse_bytes(value, &o->max_memory) || o->max_memory == 0)
      return usage_error("--max-memory: '%s' is not a positive byte count", value);
  } else if (strcmp(name, "--idle-timeout") == 0) {
    if (parse_seconds(value, &o->idle_timeout_s))
      return usage_error("--idle-timeout: '%s' is not a positive number of seconds", value);
  } else if (strcmp(name, "--log-level") == 0) {
    if (mtw_log_level_parse(value, &o->log_level))
      return usage_error("--log-level: '%s' is not error, warn, info or debug", value);
  }
  return MTW_OPTIONS_RUN;
}

mtw_options_result mtw_options_parse(int argc, char **argv, mtw_options *out) {
  static const char *const valued[] = {"--listen", "--token", "--backend", "--max-memory",
                                       "--idle-timeout", "--log-level"};
  mtw_options o = {MTW_DEFAULT_LISTEN, NULL, "auto", 0, MTW_DEFAULT_IDLE_TIMEOUT_S,
                   MTW_LOG_INFO, 0};
  const char *env_token = getenv(MTW_ENV_TOKEN);
  if (env_token && *env_token) o.token = env_token;
  o.exit_with_parent = env_flag(MTW_ENV_EXIT_WITH_PARENT);

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage, stdout);
      return MTW_OPTIONS_EXIT;
    }
    if (strcmp(arg, "--version") == 0) {
      printf("modaltensor-worker %d.%d.%d\n", MT_VERSION_MAJOR, MT_VERSION_MINOR,
             MT_VERSION_PATCH);
      return MTW_OPTIONS_EXIT;
    }
    if (strcmp(arg, "--exit-with-parent") == 0) {
      o.exit_with_parent = 1;
      continue;
    }
    size_t k = 0, count = sizeof valued / sizeof valued[0];
    size_t len = 0;
    for (; k < count; k++) {
      len = strlen(valued[k]);
      if (strncmp(arg, valued[k], len) == 0 && (arg[len] == '\0' || arg[len] == '=')) break;
    }
    if (k == count) return usage_error("unknown argument '%s'", arg);
    const char *value = option_value(argc, argv, &i, arg, len);
    if (!value) return usage_error("%s needs a value", valued[k]);
    mtw_options_result r = apply(&o, valued[k], value);
    if (r != MTW_OPTIONS_RUN) return r;
  }
  *out = o;
  return MTW_OPTIONS_RUN;
}
