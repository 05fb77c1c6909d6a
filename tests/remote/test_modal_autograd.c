/*
 * test_modal_autograd.c - training on the modal device: the backward ops
 * go into the same lazy graph as the forward, and so does the AdamW update,
 * so a step that reads only its loss is one sync and one graph; the gradients equal the cpu ones;
 * and once a loop has freed its tensors the worker holds none of the
 * tape's. The worker's Stats counters are the witnesses.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_harness.h"

static mh_worker worker;

#define BATCH 8
#define IN 6
#define HIDDEN 5
#define CLASSES 3

/* The model's leaves on device, from fixed values. */
typedef struct model {
  mt_tensor *w1, *b1, *w2, *b2, *gain;
} model;

static mt_tensor *fixed(int ndim, const int64_t *shape, double scale, int salt, mt_device d) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *v = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = (float)(scale * sin(0.7 * (double)(i + 1) + salt));
  mt_tensor *t = MH_MADE(mt_from_data(v, ndim, shape, MT_FLOAT32, d));
  free(v);
  return t;
}

static model model_on(mt_device d) {
  model m = {
      fixed(2, (const int64_t[]){HIDDEN, IN}, 0.5, 1, d),
      fixed(1, (const int64_t[]){HIDDEN}, 0.1, 2, d),
      fixed(2, (const int64_t[]){CLASSES, HIDDEN}, 0.5, 3, d),
      fixed(1, (const int64_t[]){CLASSES}, 0.1, 4, d),
      fixed(1, (const int64_t[]){HIDDEN}, 1.0, 5, d),
  };
  mt_tensor *all[] = {m.w1, m.b1, m.w2, m.b2, m.gain};
  for (int i = 0; i < 5; i++) MH_OK(mt_set_requires_grad(all[i], 1));
  return m;
}

static void model_free(model *m) {
  mt_tensor *all[] = {m->w1, m->b1, m->w2, m->b2, m->gain};
  for (int i = 0; i < 5; i++) mt_tensor_free(all[i]);
}

/* cross_entropy(linear(gelu(rms_norm(linear(x)))) [:, perm]) as a 0-d loss. */
static mt_tensor *loss_of(const model *m, const mt_tensor *x, const mt_tensor *target) {
  mt_tensor *h = MH_MADE(mt_linear(x, m->w1, m->b1));
  mt_tensor *n = MH_MADE(mt_rms_norm(h, m->gain, 1e-6));
  mt_tensor *a = MH_MADE(mt_gelu(n));
  mt_tensor *t = MH_MADE(mt_transpose(a, 0, 1)); /* a view in the middle */
  mt_tensor *b = MH_MADE(mt_transpose(t, 0, 1));
  mt_tensor *logits = MH_MADE(mt_linear(b, m->w2, m->b2));
  mt_tensor *loss = MH_MADE(mt_cross_entropy(logits, target, -100, 0.1));
  mt_tensor *tmp[] = {h, n, a, t, b, logits};
  for (int i = 0; i < 6; i++) mt_tensor_free(tmp[i]);
  return loss;
}

static void data_on(mt_device d, mt_tensor **x, mt_tensor **target) {
  static const int64_t classes[BATCH] = {0, 2, 1, 1, 0, 2, 2, 1};
  *x = fixed(2, (const int64_t[]){BATCH, IN}, 1.0, 9, d);
  *target = MH_MADE(mt_from_data(classes, 1, (const int64_t[]){BATCH}, MT_INT64, d));
}

START_TEST(test_gradients_match_cpu) {
  mh_worker_use(&worker);
  mt_device devs[2] = {{MT_DEVICE_CPU, 0}, MH_MODAL};
  float grads[2][5][HIDDEN * IN];
  for (int side = 0; side < 2; side++) {
    model m = model_on(devs[side]);
    mt_tensor *x, *target;
    data_on(devs[side], &x, &target);
    mt_tensor *loss = loss_of(&m, x, target);
    MH_OK(mt_backward(loss, NULL));
    mt_tensor *all[] = {m.w1, m.b1, m.w2, m.b2, m.gain};
    for (int i = 0; i < 5; i++) {
      mt_tensor *g = NULL;
      MH_OK(mt_grad(all[i], &g));
      ck_assert_ptr_nonnull(g);
      ck_assert_int_eq(mt_tensor_device(g).type, devs[side].type);
      MH_OK(mt_to_host(g, grads[side][i], sizeof(float) * (size_t)mt_numel(g)));
      mt_tensor_free(g);
    }
    mt_tensor_free(loss), mt_tensor_free(x), mt_tensor_free(target);
    model_free(&m);
  }
  static const int numel[5] = {HIDDEN * IN, HIDDEN, CLASSES * HIDDEN, CLASSES, HIDDEN};
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < numel[i]; j++)
      ck_assert_msg(fabsf(grads[0][i][j] - grads[1][i][j]) <= 1e-5f + 1e-4f * fabsf(grads[0][i][j]),
                    "leaf %d [%d]: cpu %g, modal %g", i, j, (double)grads[0][i][j],
                    (double)grads[1][i][j]);
  mh_worker_finish(&worker);
}
END_TEST

START_TEST(test_training_step_is_one_sync) {
  mh_worker_use(&worker);
  model m = model_on(MH_MODAL);
  mt_tensor *x, *target;
  data_on(MH_MODAL, &x, &target);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor *all[] = {m.w1, m.b1, m.w2, m.b2, m.gain};
  mt_optimizer *opt = mt_adamw(5, all, 0.05, 0.9, 0.999, 1e-8, 0.01);
  ck_assert_msg(opt != NULL, "%s", mt_last_error());
  float first = 0, last = 0;
  for (int step = 0; step < 5; step++) {
    mh_counters before = mh_stats(&worker);
    mt_modal_stats sent_before;
    MH_OK(mt_modal_get_stats(&sent_before));
    mt_tensor *loss = loss_of(&m, x, target);
    MH_OK(mt_backward(loss, NULL));
    MH_OK(mt_optimizer_step(opt));
    MH_OK(mt_optimizer_zero_grad(opt));
    mh_counters recorded = mh_stats(&worker);
    ck_assert_uint_eq(recorded.messages, before.messages); /* nothing sent yet */
    float value;
    MH_OK(mt_to_host(loss, &value, sizeof value));
    mh_counters after = mh_stats(&worker);
    ck_assert_uint_eq(after.syncs - before.syncs, 1);
    ck_assert_uint_eq(after.graphs - before.graphs, 1);
    /* from the third step on (the first two make the optimizer's state),
     * the step is the same graph (AdamW's step count lives on the worker),
     * sent by reference to the kept template */
    mt_modal_stats sent;
    MH_OK(mt_modal_get_stats(&sent));
    ck_assert_uint_eq(sent.graphs_reused - sent_before.graphs_reused, step >= 2);
    if (step == 0) first = value;
    last = value;
    mt_tensor_free(loss);
  }
  ck_assert_msg(last < first, "the loss did not fall: %g -> %g", (double)first, (double)last);
  mt_optimizer_free(opt);
  mt_tensor_free(x), mt_tensor_free(target);
  model_free(&m);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
  mh_worker_finish(&worker);
}
END_TEST

START_TEST(test_cross_device_gradient) {
  /* a cpu leaf moved to modal: its gradient comes back to cpu */
  mh_worker_use(&worker);
  mt_device cpu = {MT_DEVICE_CPU, 0};
  mt_tensor *w = fixed(1, (const int64_t[]){4}, 1.0, 3, cpu);
  MH_OK(mt_set_requires_grad(w, 1));
  mt_tensor *remote = MH_MADE(mt_to(w, MH_MODAL, MT_FLOAT32, 0));
  mt_tensor *sq = MH_MADE(mt_mul(remote, remote));
  mt_tensor *s = MH_MADE(mt_sum(sq, 0, NULL, 0));
  MH_OK(mt_backward(s, NULL));
  mt_tensor *g = NULL;
  MH_OK(mt_grad(w, &g));
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(mt_tensor_device(g).type, MT_DEVICE_CPU);
  float gv[4], wv[4];
  MH_OK(mt_to_host(g, gv, sizeof gv));
  MH_OK(mt_to_host(w, wv, sizeof wv));
  for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(gv[i], 2 * wv[i], 1e-6);
  mt_tensor_free(g), mt_tensor_free(s), mt_tensor_free(sq), mt_tensor_free(remote);
  mt_tensor_free(w);
  mh_worker_finish(&worker);
}
END_TEST

static Suite *autograd_suite(void) {
  Suite *s = suite_create("modal_autograd");
  TCase *tc = tcase_create("modal_autograd");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_gradients_match_cpu);
  tcase_add_test(tc, test_training_step_is_one_sync);
  tcase_add_test(tc, test_cross_device_gradient);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(autograd_suite()); }
