/*
 * server.h - the gRPC server: accepts calls and gives each its own thread.
 */
#ifndef MTW_SERVER_H
#define MTW_SERVER_H

#include "worker.h"

typedef struct mtw_server mtw_server;

/* Binds listen ("host:port", port 0 for any free one, or "unix:PATH") and
 * starts serving. NULL (with the reason logged) when it cannot bind.
 * *port is the bound port (1 for unix sockets). */
mtw_server *mtw_server_start(mtw_worker *w, const char *listen, int *port);

/* Accepts calls until mtw_server_stop, then waits for every call's thread. */
void mtw_server_run(mtw_server *srv);

/* Stops accepting and cancels every call; safe from any thread, and more
 * than once. */
void mtw_server_stop(mtw_server *srv);

/* After mtw_server_run has returned. */
void mtw_server_destroy(mtw_server *srv);

#endif
