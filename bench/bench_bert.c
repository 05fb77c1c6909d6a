/*
 * bench_bert.c - a BERT-style encoder forward on the cpu device, the
 * end-to-end row of scripts/bench.sh (bench/bench_torch_cpu.py runs the same
 * model with PyTorch).
 *
 * Model: token embedding plus position embedding, then LAYERS layers of
 * (self-attention with HEADS heads, residual, layer_norm, MLP of 4 x hidden
 * with gelu, residual, layer_norm), hidden HIDDEN, batch BATCH x TOKENS.
 * Weights are random (N(0, 0.02)); the figure is the median of the timed
 * forwards, each freeing everything it made.
 *
 * Usage: mt_bench_bert [--reps N] [--quick]; prints one JSON line as
 * mt_bench does.
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HIDDEN = 384, HEADS = 6, LAYERS = 6, BATCH = 8, TOKENS = 49, VOCAB = 8192 };

typedef struct layer {
  mt_tensor *wqkv, *bqkv, *wo, *bo, *w1, *b1, *w2, *b2, *g1, *n1, *g2, *n2;
} layer;

typedef struct model {
  mt_tensor *tok, *pos, *ids;
  layer l[LAYERS];
  int layers;
} model;

static const mt_device cpu = {MT_DEVICE_CPU, 0};
static uint64_t seed = 1;

static mt_tensor *weight(int ndim, int64_t d0, int64_t d1, double scale, double shift) {
  const int64_t shape[2] = {d0, d1};
  mt_tensor *r = mt_randn(ndim, shape, MT_FLOAT32, cpu, seed++);
  mt_tensor *s = mt_mul_scalar(r, scale);
  mt_tensor *w = mt_add_scalar(s, shift);
  mt_tensor_free(r);
  mt_tensor_free(s);
  return w;
}

static void model_init(model *m, int layers) {
  m->layers = layers;
  m->tok = weight(2, VOCAB, HIDDEN, 0.02, 0);
  m->pos = weight(2, BATCH * TOKENS, HIDDEN, 0.02, 0);
  int64_t n = BATCH * TOKENS;
  int64_t *ids = malloc(sizeof *ids * (size_t)n);
  for (int64_t i = 0; i < n; i++) ids[i] = (i * 7919) % VOCAB;
  mt_tensor *blob = mt_from_blob(ids, 1, &n, NULL, MT_INT64, NULL, NULL);
  m->ids = mt_clone(blob); /* owns its copy */
  mt_tensor_free(blob);
  free(ids);
  for (int i = 0; i < layers; i++) {
    layer *l = &m->l[i];
    l->wqkv = weight(2, HIDDEN, 3 * HIDDEN, 0.02, 0), l->bqkv = weight(1, 3 * HIDDEN, 0, 0.02, 0);
    l->wo = weight(2, HIDDEN, HIDDEN, 0.02, 0), l->bo = weight(1, HIDDEN, 0, 0.02, 0);
    l->w1 = weight(2, HIDDEN, 4 * HIDDEN, 0.02, 0), l->b1 = weight(1, 4 * HIDDEN, 0, 0.02, 0);
    l->w2 = weight(2, 4 * HIDDEN, HIDDEN, 0.02, 0), l->b2 = weight(1, HIDDEN, 0, 0.02, 0);
    l->g1 = weight(1, HIDDEN, 0, 0.02, 1), l->n1 = weight(1, HIDDEN, 0, 0.02, 0);
    l->g2 = weight(1, HIDDEN, 0, 0.02, 1), l->n2 = weight(1, HIDDEN, 0, 0.02, 0);
  }
}

static void model_free(model *m) {
  mt_tensor_free(m->tok), mt_tensor_free(m->pos), mt_tensor_free(m->ids);
  for (int i = 0; i < m->layers; i++) {
    mt_tensor **w = (mt_tensor **)&m->l[i];
    for (size_t k = 0; k < sizeof(layer) / sizeof(mt_tensor *); k++) mt_tensor_free(w[k]);
  }
}

/* Helpers that take (and free) their first argument, so a forward reads as
 * a chain. */
static mt_tensor *take2(mt_tensor *(*f)(const mt_tensor *, const mt_tensor *), mt_tensor *a,
                        const mt_tensor *b) {
  mt_tensor *r = f(a, b);
  mt_tensor_free(a);
  return r;
}

static mt_tensor *linear(const mt_tensor *x, const mt_tensor *w, const mt_tensor *b) {
  return take2(mt_add, mt_matmul(x, w), b);
}

static mt_tensor *add_norm(mt_tensor *x, mt_tensor *y, const mt_tensor *g, const mt_tensor *b) {
  mt_tensor *s = mt_add(x, y);
  mt_tensor_free(x);
  mt_tensor_free(y);
  mt_tensor *r = mt_layer_norm(s, g, b, 1e-5);
  mt_tensor_free(s);
  return r;
}

/* q, k or v of qkv [B*T, 3*H] as [B, heads, T, H/heads] (a view). */
static mt_tensor *head_view(const mt_tensor *qkv, int which) {
  const int64_t shape[5] = {BATCH, TOKENS, 3, HEADS, HIDDEN / HEADS};
  const int perm[5] = {2, 0, 3, 1, 4};
  mt_tensor *r = mt_reshape(qkv, 5, shape);
  mt_tensor *p = mt_permute(r, perm);
  mt_tensor *s = mt_slice(p, 0, which, which + 1, 1);
  const int64_t out[4] = {BATCH, HEADS, TOKENS, HIDDEN / HEADS};
  mt_tensor *v = mt_reshape(s, 4, out);
  mt_tensor_free(r), mt_tensor_free(p), mt_tensor_free(s);
  return v;
}

static mt_tensor *attention(const mt_tensor *x, const layer *l) {
  mt_tensor *qkv = linear(x, l->wqkv, l->bqkv);
  mt_tensor *q = head_view(qkv, 0), *k = head_view(qkv, 1), *v = head_view(qkv, 2);
  mt_tensor *kt = mt_transpose(k, 2, 3);
  mt_tensor *scores = mt_mul_scalar(take2(mt_matmul, q, kt), 0.125); /* 1/sqrt(64) */
  mt_tensor *p = mt_softmax(scores, -1);
  mt_tensor *ctx = take2(mt_matmul, p, v);
  const int perm[4] = {0, 2, 1, 3};
  const int64_t flat[2] = {BATCH * TOKENS, HIDDEN};
  mt_tensor *ct = mt_permute(ctx, perm);
  mt_tensor *c2 = mt_reshape(ct, 2, flat); /* copies: the permuted view is not dense */
  mt_tensor *out = linear(c2, l->wo, l->bo);
  mt_tensor_free(qkv), mt_tensor_free(k), mt_tensor_free(kt), mt_tensor_free(scores);
  mt_tensor_free(v), mt_tensor_free(ctx), mt_tensor_free(ct), mt_tensor_free(c2);
  return out;
}

static mt_tensor *mlp(const mt_tensor *x, const layer *l) {
  mt_tensor *h = linear(x, l->w1, l->b1);
  mt_tensor *g = mt_gelu(h);
  mt_tensor_free(h);
  mt_tensor *y = linear(g, l->w2, l->b2);
  mt_tensor_free(g);
  return y;
}

static mt_tensor *forward(const model *m) {
  mt_tensor *x = take2(mt_add, mt_embedding(m->tok, m->ids), m->pos);
  for (int i = 0; i < m->layers && x; i++) {
    x = add_norm(x, attention(x, &m->l[i]), m->l[i].g1, m->l[i].n1);
    x = add_norm(x, mlp(x, &m->l[i]), m->l[i].g2, m->l[i].n2);
  }
  return x;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_doubles(const void *pa, const void *pb) {
  const double a = *(const double *)pa, b = *(const double *)pb;
  return (a > b) - (a < b);
}

int main(int argc, char **argv) {
  int reps = 20, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
  }
  if (reps < 1 || reps > 10000) reps = 20;
  if (quick) reps = 1;
  model m;
  model_init(&m, quick ? 1 : LAYERS);
  double *t = malloc(sizeof *t * (size_t)reps);
  mt_tensor *warm = forward(&m);
  if (!warm) {
    fprintf(stderr, "mt_bench_bert: forward failed: %s\n", mt_last_error());
    return 1;
  }
  mt_tensor_free(warm);
  for (int r = 0; r < reps; r++) {
    double t0 = now_ms();
    mt_tensor_free(forward(&m));
    t[r] = now_ms() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, compare_doubles);
  printf("{\"case\": \"bert_forward_6x384_8x49\", \"shape\": \"[8,49]\", \"median_ms\": %.6f, "
         "\"min_ms\": %.6f, \"reps\": %d}\n", t[reps / 2], t[0], reps);
  free(t);
  model_free(&m);
  return 0;
}
