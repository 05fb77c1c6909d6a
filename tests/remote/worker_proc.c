/*
 * worker_proc.c - fork/exec of the worker and its readiness line.
 */
#include "worker_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_PREFIX "modaltensor-worker listening on "
#define START_TIMEOUT_MS 60000
#define MAX_ARGS 32

extern char **environ;

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads one line from fd within the time left; 0 on success. */
static int read_line(int fd, char *buf, size_t len, int64_t until) {
  size_t used = 0;
  while (used + 1 < len) {
    int64_t left = until - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t n = read(fd, buf + used, 1);
    if (n <= 0) return -1;
    if (buf[used] == '\n') break;
    used++;
  }
  buf[used] = '\0';
  return 0;
}

static pid_t spawn(const char *const *args, const char *const *env, int out_fd, int err_fd,
                   int for_server) {
  const char *argv[MAX_ARGS];
  size_t n = 0;
  argv[n++] = WT_WORKER_PATH;
  if (for_server) {
    static const char *const defaults[] = {"--listen", "127.0.0.1:0", "--exit-with-parent"};
    for (size_t i = 0; i < 3; i++) argv[n++] = defaults[i];
    const char *level = getenv("WT_WORKER_LOG_LEVEL");
    argv[n++] = "--log-level";
    argv[n++] = level ? level : "warn";
    const char *backend = getenv("WT_WORKER_BACKEND"); /* the gpu runs of the suites */
    if (backend) {
      argv[n++] = "--backend";
      argv[n++] = backend;
    }
  }
  for (size_t i = 0; args && args[i] && n + 1 < MAX_ARGS; i++) argv[n++] = args[i];
  argv[n] = NULL;
  /* The environment is built before fork: the child of a threaded process
   * may only call async-signal-safe functions until it execs. */
  size_t count = 0, extra = 0;
  while (environ[count]) count++;
  while (env && env[extra]) extra++;
  const char **envp = malloc((count + extra + 1) * sizeof *envp);
  if (!envp) return -1;
  /* Extras first: getenv finds the first of duplicate names. */
  for (size_t i = 0; i < extra; i++) envp[i] = env[i];
  memcpy(envp + extra, environ, count * sizeof *envp);
  envp[count + extra] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    execve(WT_WORKER_PATH, (char *const *)argv, (char *const *)envp);
    _exit(127);
  }
  free(envp);
  return pid;
}

int wt_worker_start(wt_worker *w, const char *const *args, const char *const *env) {
  int out[2];
  memset(w, 0, sizeof *w);
  if (pipe(out)) return -1;
  fcntl(out[0], F_SETFD, FD_CLOEXEC);
  w->pid = spawn(args, env, out[1], -1, 1);
  close(out[1]);
  if (w->pid < 0) {
    close(out[0]);
    return -1;
  }
  char line[512];
  int rc = read_line(out[0], line, sizeof line, now_ms() + START_TIMEOUT_MS);
  close(out[0]);
  size_t plen = strlen(READY_PREFIX);
  if (rc || strncmp(line, READY_PREFIX, plen) != 0) {
    fprintf(stderr, "worker_proc: no readiness line from the worker\n");
    wt_worker_stop(w);
    return -1;
  }
  snprintf(w->addr, sizeof w->addr, "%s", line + plen);
  return 0;
}

static int wait_exit(pid_t pid, int timeout_ms) {
  int64_t until = now_ms() + timeout_ms;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (now_ms() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

int wt_worker_stop(wt_worker *w) {
  if (w->pid <= 0) return -1;
  kill(w->pid, SIGTERM);
  int rc = wait_exit(w->pid, 60000);
  w->pid = 0;
  return rc;
}

int wt_worker_run(const char *const *args, char *err, size_t err_len) {
  int pipe_err[2];
  if (pipe(pipe_err)) return -1;
  int devnull = open("/dev/null", O_WRONLY);
  pid_t pid = spawn(args, NULL, devnull, pipe_err[1], 0);
  close(pipe_err[1]);
  close(devnull);
  size_t used = 0;
  for (;;) {
    char tmp[256];
    ssize_t n = read(pipe_err[0], tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && used + 1 < err_len; i++) err[used++] = tmp[i];
  }
  if (err_len) err[used] = '\0';
  close(pipe_err[0]);
  return pid > 0 ? wait_exit(pid, 60000) : -1;
}
