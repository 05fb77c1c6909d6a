/*
 * bench_nn.c - times the neural-network ops on the cpu device, one JSON
 * object per line on stdout, in mt_bench's format (bench_cpu.c).
 *
 * bench/bench_torch_cpu.py times the same rows with PyTorch (nn_cases) and
 * scripts/bench.sh joins them. Method as mt_bench's: inputs made once,
 * untimed warm-up, then reps until the time budget is spent (or --reps);
 * a rep is the call plus the free of its result; the median is reported.
 *
 * Usage: mt_bench_nn [--filter SUBSTR] [--reps N] [--seconds S] [--quick]
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MIN_REPS = 3, MAX_REPS = 200, MAX_INPUTS = 4 };

typedef struct nn_case nn_case;
typedef mt_tensor *(*nn_fn)(mt_tensor *const in[MAX_INPUTS]);

/* A row: its inputs (float32 normal, or int64 classes when classes > 0),
 * the op, and the figure's shape text. */
struct nn_case {
  const char *name;
  const char *shape;
  int n_inputs;
  int ndim[MAX_INPUTS];
  int64_t shape_of[MAX_INPUTS][4];
  int64_t classes[MAX_INPUTS];
  nn_fn run;
};

static mt_tensor *run_linear(mt_tensor *const in[MAX_INPUTS]) {
  return mt_linear(in[0], in[1], in[2]);
}

static mt_tensor *run_conv3x3(mt_tensor *const in[MAX_INPUTS]) {
  const int64_t one[2] = {1, 1};
  return mt_conv2d(in[0], in[1], in[2], one, one, one, 1);
}

static mt_tensor *run_attention(mt_tensor *const in[MAX_INPUTS]) {
  return mt_scaled_dot_product_attention(in[0], in[1], in[2], NULL, 0, NAN);
}

static mt_tensor *run_causal_attention(mt_tensor *const in[MAX_INPUTS]) {
  return mt_scaled_dot_product_attention(in[0], in[1], in[2], NULL, 1, NAN);
}

static mt_tensor *run_cross_entropy(mt_tensor *const in[MAX_INPUTS]) {
  return mt_cross_entropy(in[0], in[1], -100, 0.0);
}

static mt_tensor *run_rms_norm(mt_tensor *const in[MAX_INPUTS]) {
  return mt_rms_norm(in[0], in[1], 1e-6);
}

/* The rows; quick: sizes for a smoke test. */
static int make_cases(int quick, nn_case *cases) {
  const int64_t b = quick ? 2 : 8, hw = quick ? 8 : 56, ch = quick ? 8 : 64;
  const int64_t heads = quick ? 2 : 12, len = quick ? 32 : 512, feat = quick ? 64 : 4096;
  const int64_t vocab = quick ? 1000 : 32000, rows = quick ? 16 : 512;
  const nn_case table[] = {
      {"linear_64x4096_by_4096x4096", quick ? "[64,64]" : "[64,4096]x[4096,4096]", 3,
       {2, 2, 1}, {{64, feat}, {feat, feat}, {feat}}, {0}, run_linear},
      {"conv2d_3x3_8x64x56x56", quick ? "[2,8,8,8]" : "[8,64,56,56]x[64,64,3,3]", 3,
       {4, 4, 1}, {{b, ch, hw, hw}, {ch, ch, 3, 3}, {ch}}, {0}, run_conv3x3},
      {"sdpa_8x12x512x64", quick ? "[2,2,32,64]" : "[8,12,512,64]", 3, {4, 4, 4},
       {{b, heads, len, 64}, {b, heads, len, 64}, {b, heads, len, 64}}, {0}, run_attention},
      {"sdpa_causal_8x12x512x64", quick ? "[2,2,32,64]" : "[8,12,512,64]", 3, {4, 4, 4},
       {{b, heads, len, 64}, {b, heads, len, 64}, {b, heads, len, 64}}, {0},
       run_causal_attention},
      {"cross_entropy_512x32000", quick ? "[16,1000]" : "[512,32000]", 2, {2, 1},
       {{rows, vocab}, {rows}}, {0, vocab}, run_cross_entropy},
      {"rms_norm_392x384", "[392,384]", 2, {2, 1}, {{392, 384}, {384}}, {0}, run_rms_norm},
  };
  int n = (int)(sizeof table / sizeof *table);
  memcpy(cases, table, sizeof table);
  return n;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int make_inputs(const nn_case *c, mt_tensor *in[MAX_INPUTS]) {
  mt_device cpu = {MT_DEVICE_CPU, 0};
  for (int i = 0; i < c->n_inputs; i++) {
    in[i] = c->classes[i] > 0
                ? mt_randint(0, c->classes[i], c->ndim[i], c->shape_of[i], MT_INT64, cpu, 7u + i)
                : mt_randn(c->ndim[i], c->shape_of[i], MT_FLOAT32, cpu, 1234u + (uint64_t)i);
    if (!in[i]) return 1;
  }
  return 0;
}

/* Times one row and prints its line; 1 on failure. */
static int run_case(const nn_case *c, int reps, double seconds) {
  mt_tensor *in[MAX_INPUTS] = {NULL};
  double samples[MAX_REPS];
  int n = 0, rc = 1;
  if (make_inputs(c, in)) goto done;
  for (int w = 0; w < 2; w++) {
    mt_tensor *r = c->run(in);
    if (!r) goto done;
    mt_tensor_free(r);
  }
  double budget_end = now_ms() + seconds * 1e3;
  while (n < MAX_REPS && (reps ? n < reps : (n < MIN_REPS || now_ms() < budget_end))) {
    double t0 = now_ms();
    mt_tensor *r = c->run(in);
    if (!r) goto done;
    mt_tensor_free(r);
    samples[n++] = now_ms() - t0;
  }
  qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
  printf("{\"case\": \"%s\", \"shape\": \"%s\", \"median_ms\": %.6f, \"min_ms\": %.6f, "
         "\"reps\": %d}\n",
         c->name, c->shape, samples[n / 2], samples[0], n);
  fflush(stdout);
  rc = 0;
done:
  if (rc) fprintf(stderr, "mt_bench_nn: %s failed: %s\n", c->name, mt_last_error());
  for (int i = 0; i < MAX_INPUTS; i++) mt_tensor_free(in[i]);
  return rc;
}

int main(int argc, char **argv) {
  const char *filter = NULL;
  int reps = 0, quick = 0;
  double seconds = 1.0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) i++; /* mt_bench's; fixed here */
    else {
      fprintf(stderr, "usage: mt_bench_nn [--filter SUBSTR] [--reps N] [--seconds S] "
                      "[--quick]\n");
      return 2;
    }
  }
  if (reps > MAX_REPS) reps = MAX_REPS;
  nn_case cases[16];
  int n = make_cases(quick, cases), failed = 0;
  for (int i = 0; i < n; i++)
    if (!filter || strstr(cases[i].name, filter)) failed |= run_case(&cases[i], reps, seconds);
  return failed;
}
