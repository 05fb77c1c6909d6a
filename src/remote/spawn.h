/*
 * spawn.h - the local worker that the library starts when no worker
 * address is configured.
 */
#ifndef MTI_SPAWN_H
#define MTI_SPAWN_H

#include <sys/types.h>

#include "modaltensor.h"

typedef struct mti_local_worker {
  pid_t pid;
  char dir[64];      /* private directory holding the socket */
  char target[96];   /* "unix:<dir>/worker.sock" */
} mti_local_worker;

/* Starts modaltensor-worker listening on a unix socket in a fresh private
 * directory. The worker exits with this process. Does not wait for it to
 * answer (the caller's first call waits, with a deadline). */
mt_status mti_local_worker_start(const char *fn, mti_local_worker *w);

/* 1 while the child is running; reaps it and fills *exit_desc otherwise. */
int mti_local_worker_alive(mti_local_worker *w, char *exit_desc, size_t len);

/* Stops the worker (SIGTERM, then SIGKILL after a grace period) and removes
 * its directory. Safe on a worker that already exited or never started. */
void mti_local_worker_stop(mti_local_worker *w);

#endif
