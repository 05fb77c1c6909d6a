/*
 * ref.h - independent reference semantics for the tests.
 *
 * Plain double-precision loops written from the public contract (the header
 * comments and the team's semantics sheet), sharing no code with src/. The
 * library is checked against these, so they favour obviousness over speed.
 */
#ifndef MT_TEST_REF_H
#define MT_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

#include "modaltensor.h"

#define REF_NUM_DTYPES 10

/* ---- dtype facts ---- */

size_t ref_size(mt_dtype d);
int ref_is_float(mt_dtype d);
int ref_is_int(mt_dtype d); /* integers, bool excluded */
mt_dtype ref_promote(mt_dtype a, mt_dtype b);

/* ---- 16-bit floats, written from the IEEE-754 definitions ---- */

double ref_f16_decode(uint16_t h);
uint16_t ref_f16_encode(double x);  /* round to nearest even, overflow to inf */
double ref_bf16_decode(uint16_t h);
uint16_t ref_bf16_encode(double x); /* round to nearest even, overflow to inf */

/* ---- conversions with the cast rules ---- */

/* v after storing it in dtype d (float rounding; float->int truncation,
 * saturation and NaN->0; bool = v != 0). */
double ref_round_to(double v, mt_dtype d);
/* Two's complement truncation of v to integer dtype d (bool: v != 0). */
int64_t ref_wrap(int64_t v, mt_dtype d);

double ref_load(const void *p, mt_dtype d);
int64_t ref_load_i64(const void *p, mt_dtype d); /* exact, for integer and bool dtypes */
void ref_store(void *p, mt_dtype d, double v);   /* the cast rules from a double */
void ref_store_i64(void *p, mt_dtype d, int64_t v);
/* One element of dtype sd at src converted to dd at dst with the cast rules
 * (integers go through int64 so no precision is lost). */
void ref_convert(const void *src, mt_dtype sd, void *dst, mt_dtype dd);

/* Values of any tensor, row-major, as doubles (read with mt_to_host); a
 * malloc'd array of max(numel, 1) entries, NULL on failure. */
double *ref_read(const mt_tensor *t);

/* ---- shapes ---- */

int64_t ref_numel(int ndim, const int64_t *shape);
/* NumPy broadcast of two shapes; 0 when they do not broadcast. */
int ref_broadcast(int andim, const int64_t *ashape, int bndim, const int64_t *bshape, int *ondim,
                  int64_t *oshape);
void ref_unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *idx);
/* Row-major offset in an input of (indim, inshape) of the output index idx
 * (ondim dims) under broadcasting. */
int64_t ref_bcast_offset(const int64_t *idx, int ondim, int indim, const int64_t *inshape);

/* ---- scalar semantics ---- */

typedef enum ref_binop {
  REF_ADD, REF_SUB, REF_MUL, REF_DIV, REF_POW, REF_MAX, REF_MIN,
  REF_EQ, REF_NE, REF_LT, REF_LE, REF_GT, REF_GE, REF_AND, REF_OR,
  REF_NUM_BINOPS
} ref_binop;

/* Integer power with the house rules (negative exponent: 0 except for base
 * 1 and -1; 0^0 = 1), wrapped to d. */
int64_t ref_int_pow(int64_t base, int64_t exp, mt_dtype d);

/* x op y where x and y already hold values of the compute dtype p; the
 * result is the exact value expected in the output dtype (before rounding to
 * a 16-bit float). Comparisons and logical ops give 0/1. */
double ref_binary(ref_binop op, double x, double y, mt_dtype p);
/* Output dtype of a binary op on dtypes a and b. */
mt_dtype ref_binary_dtype(ref_binop op, mt_dtype a, mt_dtype b);

typedef enum ref_unop {
  REF_NEG, REF_ABS, REF_EXP, REF_LOG, REF_SQRT, REF_RSQRT, REF_SIN, REF_COS, REF_TANH,
  REF_SIGMOID, REF_RELU, REF_GELU, REF_SILU, REF_FLOOR, REF_CEIL, REF_ROUND, REF_SIGN,
  REF_RECIPROCAL, REF_NOT, REF_NUM_UNOPS
} ref_unop;

double ref_unary(ref_unop op, double x, mt_dtype d);
mt_dtype ref_unary_dtype(ref_unop op, mt_dtype d);

/* ---- larger references on row-major double arrays ---- */

typedef enum ref_redop { REF_SUM, REF_MEAN, REF_PROD, REF_AMAX, REF_AMIN } ref_redop;

/* Reduces the dims whose bit is set in mask; out gets the row-major result
 * of the kept dims (size: product of kept dims). */
void ref_reduce(ref_redop op, const double *in, int ndim, const int64_t *shape, unsigned mask,
                double *out);
/* Index of the first max (is_max) or min along dim; NaN wins, first NaN. */
void ref_argreduce(int is_max, const double *in, int ndim, const int64_t *shape, int dim,
                   double *out);
void ref_softmax(int log, const double *in, int ndim, const int64_t *shape, int dim, double *out);
void ref_layer_norm(const double *in, int ndim, const int64_t *shape, const double *weight,
                    const double *bias, double eps, double *out);
/* numpy.matmul on doubles; 0 when the shapes do not fit. Fills the output
 * shape; out must hold its elements (call with out NULL to get the shape). */
int ref_matmul(const double *a, int andim, const int64_t *ashape, const double *b, int bndim,
               const int64_t *bshape, double *out, int *ondim, int64_t *oshape);

/* ---- normalisations and losses, in double ---- */

/* rms_norm of rows of n: x / sqrt(mean(x^2) + eps) * w (w may be NULL). */
void ref_rms_norm(const double *x, int64_t rows, int64_t n, const double *w, double eps,
                  double *out);

/* group_norm of x [n, c, spatial] in groups; w, b [c] may be NULL; mean and
 * rstd [n, groups] (either may be NULL). */
void ref_group_norm(const double *x, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                    const double *w, const double *b, double eps, double *out, double *mean,
                    double *rstd);

/* batch_norm of x [n, c, spatial] with the given per-channel mean and
 * (biased) var (training: pass the batch's, from ref_batch_stats). */
void ref_batch_stats(const double *x, int64_t n, int64_t c, int64_t spatial, double *mean,
                     double *var);
void ref_batch_norm(const double *x, int64_t n, int64_t c, int64_t spatial, const double *mean,
                    const double *var, const double *w, const double *b, double eps, double *out);

/* Mean cross-entropy of logits [n, c, inner] against targets [n, inner]
 * with ignore_index and label smoothing ls (NaN when all are ignored). */
double ref_cross_entropy(const double *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t inner, int64_t ignore_index, double ls);
/* ---- convolution and pooling, from their definitions (torch's semantics) ---- */

/* conv2d of x [n, c, h, w] by w [o, c / groups, kh, kw] plus bias [o]
 * (NULL: none) into out [n, o, oh, ow]; stride, padding, dilation are
 * {h, w}. The caller sizes out. */
void ref_conv2d(const double *x, const int64_t *xshape, const double *w, const int64_t *wshape,
                const double *bias, const int64_t *stride, const int64_t *padding,
                const int64_t *dilation, int64_t groups, double *out, int64_t *oh, int64_t *ow);
/* max (is_max; NaN wins, the last NaN; index: flat h * w of the max, may be
 * NULL) or average with count_include_pad over planes x [h, w]. */
void ref_pool2d(int is_max, const double *x, int64_t planes, int64_t h, int64_t w,
                const int64_t *kernel, const int64_t *stride, const int64_t *padding, double *out,
                double *index, int64_t *oh, int64_t *ow);
void ref_adaptive_avg_pool2d(const double *x, int64_t planes, int64_t h, int64_t w, int64_t oh,
                             int64_t ow, double *out);
/* Attention per batch entry b < batch: out[b] = softmax(q[b] @ k[b]^T * scale
 * + bias[b]) @ v[b] over row-major q [batch][len][e], k [batch][keys][e],
 * v [batch][keys][ev]; bias [batch][len][keys] may be NULL (an additive
 * mask, -inf for a masked key); causal hides key j from row i when j > i.
 * A row that sees no key gives NaN (keys > 0) or 0 (keys = 0). */
void ref_attention(const double *q, const double *k, const double *v, const double *bias,
                   int64_t batch, int64_t len, int64_t keys, int64_t e, int64_t ev, int causal,
                   double scale, double *out);

#endif
