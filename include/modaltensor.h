/*
 * modaltensor.h - the public C API of libmodaltensor.
 *
 * Tensors live on a device: "cpu" (computed in-process) or "modal:N" (kept by
 * a worker process, or in-process when remote execution is switched off).
 *
 * Conventions
 *  - A call that makes a tensor returns `mt_tensor *`, NULL on failure; other
 *    calls return `mt_status` (MT_OK == 0). After a failure, mt_last_status()
 *    and mt_last_error() give the code and a message naming the function and
 *    the offending argument. Both are per thread.
 *  - Every returned `mt_tensor *` belongs to the caller, who frees it with
 *    mt_tensor_free(). Views share reference-counted storage: freeing a base
 *    before its views is safe.
 *  - Semantics follow NumPy / PyTorch: broadcasting, type promotion (bool <
 *    integers < floating; int + float -> float; f16 + bf16 -> f32), row-major
 *    contiguous results, negative dims counting from the end. At most
 *    MT_MAX_DIMS dims.
 *
 * The declarations below the preprocessor lines parse with cffi's cdef().
 */
#ifndef MODALTENSOR_H
#define MODALTENSOR_H

#include <stddef.h>
#include <stdint.h>

#define MT_VERSION_MAJOR 0
#define MT_VERSION_MINOR 1
#define MT_VERSION_PATCH 0
#define MT_MAX_DIMS 8

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ basics */

/* Result of every call that does not make a tensor. MT_OK is 0. */
typedef enum mt_status {
  MT_OK = 0,
  MT_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, value out of range, bad size */
  MT_ERR_SHAPE = 2,            /* shapes that do not fit together, bad dim */
  MT_ERR_DTYPE = 3,            /* dtype not supported by the operation */
  MT_ERR_DEVICE = 4,           /* mixed devices, unknown device */
  MT_ERR_OUT_OF_MEMORY = 5,
  MT_ERR_UNSUPPORTED = 6,      /* valid request this build cannot serve */
  MT_ERR_REMOTE = 7,           /* the worker reported a failure */
  MT_ERR_UNAVAILABLE = 8,      /* no worker reachable, or it went away */
  MT_ERR_TIMEOUT = 9,
  MT_ERR_UNAUTHENTICATED = 10,
  MT_ERR_INTERNAL = 11
} mt_status;

/* Status of the last failed call on this thread (MT_OK if none since
 * mt_clear_error). Successful calls leave it unchanged. */
mt_status mt_last_status(void);

/* Message of the last failed call on this thread: "function: argument:
 * reason". Never NULL; "" when there is none. Valid until the next failing
 * call on this thread. */
const char *mt_last_error(void);

/* Static name of a status, e.g. "MT_ERR_SHAPE"; "MT_ERR_UNKNOWN" otherwise. */
const char *mt_status_name(mt_status s);

/* Resets this thread's last status to MT_OK and its message to "". */
void mt_clear_error(void);

/* Version string "MAJOR.MINOR.PATCH" of the library actually loaded. */
const char *mt_version(void);

/* Element types. Float16 and bfloat16 are stored in 16 bits and computed in
 * float32, rounding to nearest even on store. */
typedef enum mt_dtype {
  MT_BOOL = 0,
  MT_UINT8 = 1,
  MT_INT8 = 2,
  MT_INT16 = 3,
  MT_INT32 = 4,
  MT_INT64 = 5,
  MT_FLOAT16 = 6,
  MT_BFLOAT16 = 7,
  MT_FLOAT32 = 8,
  MT_FLOAT64 = 9
} mt_dtype;

/* Bytes per element; 0 for a value that is not an mt_dtype. */
size_t mt_dtype_size(mt_dtype d);

/* "bool", "uint8", ..., "float64"; "invalid" for a value that is not one. */
const char *mt_dtype_name(mt_dtype d);

typedef enum mt_device_type { MT_DEVICE_CPU = 0, MT_DEVICE_MODAL = 1 } mt_device_type;

/* A device: type is an mt_device_type, index counts from 0. */
typedef struct mt_device {
  int32_t type;
  int32_t index;
} mt_device;

/* Parses "cpu", "cpu:0", "modal" (= "modal:0") or "modal:N" into *out.
 * MT_ERR_INVALID_ARGUMENT for NULL arguments or an unknown spelling. */
mt_status mt_device_parse(const char *s, mt_device *out);

/* ------------------------------------------------- devices and execution */

/* 1 if a worker answers for the modal device (starting the local worker
 * when none is configured), else 0. Never fails loudly. */
int mt_modal_is_available(void);

/* Number of modal devices across all configured workers; 0 when none. */
int mt_modal_device_count(void);

typedef struct mt_device_properties {
  char name[128];
  int64_t total_memory;
  int64_t free_memory;
  int32_t major, minor;
  int32_t multiprocessors;
} mt_device_properties;

/* Fills *out with the properties of modal device `index`.
 * MT_ERR_INVALID_ARGUMENT (NULL out), MT_ERR_DEVICE (no such index),
 * MT_ERR_UNAVAILABLE (no worker). */
mt_status mt_modal_get_device_properties(int index, mt_device_properties *out);

/* Bytes of tensor memory in use on modal device `index`, as
 * torch.cuda.memory_allocated: the worker's live blocks over all its
 * sessions (every client of a shared worker), in its allocator's rounded
 * sizes, read afresh from the worker. Work still queued in this process is
 * not counted: mt_synchronize(modal:index) first to include it. 0 from a
 * worker older than this number, and 0 with remote execution disabled (the
 * in-process device is host memory shared with cpu tensors, not a pool of
 * its own). MT_ERR_INVALID_ARGUMENT (NULL out), MT_ERR_DEVICE (no such
 * index), MT_ERR_UNAVAILABLE (no worker). */
mt_status mt_modal_memory_allocated(int index, int64_t *out);

/* Bytes modal device `index`'s worker holds, as torch.cuda.memory_reserved:
 * the live blocks of mt_modal_memory_allocated and the blocks its caching
 * allocator keeps for reuse (cuda; on a cpu worker the freed host buffers
 * it keeps, at most 512 MiB); never below the allocated bytes read at the
 * same moment.
 * Same freshness, zeros and errors as mt_modal_memory_allocated. */
mt_status mt_modal_memory_reserved(int index, int64_t *out);

/* Waits until all work queued for device d has run, and reports the first
 * deferred error of that work. A no-op for cpu. */
mt_status mt_synchronize(mt_device d);

/* Like mt_synchronize on every modal device that has work queued, all at
 * once: the syncs go out together, so n workers cost one round trip, not n.
 * Returns the first failure. MT_OK when nothing is queued anywhere. */
mt_status mt_modal_synchronize_all(void);

/* Where the modal device's workers are and how to reach them, from code
 * instead of the environment (docs/REMOTE.md, "Configuration"). Each field
 * left at its "unset" value keeps what the environment (or the default)
 * says: worker (MODALTENSOR_WORKER: an address or a comma-separated list),
 * token (MODALTENSOR_TOKEN) and tls_ca (MODALTENSOR_TLS_CA: a PEM file)
 * NULL; tls (MODALTENSOR_TLS: 1 always, 0 never) -1; timeout_s
 * (MODALTENSOR_TIMEOUT) and connect_timeout_s (MODALTENSOR_CONNECT_TIMEOUT)
 * 0. Start from MT_MODAL_CONFIG_INIT. */
typedef struct mt_modal_config {
  const char *worker;
  const char *token;
  const char *tls_ca;
  int32_t tls;
  double timeout_s;
  double connect_timeout_s;
} mt_modal_config;
#define MT_MODAL_CONFIG_INIT {NULL, NULL, NULL, -1, 0.0, 0.0}

/* Sets the configuration the modal device reads at its first use (the
 * strings are copied); NULL goes back to the environment alone. It holds
 * until the next call, mt_shutdown included. MT_ERR_INVALID_ARGUMENT for a
 * malformed address, a tls other than -1/0/1 or a negative timeout;
 * MT_ERR_UNSUPPORTED once the device is in use (after the first modal
 * call, until mt_shutdown): call it first, or shut down, configure, and go
 * on. */
mt_status mt_modal_configure(const mt_modal_config *cfg);

/* Counters of this process's modal traffic (all devices), since the first
 * modal call or mt_modal_stats_reset: round trips (waits for a worker:
 * syncs, downloads, Hello calls), sync points that waited, graphs and nodes
 * sent, payload bytes uploaded and downloaded, messages sent, what the
 * content-addressed uploads did not send (bytes and tensors the worker
 * already held), the bytes of graph messages sent (Graph and Invoke), and
 * the graphs sent by reference to a template the worker kept. */
typedef struct mt_modal_stats {
  uint64_t round_trips;
  uint64_t syncs;
  uint64_t graphs;
  uint64_t nodes;
  uint64_t bytes_up;
  uint64_t bytes_down;
  uint64_t messages;
  uint64_t bytes_skipped;
  uint64_t uploads_skipped;
  uint64_t graph_bytes;
  uint64_t graphs_reused;
} mt_modal_stats;

/* Fills *out with the counters. MT_ERR_INVALID_ARGUMENT for NULL. */
mt_status mt_modal_get_stats(mt_modal_stats *out);

/* Sets every counter to 0. */
void mt_modal_stats_reset(void);

/* Which way a transfer goes, for mt_modal_progress_fn. */
typedef enum mt_modal_transfer { MT_MODAL_UPLOAD = 0, MT_MODAL_DOWNLOAD = 1 } mt_modal_transfer;

/* Told how a transfer of `total` bytes to or from a worker's device is
 * going: once with done 0, after each chunk (about 1 MiB), and last with
 * done == total (fewer when the transfer fails). Uploads count bytes handed
 * to the connection, which HTTP/2 flow control paces to the link; bytes the
 * worker already held (content addressing) are not sent and not reported.
 * Runs on the thread that made the call, with the device in use: it must
 * not call libmodaltensor. */
typedef void (*mt_modal_progress_fn)(void *ctx, mt_modal_transfer kind, int device, uint64_t done,
                                     uint64_t total);

/* Calls fn(ctx, ...) for every upload and download of at least min_bytes
 * from now on (all threads); fn NULL stops it. Always MT_OK. */
mt_status mt_modal_set_progress(mt_modal_progress_fn fn, void *ctx, uint64_t min_bytes);

/* Chooses where modal tensors made from now on live: 1 (default) in a
 * worker, 0 in-process. Existing tensors keep their home and keep working;
 * an op mixing the two homes is MT_ERR_DEVICE, and mt_to(t, modal, dtype, 1)
 * moves a copy to the current home. */
void mt_set_remote_execution(int enabled);

/* 1 when modal tensors run in a worker, 0 when they run in-process. */
int mt_remote_execution_enabled(void);

/* Closes remote sessions and stops a worker the library started. Tensors
 * still alive afterwards keep working if they are in-process; remote ones
 * report MT_ERR_UNAVAILABLE. Safe to call more than once. */
void mt_shutdown(void);

/* ------------------------------------------------------------------ tensors */

typedef struct mt_tensor mt_tensor;

/* Releases a handle; its storage goes when the last view of it goes.
 * NULL is a no-op. */
void mt_tensor_free(mt_tensor *t);

/* New contiguous tensors. shape may be NULL when ndim is 0 (a 0-d tensor with
 * one element). Dims must be >= 0; a dim of 0 makes an empty tensor.
 * Errors: MT_ERR_SHAPE (ndim outside 0..MT_MAX_DIMS, a negative dim),
 * MT_ERR_INVALID_ARGUMENT (NULL shape with ndim > 0, byte size overflows),
 * MT_ERR_DTYPE, MT_ERR_DEVICE, MT_ERR_OUT_OF_MEMORY. mt_empty leaves the
 * values unspecified; mt_full converts value to dtype as mt_cast does. */
mt_tensor *mt_empty(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device);
mt_tensor *mt_zeros(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device);
mt_tensor *mt_ones(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device);
mt_tensor *mt_full(int ndim, const int64_t *shape, double value, mt_dtype dtype,
                   mt_device device);

/* 1-D tensor start, start+step, ... up to but excluding end: its length is
 * max(0, ceil((end - start) / step)), as in NumPy. MT_ERR_INVALID_ARGUMENT
 * for step 0 or a non-finite argument. */
mt_tensor *mt_arange(double start, double end, double step, mt_dtype dtype, mt_device device);

/* New tensor holding a copy of `data`, read as a row-major array of
 * product(shape) elements of dtype. data may be NULL only when it is empty. */
mt_tensor *mt_from_data(const void *data, int ndim, const int64_t *shape, mt_dtype dtype,
                        mt_device device);

/* Random tensors from a counter-based generator (Philox 4x32-10): the same
 * seed, shape and dtype give the same values on every device. mt_rand draws
 * U[0,1), mt_randn N(0,1) (Box-Muller). Floating dtypes only (MT_ERR_DTYPE). */
mt_tensor *mt_rand(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device,
                   uint64_t seed);
mt_tensor *mt_randn(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device,
                    uint64_t seed);

/* Accessors. On a NULL tensor or a bad dim they return 0 (or a zeroed
 * value) and set MT_ERR_INVALID_ARGUMENT / MT_ERR_SHAPE. Strides are in
 * elements. */
int mt_ndim(const mt_tensor *t);
int64_t mt_shape(const mt_tensor *t, int dim);
int64_t mt_stride(const mt_tensor *t, int dim);
int64_t mt_numel(const mt_tensor *t);
mt_dtype mt_tensor_dtype(const mt_tensor *t);
mt_device mt_tensor_device(const mt_tensor *t);
int mt_is_contiguous(const mt_tensor *t);

/* Copies the values of t, row-major, into dst. nbytes must equal
 * numel * dtype size exactly (MT_ERR_INVALID_ARGUMENT otherwise). For a
 * modal tensor this is a sync point and reports deferred errors. */
mt_status mt_to_host(const mt_tensor *t, void *dst, size_t nbytes);

/* The value of a one-element tensor (any shape), converted to double.
 * MT_ERR_SHAPE when numel != 1. */
mt_status mt_item(const mt_tensor *t, double *out);

/* t on `device` with `dtype`. copy=0 may return a new handle sharing t's
 * storage when neither changes; copy=1 always copies. A copy to a modal
 * device lives where modal tensors are made now (a worker, or in-process
 * after mt_set_remote_execution(0)): this is how a tensor moves between the
 * two. */
mt_tensor *mt_to(const mt_tensor *t, mt_device device, mt_dtype dtype, int copy);

/* t itself (a new handle on the same storage) when already contiguous,
 * otherwise a contiguous copy. */
mt_tensor *mt_contiguous(const mt_tensor *t);

/* A contiguous copy of t with its own storage. */
mt_tensor *mt_clone(const mt_tensor *t);

/* Copies src into dst (which may be a view), broadcasting src to dst's shape
 * and converting to dst's dtype. Same device. MT_ERR_SHAPE when src does not
 * broadcast to dst; MT_ERR_INVALID_ARGUMENT when dst's elements overlap
 * (e.g. an expanded view). */
mt_status mt_copy_(mt_tensor *dst, const mt_tensor *src);

/* -------------------------------------------------------------------- views */
/* Views share storage with t; no data is copied, except that mt_reshape
 * copies when t's strides cannot express the new shape. */

/* shape may hold one -1, inferred. MT_ERR_SHAPE when numel differs. */
mt_tensor *mt_reshape(const mt_tensor *t, int ndim, const int64_t *shape);

/* dims: a permutation of 0..ndim-1 (negative values allowed). */
mt_tensor *mt_permute(const mt_tensor *t, const int *dims);
mt_tensor *mt_transpose(const mt_tensor *t, int dim0, int dim1);

/* Python slice t[start:end:step] along dim; start/end are clamped, negative
 * values count from the end. step must be > 0. */
mt_tensor *mt_slice(const mt_tensor *t, int dim, int64_t start, int64_t end, int64_t step);

/* Broadcasts t to shape (ndim >= t's ndim) with stride 0; -1 keeps a dim. */
mt_tensor *mt_expand(const mt_tensor *t, int ndim, const int64_t *shape);

/* Removes dim, which must have size 1 (MT_ERR_SHAPE otherwise). */
mt_tensor *mt_squeeze(const mt_tensor *t, int dim);

/* Inserts a dim of size 1 at dim (in -ndim-1 .. ndim). */
mt_tensor *mt_unsqueeze(const mt_tensor *t, int dim);

/* ---------------------------------------------------------------------- ops */
/* Each op returns a new contiguous tensor on its inputs' device; inputs on
 * different devices are MT_ERR_DEVICE. Shapes broadcast as in NumPy. */

/* Binary, broadcasting. Arithmetic results have the promoted dtype, except
 * mt_div (true division: integer inputs give float32). Comparisons and the
 * logical ops give bool. mt_sub and mt_pow refuse bool inputs (MT_ERR_DTYPE).
 * Integer arithmetic wraps on overflow. */
mt_tensor *mt_add(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_sub(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_mul(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_div(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_pow(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_maximum(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_minimum(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_eq(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_ne(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_lt(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_le(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_gt(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_ge(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_logical_and(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_logical_or(const mt_tensor *a, const mt_tensor *b);

/* With a scalar s. Integer and bool tensors keep an integer dtype when s is a
 * whole number (bool becomes int64), and become float32 otherwise; floating
 * tensors keep their dtype. */
mt_tensor *mt_add_scalar(const mt_tensor *a, double s);
mt_tensor *mt_mul_scalar(const mt_tensor *a, double s);
mt_tensor *mt_pow_scalar(const mt_tensor *a, double s);

/* Unary. exp log sqrt rsqrt sin cos tanh sigmoid gelu silu reciprocal give
 * float32 for integer and bool inputs; logical_not gives bool; the others keep
 * the dtype (neg refuses bool). round is half-to-even; gelu is the exact
 * erf form. */
mt_tensor *mt_neg(const mt_tensor *a);
mt_tensor *mt_abs(const mt_tensor *a);
mt_tensor *mt_exp(const mt_tensor *a);
mt_tensor *mt_log(const mt_tensor *a);
mt_tensor *mt_sqrt(const mt_tensor *a);
mt_tensor *mt_rsqrt(const mt_tensor *a);
mt_tensor *mt_sin(const mt_tensor *a);
mt_tensor *mt_cos(const mt_tensor *a);
mt_tensor *mt_tanh(const mt_tensor *a);
mt_tensor *mt_sigmoid(const mt_tensor *a);
mt_tensor *mt_relu(const mt_tensor *a);
mt_tensor *mt_gelu(const mt_tensor *a);
mt_tensor *mt_silu(const mt_tensor *a);
mt_tensor *mt_floor(const mt_tensor *a);
mt_tensor *mt_ceil(const mt_tensor *a);
mt_tensor *mt_round(const mt_tensor *a);
mt_tensor *mt_sign(const mt_tensor *a);
mt_tensor *mt_reciprocal(const mt_tensor *a);
mt_tensor *mt_logical_not(const mt_tensor *a);

/* cond ? a : b elementwise, all three broadcast together. cond of any dtype
 * counts as true where non-zero; the result has the promoted dtype of a, b. */
mt_tensor *mt_where(const mt_tensor *cond, const mt_tensor *a, const mt_tensor *b);

/* min(max(a, lo), hi) in a's dtype; pass -INFINITY / INFINITY for no bound.
 * NaN in a stays NaN. MT_ERR_INVALID_ARGUMENT when lo or hi is NaN. */
mt_tensor *mt_clamp(const mt_tensor *a, double lo, double hi);

/* a converted to dtype. Float to integer truncates toward zero and
 * saturates at the integer range; NaN becomes 0. Anything non-zero becomes
 * true in bool. */
mt_tensor *mt_cast(const mt_tensor *a, mt_dtype dtype);

/* Reductions over `dims` (ndims of them, each once, negative allowed);
 * ndims == 0 means all dims. keepdim keeps reduced dims with size 1.
 * sum and prod give int64 for integer and bool inputs; mean gives float32 for
 * them; amax/amin keep the dtype, propagate NaN, and refuse to reduce an
 * empty extent (MT_ERR_SHAPE). The sum of nothing is 0, the product 1 and
 * the mean NaN. */
mt_tensor *mt_sum(const mt_tensor *a, int ndims, const int *dims, int keepdim);
mt_tensor *mt_mean(const mt_tensor *a, int ndims, const int *dims, int keepdim);
mt_tensor *mt_prod(const mt_tensor *a, int ndims, const int *dims, int keepdim);
mt_tensor *mt_amax(const mt_tensor *a, int ndims, const int *dims, int keepdim);
mt_tensor *mt_amin(const mt_tensor *a, int ndims, const int *dims, int keepdim);

/* Index (int64) of the first maximum / minimum along dim; a NaN counts as
 * the maximum and the minimum. MT_ERR_SHAPE for an empty extent. */
mt_tensor *mt_argmax(const mt_tensor *a, int dim, int keepdim);
mt_tensor *mt_argmin(const mt_tensor *a, int dim, int keepdim);

/* Numerically stable softmax / log_softmax along dim. Integer inputs give
 * float32. */
mt_tensor *mt_softmax(const mt_tensor *a, int dim);
mt_tensor *mt_log_softmax(const mt_tensor *a, int dim);

/* (a - mean) / sqrt(var + eps) * weight + bias over the last dim (biased
 * variance). weight and bias may be NULL; otherwise 1-D of the last dim's
 * size. eps must be >= 0. Integer inputs give float32. */
mt_tensor *mt_layer_norm(const mt_tensor *a, const mt_tensor *weight, const mt_tensor *bias,
                         double eps);

/* numpy.matmul: 1-D operands are promoted to a matrix and the added dim is
 * removed again; batch dims broadcast. 0-d operands are MT_ERR_SHAPE.
 * Bool operands give bool (logical or of ands). */
mt_tensor *mt_matmul(const mt_tensor *a, const mt_tensor *b);

/* Lets float32 matmuls recorded from now on use TF32 tensor cores on a GPU
 * worker (1), or keeps them exact float32 (0, the default): PyTorch's
 * allow_tf32. Process-wide; each mt_matmul captures the mode when it is
 * called. The initial value is 1 when MODALTENSOR_ALLOW_TF32=1. The cpu
 * has no TF32 and ignores it. */
void mt_set_matmul_tf32(int enabled);

/* 1 when float32 matmuls recorded now may use TF32 (mt_set_matmul_tf32). */
int mt_matmul_tf32_enabled(void);

/* Joins n >= 1 tensors along an existing dim (cat) or a new one (stack).
 * Shapes must match except along dim for cat; dtypes promote. */
mt_tensor *mt_cat(int n, const mt_tensor *const *ts, int dim);
mt_tensor *mt_stack(int n, const mt_tensor *const *ts, int dim);

/* Picks entries of a along dim by a 0-d or 1-D int32/int64 index tensor;
 * a 0-d index removes the dim (as numpy.take); negative indices count from
 * the end. An index out of range is
 * MT_ERR_INVALID_ARGUMENT (on a modal device, reported at the next sync). */
mt_tensor *mt_index_select(const mt_tensor *a, int dim, const mt_tensor *index);

/* ---- general elementwise (0.2) ---- */

/* Unary with a floating result: integer and bool inputs give float32.
 * softplus is PyTorch's (beta 1, threshold 20: x above 20, log1p(e^x)
 * below); gelu_tanh is GPT-2's approximation x/2 (1 + tanh(sqrt(2/pi)
 * (x + 0.044715 x^3))); mish is x tanh(softplus(x)). Arguments outside a
 * function's domain give NaN (asin(2), log2(-1)). */
mt_tensor *mt_erf(const mt_tensor *a);
mt_tensor *mt_erfc(const mt_tensor *a);
mt_tensor *mt_log1p(const mt_tensor *a);
mt_tensor *mt_expm1(const mt_tensor *a);
mt_tensor *mt_log2(const mt_tensor *a);
mt_tensor *mt_log10(const mt_tensor *a);
mt_tensor *mt_tan(const mt_tensor *a);
mt_tensor *mt_asin(const mt_tensor *a);
mt_tensor *mt_acos(const mt_tensor *a);
mt_tensor *mt_atan(const mt_tensor *a);
mt_tensor *mt_sinh(const mt_tensor *a);
mt_tensor *mt_cosh(const mt_tensor *a);
mt_tensor *mt_asinh(const mt_tensor *a);
mt_tensor *mt_acosh(const mt_tensor *a);
mt_tensor *mt_atanh(const mt_tensor *a);
mt_tensor *mt_softplus(const mt_tensor *a);
mt_tensor *mt_gelu_tanh(const mt_tensor *a);
mt_tensor *mt_mish(const mt_tensor *a);

/* Unary keeping the dtype. trunc rounds toward zero (integers and bool
 * are unchanged); square is a * a (wrapping for integers; bool stays bool,
 * as mt_mul of two bools). bitwise_not is ~a for integers and logical not
 * for bool; floating inputs are MT_ERR_DTYPE. */
mt_tensor *mt_trunc(const mt_tensor *a);
mt_tensor *mt_square(const mt_tensor *a);
mt_tensor *mt_bitwise_not(const mt_tensor *a);

/* Bool result, any dtype: NaN, +-inf, neither (integers and bool are always
 * finite). */
mt_tensor *mt_isnan(const mt_tensor *a);
mt_tensor *mt_isinf(const mt_tensor *a);
mt_tensor *mt_isfinite(const mt_tensor *a);

/* Binary, broadcasting. atan2(a, b) is the angle of (b, a), floating (integer
 * and bool inputs give float32). remainder is Python's a % b (the sign of
 * b), fmod C's (the sign of a), floor_divide Python's a // b; all three in
 * the promoted dtype, refusing two bools (MT_ERR_DTYPE). A float divisor 0
 * gives NaN (remainder, fmod) or +-inf/NaN (floor_divide); an integer divisor
 * 0 is MT_ERR_INVALID_ARGUMENT (PyTorch's ZeroDivisionError; on a modal
 * device reported at the next sync), and the minimum integer divided by -1
 * wraps. logical_xor gives bool from inputs of any dtype (non-zero is
 * true). The bitwise ops take integers and bool (floats are MT_ERR_DTYPE)
 * and give the promoted dtype; for bool they are the logical ops. */
mt_tensor *mt_atan2(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_remainder(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_fmod(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_floor_divide(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_logical_xor(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_bitwise_and(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_bitwise_or(const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_bitwise_xor(const mt_tensor *a, const mt_tensor *b);

/* a where a > 0, else a * negative_slope, in a's dtype; a must be floating
 * (MT_ERR_DTYPE otherwise). NaN stays NaN. */
mt_tensor *mt_leaky_relu(const mt_tensor *a, double negative_slope);

/* a where a > 0, else alpha * (e^a - 1), in a's floating dtype
 * (MT_ERR_DTYPE otherwise). */
mt_tensor *mt_elu(const mt_tensor *a, double alpha);

/* a with NaN replaced by nan, +inf by posinf and -inf by neginf (each
 * converted to a's dtype, so an out-of-range value becomes inf there).
 * PyTorch's defaults are 0 and the dtype's largest / lowest finite value.
 * Integer and bool tensors are returned unchanged (a copy). */
mt_tensor *mt_nan_to_num(const mt_tensor *a, double nan, double posinf, double neginf);

/* a with value where mask is true. mask must be bool (MT_ERR_DTYPE) and
 * broadcast to a's shape (MT_ERR_SHAPE); the result has a's dtype and
 * shape. value is converted as mt_cast does (toward zero for integers),
 * but must fit: a value outside an integer dtype's range, NaN or inf for an
 * integer, or a finite value beyond a float dtype's range is
 * MT_ERR_INVALID_ARGUMENT (as PyTorch's overflow check). */
mt_tensor *mt_masked_fill(const mt_tensor *a, const mt_tensor *mask, double value);

/* ---- reductions, scans, sorting (0.2) ---- */

/* Variance / standard deviation over `dims` (as mt_sum's dims: ndims == 0
 * means all) with Bessel's correction: sum((a - mean)^2) / max(0, N -
 * correction), N the number of elements reduced (PyTorch's correction; 1
 * is unbiased, 0 the population variance). A floating a (MT_ERR_DTYPE
 * otherwise), the result in its dtype; N - correction <= 0 gives inf or
 * NaN, as dividing by zero does. Errors also: MT_ERR_SHAPE (bad dims),
 * MT_ERR_INVALID_ARGUMENT (a correction that is not finite). */
mt_tensor *mt_var(const mt_tensor *a, int ndims, const int *dims, double correction, int keepdim);
mt_tensor *mt_std(const mt_tensor *a, int ndims, const int *dims, double correction, int keepdim);

/* log(sum(exp(a))) over `dims`, computed around the maximum so that it
 * neither overflows nor underflows: a row of -inf gives -inf, one with
 * +inf gives +inf, a NaN gives NaN, an empty extent -inf. Integer and
 * bool inputs give float32. */
mt_tensor *mt_logsumexp(const mt_tensor *a, int ndims, const int *dims, int keepdim);

/* The p-norm over `dims` of a floating a (torch.norm / vector_norm):
 * (sum |a|^p)^(1/p); p = INFINITY is max |a| (0 for an empty extent),
 * -INFINITY min |a| (an empty extent is MT_ERR_SHAPE), 0 the number of
 * non-zero elements. p = 2 is the Euclidean norm. NaN p is
 * MT_ERR_INVALID_ARGUMENT; integer inputs MT_ERR_DTYPE. */
mt_tensor *mt_norm(const mt_tensor *a, double p, int ndims, const int *dims, int keepdim);

/* Whether every (all) or some (any) element over `dims` is non-zero (NaN
 * counts as non-zero): bool results from any dtype. The all of nothing is
 * true, the any of nothing false. */
mt_tensor *mt_all(const mt_tensor *a, int ndims, const int *dims, int keepdim);
mt_tensor *mt_any(const mt_tensor *a, int ndims, const int *dims, int keepdim);

/* The maximum / minimum along dim and its index (torch.max(a, dim)):
 * *values in a's dtype, *indices int64, both without dim (size 1 under
 * keepdim). Ties give the first index; a NaN is both the maximum and the
 * minimum (the first NaN's index). Both results are the caller's; on
 * failure both are NULL and the status says why: MT_ERR_SHAPE (bad dim,
 * empty extent), MT_ERR_INVALID_ARGUMENT (NULL out-pointers). */
mt_status mt_max_dim(const mt_tensor *a, int dim, int keepdim, mt_tensor **values,
                     mt_tensor **indices);
mt_status mt_min_dim(const mt_tensor *a, int dim, int keepdim, mt_tensor **values,
                     mt_tensor **indices);

/* Running sum / product along dim, a's shape. Floating inputs keep their
 * dtype (float16 and bfloat16 accumulate in float32, float32 in double);
 * integers and bool accumulate in int64 and give int64 (wrapping), as
 * PyTorch. Errors: MT_ERR_SHAPE (bad dim). */
mt_tensor *mt_cumsum(const mt_tensor *a, int dim);
mt_tensor *mt_cumprod(const mt_tensor *a, int dim);

/* Stable sort along dim (ascending, or descending when descending != 0):
 * *values in a's dtype and *indices (int64) with a's shape, indices[i]
 * naming where values[i] was. Equal elements keep their order (-0 and +0
 * are equal); NaN is larger than everything (last ascending, first
 * descending), as PyTorch. Both results are the caller's; on failure both
 * are NULL: MT_ERR_SHAPE (bad dim), MT_ERR_INVALID_ARGUMENT (NULL
 * out-pointers). */
mt_status mt_sort(const mt_tensor *a, int dim, int descending, mt_tensor **values,
                  mt_tensor **indices);

/* The indices (int64) mt_sort gives, alone. */
mt_tensor *mt_argsort(const mt_tensor *a, int dim, int descending);

/* The k largest (largest != 0) or smallest elements along dim and their
 * int64 indices, sorted (largest first, or smallest first); ties give the
 * lower index first, NaN counts as the largest. dim gets size k in both
 * results. 0 <= k <= size of dim, else MT_ERR_INVALID_ARGUMENT; bool
 * inputs are MT_ERR_DTYPE (as PyTorch). Both results are the caller's; on
 * failure both are NULL. */
mt_status mt_topk(const mt_tensor *a, int64_t k, int dim, int largest, mt_tensor **values,
                  mt_tensor **indices);

/* ---- indexing, shape, creation, sampling (0.2) ---- */

/* An n x m matrix with ones on the diagonal, zeros elsewhere (torch.eye).
 * n, m >= 0. Caller owns the result. Errors: MT_ERR_SHAPE (negative size),
 * MT_ERR_DTYPE, MT_ERR_DEVICE. */
mt_tensor *mt_eye(int64_t n, int64_t m, mt_dtype dtype, mt_device device);

/* steps >= 0 values evenly spaced from start to end, both included
 * (torch.linspace; the first half counts up from start, the second down
 * from end, so both ends are exact; integer dtypes truncate). start and end
 * must be finite. Errors: MT_ERR_INVALID_ARGUMENT, MT_ERR_DTYPE,
 * MT_ERR_DEVICE. */
mt_tensor *mt_linspace(double start, double end, int64_t steps, mt_dtype dtype, mt_device device);

/* Integers drawn uniformly from [low, high) (torch.randint) from the
 * Philox stream of seed: the same numbers on every device (layout in
 * src/core/philox.h). Any dtype whose values hold [low, high) exactly.
 * Errors: MT_ERR_INVALID_ARGUMENT (low >= high, a range the dtype cannot
 * hold), MT_ERR_SHAPE, MT_ERR_DTYPE, MT_ERR_DEVICE. */
mt_tensor *mt_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, mt_dtype dtype,
                      mt_device device, uint64_t seed);

/* out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (torch.gather): out has
 * index's shape and a's dtype. index is int32/int64 with a's number of
 * dims and no dim larger than a's except along dim. An entry outside
 * [0, size of dim) is MT_ERR_INVALID_ARGUMENT (on a modal device, at the
 * next sync). Errors also: MT_ERR_SHAPE, MT_ERR_DTYPE. */
mt_tensor *mt_gather(const mt_tensor *a, int dim, const mt_tensor *index);

/* A copy of a with src's entries written (scatter) or added (scatter_add)
 * at the positions index names along dim (torch.Tensor.scatter /
 * scatter_add, out-of-place): out[index[i][j]][j] = src[i][j] for dim 0.
 * index as for mt_gather, and no dim larger than src's; src has a's dtype.
 * Duplicate positions: scatter keeps the last write in index order on cpu
 * (as PyTorch's cpu; on a cuda worker, which duplicate wins is unspecified),
 * scatter_add sums them all. Errors as mt_gather's. */
mt_tensor *mt_scatter(const mt_tensor *a, int dim, const mt_tensor *index, const mt_tensor *src);
mt_tensor *mt_scatter_add(const mt_tensor *a, int dim, const mt_tensor *index,
                          const mt_tensor *src);

/* A copy of a with src's slice i along dim added to slice index[i]
 * (torch.Tensor.index_add, out-of-place, alpha 1): index is 0-d or 1-d
 * int32/int64, src is a's shape with dim of index's length, and a's dtype;
 * duplicate indices accumulate. Errors as mt_gather's. */
mt_tensor *mt_index_add(const mt_tensor *a, int dim, const mt_tensor *index, const mt_tensor *src);

/* Rows of the 2-d weight [num, width] picked by an int32/int64 index of
 * any shape: the result is index's shape + [width]. An index outside
 * [0, num) is MT_ERR_INVALID_ARGUMENT (on modal, at the next sync). */
mt_tensor *mt_embedding(const mt_tensor *weight, const mt_tensor *index);

/* int64 index's shape + [num_classes], 1 at each index value, 0 elsewhere
 * (torch.nn.functional.one_hot). num_classes must be > 0: PyTorch's -1
 * ("max + 1") would need the values before the shape is known, which a
 * lazy graph cannot give. A value outside [0, num_classes) is
 * MT_ERR_INVALID_ARGUMENT (on modal, at the next sync). */
mt_tensor *mt_one_hot(const mt_tensor *index, int64_t num_classes);

/* A copy of a with the order of the elements reversed along the ndims
 * dims (torch.flip; negative dims count from the end, none twice; ndims 0
 * copies). Errors: MT_ERR_SHAPE (bad dim), MT_ERR_INVALID_ARGUMENT. */
mt_tensor *mt_flip(const mt_tensor *a, int ndims, const int *dims);

/* A copy of a with its elements shifted by shifts[i] along dims[i]
 * (torch.roll; elements leaving one end come back at the other). dims NULL
 * rolls the flattened tensor by shifts[0] (ndims must be 1) and keeps the
 * shape. Errors: MT_ERR_SHAPE (bad or repeated dim), MT_ERR_INVALID_ARGUMENT. */
mt_tensor *mt_roll(const mt_tensor *a, int ndims, const int64_t *shifts, const int *dims);

/* a tiled repeats[d] times along each dim (torch.Tensor.repeat): ndim >=
 * a's dims, a's dims align right, counts >= 0. Errors: MT_ERR_SHAPE,
 * MT_ERR_INVALID_ARGUMENT. */
mt_tensor *mt_repeat(const mt_tensor *a, int ndim, const int64_t *repeats);

/* a padded (torch.nn.functional.pad): pads holds (before, after) pairs for
 * the last dim, then the one before it, ... (npads even, at most 2 * ndim).
 * MT_PAD_CONSTANT fills with value, and negative pads crop;
 * MT_PAD_REFLECT mirrors without repeating the edge (pads < size);
 * MT_PAD_REPLICATE repeats the edge; both need pads >= 0. Errors:
 * MT_ERR_INVALID_ARGUMENT, MT_ERR_SHAPE. */
typedef enum mt_pad_mode { MT_PAD_CONSTANT = 0, MT_PAD_REFLECT = 1, MT_PAD_REPLICATE = 2 } mt_pad_mode;
mt_tensor *mt_pad(const mt_tensor *a, int npads, const int64_t *pads, mt_pad_mode mode, double value);

/* A copy of a (at least 2 dims; the last two are the matrix) with the
 * elements above (tril) or below (triu) the diagonal zeroed; diagonal 0 is
 * the main one, > 0 above it, < 0 below (torch.tril/triu). */
mt_tensor *mt_tril(const mt_tensor *a, int64_t diagonal);
mt_tensor *mt_triu(const mt_tensor *a, int64_t diagonal);

/* num_samples > 0 category indices (int64) drawn from each row of the 1-d
 * or 2-d floating probs (non-negative weights, not necessarily summing to
 * 1; torch.multinomial), with or without replacement (then num_samples <=
 * categories), from the Philox stream of seed: the same draws on every
 * device (layout in src/core/philox.h). A row with a negative, NaN or
 * infinite entry, a zero sum, or (without replacement) fewer non-zero
 * entries than num_samples is MT_ERR_INVALID_ARGUMENT (on modal, at the
 * next sync). Errors also: MT_ERR_DTYPE, MT_ERR_SHAPE. */
mt_tensor *mt_multinomial(const mt_tensor *probs, int64_t num_samples, int replacement,
                          uint64_t seed);

/* a (floating) with each element zeroed with probability p and the others
 * scaled by 1 / (1 - p), computed as a * mask as PyTorch does (NaN stays
 * NaN). The mask of element i (row-major) comes from Philox of (seed, i):
 * the same on every device and for every dtype. p = 0 gives a's values,
 * p = 1 zeros. Errors: MT_ERR_INVALID_ARGUMENT (p outside [0, 1]),
 * MT_ERR_DTYPE. */
mt_tensor *mt_dropout(const mt_tensor *a, double p, uint64_t seed);

/* ------------------------------------------------------- neural-network ops */

/* torch.nn.functional.linear: x @ weight^T + bias, x [..., in], weight
 * [out, in], bias [out] or NULL -> [..., out]. One product: the weight is
 * read transposed in place and the bias is the product's starting value.
 * Floating dtypes only (promoted); float32 uses TF32 on a GPU worker as
 * mt_matmul does (mt_set_matmul_tf32). */
mt_tensor *mt_linear(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias);

/* ---- convolution and pooling ---- */

/* torch.nn.functional.conv2d / conv1d: x [N, C, H, W] (conv1d: [N, C, L])
 * convolved (cross-correlation) with weight [O, C / groups, kh, kw]
 * (conv1d: [O, C / groups, k]) plus bias [O] when bias is not NULL; out
 * [N, O, OH, OW], OH = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1.
 * stride, padding, dilation are per spatial dim ({h, w}); NULL means 1, 0
 * and 1. groups divides C and O (groups = C: depthwise). x, weight and bias
 * share one floating dtype, which out has (float16/bfloat16 compute in
 * float32). Errors: MT_ERR_DTYPE, MT_ERR_SHAPE (ranks, channels, a kernel
 * larger than the padded input), MT_ERR_INVALID_ARGUMENT (stride or
 * dilation < 1, padding < 0, groups < 1), MT_ERR_DEVICE. */
mt_tensor *mt_conv1d(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias,
                     int64_t stride, int64_t padding, int64_t dilation, int64_t groups);
mt_tensor *mt_conv2d(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias,
                     const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                     int64_t groups);

/* torch.nn.functional.max_pool2d / avg_pool2d (ceil_mode False, dilation 1)
 * of a floating x, 3-d [C, H, W] or 4-d [N, C, H, W], over kernel
 * {kh, kw} windows at stride (NULL: the kernel) with padding (NULL: 0;
 * each at most half the kernel). max_pool2d propagates NaN; avg_pool2d
 * counts the padding in the divisor (count_include_pad). Errors:
 * MT_ERR_DTYPE, MT_ERR_SHAPE (an output size under 1, an empty non-batch
 * dim), MT_ERR_INVALID_ARGUMENT (kernel, stride < 1, padding out of range). */
mt_tensor *mt_max_pool2d(const mt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                         const int64_t padding[2]);
mt_tensor *mt_avg_pool2d(const mt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                         const int64_t padding[2]);

/* torch.nn.functional.adaptive_avg_pool2d of a floating 3-d or 4-d x to
 * out_h x out_w (>= 0): window i along H is [floor(i H / out_h),
 * ceil((i + 1) H / out_h)). Errors: MT_ERR_DTYPE, MT_ERR_SHAPE,
 * MT_ERR_INVALID_ARGUMENT (a negative size). */
mt_tensor *mt_adaptive_avg_pool2d(const mt_tensor *x, int64_t out_h, int64_t out_w);

/* ---- normalisations and losses ---- */

/* RMS normalisation over the last dim (torch.nn.functional.rms_norm):
 * a / sqrt(mean(a^2) + eps) * weight. a is floating and at least 1-D;
 * weight may be NULL, else floating 1-D of the last dim's size; eps must be
 * finite and >= 0. The result has a's dtype (float16/bfloat16 compute in
 * float32). */
mt_tensor *mt_rms_norm(const mt_tensor *a, const mt_tensor *weight, double eps);

/* Group normalisation (torch.nn.functional.group_norm): a [N, C, *] with C
 * divisible by groups (> 0); each sample's C / groups channels of a group
 * and all dims after C are normalised together with their mean and biased
 * variance, then scaled by weight and shifted by bias per channel (each
 * NULL or floating 1-D [C]). eps finite and >= 0. Result in a's dtype. */
mt_tensor *mt_group_norm(const mt_tensor *a, int64_t groups, const mt_tensor *weight,
                         const mt_tensor *bias, double eps);

/* Batch normalisation (torch.nn.functional.batch_norm) of x [N, C, *] per
 * channel C: (x - mean) / sqrt(var + eps) * weight + bias (weight, bias NULL
 * or floating 1-D [C]). training != 0 uses the batch mean and biased
 * variance over every dim but C, and then, when running_mean and
 * running_var are given (floating 1-D [C], both or neither), updates them
 * in place: running = (1 - momentum) * running + momentum * batch stat, with
 * the unbiased variance (var * n / (n - 1), n values per channel, which must
 * be > 1). training == 0 uses the running stats, which are then required.
 * The update is recorded like mt_copy_, so on a modal device it runs with the
 * graph. Result in x's dtype; NULL with the error set on failure (the
 * running stats are unchanged then). */
mt_tensor *mt_batch_norm(const mt_tensor *x, mt_tensor *running_mean, mt_tensor *running_var,
                         const mt_tensor *weight, const mt_tensor *bias, int training,
                         double momentum, double eps);

/* Cross-entropy loss (torch.nn.functional.cross_entropy, reduction 'mean',
 * no class weights): logits [N, C] or [N, C, d...] (or [C] with a 0-d
 * target), floating; target int64 class indices of logits' shape without
 * dim 1. The mean over targets that are not ignore_index of (1 -
 * label_smoothing) * -log_softmax(logits)[target] + label_smoothing * the
 * mean over classes of -log_softmax(logits); label_smoothing in [0, 1].
 * A 0-d result in logits' dtype, NaN when every target is ignored. A target
 * outside [0, C) that is not ignore_index is MT_ERR_INVALID_ARGUMENT (on a
 * modal device, at the next sync). */
mt_tensor *mt_cross_entropy(const mt_tensor *logits, const mt_tensor *target, int64_t ignore_index,
                            double label_smoothing);

/* --------------------------------------------------------------- autograd */
/* Reverse mode over the recorded ops (torch.autograd's rules). An op whose
 * input requires grad, run while grad mode is on, keeps what its backward
 * needs (ops.def's GRAD column); mt_backward emits the backward as ordinary
 * ops on the tensors' device (on modal, into the same lazy graph as the
 * forward) and frees what was kept. Gradients accumulate into leaves, in
 * the leaf's shape (broadcasting is summed back) and dtype. A graph is
 * walked by one thread at a time. */

/* Marks t, a leaf (a tensor no recorded op made), as requiring a gradient
 * (1) or not (0). MT_ERR_DTYPE for an integer or bool t. A tensor made by a
 * recorded op already requires grad: 1 is a no-op, 0 MT_ERR_INVALID_ARGUMENT
 * (mt_detach it instead). */
mt_status mt_set_requires_grad(mt_tensor *t, int requires_grad);

/* 1 when t requires grad: a marked leaf, or the result of a recorded op. */
int mt_requires_grad(const mt_tensor *t);

/* Accumulates d(t)/d(leaf), times grad, into every leaf t depends on. grad
 * NULL: t must have one element (the gradient is 1); else grad has t's
 * shape. Then frees what the graph kept: a second backward through it is
 * MT_ERR_INVALID_ARGUMENT. A kept tensor that was written in place after
 * its op ran (mt_copy_, an optimizer step) is MT_ERR_INVALID_ARGUMENT
 * naming the op, with nothing accumulated. */
mt_status mt_backward(const mt_tensor *t, const mt_tensor *grad);

/* A new handle on t's accumulated gradient in *out, or *out = NULL when it
 * has none (t is not a leaf, or no backward reached it yet). */
mt_status mt_grad(const mt_tensor *t, mt_tensor **out);

/* Drops t's accumulated gradient (the next backward starts from zero). */
mt_status mt_zero_grad(mt_tensor *t);

/* A new handle on t's values that requires no grad and is recorded by no
 * op (torch.Tensor.detach). */
mt_tensor *mt_detach(const mt_tensor *t);

/* Grad mode of the calling thread (default 1). With 0 no op is recorded:
 * inference and optimizer updates keep nothing for a backward. */
void mt_set_grad_enabled(int enabled);
int mt_grad_enabled(void);

/* Optimizers (torch.optim's updates, in place on each parameter's device,
 * one fused node per parameter; no values are downloaded). The optimizer
 * keeps its own handles on the n params (the caller may free theirs) and
 * its state (momentum buffers, Adam moments) on their device. A parameter
 * with no gradient is skipped, as torch does. */
typedef struct mt_optimizer mt_optimizer;

/* torch.optim.SGD: momentum (0: none), dampening 0, weight_decay (L2,
 * added to the gradient), nesterov (needs momentum > 0). NULL with the
 * error set for bad arguments (non-leaf or integer params, lr < 0, ...). */
mt_optimizer *mt_sgd(int n, mt_tensor *const *params, double lr, double momentum,
                     double weight_decay, int nesterov);

/* torch.optim.AdamW: decoupled weight decay, bias-corrected moments, no
 * amsgrad. */
mt_optimizer *mt_adamw(int n, mt_tensor *const *params, double lr, double beta1, double beta2,
                       double eps, double weight_decay);

/* One update of every parameter that has a gradient. */
mt_status mt_optimizer_step(mt_optimizer *opt);

/* Drops every parameter's gradient (mt_zero_grad on each). */
mt_status mt_optimizer_zero_grad(mt_optimizer *opt);

/* The learning rate of the next steps (schedules). */
mt_status mt_optimizer_set_lr(mt_optimizer *opt, double lr);

/* Frees opt and its state; the parameters stay. NULL is a no-op. */
void mt_optimizer_free(mt_optimizer *opt);

/* torch.nn.utils.clip_grad_norm_ (2-norm over all the gradients of the n
 * params together): scales each gradient by min(1, max_norm / (total +
 * 1e-6)) on its device, without downloading the norm. *total_norm (when
 * total_norm is not NULL) receives the 0-d float32 total norm before
 * clipping, on the first gradient's device. */
mt_status mt_clip_grad_norm(int n, mt_tensor *const *params, double max_norm,
                            mt_tensor **total_norm);

/* ---------------------------------------------------------- weights on disk */
/* The Hugging Face safetensors format: an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range,
 * then the bytes. Dtypes BOOL U8 I8 I16 I32 I64 F16 BF16 F32 F64 load; files
 * with the format's other dtypes (U16, U32, U64, F8_*) open, and those
 * tensors refuse to load (MT_ERR_DTYPE). */
typedef struct mt_safetensors mt_safetensors;

/* Opens path (mapped read-only) and validates the header whole: JSON
 * syntax, unique names, fields, shapes that match their byte ranges, byte
 * ranges that tile the data exactly up to the file's end. NULL with the
 * error set (MT_ERR_INVALID_ARGUMENT naming what is wrong) otherwise. */
mt_safetensors *mt_safetensors_open(const char *path);

/* Number of tensors in f (0 for NULL). */
int mt_safetensors_count(const mt_safetensors *f);

/* Name of tensor i (0 <= i < count), in the order of their bytes in the
 * file; owned by f. NULL with MT_ERR_INVALID_ARGUMENT out of range. */
const char *mt_safetensors_name(const mt_safetensors *f, int i);

/* A new tensor on device holding a copy of tensor `name` (a modal device
 * receives it as any upload). NULL with the error set for an unknown name
 * (MT_ERR_INVALID_ARGUMENT), a dtype without a libmodaltensor twin
 * (MT_ERR_DTYPE), BOOL bytes other than 0 and 1, or a failed upload. */
mt_tensor *mt_safetensors_get(const mt_safetensors *f, const char *name, mt_device device);

/* Closes f; tensors already made stay valid. NULL is a no-op. */
void mt_safetensors_close(mt_safetensors *f);

/* Writes the n tensors (any device, any layout; modal ones are read back,
 * a sync) under names (unique, non-empty, not "__metadata__") to path, in
 * the given order. The file is written beside path and renamed over it, so
 * path holds either the old file or the whole new one. */
mt_status mt_safetensors_save(const char *path, int n, const char *const *names,
                              const mt_tensor *const *tensors);
/* ---- neural-network ops (0.2) ---- */

/* Scaled dot-product attention, as torch.nn.functional's (torch 2):
 * softmax(q @ k^T * scale + mask) @ v for q [..., L, E], k [..., S, E] and
 * v [..., S, Ev], giving [..., L, Ev] in q's dtype. q, k and v have one
 * floating dtype and at least 2 dims; their batch dims (all but the last
 * two) broadcast. attn_mask may be NULL, bool (true keeps the key; a query
 * row with no kept key gives NaN, as PyTorch) or an additive float of q's
 * dtype or float32, broadcasting to [..., L, S]. is_causal lets query i
 * see key j only when j <= i (top-left aligned, also for L != S) and
 * cannot be combined with a mask. scale NAN means 1/sqrt(E); else it must
 * be finite. S = 0 gives zeros. Computed without an L x S matrix (online
 * softmax over key tiles), float16/bfloat16 in float32. Errors:
 * MT_ERR_DTYPE, MT_ERR_SHAPE, MT_ERR_INVALID_ARGUMENT, MT_ERR_DEVICE. */
mt_tensor *mt_scaled_dot_product_attention(const mt_tensor *q, const mt_tensor *k,
                                           const mt_tensor *v, const mt_tensor *attn_mask,
                                           int is_causal, double scale);

/* ------------------------------------------------------------------ interop */

typedef void (*mt_deleter)(void *ctx);

/* A cpu tensor over caller memory, without copying. strides are in elements
 * (NULL: row-major contiguous, negative strides refused). When the last
 * view goes, deleter(ctx) is called (deleter may be NULL). On failure the
 * deleter is NOT called: the caller still owns data. */
mt_tensor *mt_from_blob(void *data, int ndim, const int64_t *shape, const int64_t *strides,
                        mt_dtype dtype, mt_deleter deleter, void *ctx);

/* Address of element [0,...,0] of a cpu tensor; NULL (and
 * MT_ERR_DEVICE) for other devices, NULL without error for empty tensors. */
void *mt_data_ptr(const mt_tensor *t);

struct DLManagedTensor;

/* Exports a cpu tensor as DLPack 0.6 without copying; the consumer calls
 * its deleter, which releases the reference this export holds. */
struct DLManagedTensor *mt_to_dlpack(const mt_tensor *t);

/* Imports a DLPack 0.6 cpu tensor without copying and takes ownership of m,
 * also on failure (m's deleter is called then). */
mt_tensor *mt_from_dlpack(struct DLManagedTensor *m);

/* --------------------------------------------------------- runtime control */

/* Sets how many threads the cpu kernels (and the BLAS behind mt_matmul) of
 * this process use; 0 returns to the default: OMP_NUM_THREADS when set, else
 * the CPUs the process may run on. The count is the library's own: other
 * OpenMP users in the process (PyTorch sets libgomp's count to 1 when it is
 * imported) do not change it. It does not apply to a worker's cpu backend.
 * A negative n changes nothing and sets MT_ERR_INVALID_ARGUMENT. */
void mt_set_num_threads(int n);

/* The thread count the cpu kernels use now (always >= 1). */
int mt_get_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif /* MODALTENSOR_H */
