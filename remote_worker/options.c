/*
 * options.c - command-line parsing ("--name VALUE" or "--name=VALUE").
 */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    "                        A --listen other than loopback or a unix socket needs\n"
    "                        a token: the worker refuses to start without one.\n"
    "  --token TOKEN         require \"authorization: Bearer TOKEN\" on every call;\n"
    "                        prefer the environment variable " MTW_ENV_TOKEN ",\n"
    "                        since arguments are visible to other users in ps\n"
    "  --admin-token TOKEN   a second token whose calls may read every session's\n"
    "                        counters (Stats); prefer " MTW_ENV_ADMIN_TOKEN ".\n"
    "                        Without --token every caller is admin\n"
    "  --tls-cert FILE       serve TLS with this PEM certificate (chain); needs\n"
    "                        --tls-key (also " MTW_ENV_TLS_CERT ")\n"
    "  --tls-key FILE        the PEM private key of --tls-cert (also\n"
    "                        " MTW_ENV_TLS_KEY "). Without both: plain gRPC, for\n"
    "                        loopback or behind a TLS proxy (Modal's forward)\n"
    "  --backend NAME        cpu, cuda or auto (default auto: cuda when a GPU is\n"
    "                        visible, else cpu)\n"
    "  --max-memory BYTES    tensor memory per device (suffixes K, M, G, T: powers\n"
    "                        of 1024; default: the device's memory)\n"
    "  --session-max-memory BYTES\n"
    "                        tensor memory one session may hold (suffixes as\n"
    "                        --max-memory; default: the device's memory divided by\n"
    "                        the sessions open on it, counted at each allocation)\n"
    "  --max-node-work N     refuse a node that touches more than N elements (its\n"
    "                        inputs and outputs, broadcast views counted whole, and\n"
    "                        a matmul's multiply-adds; suffixes K, M, G, T: powers\n"
    "                        of 1024; default 256G on cpu, 64T on cuda)\n"
    "  --idle-timeout SECS   end a session that sends nothing for SECS seconds\n"
    "                        (default 3600)\n"
    "  --idle-exit SECS      exit (status 0) after SECS seconds without any call or\n"
    "                        open session; 0: never (default; also\n"
    "                        " MTW_ENV_IDLE_EXIT ")\n"
    "  --max-lifetime SECS   exit (status 0) SECS seconds after starting, sessions\n"
    "                        or not; 0: never (default; also\n"
    "                        " MTW_ENV_MAX_LIFETIME ")\n"
    "  --cache-dir DIR       keep uploaded tensor bytes (1 MiB and up) in DIR, named\n"
    "                        by their SHA-256, across sessions and restarts: a\n"
    "                        client is not sent them again (default: no directory;\n"
    "                        live tensors still serve)\n"
    "  --cache-max-bytes N   size limit of --cache-dir, least recently used files\n"
    "                        go first (suffixes as --max-memory; default 10G)\n"
    "  --stop-timeout SECS   after SIGINT/SIGTERM (or an exit condition above), exit\n"
    "                        at most SECS seconds later even if a kernel is still\n"
    "                        running (its session ends); 0: wait for it (default 1)\n"
    "  --log-level LEVEL     error, warn, info (default) or debug; logs go to stderr\n"
    "  --exit-with-parent    exit when the parent process dies (also when\n"
    "                        " MTW_ENV_EXIT_WITH_PARENT "=1)\n"
    "  --version             print the version and exit\n"
    "  --help                print this help and exit\n"
    "\n"
    "SIGINT and SIGTERM shut the worker down (exit status 0): sessions end, and\n"
    "kernels still running after --stop-timeout are not waited for.\n";

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

/* Whole seconds from min (0 or 1) to a century; 0 on success. */
static int parse_seconds_from(const char *s, long long min, int64_t *out) {
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > 100LL * 365 * 24 * 3600) return -1;
  *out = v;
  return 0;
}

static int parse_seconds(const char *s, int64_t *out) { return parse_seconds_from(s, 1, out); }

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
  } else if (strcmp(name, "--admin-token") == 0) {
    if (!*value) return usage_error("--admin-token: empty token%s", "");
    o->admin_token = value;
  } else if (strcmp(name, "--session-max-memory") == 0) {
    if (parse_bytes(value, &o->session_max_memory) || o->session_max_memory == 0)
      return usage_error("--session-max-memory: '%s' is not a positive byte count", value);
  } else if (strcmp(name, "--backend") == 0) {
    if (strcmp(value, "cpu") && strcmp(value, "cuda") && strcmp(value, "auto"))
      return usage_error("--backend: '%s' is not cpu, cuda or auto", value);
    o->backend = value;
  } else if (strcmp(name, "--max-memory") == 0) {
    if (parse_bytes(value, &o->max_memory) || o->max_memory == 0)
      return usage_error("--max-memory: '%s' is not a positive byte count", value);
  } else if (strcmp(name, "--max-node-work") == 0) {
    if (parse_bytes(value, &o->max_node_work) || o->max_node_work == 0)
      return usage_error("--max-node-work: '%s' is not a positive element count", value);
  } else if (strcmp(name, "--idle-timeout") == 0) {
    if (parse_seconds(value, &o->idle_timeout_s))
      return usage_error("--idle-timeout: '%s' is not a positive number of seconds", value);
  } else if (strcmp(name, "--tls-cert") == 0) {
    if (!*value) return usage_error("--tls-cert: empty file name%s", "");
    o->tls_cert = value;
  } else if (strcmp(name, "--tls-key") == 0) {
    if (!*value) return usage_error("--tls-key: empty file name%s", "");
    o->tls_key = value;
  } else if (strcmp(name, "--idle-exit") == 0) {
    if (parse_seconds_from(value, 0, &o->idle_exit_s))
      return usage_error("--idle-exit: '%s' is not a number of seconds (0: never)", value);
  } else if (strcmp(name, "--max-lifetime") == 0) {
    if (parse_seconds_from(value, 0, &o->max_lifetime_s))
      return usage_error("--max-lifetime: '%s' is not a number of seconds (0: never)", value);
  } else if (strcmp(name, "--cache-dir") == 0) {
    if (!*value) return usage_error("--cache-dir: empty directory name%s", "");
    o->cache_dir = value;
  } else if (strcmp(name, "--cache-max-bytes") == 0) {
    if (parse_bytes(value, &o->cache_max_bytes))
      return usage_error("--cache-max-bytes: '%s' is not a byte count", value);
  } else if (strcmp(name, "--stop-timeout") == 0) {
    if (parse_seconds_from(value, 0, &o->stop_timeout_s))
      return usage_error("--stop-timeout: '%s' is not a number of seconds (0: wait)", value);
  } else if (strcmp(name, "--log-level") == 0) {
    if (mtw_log_level_parse(value, &o->log_level))
      return usage_error("--log-level: '%s' is not error, warn, info or debug", value);
  }
  return MTW_OPTIONS_RUN;
}

/* Options that an environment variable may give (the command line wins):
 * the key file's path is less exposed there, and the Modal app sets them
 * from its configuration. */
static mtw_options_result apply_environment(mtw_options *o) {
  static const struct {
    const char *env, *option;
  } from_env[] = {{MTW_ENV_TLS_CERT, "--tls-cert"},
                  {MTW_ENV_TLS_KEY, "--tls-key"},
                  {MTW_ENV_IDLE_EXIT, "--idle-exit"},
                  {MTW_ENV_MAX_LIFETIME, "--max-lifetime"}};
  for (size_t i = 0; i < sizeof from_env / sizeof *from_env; i++) {
    const char *v = getenv(from_env[i].env);
    if (!v || !*v) continue;
    if (apply(o, from_env[i].option, v) != MTW_OPTIONS_RUN) {
      fprintf(stderr, "modaltensor-worker: (that value came from %s)\n", from_env[i].env);
      return MTW_OPTIONS_ERROR;
    }
  }
  return MTW_OPTIONS_RUN;
}

/* Checks that hold across options: both TLS files or neither, and a token
 * wherever others can reach the worker. */
static mtw_options_result check_combination(const mtw_options *o) {
  if (!o->tls_cert != !o->tls_key)
    return usage_error("%s: serving TLS needs both --tls-cert and --tls-key (or "
                       MTW_ENV_TLS_CERT " and " MTW_ENV_TLS_KEY ")",
                       o->tls_cert ? "--tls-key is missing" : "--tls-cert is missing");
  if (!o->token && !mtw_listen_is_local(o->listen))
    return usage_error("--listen %s: not a loopback address or a unix socket, and no token: "
                       "anyone who reaches it could use the worker. Set " MTW_ENV_TOKEN
                       " (or --token) to a secret, and give clients the same secret as "
                       "MODALTENSOR_TOKEN", o->listen);
  return MTW_OPTIONS_RUN;
}

mtw_options_result mtw_options_parse(int argc, char **argv, mtw_options *out) {
  static const char *const valued[] = {
      "--listen",    "--token",   "--backend", "--max-memory", "--idle-timeout",
      "--log-level", "--tls-cert", "--tls-key", "--idle-exit",  "--max-lifetime",
      "--max-node-work", "--admin-token", "--session-max-memory",
      "--cache-dir", "--cache-max-bytes", "--stop-timeout"};
  mtw_options o = {.listen = MTW_DEFAULT_LISTEN,
                   .backend = "auto",
                   .idle_timeout_s = MTW_DEFAULT_IDLE_TIMEOUT_S,
                   .log_level = MTW_LOG_INFO,
                   .cache_max_bytes = MTW_DEFAULT_CACHE_MAX_BYTES,
                   .stop_timeout_s = MTW_DEFAULT_STOP_TIMEOUT_S};
  const char *env_token = getenv(MTW_ENV_TOKEN);
  if (env_token && *env_token) o.token = env_token;
  const char *env_admin = getenv(MTW_ENV_ADMIN_TOKEN);
  if (env_admin && *env_admin) o.admin_token = env_admin;
  o.exit_with_parent = env_flag(MTW_ENV_EXIT_WITH_PARENT);
  if (apply_environment(&o) != MTW_OPTIONS_RUN) return MTW_OPTIONS_ERROR;

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
  if (check_combination(&o) != MTW_OPTIONS_RUN) return MTW_OPTIONS_ERROR;
  *out = o;
  return MTW_OPTIONS_RUN;
}

int mtw_listen_is_local(const char *listen) {
  if (strncmp(listen, "unix:", 5) == 0) return 1;
  char host[256];
  const char *end = listen[0] == '[' ? strchr(listen, ']') : strrchr(listen, ':');
  const char *start = listen[0] == '[' ? listen + 1 : listen;
  if (!end || (size_t)(end - start) >= sizeof host) return 0;
  memcpy(host, start, (size_t)(end - start));
  host[end - start] = '\0';
  if (strcasecmp(host, "localhost") == 0) return 1;
  struct in_addr v4;
  if (inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  struct in6_addr v6;
  return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}
