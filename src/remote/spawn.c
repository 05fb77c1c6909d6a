/*
 * spawn.c - starting and stopping the local worker.
 *
 * posix_spawn rather than fork: the process may already run gRPC threads.
 * The worker gets --exit-with-parent, so it never outlives this process.
 */
#define _GNU_SOURCE /* dladdr */
#include "remote/spawn.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#define WORKER_NAME "modaltensor-worker"
#define STOP_GRACE_MS 3000

extern char **environ;

static int is_executable(const char *path) { return access(path, X_OK) == 0; }

/* Finds the worker binary: $MODALTENSOR_WORKER_BINARY, beside this library
 * (installed: same dir or ../bin; build tree: ../remote_worker), then PATH. */
static int find_worker(char *out, size_t len) {
  const char *env = getenv("MODALTENSOR_WORKER_BINARY");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return is_executable(out);
  }
  Dl_info info;
  if (dladdr((void *)&mti_local_worker_start, &info) && info.dli_fname) {
    char lib[4096];
    snprintf(lib, sizeof lib, "%s", info.dli_fname);
    const char *dir = dirname(lib);
    static const char *const rel[] = {"", "/../bin", "/../remote_worker", "/../../bin"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      snprintf(out, len, "%s%s/%s", dir, rel[i], WORKER_NAME);
      if (is_executable(out)) return 1;
    }
  }
  const char *path = getenv("PATH");
  while (path && *path) {
    size_t n = strcspn(path, ":");
    snprintf(out, len, "%.*s/%s", (int)n, path, WORKER_NAME);
    if (n && is_executable(out)) return 1;
    path += n + (path[n] == ':');
  }
  return 0;
}

/* The worker's environment: ours, plus OMP_WAIT_POLICY=passive unless the
 * user chose a policy. Spinning OpenMP threads and OpenBLAS's own pool
 * fight for the cores otherwise, and a small op after a GEMM waits
 * milliseconds (measured: a 100-layer MLP graph 3.8 s spinning, 0.22 s
 * passive). Returns a malloc'd array of borrowed strings, or NULL. */
static char **worker_environment(void) {
  size_t n = 0;
  int has_policy = 0;
  for (char **e = environ; *e; e++, n++)
    has_policy |= strncmp(*e, "OMP_WAIT_POLICY=", 16) == 0;
  char **env = malloc((n + 2) * sizeof *env);
  if (!env) return NULL;
  memcpy(env, environ, n * sizeof *env);
  if (!has_policy) env[n++] = "OMP_WAIT_POLICY=passive";
  env[n] = NULL;
  return env;
}

mt_status mti_local_worker_start(const char *fn, mti_local_worker *w) {
  char binary[4096];
  memset(w, 0, sizeof *w);
  if (!find_worker(binary, sizeof binary))
    return mti_error(MT_ERR_UNAVAILABLE,
                     "%s: no worker configured (MODALTENSOR_WORKER is unset) and %s was not "
                     "found (MODALTENSOR_WORKER_BINARY, beside the library, or on PATH)",
                     fn, WORKER_NAME);
  const char *tmp = getenv("TMPDIR");
  snprintf(w->dir, sizeof w->dir, "%s/modaltensor-XXXXXX",
           tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
  if (!mkdtemp(w->dir)) /* mode 0700: only this user reaches the socket */
    return mti_error(MT_ERR_UNAVAILABLE, "%s: cannot make a private directory: %s", fn,
                     strerror(errno));
  snprintf(w->target, sizeof w->target, "unix:%s/worker.sock", w->dir);
  char *argv[] = {binary, "--listen", w->target, "--exit-with-parent", "--backend", "auto",
                  "--log-level", "warn", NULL};
  /* The worker's readiness line must not land in the program's stdout;
   * its stderr (warnings, errors) stays the program's. */
  posix_spawn_file_actions_t actions;
  int err = posix_spawn_file_actions_init(&actions);
  if (!err) {
    err = posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    char **env = worker_environment();
    if (!err) err = env ? posix_spawn(&w->pid, binary, &actions, NULL, argv, env) : ENOMEM;
    free(env);
    posix_spawn_file_actions_destroy(&actions);
  }
  if (err) {
    rmdir(w->dir);
    w->pid = 0;
    return mti_error(MT_ERR_UNAVAILABLE, "%s: cannot start %s: %s", fn, binary, strerror(err));
  }
  return MT_OK;
}

static void describe_exit(int status, char *buf, size_t len) {
  if (WIFEXITED(status)) snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status)) snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
  else snprintf(buf, len, "stopped");
}

int mti_local_worker_alive(mti_local_worker *w, char *exit_desc, size_t len) {
  if (w->pid <= 0) {
    snprintf(exit_desc, len, "is not running");
    return 0;
  }
  int status;
  pid_t r = waitpid(w->pid, &status, WNOHANG);
  if (r == 0) return 1;
  describe_exit(r == w->pid ? status : 0, exit_desc, len);
  w->pid = 0;
  return 0;
}

static void remove_dir(mti_local_worker *w) {
  if (!w->dir[0]) return;
  char sock[128];
  snprintf(sock, sizeof sock, "%s/worker.sock", w->dir);
  unlink(sock);
  rmdir(w->dir);
  w->dir[0] = '\0';
}

void mti_local_worker_stop(mti_local_worker *w) {
  if (w->pid > 0) {
    kill(w->pid, SIGTERM);
    int status;
    struct timespec nap = {0, 10 * 1000 * 1000};
    int waited = 0;
    while (waitpid(w->pid, &status, WNOHANG) == 0) {
      if (waited >= STOP_GRACE_MS) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &status, 0);
        break;
      }
      nanosleep(&nap, NULL);
      waited += 10;
    }
    w->pid = 0;
  }
  remove_dir(w);
}
