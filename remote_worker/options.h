/*
 * options.h - the worker's command line and environment.
 */
#ifndef MTW_OPTIONS_H
#define MTW_OPTIONS_H

#include <stdint.h>

#include "log.h"

/* Environment variables read at startup. The token is better passed here
 * than with --token, whose value any user can read in `ps`. */
#define MTW_ENV_TOKEN "MODALTENSOR_WORKER_TOKEN"
#define MTW_ENV_ADMIN_TOKEN "MODALTENSOR_WORKER_ADMIN_TOKEN"
#define MTW_ENV_EXIT_WITH_PARENT "MODALTENSOR_WORKER_EXIT_WITH_PARENT"
#define MTW_ENV_TLS_CERT "MODALTENSOR_WORKER_TLS_CERT"
#define MTW_ENV_TLS_KEY "MODALTENSOR_WORKER_TLS_KEY"
#define MTW_ENV_IDLE_EXIT "MODALTENSOR_WORKER_IDLE_EXIT"
#define MTW_ENV_MAX_LIFETIME "MODALTENSOR_WORKER_MAX_LIFETIME"

#define MTW_DEFAULT_LISTEN "127.0.0.1:50051"
#define MTW_DEFAULT_IDLE_TIMEOUT_S 3600
#define MTW_DEFAULT_CACHE_MAX_BYTES (10ull << 30)
#define MTW_DEFAULT_STOP_TIMEOUT_S 1

typedef struct mtw_options {
  const char *listen;       /* "host:port" or "unix:PATH" */
  const char *token;        /* NULL: calls are not authenticated */
  const char *admin_token;  /* NULL: no admin (all are, without token) */
  const char *backend;      /* "cpu", "cuda" or "auto" */
  uint64_t max_memory;      /* bytes of tensor memory per device; 0: the device's size */
  int64_t idle_timeout_s;   /* a session silent this long is ended */
  mtw_log_level log_level;
  int exit_with_parent;
  const char *tls_cert;     /* PEM certificate chain file; NULL: plain gRPC */
  const char *tls_key;      /* PEM private key file; set exactly when tls_cert is */
  int64_t idle_exit_s;      /* exit after this long without a call; 0: never */
  int64_t max_lifetime_s;   /* exit this long after starting; 0: never */
  uint64_t max_node_work;   /* elements one node may touch; 0: the backend's default */
  uint64_t session_max_memory; /* bytes one session may hold; 0: a fair share */
  const char *cache_dir;    /* content cache directory; NULL: none */
  uint64_t cache_max_bytes; /* the cache's size limit */
  int64_t stop_timeout_s;   /* after a stop, exit this long later whatever runs; 0: wait */
} mtw_options;

typedef enum mtw_options_result {
  MTW_OPTIONS_RUN,   /* start the worker */
  MTW_OPTIONS_EXIT,  /* --help or --version was printed: exit 0 */
  MTW_OPTIONS_ERROR  /* a usage error was printed to stderr: exit 2 */
} mtw_options_result;

/* Fills *out from argv and the environment; argv strings are kept, not
 * copied. Also a usage error: only one of the TLS files, or a non-loopback
 * --listen without a token (anyone reaching it could use the worker). */
mtw_options_result mtw_options_parse(int argc, char **argv, mtw_options *out);

/* Whether listen ("host:port" or "unix:PATH") is reachable from this
 * machine only: a unix socket, 127.0.0.0/8, [::1] or localhost. */
int mtw_listen_is_local(const char *listen);

#endif
