/*
 * bench_remote.c - the modal device against a worker on loopback TCP.
 *
 * (a) recording overhead: ns per small elementwise op while ops are only
 *     recorded (the one sync that runs them is outside the timed region),
 *     over 100k ops (the pending graph is sent every 4096 ops, and the
 *     worker computes beside the recording) and over 4000 (nothing is sent);
 * (b) round trips: an empty mt_synchronize beside a bare gRPC unary call
 *     (the worker's Health method) on the same worker, medians in us;
 * (c) transfers: mt_from_data (upload) and mt_to_host (download) of
 *     256 MiB beside raw TCP on 127.0.0.1 (one thread writing 1 MiB pieces,
 *     another reading them) in the same run: GB/s and our share of raw TCP,
 *     and the CPU seconds per GB both ends spend (client and the worker we
 *     started; for raw TCP both threads), which other load on the machine
 *     disturbs far less than wall time;
 * (d) a 100-layer MLP forward ([64, 512] activations; per layer matmul with
 *     [512, 512], add a bias, gelu) as one graph, eagerly
 *     (MODALTENSOR_EAGER=1, in a child process since the library reads its
 *     configuration once), and in-process on cpu: wall time and syncs (the
 *     worker's Stats counters).
 *
 * The worker is started with the remote tests' harness on 127.0.0.1:0,
 * unless --worker ADDR names a running one. Medians of --reps repetitions.
 * --quick runs every part at small sizes (a smoke test: only the exit
 * status matters). Numbers are printed as a table; docs/REMOTE.md keeps them.
 *
 * Usage: mt_bench_remote [--worker ADDR] [--reps N] [--quick]
 * Over TLS: start the worker with --tls-cert/--tls-key and a token, and set
 * MODALTENSOR_TLS=1, MODALTENSOR_TLS_CA and MODALTENSOR_TOKEN (the bench's
 * own Stats/Health channel follows MODALTENSOR_TLS_CA).
 */
#include <modaltensor.h>

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/grpc_flow.h"
#include "wire_client.h"
#include "worker_proc.h"

#define MODAL ((mt_device){MT_DEVICE_MODAL, 0})
#define CPU ((mt_device){MT_DEVICE_CPU, 0})
#define MIB (1024.0 * 1024.0)

typedef struct sizes {
  int record_ops;      /* (a) */
  int ping_reps;       /* (b) */
  size_t transfer;     /* (c) bytes */
  int layers;          /* (d) */
} sizes;

typedef struct options {
  const char *worker; /* NULL: start one */
  int reps;
  int quick;
  int child_mlp; /* internal: run (d) once in this process and print the result */
} options;

static const sizes full_sizes = {100000, 2000, (size_t)256 << 20, 100};
static const sizes quick_sizes = {2000, 50, (size_t)8 << 20, 8};

static wc_channel *stats_channel;
static pid_t worker_pid; /* 0 when the worker is not ours (--worker) */

/* ------------------------------------------------------------ helpers */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what) {
  fprintf(stderr, "mt_bench_remote: %s: %s (%s)\n", what, mt_status_name(mt_last_status()),
          mt_last_error());
  exit(1);
}

static mt_tensor *must(mt_tensor *t, const char *what) {
  if (!t) die(what);
  return t;
}

static void must_ok(mt_status s, const char *what) {
  if (s != MT_OK) die(what);
}

/* The worker's total sync count. */
static uint64_t worker_syncs(void) {
  Modaltensor__V1__StatsReply *r = wc_stats(stats_channel, 0);
  if (!r || !r->total) {
    fprintf(stderr, "mt_bench_remote: the Stats call failed\n");
    exit(1);
  }
  uint64_t syncs = r->total->syncs;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return syncs;
}

/* CPU seconds (user + system) used by this process, all threads. */
static double self_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

/* CPU seconds used by the worker we started (from /proc); 0 without one. */
static double worker_cpu_s(void) {
  if (worker_pid <= 0) return 0;
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)worker_pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  const char *p = strrchr(line, ')'); /* fields after the command name */
  unsigned long long utime = 0, stime = 0;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                   &stime) != 2)
    return 0;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double both_cpu_s(void) { return self_cpu_s() + worker_cpu_s(); }

static void row(const char *part, const char *what, double value, const char *unit,
                const char *note) {
  printf("%-4s %-46s %12.3f  %-7s %s\n", part, what, value, unit, note);
}

/* ------------------------------------------------------------ (a) */

/* ns per recorded op over a chain of n ops on a [16] float32 tensor; all
 * handles are freed after the timing and the sync. */
static double record_chain_ns(int n, int binary) {
  const int64_t shape[1] = {16};
  mt_tensor **t = malloc(sizeof *t * (size_t)(n + 1));
  mt_tensor *one = must(mt_ones(1, shape, MT_FLOAT32, MODAL), "mt_ones");
  t[0] = must(mt_zeros(1, shape, MT_FLOAT32, MODAL), "mt_zeros");
  must_ok(mt_synchronize(MODAL), "mt_synchronize");
  double start = now_s();
  for (int i = 0; i < n; i++)
    t[i + 1] = binary ? mt_add(t[i], one) : mt_add_scalar(t[i], 1.0);
  double took = now_s() - start;
  for (int i = 1; i <= n; i++)
    if (!t[i]) die("recording");
  must_ok(mt_synchronize(MODAL), "mt_synchronize");
  double last;
  mt_tensor *first = must(mt_slice(t[n], 0, 0, 1, 1), "mt_slice");
  must_ok(mt_item(first, &last), "mt_item");
  if (last != (double)n) {
    fprintf(stderr, "mt_bench_remote: the chain computed %g, expected %d\n", last, n);
    exit(1);
  }
  mt_tensor_free(first);
  for (int i = 0; i <= n; i++) mt_tensor_free(t[i]);
  mt_tensor_free(one);
  free(t);
  return took / n * 1e9;
}

/* The same op on cpu, for scale: ns per op, results freed as it goes. */
static double cpu_op_ns(int n) {
  const int64_t shape[1] = {16};
  mt_tensor *x = must(mt_zeros(1, shape, MT_FLOAT32, CPU), "mt_zeros");
  double start = now_s();
  for (int i = 0; i < n; i++) {
    mt_tensor *y = mt_add_scalar(x, 1.0);
    mt_tensor_free(x);
    x = y;
  }
  double took = now_s() - start;
  if (!x) die("cpu op");
  mt_tensor_free(x);
  return took / n * 1e9;
}

static void part_a(const sizes *z, int reps) {
  double *v = malloc(sizeof *v * (size_t)reps);
  char note[96];
  record_chain_ns(z->record_ops / 10, 0); /* warm-up: session, allocator */
  snprintf(note, sizeof note, "%d ops recorded, then one sync (untimed)", z->record_ops);
  for (int r = 0; r < reps; r++) v[r] = record_chain_ns(z->record_ops, 0);
  row("(a)", "record mt_add_scalar, [16] float32", median(v, reps), "ns/op", note);
  for (int r = 0; r < reps; r++) v[r] = record_chain_ns(z->record_ops, 1);
  row("(a)", "record mt_add, [16] float32", median(v, reps), "ns/op", note);
  /* Below the 4096-op flush threshold nothing is sent while timed: the
   * client's own cost, without the worker computing beside it. */
  int small = z->record_ops < 4000 ? z->record_ops : 4000;
  snprintf(note, sizeof note, "%d ops: below the flush threshold, nothing sent", small);
  for (int r = 0; r < reps; r++) v[r] = record_chain_ns(small, 0);
  row("(a)", "record mt_add_scalar, [16] float32, no flush", median(v, reps), "ns/op", note);
  for (int r = 0; r < reps; r++) v[r] = cpu_op_ns(z->record_ops);
  row("(a)", "for scale: run mt_add_scalar on cpu", median(v, reps), "ns/op",
      "in-process, computed");
  free(v);
}

/* ------------------------------------------------------------ (b) */

static void part_b(const sizes *z) {
  int n = z->ping_reps;
  double *sync_us = malloc(sizeof(double) * (size_t)n);
  double *ping_us = malloc(sizeof(double) * (size_t)n);
  double *item_us = malloc(sizeof(double) * (size_t)n);
  mt_tensor *x = must(mt_full(0, NULL, 3.0, MT_FLOAT32, MODAL), "mt_full"); /* opens the session */
  must_ok(mt_synchronize(MODAL), "mt_synchronize");
  uint8_t *reply;
  size_t reply_len;
  /* interleaved, so that both see the same machine state */
  for (int i = 0; i < n; i++) {
    double t0 = now_s();
    must_ok(mt_synchronize(MODAL), "mt_synchronize");
    double t1 = now_s();
    grpc_status_code st =
        wc_unary(stats_channel, WC_METHOD("Health"), "", 0, &reply, &reply_len, NULL, 0, 10000);
    double t2 = now_s();
    if (st != GRPC_STATUS_OK) {
      fprintf(stderr, "mt_bench_remote: Health failed (%d)\n", (int)st);
      exit(1);
    }
    free(reply);
    double item;
    must_ok(mt_item(x, &item), "mt_item");
    double t3 = now_s();
    sync_us[i] = (t1 - t0) * 1e6;
    ping_us[i] = (t2 - t1) * 1e6;
    item_us[i] = (t3 - t2) * 1e6;
  }
  char note[96];
  snprintf(note, sizeof note, "median of %d, interleaved", n);
  double s = median(sync_us, n), p = median(ping_us, n);
  row("(b)", "empty mt_synchronize (session stream)", s, "us", note);
  row("(b)", "bare gRPC unary Health call", p, "us", note);
  row("(b)", "mt_item of a 0-d tensor (download + sync)", median(item_us, n), "us", note);
  row("(b)", "sync / bare ping", s / p, "x", "");
  mt_tensor_free(x);
  free(sync_us);
  free(ping_us);
  free(item_us);
}

/* ------------------------------------------------------------ (c) */

typedef struct tcp_sender {
  int listen_fd;
  size_t bytes;
  const char *data; /* 1 MiB */
} tcp_sender;

static void *send_bytes(void *arg) {
  tcp_sender *s = arg;
  int fd = accept(s->listen_fd, NULL, NULL);
  if (fd < 0) return NULL;
  for (size_t sent = 0; sent < s->bytes;) {
    size_t piece = s->bytes - sent < (1u << 20) ? s->bytes - sent : (1u << 20);
    size_t off = 0;
    while (off < piece) {
      ssize_t w = write(fd, s->data + off, piece - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        close(fd);
        return NULL;
      }
      off += (size_t)w;
    }
    sent += piece;
  }
  close(fd);
  return NULL;
}

/* Seconds to move `bytes` over loopback TCP from a writer thread (1 MiB
 * writes) to this thread (1 MiB reads into a buffer of the full size, as a
 * download fills its destination). */
static double raw_tcp_seconds(size_t bytes, char *dst, const char *piece) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  tcp_sender s = {socket(AF_INET, SOCK_STREAM, 0), bytes, piece};
  if (s.listen_fd < 0 || bind(s.listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
      listen(s.listen_fd, 1) || getsockname(s.listen_fd, (struct sockaddr *)&sa, &sl)) {
    perror("mt_bench_remote: tcp listener");
    exit(1);
  }
  pthread_t thread;
  pthread_create(&thread, NULL, send_bytes, &s);
  double start = now_s();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
    perror("mt_bench_remote: tcp connect");
    exit(1);
  }
  size_t got = 0;
  while (got < bytes) {
    size_t want = bytes - got < (1u << 20) ? bytes - got : (1u << 20);
    ssize_t r = read(fd, dst + got, want);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  double took = now_s() - start;
  close(fd);
  pthread_join(thread, NULL);
  close(s.listen_fd);
  if (got != bytes) {
    fprintf(stderr, "mt_bench_remote: raw TCP moved %zu of %zu bytes\n", got, bytes);
    exit(1);
  }
  return took;
}

static void part_c(const sizes *z, int reps) {
  size_t bytes = z->transfer;
  int64_t n = (int64_t)(bytes / sizeof(float));
  float *src = malloc(bytes), *dst = malloc(bytes);
  if (!src || !dst) {
    fprintf(stderr, "mt_bench_remote: no memory for %zu-byte buffers\n", bytes);
    exit(1);
  }
  for (int64_t i = 0; i < n; i++) src[i] = (float)(i % 1000);
  memset(dst, 0, bytes);
  double *up = malloc(sizeof(double) * (size_t)reps), *down = malloc(sizeof(double) * (size_t)reps);
  double *raw = malloc(sizeof(double) * (size_t)reps);
  double *up_share = malloc(sizeof(double) * (size_t)reps);
  double *down_share = malloc(sizeof(double) * (size_t)reps);
  /* CPU seconds per GB, both ends together: unlike wall time, hardly
   * affected by other load on the machine. */
  double *raw_cpu = malloc(sizeof(double) * (size_t)reps);
  double *up_cpu = malloc(sizeof(double) * (size_t)reps);
  double *down_cpu = malloc(sizeof(double) * (size_t)reps);
  double gb = bytes / 1e9;
  /* Raw TCP runs before and after ours in every repetition; the shares
   * compare each transfer with the raw speed of its own repetition, which
   * keeps them meaningful on a machine whose load drifts. */
  for (int r = 0; r < reps; r++) {
    double c0 = self_cpu_s();
    double raw_before = raw_tcp_seconds(bytes, (char *)dst, (const char *)src);
    double c1 = self_cpu_s();
    /* upload: done when the worker has all of it (the sync confirms).
     * New bytes in each repetition: bytes sent before would go by
     * reference (content addressing), not over the connection. */
    src[0] = (float)(r + 1000);
    double u0 = both_cpu_s(), t0 = now_s();
    mt_tensor *t = must(mt_from_data(src, 1, &n, MT_FLOAT32, MODAL), "mt_from_data");
    must_ok(mt_synchronize(MODAL), "mt_synchronize");
    double t1 = now_s(), u1 = both_cpu_s();
    must_ok(mt_to_host(t, dst, bytes), "mt_to_host");
    double t2 = now_s(), u2 = both_cpu_s();
    raw_cpu[r] = (c1 - c0) / gb;
    up_cpu[r] = (u1 - u0) / gb;
    down_cpu[r] = (u2 - u1) / gb;
    if (memcmp(src, dst, bytes) != 0) {
      fprintf(stderr, "mt_bench_remote: the downloaded bytes differ\n");
      exit(1);
    }
    mt_tensor_free(t);
    must_ok(mt_synchronize(MODAL), "mt_synchronize"); /* frees it on the worker */
    double raw_after = raw_tcp_seconds(bytes, (char *)dst, (const char *)src);
    raw[r] = 2.0 * bytes / (raw_before + raw_after) / 1e9;
    up[r] = bytes / (t1 - t0) / 1e9;
    down[r] = bytes / (t2 - t1) / 1e9;
    up_share[r] = 100.0 * up[r] / raw[r];
    down_share[r] = 100.0 * down[r] / raw[r];
  }
  char what[96], note[96];
  double u = median(up, reps), d = median(down, reps), t = median(raw, reps);
  snprintf(note, sizeof note, "median of %d", reps);
  snprintf(what, sizeof what, "raw TCP on 127.0.0.1, %.0f MiB in 1 MiB writes", bytes / MIB);
  row("(c)", what, t, "GB/s", note);
  snprintf(what, sizeof what, "upload: mt_from_data %.0f MiB + sync", bytes / MIB);
  row("(c)", what, u, "GB/s", note);
  snprintf(what, sizeof what, "download: mt_to_host %.0f MiB", bytes / MIB);
  row("(c)", what, d, "GB/s", note);
  snprintf(note, sizeof note, "median of per-repetition shares; target >= 70%%");
  row("(c)", "upload / raw TCP", median(up_share, reps), "%", note);
  row("(c)", "download / raw TCP", median(down_share, reps), "%", note);
  if (worker_pid > 0) {
    double rc = median(raw_cpu, reps), uc = median(up_cpu, reps), dc = median(down_cpu, reps);
    snprintf(note, sizeof note, "CPU s per GB, both ends; median of %d", reps);
    row("(c)", "CPU: raw TCP", rc, "s/GB", note);
    row("(c)", "CPU: upload (client + worker)", uc, "s/GB", note);
    row("(c)", "CPU: download (client + worker)", dc, "s/GB", note);
    row("(c)", "CPU: raw TCP / upload", 100.0 * rc / uc, "%", "CPU efficiency vs raw TCP");
    row("(c)", "CPU: raw TCP / download", 100.0 * rc / dc, "%", "CPU efficiency vs raw TCP");
  }
  free(raw_cpu);
  free(up_cpu);
  free(down_cpu);
  free(up_share);
  free(down_share);
  free(up);
  free(down);
  free(raw);
  free(src);
  free(dst);
}

/* ------------------------------------------------------------ (d) */

typedef struct mlp_result {
  double ms;
  uint64_t syncs;
  double checksum;
} mlp_result;

/* Runs the MLP on device; weights are made and synced before the timing,
 * which covers the layers and the download of the output. */
static mlp_result run_mlp(int layers, mt_device device) {
  const int64_t xs[2] = {64, 512}, ws[2] = {512, 512}, bs[1] = {512};
  mt_tensor **w = malloc(sizeof *w * (size_t)layers), **b = malloc(sizeof *b * (size_t)layers);
  for (int i = 0; i < layers; i++) {
    mt_tensor *raw = must(mt_randn(2, ws, MT_FLOAT32, device, 100 + (uint64_t)i), "mt_randn");
    w[i] = must(mt_mul_scalar(raw, 1.0 / sqrt(512.0)), "mt_mul_scalar");
    mt_tensor_free(raw);
    b[i] = must(mt_randn(1, bs, MT_FLOAT32, device, 1000 + (uint64_t)i), "mt_randn");
  }
  mt_tensor *x = must(mt_randn(2, xs, MT_FLOAT32, device, 7), "mt_randn");
  must_ok(mt_synchronize(device), "mt_synchronize");
  float *out = malloc(64 * 512 * sizeof *out);
  int remote = device.type == MT_DEVICE_MODAL;
  uint64_t syncs0 = remote ? worker_syncs() : 0;
  double start = now_s();
  mt_tensor *h = x;
  for (int i = 0; i < layers; i++) {
    mt_tensor *m = must(mt_matmul(h, w[i]), "mt_matmul");
    mt_tensor *a = must(mt_add(m, b[i]), "mt_add");
    mt_tensor *g = must(mt_gelu(a), "mt_gelu");
    mt_tensor_free(m);
    mt_tensor_free(a);
    if (h != x) mt_tensor_free(h);
    h = g;
  }
  must_ok(mt_to_host(h, out, 64 * 512 * sizeof *out), "mt_to_host");
  mlp_result r = {(now_s() - start) * 1e3, 0, 0};
  r.syncs = remote ? worker_syncs() - syncs0 : 0;
  for (int i = 0; i < 64 * 512; i++) r.checksum += out[i];
  if (h != x) mt_tensor_free(h);
  mt_tensor_free(x);
  for (int i = 0; i < layers; i++) {
    mt_tensor_free(w[i]);
    mt_tensor_free(b[i]);
  }
  free(w);
  free(b);
  free(out);
  return r;
}

/* Runs the eager MLP in a child process (fresh configuration), reading its
 * one result line. */
static mlp_result run_mlp_eager_child(const char *self, const char *addr, int layers) {
  int fds[2];
  if (pipe(fds)) {
    perror("mt_bench_remote: pipe");
    exit(1);
  }
  char layers_arg[16];
  snprintf(layers_arg, sizeof layers_arg, "%d", layers);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    setenv("MODALTENSOR_EAGER", "1", 1);
    execl(self, "mt_bench_remote", "--worker", addr, "--child-mlp", layers_arg, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char line[256] = {0};
  size_t used = 0;
  ssize_t r;
  while (used + 1 < sizeof line && (r = read(fds[0], line + used, sizeof line - 1 - used)) > 0)
    used += (size_t)r;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  mlp_result res;
  unsigned long long syncs;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      sscanf(line, "%lf %llu %lf", &res.ms, &syncs, &res.checksum) != 3) {
    fprintf(stderr, "mt_bench_remote: the eager child failed: %s\n", line);
    exit(1);
  }
  res.syncs = syncs;
  return res;
}

static void part_d(const sizes *z, int reps, const char *self, const char *addr) {
  double *graph_ms = malloc(sizeof(double) * (size_t)reps);
  double *eager_ms = malloc(sizeof(double) * (size_t)reps);
  double *cpu_ms = malloc(sizeof(double) * (size_t)reps);
  mlp_result g = {0}, e = {0}, c = {0};
  /* Warm-up (untimed): thread pools of both processes, the worker's memory. */
  run_mlp(2, MODAL);
  run_mlp(2, CPU);
  for (int r = 0; r < reps; r++) {
    g = run_mlp(z->layers, MODAL);
    e = run_mlp_eager_child(self, addr, z->layers);
    c = run_mlp(z->layers, CPU);
    graph_ms[r] = g.ms;
    eager_ms[r] = e.ms;
    cpu_ms[r] = c.ms;
  }
  double tol = 1e-3 * (1.0 + fabs(c.checksum));
  if (fabs(g.checksum - c.checksum) > tol || fabs(e.checksum - c.checksum) > tol) {
    fprintf(stderr, "mt_bench_remote: MLP outputs differ: graph %g, eager %g, cpu %g\n",
            g.checksum, e.checksum, c.checksum);
    exit(1);
  }
  char what[96], note[96];
  snprintf(what, sizeof what, "MLP %d layers, one graph: wall", z->layers);
  snprintf(note, sizeof note, "%llu sync(s); median of %d", (unsigned long long)g.syncs, reps);
  row("(d)", what, median(graph_ms, reps), "ms", note);
  snprintf(what, sizeof what, "MLP %d layers, MODALTENSOR_EAGER=1: wall", z->layers);
  snprintf(note, sizeof note, "%llu syncs; median of %d", (unsigned long long)e.syncs, reps);
  row("(d)", what, median(eager_ms, reps), "ms", note);
  snprintf(what, sizeof what, "MLP %d layers, in-process cpu: wall", z->layers);
  row("(d)", what, median(cpu_ms, reps), "ms", "for scale");
  free(graph_ms);
  free(eager_ms);
  free(cpu_ms);
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f) {
  fprintf(f, "usage: mt_bench_remote [--worker ADDR] [--reps N] [--quick]\n");
}

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){NULL, 5, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) {
      o->quick = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (val && !strcmp(a, "--worker")) {
      o->worker = val;
      i++;
    } else if (val && !strcmp(a, "--reps") && atoi(val) > 0 && atoi(val) <= 1000) {
      o->reps = atoi(val);
      i++;
    } else if (val && !strcmp(a, "--child-mlp") && atoi(val) > 0) {
      o->child_mlp = atoi(val);
      i++;
    } else {
      fprintf(stderr, "mt_bench_remote: bad argument '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  return 0;
}

/* The bench's own channel for Stats and the bare Health ping: over TLS,
 * trusting MODALTENSOR_TLS_CA, when the library is told to use TLS too. */
static wc_channel *stats_connect(const char *addr) {
  const char *token = getenv("MODALTENSOR_TOKEN"), *ca = getenv("MODALTENSOR_TLS_CA");
  if (!ca || !*ca) return wc_connect(addr, token);
  FILE *f = fopen(ca, "rb");
  char *pem = f ? calloc(1, 1 << 20) : NULL;
  size_t n = pem ? fread(pem, 1, (1 << 20) - 1, f) : 0;
  if (f) fclose(f);
  if (!n) {
    fprintf(stderr, "mt_bench_remote: MODALTENSOR_TLS_CA=%s: cannot read it\n", ca);
    free(pem);
    return NULL;
  }
  wc_channel *ch = wc_connect_tls(addr, token, pem);
  free(pem);
  return ch;
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o)) return 2;
  const sizes *z = o.quick ? &quick_sizes : &full_sizes;
  int reps = o.quick ? 1 : o.reps;
  wt_worker worker = {0};
  const char *addr = o.worker;
  if (!addr) {
    static const char *const args[] = {"--log-level", "error", NULL};
    if (wt_worker_start(&worker, args, NULL)) {
      fprintf(stderr, "mt_bench_remote: the worker did not start\n");
      return 1;
    }
    addr = worker.addr;
    worker_pid = worker.pid;
  }
  /* The library reads the address at its first call. */
  setenv("MODALTENSOR_WORKER", addr, 1);
  /* This process starts gRPC before the library does: make the library's
   * flow-control choice first, as the library would (core/grpc_flow.h). */
  mti_grpc_choose_flow_control();
  grpc_init();
  stats_channel = stats_connect(addr);
  if (!stats_channel) return 1;

  if (o.child_mlp) { /* (d), eager, in the child: one line for the parent */
    mlp_result r = run_mlp(o.child_mlp, MODAL);
    printf("%.6f %llu %.17g\n", r.ms, (unsigned long long)r.syncs, r.checksum);
  } else {
    if (!mt_modal_is_available()) die("no modal device");
    printf("mt_bench_remote %s: worker %s (loopback TCP), %s sizes, %d rep(s)\n", mt_version(),
           addr, o.quick ? "quick" : "full", reps);
    printf("%-4s %-46s %12s  %-7s %s\n", "part", "case", "value", "unit", "note");
    part_a(z, reps);
    part_b(z);
    part_c(z, reps);
    part_d(z, reps, "/proc/self/exe", addr);
    fflush(stdout);
  }
  mt_shutdown();
  wc_channel_free(stats_channel);
  if (!o.worker) wt_worker_stop(&worker);
  return 0;
}
