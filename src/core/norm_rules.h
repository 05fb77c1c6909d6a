/*
 * norm_rules.h - the row formulas of rms_norm, group_norm, batch_norm and
 * cross_entropy that the cpu kernels (src/cpu/norm.c) and the cuda kernels
 * (remote_worker/cuda/cuda_norm.cu) share, so that the two backends compute
 * the same thing. Statistics are reduced in double by both; these turn them
 * into what the element loops use.
 */
#ifndef MTI_NORM_RULES_H
#define MTI_NORM_RULES_H

#include <math.h>
#include <stdint.h>

#include "core/dtype.h"

/* 1 / sqrt(mean_square + eps): rms_norm's factor, and the normalisations'
 * rstd from their biased variance. */
MTI_HOST_DEVICE static inline double mti_norm_rstd(double mean_square, double eps) {
  return 1.0 / sqrt(mean_square + eps);
}

/* The per-channel factor of group_norm and batch_norm: rstd * weight (1
 * without a weight). y = (x - mean) * factor + bias, with mean, factor and
 * bias rounded to the compute type and the steps rounded one by one. */
MTI_HOST_DEVICE static inline double mti_norm_scale(double rstd, double weight) {
  return rstd * weight;
}

/* The biased variance from the sum of squared deviations around a mean
 * that was rounded to the compute type (mean_ct): sum((x - mean_ct)^2) / n
 * less the square of the rounding, never negative. */
MTI_HOST_DEVICE static inline double mti_norm_variance(double dev2_sum, int64_t n, double mean,
                                                       double mean_ct) {
  double shift = mean - mean_ct, v = dev2_sum / (double)n - shift * shift;
  return v > 0 ? v : 0;
}

/* Cross-entropy of one row (PyTorch's with label smoothing ls): with lse =
 * logsumexp of the row, the nll is lse - x[target] and the smoothing term
 * the mean over the classes of -log_softmax, lse - sum(x) / classes. ls = 0
 * leaves the nll alone (an infinite sum(x) does not turn it into NaN). */
MTI_HOST_DEVICE static inline double mti_cross_entropy_row(double lse, double x_target,
                                                           double sum_x, int64_t classes,
                                                           double ls) {
  double nll = lse - x_target;
  if (ls == 0) return nll;
  return (1.0 - ls) * nll + ls * (lse - sum_x / (double)classes);
}

/* The mean loss over count rows that were not ignored (NaN when there are
 * none, as PyTorch's 0 / 0). */
MTI_HOST_DEVICE static inline double mti_cross_entropy_mean(double total, int64_t count) {
  return count ? total / (double)count : NAN;
}

#endif
