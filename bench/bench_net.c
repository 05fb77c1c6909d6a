/*
 * bench_net.c - mt_bench_net: the modal device over an emulated network.
 * A cpu worker on loopback behind the delay proxy (bench/delay_proxy.c),
 * at each round trip time given (default 0, 20 and 80 ms) and a bandwidth
 * limit (default 100 MB/s), runs: start-up to the first result, the mlp
 * example (a child process), a 20-step loop reading a loss each step, a
 * 1 MiB-in / 1 MiB-out inference loop (10 steps), and two runs uploading
 * the same 64 MiB (each a fresh session; the worker keeps a cache
 * directory, so the second run is served from it; new bytes at each round
 * trip time), and 10 training steps (the graph bytes of the first step and
 * of each later one, run from a template). It also measures SHA-256 over the 64 MiB, which every large
 * upload costs the client (and the worker). For each: wall time, round trips
 * counted three ways (turns at the proxy, sync points in the worker's
 * Stats, the library's own count; wall time / RTT is the fourth check),
 * bytes on the wire against payload, and the ideal time (the round trips a
 * program must wait for, plus payload / bandwidth). A second table (alone
 * with --bulk) has the bulk transfers: the same number of MiB uploaded
 * (new bytes) and downloaded, each on a new connection whose session is
 * open, against one round trip plus the payload at the bandwidth ("of the
 * link"). Numbers only; nothing is asserted. Results: docs/REMOTE.md.
 *
 *   mt_bench_net [--rtt MS[,MS...]] [--rate MBPS] [--mib N] [--bulk] [--quick]
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <openssl/evp.h>

#include "core/grpc_flow.h"
#include "delay_proxy.h"
#include "modaltensor.h"
#include "wire_client.h"
#include "worker_proc.h"

typedef struct options {
  double rtts[8];
  int nrtts;
  double rate; /* bytes per second */
  int upload_mib;
  int bulk_only; /* --bulk: only the bulk transfer rows */
  const char *mlp; /* the example's binary */
} options;

typedef struct measure {
  double wall_ms;
  mtb_proxy_counters wire;
  uint64_t worker_syncs;
  mt_modal_stats lib;
} measure;

typedef struct bench {
  options o;
  wt_worker worker;
  wc_channel *stats_ch; /* straight to the worker, not through the proxy */
  mtb_proxy *proxy;
  double rtt_ms;
  uint64_t syncs0;
  double t0;
  uint64_t graph_first, graph_later; /* case_train's graph bytes per step */
} bench;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static uint64_t worker_syncs(bench *b) {
  Modaltensor__V1__StatsReply *r = wc_stats(b->stats_ch, 0);
  uint64_t n = r && r->total ? r->total->syncs : 0;
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return n;
}

static void check(mt_status st, const char *what) {
  if (st) {
    fprintf(stderr, "mt_bench_net: %s: %s\n", what, mt_last_error());
    exit(1);
  }
}

static mt_tensor *made(mt_tensor *t, const char *what) {
  if (!t) check(mt_last_status(), what);
  return t;
}

/* A fresh process state for the next case: no session, zeroed counters. */
static void begin(bench *b) {
  mt_shutdown();
  mtb_proxy_reset(b->proxy);
  mt_modal_stats_reset();
  b->syncs0 = worker_syncs(b);
  b->t0 = now_ms();
}

static measure end(bench *b) {
  measure m;
  m.wall_ms = now_ms() - b->t0;
  mtb_proxy_read(b->proxy, &m.wire);
  check(mt_modal_get_stats(&m.lib), "stats");
  m.worker_syncs = worker_syncs(b) - b->syncs0;
  return m;
}

static void report(const bench *b, const char *name, const measure *m, double ideal_rtts,
                   double payload) {
  double ideal = ideal_rtts * b->rtt_ms + payload / b->o.rate * 1e3;
  printf("| %g | %s | %.0f | %.0f | %llu / %llu / %llu | %.1f | %.2f / %.2f | %.2f |\n",
         b->rtt_ms, name, m->wall_ms, ideal, (unsigned long long)m->wire.turns,
         (unsigned long long)m->worker_syncs, (unsigned long long)m->lib.round_trips,
         b->rtt_ms > 0 ? m->wall_ms / b->rtt_ms : 0.0,
         (double)(m->wire.bytes_up + m->wire.bytes_down) / 1048576.0,
         (double)(m->lib.bytes_up + m->lib.bytes_down) / 1048576.0,
         (double)m->lib.bytes_skipped / 1048576.0);
  fflush(stdout);
}

static const mt_device modal0 = {MT_DEVICE_MODAL, 0};

/* Start-up: the first result of a fresh process (connect included). */
static void case_startup(bench *b) {
  begin(b);
  float v[4] = {1, 2, 3, 4};
  const int64_t four = 4;
  mt_tensor *a = made(mt_from_data(v, 1, &four, MT_FLOAT32, modal0), "upload");
  mt_tensor *s = made(mt_sum(a, 0, NULL, 0), "sum");
  double x;
  check(mt_item(s, &x), "item");
  measure m = end(b);
  report(b, "start-up to first result", &m, 1, 16);
  mt_tensor_free(s);
  mt_tensor_free(a);
}

/* The mlp example as its own process (its own connection). */
static void case_mlp(bench *b, const char *address) {
  begin(b);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("MODALTENSOR_WORKER", address, 1);
    if (!freopen("/dev/null", "w", stdout)) _exit(126);
    execl(b->o.mlp, b->o.mlp, "--device", "modal", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  measure m = end(b);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) fprintf(stderr, "mlp failed: %d\n", status);
  /* its library counts in its own process: show the worker's and proxy's */
  m.lib.round_trips = m.worker_syncs;
  report(b, "examples/mlp (process)", &m, (double)m.worker_syncs, 0);
}

/* A training-like loop: 20 steps, each reading its loss. */
static void case_loop(bench *b) {
  begin(b);
  const int64_t shape[2] = {256, 256};
  mt_tensor *w = made(mt_randn(2, shape, MT_FLOAT32, modal0, 1), "randn");
  mt_tensor *x = made(mt_randn(2, shape, MT_FLOAT32, modal0, 2), "randn");
  for (int step = 0; step < 20; step++) {
    mt_tensor *y = made(mt_matmul(x, w), "matmul");
    mt_tensor *l = made(mt_sum(y, 0, NULL, 0), "sum");
    double loss;
    check(mt_item(l, &loss), "item");
    mt_tensor_free(l);
    mt_tensor_free(y);
  }
  measure m = end(b);
  report(b, "20 steps, loss read each", &m, 20, 20 * 8);
  mt_tensor_free(x);
  mt_tensor_free(w);
}

/* Inference: 1 MiB in, 1 MiB out, 10 times. */
static void case_infer(bench *b, unsigned salt) {
  enum { N = 262144 };
  float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
  for (int i = 0; i < N; i++) in[i] = (float)i;
  in[1] = (float)salt; /* bytes the cache has not seen at an earlier RTT */
  begin(b);
  const int64_t n = N;
  for (int step = 0; step < 10; step++) {
    in[0] = (float)step; /* new bytes each step */
    mt_tensor *x = made(mt_from_data(in, 1, &n, MT_FLOAT32, modal0), "upload");
    mt_tensor *y = made(mt_mul_scalar(x, 2.0), "mul");
    check(mt_to_host(y, out, N * sizeof *out), "download");
    mt_tensor_free(y);
    mt_tensor_free(x);
  }
  measure m = end(b);
  report(b, "1 MiB in / 1 MiB out, 10 steps", &m, 10, 10.0 * 2 * N * sizeof(float));
  free(in);
  free(out);
}

/* Graph bytes of a training step (least squares by hand: forward, the
 * gradient, the update of w, the loss read): the first step, and the mean
 * of the 9 after it, which the worker runs from the template it kept. */
static void case_train(bench *b) {
  begin(b);
  const int64_t xs[2] = {64, 32}, ws[2] = {32, 8}, ts[2] = {64, 8};
  mt_tensor *x = made(mt_randn(2, xs, MT_FLOAT32, modal0, 3), "randn");
  mt_tensor *t = made(mt_randn(2, ts, MT_FLOAT32, modal0, 4), "randn");
  mt_tensor *w = made(mt_randn(2, ws, MT_FLOAT32, modal0, 5), "randn");
  check(mt_synchronize(modal0), "sync");
  mt_modal_stats before, after;
  uint64_t first = 0, later = 0;
  for (int step = 0; step < 10; step++) {
    check(mt_modal_get_stats(&before), "stats");
    mt_tensor *y = made(mt_matmul(x, w), "matmul");
    mt_tensor *e = made(mt_sub(y, t), "sub");
    mt_tensor *e2 = made(mt_mul(e, e), "mul");
    mt_tensor *loss = made(mt_sum(e2, 0, NULL, 0), "sum");
    mt_tensor *xt = made(mt_transpose(x, 0, 1), "transpose");
    mt_tensor *g = made(mt_matmul(xt, e), "matmul");
    mt_tensor *g2 = made(mt_mul_scalar(g, -2e-3), "mul_scalar");
    mt_tensor *w2 = made(mt_add(w, g2), "add");
    double l;
    check(mt_item(loss, &l), "item");
    check(mt_modal_get_stats(&after), "stats");
    uint64_t bytes = after.graph_bytes - before.graph_bytes;
    if (step == 0) first = bytes;
    else later += bytes;
    mt_tensor *dead[] = {y, e, e2, loss, xt, g, g2, w};
    for (size_t i = 0; i < sizeof dead / sizeof *dead; i++) mt_tensor_free(dead[i]);
    w = w2;
  }
  measure m = end(b);
  report(b, "10 training steps (graph sent once)", &m, 10, 10 * 8);
  b->graph_first = first;
  b->graph_later = later / 9;
  mt_tensor_free(w);
  mt_tensor_free(t);
  mt_tensor_free(x);
}

/* One bulk transfer row: the payload against the link (one round trip,
 * the request or the sync, plus the payload at the proxy's bandwidth). */
static void report_bulk(const bench *b, const char *name, double wall_ms, double payload) {
  double ideal = b->rtt_ms + payload / b->o.rate * 1e3;
  printf("| %g | %s | %.0f | %.0f | %.0f %% | %.1f MB/s |\n", b->rtt_ms, name, wall_ms, ideal,
         100.0 * ideal / wall_ms, payload / wall_ms / 1e3);
  fflush(stdout);
}

/* A fresh process state with its session open (one sync on a new
 * connection): what follows measures a transfer, not the start-up. */
static void begin_open_session(bench *b) {
  begin(b);
  const int64_t one = 1;
  float v = 1;
  mt_tensor *t = made(mt_from_data(&v, 1, &one, MT_FLOAT32, modal0), "upload");
  check(mt_synchronize(modal0), "sync");
  mt_tensor_free(t);
}

/* Bulk transfers on a new connection whose session is open: new bytes
 * uploaded (with their bytes: the session knows the worker lacks them),
 * and as many downloaded. */
static void case_bulk(bench *b, unsigned salt) {
  size_t n = (size_t)b->o.upload_mib << 18; /* float32 elements */
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = (float)(i % 1000 + 1000 * salt) + 0.5f;
  const int64_t shape = (int64_t)n;
  char name[64];
  begin_open_session(b);
  double t0 = now_ms();
  mt_tensor *t = made(mt_from_data(v, 1, &shape, MT_FLOAT32, modal0), "upload");
  check(mt_synchronize(modal0), "sync");
  snprintf(name, sizeof name, "%d MiB upload, open session", b->o.upload_mib);
  report_bulk(b, name, now_ms() - t0, (double)(n * sizeof *v));
  mt_tensor_free(t);
  begin_open_session(b);
  t = made(mt_full(1, &shape, 2.0, MT_FLOAT32, modal0), "full");
  check(mt_synchronize(modal0), "sync");
  t0 = now_ms();
  check(mt_to_host(t, v, n * sizeof *v), "download");
  snprintf(name, sizeof name, "%d MiB download, open session", b->o.upload_mib);
  report_bulk(b, name, now_ms() - t0, (double)(n * sizeof *v));
  mt_tensor_free(t);
  free(v);
}

/* SHA-256 of len bytes, as the library computes it (OpenSSL's EVP). */
static void report_sha256(const void *data, size_t len) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n;
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now_ms();
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    double ms = now_ms() - t0;
    if (ms < best) best = ms;
  }
  printf("\nSHA-256 of %.0f MiB: %.1f ms (%.2f GB/s; best of 3)\n\n", (double)len / 1048576.0,
         best, (double)len / best / 1e6);
}

/* The same weights uploaded by two runs (each a new session), different
 * bytes at each round trip time (the worker's cache outlives the runs). */
static void case_upload_twice(bench *b, unsigned salt) {
  size_t n = (size_t)b->o.upload_mib << 18; /* float32 elements */
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = (float)(i % 1000 + 1000 * salt);
  const int64_t shape = (int64_t)n;
  for (int run = 1; run <= 2; run++) {
    begin(b);
    mt_tensor *t = made(mt_from_data(v, 1, &shape, MT_FLOAT32, modal0), "upload");
    check(mt_synchronize(modal0), "sync");
    measure m = end(b);
    char name[64];
    snprintf(name, sizeof name, "%d MiB upload, run %d", b->o.upload_mib, run);
    report(b, name, &m, 1, (double)(n * sizeof *v));
    mt_tensor_free(t);
  }
  free(v);
}

/* The worker's cache directory, once it has stopped. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char path[512];
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  closedir(d);
  rmdir(dir);
}

static void parse(int argc, char **argv, options *o) {
  *o = (options){{0, 20, 80}, 3, 100e6, 64, 0, NULL};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rtt") && i + 1 < argc) {
      o->nrtts = 0;
      for (char *p = strtok(argv[++i], ","); p && o->nrtts < 8; p = strtok(NULL, ","))
        o->rtts[o->nrtts++] = atof(p);
    } else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
      o->rate = atof(argv[++i]) * 1e6;
    } else if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
      o->upload_mib = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--bulk")) {
      o->bulk_only = 1;
    } else if (!strcmp(argv[i], "--quick")) {
      o->nrtts = 1;
      o->rtts[0] = 2;
      o->upload_mib = 4;
    } else {
      fprintf(stderr, "usage: %s [--rtt MS[,MS...]] [--rate MBPS] [--mib N] [--bulk] [--quick]\n", argv[0]);
      exit(2);
    }
  }
  if (!(o->rate > 0)) o->rate = 100e6;
  if (o->upload_mib < 1) o->upload_mib = 1;
}

/* Every case (or, with bulk, the bulk transfers) behind a proxy at each
 * round trip time; exits when a proxy cannot start. */
static void run_at_each_rtt(bench *b, int bulk) {
  int worker_port = atoi(strrchr(b->worker.addr, ':') + 1);
  for (int i = 0; i < b->o.nrtts; i++) {
    int port;
    b->rtt_ms = b->o.rtts[i];
    b->proxy = mtb_proxy_start(worker_port, b->rtt_ms, b->o.rate, &port);
    if (!b->proxy) {
      fprintf(stderr, "mt_bench_net: the proxy did not start\n");
      exit(1);
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", port);
    setenv("MODALTENSOR_WORKER", address, 1);
    if (bulk) {
      case_bulk(b, (unsigned)i);
    } else {
      case_startup(b);
      case_mlp(b, address);
      case_loop(b);
      case_infer(b, (unsigned)i);
      case_upload_twice(b, (unsigned)i);
      case_train(b);
    }
    mt_shutdown();
    mtb_proxy_stop(b->proxy);
  }
}

int main(int argc, char **argv) {
  bench b = {0};
  parse(argc, argv, &b.o);
  b.o.mlp = MTB_MLP_PATH;
  char cache_dir[256];
  const char *tmp = getenv("TMPDIR");
  snprintf(cache_dir, sizeof cache_dir, "%s/mt-bench-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(cache_dir)) {
    perror("mt_bench_net: mkdtemp");
    return 1;
  }
  const char *const worker_args[] = {"--cache-dir", cache_dir, NULL};
  if (wt_worker_start(&b.worker, worker_args, NULL)) {
    fprintf(stderr, "mt_bench_net: the worker did not start\n");
    return 1;
  }
  /* This process starts gRPC before the library does: make the library's
   * flow-control choice first, as the library would (core/grpc_flow.h). */
  mti_grpc_choose_flow_control();
  grpc_init(); /* for the Stats channel; the library initialises its own use */
  b.stats_ch = wc_connect(b.worker.addr, NULL);
  if (!b.o.bulk_only) {
    printf("| RTT ms | case | wall ms | ideal ms | round trips: proxy turns / worker syncs / "
           "library | wall / RTT | MiB on the wire / payload | MiB skipped |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    run_at_each_rtt(&b, 0);
  }
  printf("\n| RTT ms | bulk transfer | wall ms | ideal ms | of the link | rate |\n");
  printf("|---|---|---|---|---|---|\n");
  run_at_each_rtt(&b, 1);
  wc_channel_free(b.stats_ch);
  wt_worker_stop(&b.worker);
  if (!b.o.bulk_only)
    printf("\nTraining step graph bytes: first step %llu, each later step %llu (%.1f %%)\n",
         (unsigned long long)b.graph_first, (unsigned long long)b.graph_later,
         b.graph_first ? 100.0 * (double)b.graph_later / (double)b.graph_first : 0.0);
  size_t len = (size_t)b.o.upload_mib << 20;
  void *bytes = calloc(1, len);
  if (bytes) report_sha256(bytes, len);
  free(bytes);
  remove_dir(cache_dir);
  return 0;
}
