/*
 * server.h - the gRPC server: accepts calls and gives each its own thread.
 */
#ifndef MTW_SERVER_H
#define MTW_SERVER_H

#include "worker.h"

typedef struct mtw_server mtw_server;

#include <stdint.h>

/* PEM text of the certificate chain and private key to serve TLS with. */
typedef struct mtw_tls_pem {
  const char *cert_chain;
  const char *private_key;
} mtw_tls_pem;

/* Binds listen ("host:port", port 0 for any free one, or "unix:PATH"),
 * with TLS when tls is not NULL, and starts serving. NULL (with the reason
 * logged) when it cannot bind; *tls_rejected is then 1 when the address
 * itself is fine but gRPC refused the certificate and key. *port is the
 * bound port (1 for unix sockets). */
mtw_server *mtw_server_start(mtw_worker *w, const char *listen, const mtw_tls_pem *tls, int *port,
                             int *tls_rejected);

/* Milliseconds since the last authorized call ended (or the server
 * started), 0 while one is running: a session is a call for its whole
 * life. Calls refused for their token do not count. */
int64_t mtw_server_idle_ms(mtw_server *srv);

/* Accepts calls until mtw_server_stop, then waits for every call's thread. */
void mtw_server_run(mtw_server *srv);

/* Stops accepting and cancels every call; safe from any thread, and more
 * than once. */
void mtw_server_stop(mtw_server *srv);

/* After mtw_server_run has returned. */
void mtw_server_destroy(mtw_server *srv);

#endif
