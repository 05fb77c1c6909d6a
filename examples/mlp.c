/*
 * mlp.c - forward pass of a two-layer perceptron with libmodaltensor.
 *
 *   h = gelu(x @ W1 + b1)          x [256, 784], W1 [784, 512], b1 [512]
 *   y = softmax(h @ W2 + b2, -1)   W2 [512, 10], b2 [10]
 *
 * Inputs and weights come from the library's seeded generator, so the output
 * is the same on every run and every device. The program prints two
 * checksums of y: its sum (each row of a softmax sums to 1, so about the
 * batch size) and the sum of y[i][j] * j (the expected class index, summed
 * over the batch), then the time of one forward pass after a warm-up pass.
 *
 * Usage: mlp [--device cpu|modal[:N]] [--in-process]
 *   --device      where the tensors live (default cpu)
 *   --in-process  run modal tensors in this process instead of in a worker
 *                 (mt_set_remote_execution(0))
 *
 * Exits 0 on success, 1 with the library's message on any failure, 2 on a
 * bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <modaltensor.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { BATCH = 256, IN_FEATURES = 784, HIDDEN = 512, CLASSES = 10 };

typedef struct mlp_params {
  mt_tensor *w1, *b1, *w2, *b2;
} mlp_params;

/* Prints what failed and the library's reason; returns 1 for main. */
static int fail(const char *what) {
  fprintf(stderr, "mlp: %s failed: %s (%s)\n", what, mt_last_error(),
          mt_status_name(mt_last_status()));
  return 1;
}

/* randn(shape) * scale on device; NULL on failure (mt_last_error says why). */
static mt_tensor *scaled_randn(int ndim, const int64_t *shape, double scale, mt_device dev,
                               uint64_t seed) {
  mt_tensor *r = mt_randn(ndim, shape, MT_FLOAT32, dev, seed);
  if (!r) return NULL;
  mt_tensor *scaled = mt_mul_scalar(r, scale);
  mt_tensor_free(r);
  return scaled;
}

static void params_free(mlp_params *p) {
  mt_tensor_free(p->w1);
  mt_tensor_free(p->b1);
  mt_tensor_free(p->w2);
  mt_tensor_free(p->b2);
}

/* Weights scaled by 1/sqrt(fan_in) keep the pre-activations near unit
 * variance, so the softmax is neither flat nor one-hot. */
static int params_init(mlp_params *p, mt_device dev) {
  const int64_t w1_shape[2] = {IN_FEATURES, HIDDEN}, b1_shape[1] = {HIDDEN};
  const int64_t w2_shape[2] = {HIDDEN, CLASSES}, b2_shape[1] = {CLASSES};
  *p = (mlp_params){NULL, NULL, NULL, NULL};
  if (!(p->w1 = scaled_randn(2, w1_shape, 1.0 / sqrt(IN_FEATURES), dev, 1)) ||
      !(p->b1 = scaled_randn(1, b1_shape, 0.1, dev, 2)) ||
      !(p->w2 = scaled_randn(2, w2_shape, 1.0 / sqrt(HIDDEN), dev, 3)) ||
      !(p->b2 = scaled_randn(1, b2_shape, 0.1, dev, 4))) {
    params_free(p);
    return fail("making the weights");
  }
  return 0;
}

/* y = softmax(gelu(x @ W1 + b1) @ W2 + b2, -1); NULL on failure. Every
 * intermediate is freed on both paths. */
static mt_tensor *mlp_forward(const mlp_params *p, const mt_tensor *x) {
  mt_tensor *xw = NULL, *pre = NULL, *h = NULL, *hw = NULL, *logits = NULL, *y = NULL;
  if (!(xw = mt_matmul(x, p->w1))) goto done;
  if (!(pre = mt_add(xw, p->b1))) goto done; /* b1 broadcasts over the batch */
  if (!(h = mt_gelu(pre))) goto done;
  if (!(hw = mt_matmul(h, p->w2))) goto done;
  if (!(logits = mt_add(hw, p->b2))) goto done;
  y = mt_softmax(logits, -1);
done:
  mt_tensor_free(xw);
  mt_tensor_free(pre);
  mt_tensor_free(h);
  mt_tensor_free(hw);
  mt_tensor_free(logits);
  return y;
}

/* sum(y) and sum(y * [0, 1, ..., CLASSES-1]) as doubles. */
static int checksums(const mt_tensor *y, mt_device dev, double *total, double *weighted) {
  mt_tensor *all = NULL, *classes = NULL, *scaled = NULL, *scaled_sum = NULL;
  int rc = 1;
  if (!(all = mt_sum(y, 0, NULL, 0)) || mt_item(all, total) != MT_OK) {
    fail("sum(y)");
    goto done;
  }
  if (!(classes = mt_arange(0, CLASSES, 1, MT_FLOAT32, dev)) ||
      !(scaled = mt_mul(y, classes)) || /* classes broadcasts over the rows */
      !(scaled_sum = mt_sum(scaled, 0, NULL, 0)) || mt_item(scaled_sum, weighted) != MT_OK) {
    fail("sum(y * arange)");
    goto done;
  }
  rc = 0;
done:
  mt_tensor_free(all);
  mt_tensor_free(classes);
  mt_tensor_free(scaled);
  mt_tensor_free(scaled_sum);
  return rc;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int parse_args(int argc, char **argv, const char **device, int *in_process) {
  *device = "cpu";
  *in_process = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) {
      *device = argv[++i];
    } else if (!strcmp(argv[i], "--in-process")) {
      *in_process = 1;
    } else {
      fprintf(stderr, "usage: %s [--device cpu|modal[:N]] [--in-process]\n", argv[0]);
      return 2;
    }
  }
  return 0;
}

/* The forward pass and its checks; the caller owns params and x. */
static int run(const mlp_params *params, const mt_tensor *x, mt_device dev) {
  /* The first pass pays one-time costs (starting the thread pools); the
   * second one is timed. */
  mt_tensor *warm = mlp_forward(params, x);
  if (!warm) return fail("forward pass (warm-up)");
  mt_tensor_free(warm);

  const double t0 = now_ms();
  mt_tensor *y = mlp_forward(params, x);
  if (!y) return fail("forward pass");
  /* Modal work is queued until a sync point: wait for it so the time is
   * that of the computation, and so that its errors surface here. */
  if (mt_synchronize(dev) != MT_OK) {
    mt_tensor_free(y);
    return fail("mt_synchronize");
  }
  const double elapsed = now_ms() - t0;

  double total = 0.0, weighted = 0.0;
  const int rc = checksums(y, dev, &total, &weighted);
  mt_tensor_free(y);
  if (rc != 0) return rc;

  printf("output: [%d, %d] float32\n", BATCH, CLASSES);
  printf("checksum: sum=%.3f weighted=%.4f\n", total, weighted);
  printf("time: %.3f ms (forward pass)\n", elapsed);
  /* Rows of a softmax sum to 1; anything else is a wrong result. */
  if (!(fabs(total - BATCH) < 1e-2)) {
    fprintf(stderr, "mlp: sum of y is %.6f, expected %d\n", total, BATCH);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *device_name;
  int in_process;
  const int bad_args = parse_args(argc, argv, &device_name, &in_process);
  if (bad_args) return bad_args;

  mt_device dev;
  if (mt_device_parse(device_name, &dev) != MT_OK) return fail("mt_device_parse");
  if (in_process) mt_set_remote_execution(0);
  printf("device: %s%s\n", device_name,
         dev.type == MT_DEVICE_MODAL && !mt_remote_execution_enabled() ? " (in-process)" : "");

  mlp_params params;
  if (params_init(&params, dev) != 0) {
    mt_shutdown();
    return 1;
  }
  const int64_t x_shape[2] = {BATCH, IN_FEATURES};
  mt_tensor *x = mt_randn(2, x_shape, MT_FLOAT32, dev, 0);
  int rc = x ? run(&params, x, dev) : fail("mt_randn (x)");

  mt_tensor_free(x);
  params_free(&params);
  mt_shutdown();
  return rc;
}
