/*
 * bench_gpu.c - the worker's cuda backend on a fixed suite: matmul f32,
 * TF32 and bf16 at 4096^3 and 8192^3; add of 256 MiB; softmax and
 * layer_norm of [8192, 8192] float32; sum of 256 MiB.
 *
 * Each case records --reps ops into one graph and syncs once, so the RPC
 * and recording cost is amortised over the ops (the number is the GPU's
 * throughput as a client sees it, within a few percent); a warm-up graph
 * runs first. Results go to stdout as "case<TAB>value<TAB>unit" lines:
 * TFLOP/s for matmul, GB/s (bytes read + written) for the rest.
 * scripts/bench_gpu.sh runs this beside bench/bench_torch.py on the same
 * GPU and prints the comparison.
 *
 * The worker is started with --backend cuda (the remote tests' harness on
 * 127.0.0.1:0) unless --worker ADDR names a running one.
 *
 * Usage: mt_bench_gpu [--worker ADDR] [--reps N] [--quick]
 */
#include <modaltensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker_proc.h"

#define MODAL ((mt_device){MT_DEVICE_MODAL, 0})
#define MIB ((int64_t)1 << 20)

typedef enum kind { MATMUL, ADD, SOFTMAX, LAYER_NORM, SUM } kind;

typedef struct bench_case {
  const char *name;
  kind op;
  mt_dtype dtype;
  int tf32;
  int64_t n; /* matmul: n^3; else the [rows, n] or [n] shape below */
  int64_t rows;
} bench_case;

static const bench_case cases[] = {
    {"matmul_f32_4096", MATMUL, MT_FLOAT32, 0, 4096, 0},
    {"matmul_tf32_4096", MATMUL, MT_FLOAT32, 1, 4096, 0},
    {"matmul_bf16_4096", MATMUL, MT_BFLOAT16, 0, 4096, 0},
    {"matmul_f32_8192", MATMUL, MT_FLOAT32, 0, 8192, 0},
    {"matmul_tf32_8192", MATMUL, MT_FLOAT32, 1, 8192, 0},
    {"matmul_bf16_8192", MATMUL, MT_BFLOAT16, 0, 8192, 0},
    {"add_256MiB", ADD, MT_FLOAT32, 0, 64 * MIB, 0},
    {"softmax_8192x8192", SOFTMAX, MT_FLOAT32, 0, 8192, 8192},
    {"layer_norm_8192x8192", LAYER_NORM, MT_FLOAT32, 0, 8192, 8192},
    {"sum_256MiB", SUM, MT_FLOAT32, 0, 64 * MIB, 0},
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "mt_bench_gpu: %s: %s (%s)\n", what, mt_status_name(mt_last_status()),
          mt_last_error());
  exit(1);
}

static mt_tensor *must(mt_tensor *t, const char *what) {
  if (!t) die(what);
  return t;
}

/* The inputs of case c (at most 3), made on the GPU. */
static int make_inputs(const bench_case *c, int64_t n, mt_tensor **in) {
  int64_t sq[2] = {n, n}, rows[2] = {c->rows, n};
  switch (c->op) {
  case MATMUL:
    in[0] = must(mt_randn(2, sq, c->dtype, MODAL, 1), "randn");
    in[1] = must(mt_randn(2, sq, c->dtype, MODAL, 2), "randn");
    return 2;
  case ADD:
    in[0] = must(mt_randn(1, &n, c->dtype, MODAL, 1), "randn");
    in[1] = must(mt_randn(1, &n, c->dtype, MODAL, 2), "randn");
    return 2;
  case SOFTMAX: in[0] = must(mt_randn(2, rows, c->dtype, MODAL, 1), "randn"); return 1;
  case LAYER_NORM:
    in[0] = must(mt_randn(2, rows, c->dtype, MODAL, 1), "randn");
    in[1] = must(mt_randn(1, &n, c->dtype, MODAL, 2), "randn");
    in[2] = must(mt_randn(1, &n, c->dtype, MODAL, 3), "randn");
    return 3;
  case SUM: in[0] = must(mt_randn(1, &n, c->dtype, MODAL, 1), "randn"); return 1;
  }
  return 0;
}

/* Records one op of case c; its result is freed at once (the worker frees
 * it after the op, in stream order, and reuses the block). */
static void record(const bench_case *c, mt_tensor *const *in) {
  mt_tensor *r = NULL;
  switch (c->op) {
  case MATMUL: r = mt_matmul(in[0], in[1]); break;
  case ADD: r = mt_add(in[0], in[1]); break;
  case SOFTMAX: r = mt_softmax(in[0], -1); break;
  case LAYER_NORM: r = mt_layer_norm(in[0], in[1], in[2], 1e-5); break;
  case SUM: r = mt_sum(in[0], 0, NULL, 0); break;
  }
  mt_tensor_free(must(r, c->name));
}

/* Seconds per op: reps ops in one graph, one sync. */
static double time_ops(const bench_case *c, mt_tensor *const *in, int reps) {
  double t0 = now_s();
  for (int i = 0; i < reps; i++) record(c, in);
  if (mt_synchronize(MODAL) != MT_OK) die(c->name);
  return (now_s() - t0) / reps;
}

/* TFLOP/s for matmul, else GB/s of the bytes the op must read and write. */
static double rate(const bench_case *c, int64_t n, double s) {
  double bytes = (double)(c->op == MATMUL ? 0 : (c->rows ? c->rows : 1) * n) * 4.0;
  switch (c->op) {
  case MATMUL: return 2.0 * (double)n * (double)n * (double)n / s * 1e-12;
  case ADD: return 3.0 * bytes / s * 1e-9;
  case SOFTMAX:
  case LAYER_NORM: return 2.0 * bytes / s * 1e-9;
  case SUM: return bytes / s * 1e-9;
  }
  return 0;
}

static void run_case(const bench_case *c, int reps, int quick) {
  int64_t n = quick ? (c->op == MATMUL ? 256 : c->rows ? 256 : MIB) : c->n;
  bench_case small = *c;
  if (quick && small.rows) small.rows = 256;
  mt_tensor *in[3] = {NULL, NULL, NULL};
  int count = make_inputs(&small, n, in);
  mt_set_matmul_tf32(c->tf32);
  time_ops(&small, in, 2); /* warm-up: cuBLAS handle, allocator, clocks */
  double s = time_ops(&small, in, reps);
  mt_set_matmul_tf32(0);
  printf("%s\t%.3f\t%s\n", c->name, rate(&small, n, s), c->op == MATMUL ? "TFLOP/s" : "GB/s");
  fflush(stdout);
  for (int i = 0; i < count; i++) mt_tensor_free(in[i]);
}

int main(int argc, char **argv) {
  const char *addr = NULL;
  int reps = 20, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc) addr = argv[++i];
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--quick") == 0) quick = 1;
    else {
      fprintf(stderr, "usage: mt_bench_gpu [--worker ADDR] [--reps N] [--quick]\n");
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  wt_worker worker = {0};
  if (!addr) {
    static const char *const args[] = {"--backend", "cuda", NULL};
    if (wt_worker_start(&worker, args, NULL)) {
      fprintf(stderr, "mt_bench_gpu: the worker did not start with --backend cuda "
                      "(no GPU visible, or a build without CUDA)\n");
      return 1;
    }
    addr = worker.addr;
  }
  setenv("MODALTENSOR_WORKER", addr, 1);
  mt_device_properties p;
  if (mt_modal_get_device_properties(0, &p) != MT_OK) die("device properties");
  printf("# device\t%s\tsm_%d%d, %d SMs, %.1f GiB\n", p.name, p.major, p.minor,
         p.multiprocessors, (double)p.total_memory / (double)(1 << 30));
  printf("# timing\t%d ops recorded into one graph, one sync: the RPC cost is amortised\n",
         reps);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], reps, quick);
  mt_shutdown();
  if (worker.pid > 0) wt_worker_stop(&worker);
  return 0;
}
