/*
 * cnn.c - a small ResNet-style CNN forward over a batch, with its loss.
 *
 *   stem:   conv 3x3 (3 -> 16) + batch norm + relu
 *   block:  x + bn(conv(relu(bn(conv(x)))))  then relu   (a residual block)
 *   down:   max pool 2x2, conv 3x3 stride 2 (16 -> 32) + batch norm + relu
 *   dw:     depthwise conv 3x3 (groups 32) + relu
 *   head:   adaptive average pool to 1x1, linear (32 -> 10)
 *   loss:   cross-entropy against the targets, label smoothing 0.1
 *
 * Images, targets and weights come from the library's seeded generator, so
 * the output is the same on every run and every device. Batch norms run in
 * eval mode with running statistics made from the seed too. Prints the
 * loss, a checksum of the logits (the sum of softmax(logits) weighted by
 * the class index) and the time of one forward after a warm-up.
 *
 * Usage: cnn [--device cpu|modal[:N]] [--in-process] [--batch N]
 * Exits 0 on success, 1 with the library's message on a failure, 2 on a bad
 * command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IMAGE = 32, CLASSES = 10 };

/* ------------------------------------------------------------ scopes */

/* Tensors freed together; a failed op is reported once and marks it. */
typedef struct scope {
  mt_tensor *held[128];
  int n, failed;
} scope;

static mt_tensor *keep(scope *s, mt_tensor *t) {
  if (!t || s->n == (int)(sizeof s->held / sizeof *s->held)) {
    if (t) mt_tensor_free(t);
    if (!s->failed) fprintf(stderr, "cnn: an op failed: %s (%s)\n", mt_last_error(),
                            mt_status_name(mt_last_status()));
    s->failed = 1;
    return NULL;
  }
  return s->held[s->n++] = t;
}

static void scope_free(scope *s) {
  while (s->n > 0) mt_tensor_free(s->held[--s->n]);
}

/* K(expr): kept in scope sc; skipped once sc has failed. */
#define K(expr) (sc->failed ? NULL : keep(sc, (expr)))

/* ------------------------------------------------------------ layers */

typedef struct conv {
  mt_tensor *w, *b;
  int64_t stride, groups;
} conv;

typedef struct norm {
  mt_tensor *mean, *var, *w, *b;
} norm;

typedef struct model {
  scope weights;
  conv stem, block1, block2, down, dw;
  norm stem_bn, block1_bn, block2_bn, down_bn;
  mt_tensor *fc_w, *fc_b;
} model;

/* uniform(lo, hi) of shape on dev from seed. */
static mt_tensor *uniform(scope *sc, int ndim, const int64_t *shape, double lo, double hi,
                          mt_device dev, uint64_t seed) {
  mt_tensor *r = K(mt_rand(ndim, shape, MT_FLOAT32, dev, seed));
  return K(mt_add_scalar(K(mt_mul_scalar(r, hi - lo)), lo));
}

/* He-style scale: uniform in +-sqrt(3 / fan_in) keeps unit variance. */
static conv conv_init(scope *sc, int64_t in, int64_t out, int64_t stride, int64_t groups,
                      mt_device dev, uint64_t *seed) {
  int64_t shape[4] = {out, in / groups, 3, 3};
  double bound = sqrt(3.0 / (double)(in / groups * 9));
  conv c = {uniform(sc, 4, shape, -bound, bound, dev, (*seed)++), NULL, stride, groups};
  c.b = uniform(sc, 1, &out, -0.1, 0.1, dev, (*seed)++);
  return c;
}

static norm norm_init(scope *sc, int64_t channels, mt_device dev, uint64_t *seed) {
  norm n;
  n.mean = uniform(sc, 1, &channels, -0.2, 0.2, dev, (*seed)++);
  n.var = uniform(sc, 1, &channels, 0.5, 1.5, dev, (*seed)++);
  n.w = uniform(sc, 1, &channels, 0.8, 1.2, dev, (*seed)++);
  n.b = uniform(sc, 1, &channels, -0.1, 0.1, dev, (*seed)++);
  return n;
}

static int model_init(model *m, mt_device dev) {
  memset(m, 0, sizeof *m);
  scope *sc = &m->weights;
  uint64_t seed = 100;
  m->stem = conv_init(sc, 3, 16, 1, 1, dev, &seed);
  m->stem_bn = norm_init(sc, 16, dev, &seed);
  m->block1 = conv_init(sc, 16, 16, 1, 1, dev, &seed);
  m->block1_bn = norm_init(sc, 16, dev, &seed);
  m->block2 = conv_init(sc, 16, 16, 1, 1, dev, &seed);
  m->block2_bn = norm_init(sc, 16, dev, &seed);
  m->down = conv_init(sc, 16, 32, 2, 1, dev, &seed);
  m->down_bn = norm_init(sc, 32, dev, &seed);
  m->dw = conv_init(sc, 32, 32, 1, 32, dev, &seed);
  int64_t fc_shape[2] = {CLASSES, 32}, classes = CLASSES;
  double bound = sqrt(3.0 / 32);
  m->fc_w = uniform(sc, 2, fc_shape, -bound, bound, dev, seed++);
  m->fc_b = uniform(sc, 1, &classes, -0.1, 0.1, dev, seed++);
  return sc->failed;
}

/* 3x3 convolution with padding 1. */
static mt_tensor *conv3x3(scope *sc, const conv *c, const mt_tensor *x) {
  const int64_t stride[2] = {c->stride, c->stride}, pad[2] = {1, 1}, dilation[2] = {1, 1};
  return K(mt_conv2d(x, c->w, c->b, stride, pad, dilation, c->groups));
}

/* Batch norm in eval mode: the running statistics are read, not updated. */
static mt_tensor *bn(scope *sc, const norm *n, const mt_tensor *x) {
  return K(mt_batch_norm(x, n->mean, n->var, n->w, n->b, 0, 0.1, 1e-5));
}

/* The logits [batch, CLASSES] of the images x [batch, 3, IMAGE, IMAGE]. */
static mt_tensor *forward(scope *sc, const model *m, const mt_tensor *x) {
  mt_tensor *h = K(mt_relu(bn(sc, &m->stem_bn, conv3x3(sc, &m->stem, x))));
  mt_tensor *r = K(mt_relu(bn(sc, &m->block1_bn, conv3x3(sc, &m->block1, h))));
  h = K(mt_relu(K(mt_add(h, bn(sc, &m->block2_bn, conv3x3(sc, &m->block2, r))))));
  const int64_t two[2] = {2, 2}, zero[2] = {0, 0};
  h = K(mt_max_pool2d(h, two, two, zero));
  h = K(mt_relu(bn(sc, &m->down_bn, conv3x3(sc, &m->down, h))));
  h = K(mt_relu(conv3x3(sc, &m->dw, h)));
  mt_tensor *pooled = K(mt_adaptive_avg_pool2d(h, 1, 1));
  int64_t flat[2] = {-1, 32};
  return K(mt_linear(K(mt_reshape(pooled, 2, flat)), m->fc_w, m->fc_b));
}

/* ------------------------------------------------------------ main */

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs the forward and the loss; reads the loss and the checksum. */
static int run(const model *m, const mt_tensor *x, const mt_tensor *targets, double *loss,
               double *checksum) {
  scope s = {0}, *sc = &s;
  mt_tensor *logits = forward(sc, m, x);
  mt_tensor *ce = K(mt_cross_entropy(logits, targets, -100, 0.1));
  mt_tensor *classes = K(mt_arange(0, CLASSES, 1, MT_FLOAT32, mt_tensor_device(x)));
  mt_tensor *weighted = K(mt_sum(K(mt_mul(K(mt_softmax(logits, -1)), classes)), 0, NULL, 0));
  int failed = sc->failed || mt_item(ce, loss) != MT_OK || mt_item(weighted, checksum) != MT_OK;
  if (failed && !sc->failed) fprintf(stderr, "cnn: reading failed: %s\n", mt_last_error());
  scope_free(&s);
  return failed;
}

int main(int argc, char **argv) {
  const char *device_name = "cpu";
  int in_process = 0;
  int64_t batch = 16;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) {
      device_name = argv[++i];
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc && atoi(argv[i + 1]) > 0) {
      batch = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--in-process")) {
      in_process = 1;
    } else {
      fprintf(stderr, "usage: cnn [--device cpu|modal[:N]] [--in-process] [--batch N]\n");
      return 2;
    }
  }
  mt_device dev;
  if (mt_device_parse(device_name, &dev) != MT_OK) {
    fprintf(stderr, "cnn: --device %s: %s\n", device_name, mt_last_error());
    return 2;
  }
  if (in_process) mt_set_remote_execution(0);
  model m;
  scope inputs = {0}, *sc = &inputs;
  const int64_t image_shape[4] = {batch, 3, IMAGE, IMAGE};
  mt_tensor *x = K(mt_randn(4, image_shape, MT_FLOAT32, dev, 1));
  mt_tensor *targets = K(mt_randint(0, CLASSES, 1, &batch, MT_INT64, dev, 2));
  double loss = 0, checksum = 0;
  int failed = inputs.failed || model_init(&m, dev) || run(&m, x, targets, &loss, &checksum);
  double start = seconds_now();
  failed = failed || run(&m, x, targets, &loss, &checksum);
  double elapsed = seconds_now() - start;
  scope_free(&m.weights);
  scope_free(&inputs);
  if (failed) return 1;
  printf("loss: %.4f\nchecksum: %.3f\n", loss, checksum);
  printf("forward of %lld images in %.2f ms (%s)\n", (long long)batch, elapsed * 1e3,
         device_name);
  return 0;
}
