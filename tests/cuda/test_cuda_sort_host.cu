/*
 * test_cuda_sort_host.cu - host-side checks of the logic of the CUDA
 * reductions, scans and sorting kernels of 0.2
 * (remote_worker/cuda/cuda_reduce_ops.cuh), without a GPU.
 *
 * order_key is __host__ __device__: rows of every dtype (NaN of both
 * signs, +-0, infinities, ties) sorted on the host by their keys with a
 * stable sort, as CUB's StableSortPairs does on the device, must give the
 * cpu backend's argsort (mti_cpu_run), ascending and descending. rows_desc
 * must enumerate a strided view's elements as rows along any dim mask in
 * the order the cpu's rows (dims of the mask moved last) have them.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "cuda/cuda_reduce_ops.cuh"

extern "C" {
#include "cpu/cpu_backend.h"
}

#include "host_check.h"

using namespace mtw;

static const double row_values[] = {3,   NAN, -0.0, 1,    0,  3, -INFINITY, INFINITY, -2, 1,
                                    -NAN, 0,  2,    -0.0, -2, 7, 1,         NAN,      5,  -1};
enum { N = sizeof row_values / sizeof *row_values };

/* The row in dtype d (through the cpu's conversion), as bytes. */
static std::vector<unsigned char> row_of(mt_dtype d) {
  std::vector<unsigned char> bytes(N * mt_dtype_size(d));
  for (int i = 0; i < N; i++) {
    double v = row_values[i];
    if (!mti_dtype_is_float(d)) v = isnan(v) ? 4 : isinf(v) ? (v > 0 ? 100 : -100) : v;
    if (d == MT_UINT8 || d == MT_BOOL) v = fabs(v) > 1 && d == MT_BOOL ? 1 : fabs(v);
    mti_store_double(bytes.data() + i * mt_dtype_size(d), d, v);
  }
  return bytes;
}

static void check_keys_sort_as_cpu(mt_dtype d, bool descending) {
  std::vector<unsigned char> row = row_of(d);
  std::vector<int64_t> order(N), cpu(N);
  for (int i = 0; i < N; i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return order_key(row.data(), d, a, descending) < order_key(row.data(), d, b, descending);
  });
  mti_view in = {row.data(), d, 1, {N}, {1}}, out = {cpu.data(), MT_INT64, 1, {N}, {1}};
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.flags = descending ? MTI_FLAG_DESCENDING : 0;
  CHECK(mti_cpu_run(MTI_OP_ARGSORT, &in, 1, &at, &out) == MT_OK, "argsort %s", mt_dtype_name(d));
  for (int i = 0; i < N; i++)
    CHECK(order[i] == cpu[i], "%s %s: position %d: keys give %lld, the cpu %lld",
          mt_dtype_name(d), descending ? "descending" : "ascending", i, (long long)order[i],
          (long long)cpu[i]);
}

/* Element offset of row-major element e of (shape, strides), on the host. */
static int64_t host_offset(const desc &d, int64_t e) {
  int64_t off = 0;
  for (int k = d.ndim - 1; k >= 0; k--) {
    off += e % d.shape[k] * d.strides[k];
    e /= d.shape[k];
  }
  return off;
}

/* A [2, 3, 4] view with permuted, gapped strides: rows along each mask
 * list the elements with the masked dims varying fastest, in order. */
static void check_rows_desc() {
  mti_view v = {NULL, MT_FLOAT32, 3, {2, 3, 4}, {1, 40, 8}};
  for (uint32_t mask = 0; mask < 8; mask++) {
    int64_t nrows, len;
    desc d = rows_desc(v, mask, &nrows, &len);
    int64_t want_len = 1;
    for (int k = 0; k < 3; k++)
      if (mask >> k & 1u) want_len *= v.shape[k];
    CHECK(len == want_len && nrows * len == 24, "mask %u: %lld rows of %lld", mask,
          (long long)nrows, (long long)len);
    /* the kept dims, then the masked ones, each in order: a counter over them */
    int dims[3], nd = 0;
    for (int want = 0; want < 2; want++)
      for (int k = 0; k < 3; k++)
        if ((int)(mask >> k & 1u) == want) dims[nd++] = k;
    int64_t i[3] = {0, 0, 0};
    for (int64_t e = 0; e < 24; e++) {
      int64_t expect = i[0] * v.strides[0] + i[1] * v.strides[1] + i[2] * v.strides[2];
      CHECK(host_offset(d, e) == expect, "mask %u: element %lld at %lld, expected %lld", mask,
            (long long)e, (long long)host_offset(d, e), (long long)expect);
      for (int k = nd - 1; k >= 0; k--) {
        if (++i[dims[k]] < v.shape[dims[k]]) break;
        i[dims[k]] = 0;
      }
    }
  }
}

int main() {
  static const mt_dtype dtypes[] = {MT_BOOL,    MT_UINT8,    MT_INT8,    MT_INT16,  MT_INT32,
                                    MT_INT64,   MT_FLOAT16,  MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};
  for (mt_dtype d : dtypes)
    for (int desc_order = 0; desc_order < 2; desc_order++) check_keys_sort_as_cpu(d, desc_order);
  check_rows_desc();
  return host_check_report();
}
