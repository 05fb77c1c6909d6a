/*
 * test_cuda_norm_host.cu - host-side checks of the CUDA normalisation and
 * cross-entropy launches (remote_worker/cuda/cuda_norm.cu), without a GPU.
 *
 * The file is included whole, so its host helpers are checked as the entry
 * points use them: dim_last (cross_entropy's classes moved last: the rows
 * then follow the target's order), the scratch regions (aligned, carved
 * in order, none past the total), row_grid (never 0 blocks, never more
 * than MAX_GRID), the row slices of the backwards' column sums and the
 * shared row formulas of core/norm_rules.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "cuda/cuda_norm.cu"

#include "host_check.h"

using namespace mtw;

static void check_dim_last(void) {
  mti_view v = {};
  v.ndim = 4;
  const int64_t shape[4] = {2, 5, 3, 4};
  mti_shape_contiguous_strides(4, shape, v.strides);
  for (int d = 0; d < 4; d++) v.shape[d] = shape[d];
  mti_view p = dim_last(v, 1);
  const int64_t want_shape[4] = {2, 3, 4, 5}, want_strides[4] = {60, 4, 1, 12};
  for (int d = 0; d < 4; d++) {
    CHECK(p.shape[d] == want_shape[d], "dim_last shape[%d] = %lld", d, (long long)p.shape[d]);
    CHECK(p.strides[d] == want_strides[d], "dim_last strides[%d] = %lld", d,
          (long long)p.strides[d]);
  }
  CHECK(!is_contiguous(p), "[N, d1, d2, C] of a contiguous [N, C, d1, d2] is not contiguous");
  mti_view two = v;
  two.ndim = 2;
  two.shape[0] = 6, two.shape[1] = 7, two.strides[0] = 7, two.strides[1] = 1;
  CHECK(is_contiguous(dim_last(two, 1)), "[N, C] needs no staging");
  mti_view one = v;
  one.ndim = 1;
  one.shape[0] = 9, one.strides[0] = 1;
  CHECK(is_contiguous(dim_last(one, 0)), "[C] needs no staging");
}

static void check_regions(void) {
  for (int64_t n = 0; n < 2000; n += 37) {
    CHECK(region<double>(n) % 256 == 0 && region<double>(n) >= (size_t)n * 8, "region(%lld)",
          (long long)n);
    CHECK(region<__half>(n) >= (size_t)n * 2, "region<half>(%lld)", (long long)n);
  }
  char buf[4096];
  carver c = {buf, 0};
  void *a = c.take(region<float>(10)), *b = c.take(region<double>(3)), *z = c.take(0);
  CHECK(a == buf && b == buf + 256 && z == nullptr && c.used == 512, "carver order");
}

static void check_grid(void) {
  CHECK(row_grid(0) == 1, "row_grid(0)");
  CHECK(row_grid(1) == 1, "row_grid(1)");
  CHECK(row_grid(65535) == 65535, "row_grid(65535)");
  CHECK(row_grid((int64_t)1 << 40) == MAX_GRID, "row_grid(2^40)");
}

/* The row slices of layer_norm/rms_norm's column sums: at least 1, at
 * most SLICES_MAX, and each slice of rows_per rows covers every row. */
static void check_column_slices(void) {
  for (int64_t rows = 0; rows < 100000; rows = rows * 3 + 1) {
    int64_t slices = column_slices(rows), per = (rows + slices - 1) / slices;
    CHECK(slices >= 1 && slices <= SLICES_MAX, "column_slices(%lld) = %lld", (long long)rows,
          (long long)slices);
    CHECK(slices * per >= rows, "slices of %lld rows miss some", (long long)rows);
  }
}

static void check_rules(void) {
  /* variance around a rounded mean: the shift is taken out again */
  double x[4] = {1.0, 2.0, 3.0, 4.0}, mean = 2.5, mc = 2.4, dev2 = 0;
  for (double v : x) dev2 += (v - mc) * (v - mc);
  CHECK(fabs(mti_norm_variance(dev2, 4, mean, mc) - 1.25) < 1e-12, "variance");
  CHECK(mti_norm_variance(0.0, 4, 1.0, 1.0 + 1e-9) == 0.0, "variance never negative");
  CHECK(mti_cross_entropy_row(3.0, 1.0, -INFINITY, 4, 0.0) == 2.0, "ls 0 ignores sum(x)");
  CHECK(fabs(mti_cross_entropy_row(3.0, 1.0, 8.0, 4, 0.5) - (0.5 * 2.0 + 0.5 * 1.0)) < 1e-15,
        "smoothing");
  CHECK(isnan(mti_cross_entropy_mean(0.0, 0)), "no targets: NaN");
  CHECK(mti_cross_entropy_mean(6.0, 3) == 2.0, "mean");
}

int main(void) {
  check_dim_last();
  check_regions();
  check_grid();
  check_column_slices();
  check_rules();
  return host_check_report();
}
