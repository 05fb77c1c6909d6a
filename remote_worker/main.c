/*
 * main.c - modaltensor-worker: options, backend, signals, and the server's
 * life from binding to a clean exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "backend.h"
#include "core/error.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "worker.h"

typedef struct signal_watch {
  mtw_server *srv;
  int exit_with_parent;
  pid_t parent;
} signal_watch;

/* SIGINT and SIGTERM write their number here. Blocking them in every
 * thread is not enough: libraries (OpenBLAS) start threads before main,
 * so any thread may take the signal; the handler works on all of them. */
static int signal_pipe[2] = {-1, -1};

static void on_stop_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  ssize_t w = write(signal_pipe[1], &b, 1);
  (void)w;
  errno = saved;
}

static int install_signal_handlers(void) {
  if (pipe(signal_pipe) != 0) return -1;
  fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
  fcntl(signal_pipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(signal_pipe[1], F_SETFD, FD_CLOEXEC);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) return -1;
  signal(SIGPIPE, SIG_IGN); /* a closed stdout or socket must not kill the worker */
  return 0;
}

/* Waits for SIGINT or SIGTERM, or for the parent to go away, then stops
 * the server. */
static void *watch_signals(void *arg) {
  signal_watch *sw = arg;
  struct pollfd pfd = {signal_pipe[0], POLLIN, 0};
  for (;;) {
    int ready = poll(&pfd, 1, sw->exit_with_parent ? 1000 : -1);
    unsigned char sig = 0;
    if (ready > 0 && read(signal_pipe[0], &sig, 1) == 1) {
      mtw_log(MTW_LOG_INFO, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sw->exit_with_parent && getppid() != sw->parent) {
      mtw_log(MTW_LOG_INFO, "the parent process exited: shutting down");
      break;
    }
  }
  mtw_server_stop(sw->srv);
  return NULL;
}

/* listen with a port 0 replaced by the bound port. */
static void bound_address(char *buf, size_t len, const char *listen, int port) {
  const char *colon = strrchr(listen, ':');
  if (strncmp(listen, "unix:", 5) == 0 || !colon || strcmp(colon, ":0") != 0)
    snprintf(buf, len, "%s", listen);
  else
    snprintf(buf, len, "%.*s:%d", (int)(colon - listen), listen, port);
}

/* Every message passes through buffers of about a chunk (1 MiB). glibc's
 * defaults hand such blocks back to the kernel when they are freed and
 * fault them in again for the next message, which costs more than the
 * copy itself; keep them. Blocks of 32 MiB and more (tensors) are still
 * mapped and unmapped on their own. */
static void tune_malloc(void) {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

static int setup_worker(mtw_worker *w, const mtw_options *o) {
  memset(w, 0, sizeof *w);
  w->options = o;
  if (mtw_backend_open(o->backend, o->max_memory, &w->backend) != MT_OK) {
    fprintf(stderr, "modaltensor-worker: %s\n", mt_last_error());
    return -1;
  }
  w->device_count = w->backend->ops->device_count(w->backend);
  w->memory = calloc((size_t)(w->device_count > 0 ? w->device_count : 1), sizeof *w->memory);
  if (!w->memory) {
    w->backend->ops->destroy(w->backend);
    fprintf(stderr, "modaltensor-worker: out of memory\n");
    return -1;
  }
  for (int i = 0; i < w->device_count; i++) {
    mtw_device_props props;
    w->backend->ops->device_props(w->backend, i, &props);
    mtw_memory_init(&w->memory[i], props.total_memory > 0 ? (uint64_t)props.total_memory : 0);
    mtw_log(MTW_LOG_INFO, "device %d: %s backend, %s, %lld bytes for tensors", i, w->backend->name,
            props.name, (long long)props.total_memory);
  }
  mtw_stats_init(&w->stats);
  clock_gettime(CLOCK_MONOTONIC, &w->started);
  return 0;
}

static void teardown_worker(mtw_worker *w) {
  mtw_stats_destroy(&w->stats);
  free(w->memory);
  w->backend->ops->destroy(w->backend);
}

int main(int argc, char **argv) {
  mtw_options o;
  switch (mtw_options_parse(argc, argv, &o)) {
  case MTW_OPTIONS_EXIT: return 0;
  case MTW_OPTIONS_ERROR: return 2;
  case MTW_OPTIONS_RUN: break;
  }
  mtw_log_set_level(o.log_level);
  tune_malloc();
  pid_t parent = getppid();
#ifdef __linux__
  /* SIGTERM when the parent (strictly: the thread that forked us) dies;
   * the check after it closes the race with a parent already gone. */
  if (o.exit_with_parent && (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)) {
    fprintf(stderr, "modaltensor-worker: the parent process is gone\n");
    return 1;
  }
#endif
  if (install_signal_handlers()) {
    fprintf(stderr, "modaltensor-worker: cannot install signal handlers\n");
    return 1;
  }
  signal_watch sw = {NULL, o.exit_with_parent, parent};

  mtw_worker w;
  if (setup_worker(&w, &o)) return 1;
  if (!o.token && strncmp(o.listen, "unix:", 5) != 0 && strncmp(o.listen, "127.", 4) != 0 &&
      strncmp(o.listen, "localhost:", 10) != 0 && strncmp(o.listen, "[::1]:", 6) != 0)
    mtw_log(MTW_LOG_WARN, "listening on %s without a token: anyone who reaches it can use it",
            o.listen);

  grpc_init();
  int port = 0, rc = 0;
  mtw_server *srv = mtw_server_start(&w, o.listen, &port);
  if (!srv) {
    rc = 1;
  } else {
    char addr[512];
    bound_address(addr, sizeof addr, o.listen, port);
    printf("modaltensor-worker listening on %s\n", addr);
    fflush(stdout);
    mtw_log(MTW_LOG_INFO, "listening on %s (%s)", addr, o.token ? "token required" : "no token");
    sw.srv = srv;
    pthread_t watcher;
    int watching = pthread_create(&watcher, NULL, watch_signals, &sw) == 0;
    if (!watching) {
      mtw_log(MTW_LOG_ERROR, "no thread to watch for signals: stopping");
      mtw_server_stop(srv);
      rc = 1;
    }
    mtw_server_run(srv);
    if (watching) pthread_join(watcher, NULL);
    mtw_server_destroy(srv);
  }
  grpc_shutdown_blocking();
  teardown_worker(&w);
  close(signal_pipe[0]);
  close(signal_pipe[1]);
  if (rc == 0) mtw_log(MTW_LOG_INFO, "stopped");
  return rc;
}
