/*
 * worker_proc.h - starts and stops modaltensor-worker processes for tests.
 */
#ifndef WT_WORKER_PROC_H
#define WT_WORKER_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct wt_worker {
  pid_t pid;
  char addr[512]; /* "127.0.0.1:PORT" from the readiness line */
} wt_worker;

/* Starts the worker (WT_WORKER_PATH) with --listen 127.0.0.1:0
 * --exit-with-parent and the NULL-terminated extra args; env is a
 * NULL-terminated list of "NAME=VALUE" to set (may be NULL). Waits for the
 * readiness line; 0 on success. The log level is warn unless args say
 * otherwise or WT_WORKER_LOG_LEVEL is set; WT_WORKER_BACKEND, when set,
 * picks the backend (args may still override it). */
int wt_worker_start(wt_worker *w, const char *const *args, const char *const *env);

/* Sends SIGTERM and waits (at most 60 s, then SIGKILL). Returns the exit
 * status, or -1 when the worker died by a signal or had to be killed. */
int wt_worker_stop(wt_worker *w);

/* Runs the worker with args, capturing stderr into err; returns its exit
 * status (-1 on abnormal end). */
int wt_worker_run(const char *const *args, char *err, size_t err_len);

#endif
