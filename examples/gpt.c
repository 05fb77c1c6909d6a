/*
 * gpt.c - a GPT-style decoder that generates text with libmodaltensor.
 *
 *   x = tok_emb[ids] + pos_emb[positions]
 *   each layer: x += proj(attention(ln1(x)))   causal, multi-head
 *               x += fc2(gelu(fc1(ln2(x))))
 *   logits = ln_f(x)[last] @ tok_emb^T         (the output head is tied)
 *
 * Weights are random (normal, std 0.02 as GPT-2 initialises them) from a
 * seed, so the text is noise, but the same noise on every device. Tokens
 * are bytes (vocabulary 256). After the prompt, each step feeds only the
 * new token: its keys and values are written in place into a preallocated
 * cache (mt_copy_ into a slice) and attention reads the cache's filled
 * part. The next token is drawn from the top-k logits (mt_topk, softmax,
 * mt_multinomial with a per-step seed) and stays on the device: the whole
 * generation is recorded without reading anything back, and the tokens are
 * read once at the end (one round trip on a modal device).
 *
 * --no-cache recomputes the whole sequence at every step instead, which
 * must give the same tokens: the check that the cache is right.
 *
 * --train FILE first trains the model on FILE's bytes: each step takes a
 * window of CONTEXT + 1 bytes, predicts every next byte (cross-entropy over
 * all positions), runs mt_backward and one AdamW step. On a modal device a
 * step records forward, backward and update into one lazy graph and reads
 * nothing; every --print-every steps the loss is read (one round trip).
 * Then the weights go to a safetensors checkpoint (--checkpoint PATH), are
 * loaded back into a second model, which must give the same loss on a
 * held-out window, and that model generates.
 *
 * Usage: gpt [--device cpu|modal[:N]] [--in-process] [--tokens N] [--no-cache]
 *            [--seed S] [--prompt TEXT]
 *            [--train FILE [--steps N] [--lr LR] [--print-every N] [--checkpoint PATH]]
 * Prints the generated token ids, their text (non-printable bytes as '.'),
 * a checksum (the sum of the ids) and the tokens per second; with --train
 * first the losses and "loss fell" when the last is below 80% of the first.
 * Exits 0 on success, 1 with the library's message on a failure, 2 on a
 * bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { VOCAB = 256, CONTEXT = 128, DIM = 128, HEADS = 4, LAYERS = 4, TOP_K = 40 };
#define HEAD_DIM (DIM / HEADS)

/* ------------------------------------------------------------ scopes */

/* The intermediates of one step, freed together: ops chain without a free
 * after each line, and a failure anywhere is remembered and reported once. */
typedef struct scope {
  mt_tensor *held[512];
  int n;
  int failed;
} scope;

/* Keeps t for scope_free; NULL (a failed op) marks the scope failed. */
static mt_tensor *keep(scope *s, mt_tensor *t) {
  if (!t || s->n == (int)(sizeof s->held / sizeof *s->held)) {
    if (t) mt_tensor_free(t);
    if (!s->failed) fprintf(stderr, "gpt: an op failed: %s (%s)\n", mt_last_error(),
                            mt_status_name(mt_last_status()));
    s->failed = 1;
    return NULL;
  }
  return s->held[s->n++] = t;
}

static void scope_free(scope *s) {
  while (s->n > 0) mt_tensor_free(s->held[--s->n]);
}

/* K(expr): expr's tensor kept in the current scope `sc`; once the scope has
 * failed, later ops are skipped (their inputs may be NULL). */
#define K(expr) (sc->failed ? NULL : keep(sc, (expr)))

/* ------------------------------------------------------------ weights */

typedef struct layer {
  mt_tensor *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
  mt_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} layer;

typedef struct model {
  scope weights;
  mt_tensor *tok_emb, *pos_emb, *lnf_w, *lnf_b;
  layer layers[LAYERS];
  mt_tensor *k_cache[LAYERS], *v_cache[LAYERS]; /* [HEADS, CONTEXT, HEAD_DIM] */
} model;

static mt_tensor *normal(scope *sc, int64_t rows, int64_t cols, mt_device dev, uint64_t seed) {
  int64_t shape[2] = {rows, cols};
  mt_tensor *r = K(mt_randn(cols ? 2 : 1, shape, MT_FLOAT32, dev, seed));
  return K(mt_mul_scalar(r, 0.02));
}

static mt_tensor *filled(scope *sc, int64_t n, double value, mt_device dev) {
  return K(mt_full(1, &n, value, MT_FLOAT32, dev));
}

/* Every weight from seed (one Philox stream per tensor), norms at 1 and 0. */
static int weights_init(model *m, mt_device dev, uint64_t seed) {
  memset(m, 0, sizeof *m);
  scope *sc = &m->weights;
  m->tok_emb = normal(sc, VOCAB, DIM, dev, seed++);
  m->pos_emb = normal(sc, CONTEXT, DIM, dev, seed++);
  m->lnf_w = filled(sc, DIM, 1.0, dev);
  m->lnf_b = filled(sc, DIM, 0.0, dev);
  for (int l = 0; l < LAYERS; l++) {
    layer *y = &m->layers[l];
    y->ln1_w = filled(sc, DIM, 1.0, dev), y->ln1_b = filled(sc, DIM, 0.0, dev);
    y->ln2_w = filled(sc, DIM, 1.0, dev), y->ln2_b = filled(sc, DIM, 0.0, dev);
    y->qkv_w = normal(sc, 3 * DIM, DIM, dev, seed++), y->qkv_b = filled(sc, 3 * DIM, 0.0, dev);
    y->proj_w = normal(sc, DIM, DIM, dev, seed++), y->proj_b = filled(sc, DIM, 0.0, dev);
    y->fc1_w = normal(sc, 4 * DIM, DIM, dev, seed++), y->fc1_b = filled(sc, 4 * DIM, 0.0, dev);
    y->fc2_w = normal(sc, DIM, 4 * DIM, dev, seed++), y->fc2_b = filled(sc, DIM, 0.0, dev);
  }
  return sc->failed;
}

/* The key and value caches, zeroed. */
static int caches_init(model *m, mt_device dev) {
  scope *sc = &m->weights;
  int64_t cache_shape[3] = {HEADS, CONTEXT, HEAD_DIM};
  for (int l = 0; l < LAYERS; l++) {
    m->k_cache[l] = K(mt_zeros(3, cache_shape, MT_FLOAT32, dev));
    m->v_cache[l] = K(mt_zeros(3, cache_shape, MT_FLOAT32, dev));
  }
  return sc->failed;
}

/* ------------------------------------------------------------ forward */

/* [T, DIM] -> [HEADS, T, HEAD_DIM] (a view). */
static mt_tensor *split_heads(scope *sc, const mt_tensor *x, int64_t t) {
  int64_t shape[3] = {t, HEADS, HEAD_DIM};
  return K(mt_transpose(K(mt_reshape(x, 3, shape)), 0, 1));
}

/* Causal self-attention of the T rows of h at positions pos..pos+T-1. With
 * the cache, the new keys and values are written into it and attention
 * reads its first pos+T rows; pos > 0 then needs T = 1 (decoding), since
 * the causal mask of sdpa is aligned to the first query. */
static mt_tensor *attention(scope *sc, model *m, int l, const mt_tensor *h, int64_t pos,
                            int64_t t, int use_cache) {
  const layer *y = &m->layers[l];
  mt_tensor *qkv = K(mt_linear(h, y->qkv_w, y->qkv_b));
  mt_tensor *q = split_heads(sc, K(mt_slice(qkv, 1, 0, DIM, 1)), t);
  mt_tensor *k = split_heads(sc, K(mt_slice(qkv, 1, DIM, 2 * DIM, 1)), t);
  mt_tensor *v = split_heads(sc, K(mt_slice(qkv, 1, 2 * DIM, 3 * DIM, 1)), t);
  if (use_cache && !sc->failed) {
    mt_tensor *k_slot = K(mt_slice(m->k_cache[l], 1, pos, pos + t, 1));
    mt_tensor *v_slot = K(mt_slice(m->v_cache[l], 1, pos, pos + t, 1));
    if (!sc->failed && (mt_copy_(k_slot, k) != MT_OK || mt_copy_(v_slot, v) != MT_OK))
      keep(sc, NULL);
    k = K(mt_slice(m->k_cache[l], 1, 0, pos + t, 1));
    v = K(mt_slice(m->v_cache[l], 1, 0, pos + t, 1));
  }
  mt_tensor *a = K(mt_scaled_dot_product_attention(q, k, v, NULL, t > 1, NAN));
  int64_t rows[2] = {t, DIM};
  mt_tensor *merged = K(mt_reshape(K(mt_transpose(a, 0, 1)), 2, rows));
  return K(mt_linear(merged, y->proj_w, y->proj_b));
}

static mt_tensor *mlp(scope *sc, const layer *y, const mt_tensor *h) {
  mt_tensor *up = K(mt_gelu(K(mt_linear(h, y->fc1_w, y->fc1_b))));
  return K(mt_linear(up, y->fc2_w, y->fc2_b));
}

/* The logits after the T tokens ids (int64 [T]) at positions pos..pos+T-1:
 * [1, VOCAB] for the last one, or [T, VOCAB] for every one (all). */
static mt_tensor *forward_logits(scope *sc, model *m, const mt_tensor *ids, int64_t pos,
                                 int64_t t, int use_cache, int all, mt_device dev) {
  mt_tensor *positions = K(mt_arange((double)pos, (double)(pos + t), 1, MT_INT64, dev));
  mt_tensor *x = K(mt_add(K(mt_embedding(m->tok_emb, ids)), K(mt_embedding(m->pos_emb, positions))));
  for (int l = 0; l < LAYERS; l++) {
    const layer *y = &m->layers[l];
    mt_tensor *h = K(mt_layer_norm(x, y->ln1_w, y->ln1_b, 1e-5));
    x = K(mt_add(x, attention(sc, m, l, h, pos, t, use_cache)));
    x = K(mt_add(x, mlp(sc, y, K(mt_layer_norm(x, y->ln2_w, y->ln2_b, 1e-5)))));
  }
  mt_tensor *rows = all ? x : K(mt_slice(x, 0, t - 1, t, 1));
  return K(mt_linear(K(mt_layer_norm(rows, m->lnf_w, m->lnf_b, 1e-5)), m->tok_emb, NULL));
}

static mt_tensor *forward(scope *sc, model *m, const mt_tensor *ids, int64_t pos, int64_t t,
                          int use_cache, mt_device dev) {
  return forward_logits(sc, m, ids, pos, t, use_cache, 0, dev);
}

/* The next token, int64 [1], drawn from the TOP_K largest logits. */
static mt_tensor *sample(scope *sc, const mt_tensor *logits, uint64_t seed) {
  mt_tensor *values = NULL, *indices = NULL;
  if (sc->failed) return NULL;
  if (mt_topk(logits, TOP_K, -1, 1, &values, &indices) != MT_OK) return keep(sc, NULL);
  keep(sc, values), keep(sc, indices);
  mt_tensor *probs = K(mt_softmax(values, -1));
  mt_tensor *pick = K(mt_gather(indices, 1, K(mt_multinomial(probs, 1, 1, seed))));
  int64_t one = 1;
  return K(mt_reshape(pick, 1, &one));
}

/* ------------------------------------------------------------ generation */

typedef struct options {
  mt_device device;
  int in_process, tokens, use_cache;
  uint64_t seed;
  const char *prompt;
  const char *train, *checkpoint; /* --train FILE, --checkpoint PATH */
  int steps, print_every;
  double lr;
} options;

/* Generates o->tokens tokens after the prompt into out_ids (the host). The
 * sequence lives on the device in seq (int64 [CONTEXT]): the prompt, then
 * each token as it is drawn. */
static int generate(model *m, const options *o, int64_t *out_ids) {
  int64_t n_prompt = (int64_t)strlen(o->prompt), total = n_prompt + o->tokens;
  int64_t prompt_ids[CONTEXT], context = CONTEXT;
  for (int64_t i = 0; i < n_prompt; i++) prompt_ids[i] = (unsigned char)o->prompt[i];
  scope run = {0}, *sc = &run;
  mt_tensor *seq = K(mt_zeros(1, &context, MT_INT64, o->device));
  mt_tensor *prompt = K(mt_from_data(prompt_ids, 1, &n_prompt, MT_INT64, o->device));
  if (!sc->failed && mt_copy_(K(mt_slice(seq, 0, 0, n_prompt, 1)), prompt) != MT_OK)
    keep(sc, NULL);
  for (int64_t len = n_prompt; len < total && !sc->failed; len++) {
    scope step = {0};
    sc = &step;
    int prefill = !o->use_cache || len == n_prompt;
    int64_t pos = prefill ? 0 : len - 1, t = prefill ? len : 1;
    mt_tensor *ids = K(mt_slice(seq, 0, pos, pos + t, 1));
    mt_tensor *logits = forward(sc, m, ids, pos, t, o->use_cache, o->device);
    mt_tensor *next = sample(sc, logits, o->seed * 1000003u + (uint64_t)len);
    if (!sc->failed && mt_copy_(K(mt_slice(seq, 0, len, len + 1, 1)), next) != MT_OK)
      keep(sc, NULL);
    run.failed |= step.failed;
    scope_free(&step);
    sc = &run;
  }
  mt_status st = sc->failed ? MT_ERR_INTERNAL : MT_OK;
  if (!sc->failed) {
    mt_tensor *made = K(mt_slice(seq, 0, n_prompt, total, 1));
    mt_tensor *host = K(mt_contiguous(made));
    if (host && (st = mt_to_host(host, out_ids, sizeof(int64_t) * (size_t)o->tokens)) != MT_OK)
      fprintf(stderr, "gpt: reading the tokens failed: %s\n", mt_last_error());
  }
  scope_free(&run);
  return st != MT_OK;
}

/* ------------------------------------------------------------ training */

enum { N_WEIGHTS = 4 + 12 * LAYERS };

/* The weights in the checkpoint's order, with their names. */
static void weight_slots(model *m, mt_tensor **slots[N_WEIGHTS], char names[N_WEIGHTS][32]) {
  int n = 0;
  static const char *const top[4] = {"tok_emb", "pos_emb", "ln_f.weight", "ln_f.bias"};
  mt_tensor **top_slots[4] = {&m->tok_emb, &m->pos_emb, &m->lnf_w, &m->lnf_b};
  for (int i = 0; i < 4; i++) slots[n] = top_slots[i], snprintf(names[n++], 32, "%s", top[i]);
  static const char *const per[12] = {"ln1.weight", "ln1.bias", "qkv.weight", "qkv.bias",
                                      "proj.weight", "proj.bias", "ln2.weight", "ln2.bias",
                                      "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  for (int l = 0; l < LAYERS; l++) {
    layer *y = &m->layers[l];
    mt_tensor **s[12] = {&y->ln1_w, &y->ln1_b, &y->qkv_w, &y->qkv_b, &y->proj_w, &y->proj_b,
                         &y->ln2_w, &y->ln2_b, &y->fc1_w, &y->fc1_b, &y->fc2_w, &y->fc2_b};
    for (int i = 0; i < 12; i++) slots[n] = s[i], snprintf(names[n++], 32, "layers.%d.%s", l, per[i]);
  }
}

/* The whole text of path (malloc'd) in *bytes. */
static int read_text(const char *path, unsigned char **bytes, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return fprintf(stderr, "gpt: --train %s: cannot open it\n", path), 1;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  *bytes = malloc((size_t)(*len > 0 ? *len : 1));
  int bad = !*bytes || fread(*bytes, 1, (size_t)*len, f) != (size_t)*len;
  fclose(f);
  /* training windows start in the first nine tenths: at least one must fit */
  long least = ((CONTEXT + 2) * 10 + 8) / 9;
  if (!bad && *len >= least) return 0;
  fprintf(stderr, "gpt: --train %s: needs at least %ld bytes\n", path, least);
  free(*bytes);
  return 1;
}

/* Mean cross-entropy of predicting text[off + 1 .. off + CONTEXT] from
 * text[off .. off + CONTEXT - 1] (a 0-d tensor kept in sc). */
static mt_tensor *window_loss(scope *sc, model *m, const unsigned char *text, long off,
                              mt_device dev) {
  int64_t ids[CONTEXT], next[CONTEXT], t = CONTEXT;
  for (int i = 0; i < CONTEXT; i++) ids[i] = text[off + i], next[i] = text[off + i + 1];
  mt_tensor *in = K(mt_from_data(ids, 1, &t, MT_INT64, dev));
  mt_tensor *target = K(mt_from_data(next, 1, &t, MT_INT64, dev));
  mt_tensor *logits = forward_logits(sc, m, in, 0, t, 0, 1, dev);
  return K(mt_cross_entropy(logits, target, -100, 0.0));
}

/* The loss's value (a sync point on a modal device); NAN on failure. */
static double read_loss(scope *sc, const mt_tensor *loss) {
  double v = NAN;
  if (!sc->failed && mt_item(loss, &v) != MT_OK) keep(sc, NULL);
  return v;
}

/* o->steps AdamW steps on windows of text; prints the loss as it goes. */
static int train_steps(model *m, const options *o, const unsigned char *text, long len) {
  mt_tensor **slots[N_WEIGHTS];
  char names[N_WEIGHTS][32];
  mt_tensor *params[N_WEIGHTS];
  weight_slots(m, slots, names);
  for (int i = 0; i < N_WEIGHTS; i++)
    if (mt_set_requires_grad(params[i] = *slots[i], 1) != MT_OK) return 1;
  mt_optimizer *opt = mt_adamw(N_WEIGHTS, params, o->lr, 0.9, 0.95, 1e-8, 0.01);
  if (!opt) return fprintf(stderr, "gpt: mt_adamw: %s\n", mt_last_error()), 1;
  uint64_t state = o->seed;
  double first = NAN, last = NAN;
  int failed = 0;
  for (int step = 1; step <= o->steps && !failed; step++) {
    scope s = {0}, *sc = &s;
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    long off = (long)((state >> 33) % (uint64_t)(len * 9 / 10 - CONTEXT - 1));
    mt_tensor *loss = window_loss(sc, m, text, off, o->device);
    if (!sc->failed && (mt_backward(loss, NULL) != MT_OK || mt_optimizer_step(opt) != MT_OK ||
                        mt_optimizer_zero_grad(opt) != MT_OK))
      keep(sc, NULL);
    if (step == 1 || step % o->print_every == 0 || step == o->steps) {
      last = read_loss(sc, loss);
      if (step == 1) first = last;
      if (!sc->failed) printf("step %d loss %.4f\n", step, last);
    }
    failed = sc->failed;
    scope_free(&s);
  }
  mt_optimizer_free(opt);
  if (!failed && last < 0.8 * first) printf("loss fell: %.4f -> %.4f\n", first, last);
  return failed;
}

/* Writes m's weights to path. */
static int save_checkpoint(model *m, const char *path) {
  mt_tensor **slots[N_WEIGHTS];
  char names[N_WEIGHTS][32];
  const char *name_ptrs[N_WEIGHTS];
  const mt_tensor *tensors[N_WEIGHTS];
  weight_slots(m, slots, names);
  for (int i = 0; i < N_WEIGHTS; i++) name_ptrs[i] = names[i], tensors[i] = *slots[i];
  if (mt_safetensors_save(path, N_WEIGHTS, name_ptrs, tensors) == MT_OK) return 0;
  return fprintf(stderr, "gpt: saving %s: %s\n", path, mt_last_error()), 1;
}

/* A model whose weights come from the checkpoint at path. */
static int load_checkpoint(model *m, const char *path, mt_device dev) {
  memset(m, 0, sizeof *m);
  if (caches_init(m, dev)) return 1;
  mt_safetensors *f = mt_safetensors_open(path);
  if (!f) return fprintf(stderr, "gpt: loading %s: %s\n", path, mt_last_error()), 1;
  mt_tensor **slots[N_WEIGHTS];
  char names[N_WEIGHTS][32];
  weight_slots(m, slots, names);
  scope *sc = &m->weights;
  for (int i = 0; i < N_WEIGHTS && !sc->failed; i++)
    *slots[i] = K(mt_safetensors_get(f, names[i], dev));
  mt_safetensors_close(f);
  return sc->failed;
}

/* Trains m, saves it, loads it into *loaded and checks both give the same
 * loss on a window from the last tenth of the text (not trained on). */
static int train(model *m, model *loaded, const options *o) {
  unsigned char *text;
  long len;
  if (read_text(o->train, &text, &len)) return 1;
  int failed = train_steps(m, o, text, len) || save_checkpoint(m, o->checkpoint) ||
               load_checkpoint(loaded, o->checkpoint, o->device);
  if (!failed) {
    mt_set_grad_enabled(0);
    scope s = {0}, *sc = &s;
    long held_out = len - CONTEXT - 1;
    double trained = read_loss(sc, window_loss(sc, m, text, held_out, o->device));
    double reloaded = read_loss(sc, window_loss(sc, loaded, text, held_out, o->device));
    failed = sc->failed || trained != reloaded;
    if (!sc->failed)
      printf("checkpoint %s: held-out loss %.4f, reloaded %.4f%s\n", o->checkpoint, trained,
             reloaded, trained == reloaded ? " (same)" : " (DIFFERENT)");
    scope_free(&s);
  }
  free(text);
  return failed;
}

/* ------------------------------------------------------------ main */

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse(int argc, char **argv, options *o) {
  *o = (options){{MT_DEVICE_CPU, 0}, 0, 48, 1, 7, "Hello, modal", NULL,
                 "gpt-checkpoint.safetensors", 40, 10, 3e-3};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--device") && next) {
      if (mt_device_parse(next, &o->device) != MT_OK) {
        fprintf(stderr, "gpt: --device %s: %s\n", next, mt_last_error());
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--tokens") && next) {
      o->tokens = atoi(next), i++;
    } else if (!strcmp(a, "--seed") && next) {
      o->seed = strtoull(next, NULL, 10), i++;
    } else if (!strcmp(a, "--prompt") && next) {
      o->prompt = next, i++;
    } else if (!strcmp(a, "--train") && next) {
      o->train = next, i++;
    } else if (!strcmp(a, "--checkpoint") && next) {
      o->checkpoint = next, i++;
    } else if (!strcmp(a, "--steps") && next) {
      o->steps = atoi(next), i++;
    } else if (!strcmp(a, "--print-every") && next) {
      o->print_every = atoi(next), i++;
    } else if (!strcmp(a, "--lr") && next) {
      o->lr = atof(next), i++;
    } else if (!strcmp(a, "--no-cache")) {
      o->use_cache = 0;
    } else if (!strcmp(a, "--in-process")) {
      o->in_process = 1;
    } else {
      fprintf(stderr, "usage: gpt [--device cpu|modal[:N]] [--in-process] [--tokens N] "
                      "[--no-cache] [--seed S] [--prompt TEXT] [--train FILE [--steps N] "
                      "[--lr LR] [--print-every N] [--checkpoint PATH]]\n");
      return 2;
    }
  }
  size_t n_prompt = strlen(o->prompt);
  if (n_prompt == 0 || o->tokens < 1 || n_prompt + (size_t)o->tokens > CONTEXT) {
    fprintf(stderr, "gpt: the prompt (1 or more bytes) and --tokens (1 or more) must fit in "
                    "%d positions\n", CONTEXT);
    return 2;
  }
  if (o->steps < 1 || o->print_every < 1 || !(o->lr > 0)) {
    fprintf(stderr, "gpt: --steps and --print-every must be >= 1, --lr > 0\n");
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  options o;
  int bad = parse(argc, argv, &o);
  if (bad) return bad;
  if (o.in_process) mt_set_remote_execution(0);
  model m, loaded = {0};
  int64_t ids[CONTEXT];
  if (weights_init(&m, o.device, o.seed) || caches_init(&m, o.device)) {
    scope_free(&m.weights);
    return 1;
  }
  int failed = o.train && train(&m, &loaded, &o);
  model *gen = o.train ? &loaded : &m;
  mt_set_grad_enabled(0); /* generation keeps nothing for a backward */
  /* a first, untimed run warms the worker or the cpu engine up */
  failed = failed || generate(gen, &o, ids);
  double start = seconds_now();
  failed = failed || generate(gen, &o, ids);
  double elapsed = seconds_now() - start;
  scope_free(&m.weights);
  scope_free(&loaded.weights);
  if (failed) return 1;
  long long checksum = 0;
  printf("tokens:");
  for (int i = 0; i < o.tokens; i++) printf(" %lld", (long long)ids[i]), checksum += ids[i];
  printf("\ntext: %s", o.prompt);
  for (int i = 0; i < o.tokens; i++) putchar(isprint((int)ids[i]) ? (int)ids[i] : '.');
  printf("\nchecksum: %lld\n", checksum);
  printf("%d tokens in %.1f ms (%.0f tokens/s, %s, %s)\n", o.tokens, elapsed * 1e3,
         o.tokens / elapsed, o.use_cache ? "KV cache" : "no cache",
         o.device.type == MT_DEVICE_MODAL ? "modal" : "cpu");
  return 0;
}
