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
#include "core/grpc_flow.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "worker.h"

typedef struct signal_watch {
  mtw_server *srv;
  int exit_with_parent;
  pid_t parent;
  int64_t idle_exit_ms;    /* 0: never */
  int64_t max_lifetime_ms; /* 0: never */
  struct timespec started; /* CLOCK_MONOTONIC */
  int64_t stop_timeout_ms; /* 0: wait for the server without limit */
  pthread_mutex_t lock;
  pthread_cond_t ended_cond;
  int ended; /* mtw_server_run returned */
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

static int64_t ms_since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Whether a once-a-second check ends the worker: the parent gone, no call
 * for --idle-exit, or --max-lifetime reached (each logged). */
static int time_to_stop(const signal_watch *sw) {
  if (sw->exit_with_parent && getppid() != sw->parent) {
    mtw_log(MTW_LOG_INFO, "the parent process exited: shutting down");
    return 1;
  }
  if (sw->idle_exit_ms && mtw_server_idle_ms(sw->srv) >= sw->idle_exit_ms) {
    mtw_log(MTW_LOG_INFO, "no call or session for %lld s (--idle-exit): shutting down",
            (long long)(sw->idle_exit_ms / 1000));
    return 1;
  }
  if (sw->max_lifetime_ms && ms_since(&sw->started) >= sw->max_lifetime_ms) {
    mtw_log(MTW_LOG_INFO, "running for %lld s (--max-lifetime): shutting down",
            (long long)(sw->max_lifetime_ms / 1000));
    return 1;
  }
  return 0;
}

/* After the server was told to stop: its calls are cancelled and graphs
 * stop between nodes, but a node already in a kernel runs to its end (a
 * cpu reduction over 2^38 elements takes minutes). A preempted worker
 * (Modal sends SIGTERM, then SIGKILL) must go at once, so past
 * --stop-timeout the process exits without waiting: the sessions are gone
 * already, and the cache's files are renamed into place whole or not at
 * all. */
static void await_server_end(signal_watch *sw) {
  if (!sw->stop_timeout_ms) return;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += sw->stop_timeout_ms / 1000;
  deadline.tv_nsec += sw->stop_timeout_ms % 1000 * 1000000;
  if (deadline.tv_nsec >= 1000000000) deadline.tv_sec++, deadline.tv_nsec -= 1000000000;
  pthread_mutex_lock(&sw->lock);
  int late = 0;
  while (!sw->ended && !late)
    late = pthread_cond_timedwait(&sw->ended_cond, &sw->lock, &deadline) == ETIMEDOUT;
  int ended = sw->ended;
  pthread_mutex_unlock(&sw->lock);
  if (ended) return;
  mtw_log(MTW_LOG_WARN, "work still running %lld ms after the stop (--stop-timeout): exiting "
          "without waiting for it", (long long)sw->stop_timeout_ms);
  _exit(0);
}

/* Marks the server's end for await_server_end. */
static void server_ended(signal_watch *sw) {
  pthread_mutex_lock(&sw->lock);
  sw->ended = 1;
  pthread_cond_signal(&sw->ended_cond);
  pthread_mutex_unlock(&sw->lock);
}

/* Waits for SIGINT or SIGTERM, or for a periodic check to end the worker,
 * then stops the server and bounds how long the stop may take. */
static void *watch_signals(void *arg) {
  signal_watch *sw = arg;
  struct pollfd pfd = {signal_pipe[0], POLLIN, 0};
  int periodic = sw->exit_with_parent || sw->idle_exit_ms || sw->max_lifetime_ms;
  for (;;) {
    int ready = poll(&pfd, 1, periodic ? 1000 : -1);
    unsigned char sig = 0;
    if (ready > 0 && read(signal_pipe[0], &sig, 1) == 1) {
      mtw_log(MTW_LOG_INFO, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (periodic && time_to_stop(sw)) break;
  }
  mtw_server_stop(sw->srv);
  await_server_end(sw);
  return NULL;
}

/* gRPC has no way to ask for a passphrase. */
static int encrypted_key(const char *pem) {
  return strstr(pem, "ENCRYPTED PRIVATE KEY") || strstr(pem, "Proc-Type: 4,ENCRYPTED");
}

/* The whole of the PEM file given to option, NUL-terminated (free it), or
 * NULL after saying on stderr why it is unusable. */
static char *read_pem(const char *option, const char *path, const char *marker) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "modaltensor-worker: %s %s: cannot read it: %s\n", option, path,
            strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 20;
  char *text = malloc(cap + 1);
  size_t n = text ? fread(text, 1, cap, f) : 0;
  int whole = text && !ferror(f) && feof(f);
  fclose(f);
  if (text) text[n] = '\0';
  const char *why = !text                        ? "out of memory"
                    : !whole                     ? "cannot read it whole (not a file, or over 1 MiB)"
                    : !strstr(text, marker)      ? "not PEM (no -----BEGIN ... line)"
                    : encrypted_key(text)        ? "the key is encrypted; give it unencrypted"
                                                 : NULL;
  if (why) {
    fprintf(stderr, "modaltensor-worker: %s %s: %s\n", option, path, why);
    free(text);
    return NULL;
  }
  return text;
}

/* Reads the --tls-cert and --tls-key files when given (both NULL when
 * not); -1, said on stderr, when one is unusable. */
static int load_tls_files(const mtw_options *o, char **cert, char **key) {
  *cert = *key = NULL;
  if (!o->tls_cert) return 0;
  if ((*cert = read_pem("--tls-cert", o->tls_cert, "-----BEGIN CERTIFICATE")) &&
      (*key = read_pem("--tls-key", o->tls_key, "PRIVATE KEY-----")))
    return 0;
  free(*cert);
  *cert = NULL;
  return -1;
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
  signal_watch sw = {NULL, o.exit_with_parent, parent, o.idle_exit_s * 1000,
                     o.max_lifetime_s * 1000, {0, 0}, o.stop_timeout_s * 1000,
                     PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  clock_gettime(CLOCK_MONOTONIC, &sw.started);
  pthread_condattr_t monotonic; /* await_server_end's deadline is CLOCK_MONOTONIC */
  if (pthread_condattr_init(&monotonic) == 0) {
    if (pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC) == 0)
      pthread_cond_init(&sw.ended_cond, &monotonic);
    pthread_condattr_destroy(&monotonic);
  }

  char *cert, *key;
  if (load_tls_files(&o, &cert, &key)) return 2;
  mtw_tls_pem pem = {cert, key};
  mtw_worker w;
  if (mtw_worker_setup(&w, &o)) {
    free(cert);
    free(key);
    return 1;
  }
  if (!o.tls_cert && !mtw_listen_is_local(o.listen))
    mtw_log(MTW_LOG_INFO, "serving plain gRPC on %s: clients must reach it through a TLS proxy "
            "(such as Modal's forward), or start it with --tls-cert and --tls-key", o.listen);

  mti_grpc_choose_flow_control();
  grpc_init();
  int port = 0, rc = 0, tls_rejected = 0;
  mtw_server *srv = mtw_server_start(&w, o.listen, o.tls_cert ? &pem : NULL, &port, &tls_rejected);
  if (!srv) {
    rc = tls_rejected ? 2 : 1;
  } else {
    char addr[512];
    bound_address(addr, sizeof addr, o.listen, port);
    printf("modaltensor-worker listening on %s\n", addr);
    fflush(stdout);
    mtw_log(MTW_LOG_INFO, "listening on %s (%s, %s)", addr, o.tls_cert ? "TLS" : "plain",
            o.token ? "token required" : "no token");
    sw.srv = srv;
    pthread_t watcher;
    int watching = pthread_create(&watcher, NULL, watch_signals, &sw) == 0;
    if (!watching) {
      mtw_log(MTW_LOG_ERROR, "no thread to watch for signals: stopping");
      mtw_server_stop(srv);
      rc = 1;
    }
    mtw_server_run(srv);
    server_ended(&sw);
    if (watching) pthread_join(watcher, NULL);
    mtw_server_destroy(srv);
  }
  grpc_shutdown_blocking();
  const char *lost = w.backend->ops->lost(w.backend);
  if (lost) {
    mtw_log(MTW_LOG_ERROR, "exiting: the backend is lost: %s", lost);
    rc = 1;
  }
  mtw_worker_teardown(&w);
  free(cert);
  free(key);
  close(signal_pipe[0]);
  close(signal_pipe[1]);
  if (rc == 0) mtw_log(MTW_LOG_INFO, "stopped");
  return rc;
}
