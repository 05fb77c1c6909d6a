/*
 * test_util.h - helpers shared by the Check suites: making tensors from
 * double arrays, reading them back, and comparing with tolerances while
 * reporting the caller's file and line, the index and both values.
 */
#ifndef MT_TEST_UTIL_H
#define MT_TEST_UTIL_H

#include <check.h>
#include <stdint.h>

#include "modaltensor.h"
#include "ref.h"

#define TU_CPU ((mt_device){MT_DEVICE_CPU, 0})
#define TU_MODAL ((mt_device){MT_DEVICE_MODAL, 0})

/* A shape literal: TU_SHAPE(2, 3). */
#define TU_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
/* A double array literal: TU_VALS(1, 2.5, NAN). */
#define TU_VALS(...) ((const double[]){__VA_ARGS__})
#define TU_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

extern const mt_dtype tu_all_dtypes[REF_NUM_DTYPES];

/* Relative and absolute tolerance for results stored in dtype d. */
void tu_tol(mt_dtype d, double *rtol, double *atol);

/* A contiguous cpu tensor of dtype dt holding v (converted with the cast
 * rules). Fails the test when the library refuses. */
mt_tensor *tu_tensor_at(const char *file, int line, const double *v, int ndim,
                        const int64_t *shape, mt_dtype dt);
#define TU_TENSOR(v, ndim, shape, dt) tu_tensor_at(__FILE__, __LINE__, v, ndim, shape, dt)

/* Fails the test (with the library's message) when t is NULL; returns t. */
mt_tensor *tu_ok_at(const char *file, int line, const char *expr, mt_tensor *t);
#define TU_OK(expr) tu_ok_at(__FILE__, __LINE__, #expr, (expr))

/* Values of t as doubles (malloc'd, caller frees); fails the test on error. */
double *tu_read_at(const char *file, int line, const mt_tensor *t);
#define TU_READ(t) tu_read_at(__FILE__, __LINE__, t)

/* Checks t's dtype, ndim and shape. */
void tu_check_meta_at(const char *file, int line, const mt_tensor *t, mt_dtype dt, int ndim,
                      const int64_t *shape);
#define TU_CHECK_META(t, dt, ndim, shape) tu_check_meta_at(__FILE__, __LINE__, t, dt, ndim, shape)

/* Checks t's n values against expected: |got - exp| <= atol + rtol * |exp|,
 * NaN matches NaN, infinities must match exactly. */
void tu_check_close_at(const char *file, int line, const mt_tensor *t, const double *expected,
                       int64_t n, double rtol, double atol);
#define TU_CHECK_CLOSE(t, exp, n, rtol, atol) \
  tu_check_close_at(__FILE__, __LINE__, t, exp, n, rtol, atol)
/* Same with the tolerance of t's dtype. */
#define TU_CHECK_VALUES(t, exp, n) tu_check_values_at(__FILE__, __LINE__, t, exp, n)
void tu_check_values_at(const char *file, int line, const mt_tensor *t, const double *expected,
                        int64_t n);

/* Checks t element by element against raw values of t's dtype, exactly
 * (integers as int64, floats by value with NaN matching NaN). */
void tu_check_raw_at(const char *file, int line, const mt_tensor *t, const void *expected,
                     int64_t n);
#define TU_CHECK_RAW(t, exp, n) tu_check_raw_at(__FILE__, __LINE__, t, exp, n)

/* ck_assert_msg for checks inside long loops: Check records every passing
 * ck_assert with a write to its parent process, which costs microseconds;
 * this only calls into Check when cond fails. */
#define TU_EXPECT(cond, ...)            \
  do {                                  \
    if (!(cond)) ck_abort_msg(__VA_ARGS__); \
  } while (0)

/* Checks that a failed call left status st and a message starting with
 * "fn:" (fn may be NULL to skip that part). */
void tu_check_error_at(const char *file, int line, const char *expr, mt_status st, const char *fn);

/* expr makes a tensor and must fail with status st; message names fn. */
#define TU_FAILS(expr, st, fn)                                                   \
  do {                                                                           \
    mt_clear_error();                                                            \
    mt_tensor *tu_failed_ = (expr);                                              \
    ck_assert_msg(tu_failed_ == NULL, "%s:%d: %s succeeded, expected %s", __FILE__, \
                  __LINE__, #expr, mt_status_name(st));                          \
    tu_check_error_at(__FILE__, __LINE__, #expr, st, fn);                        \
  } while (0)

/* expr returns an mt_status that must be st; message names fn. */
#define TU_STATUS(expr, st, fn)                                                  \
  do {                                                                           \
    mt_clear_error();                                                            \
    mt_status tu_got_ = (expr);                                                  \
    ck_assert_msg(tu_got_ == (st), "%s:%d: %s returned %s, expected %s (%s)", __FILE__, \
                  __LINE__, #expr, mt_status_name(tu_got_), mt_status_name(st),  \
                  mt_last_error());                                              \
    tu_check_error_at(__FILE__, __LINE__, #expr, st, fn);                        \
  } while (0)

/* expr returns an mt_status that must be MT_OK. */
#define TU_CHECK_OK(expr)                                                        \
  do {                                                                           \
    mt_status tu_got_ = (expr);                                                  \
    ck_assert_msg(tu_got_ == MT_OK, "%s:%d: %s returned %s (%s)", __FILE__, __LINE__, #expr, \
                  mt_status_name(tu_got_), mt_last_error());                     \
  } while (0)

/* A deterministic pseudo-random double in [lo, hi) quantised to 1/8, so it
 * is exact in every floating dtype when |value| < 32. */
double tu_value(uint64_t i, double lo, double hi);

/* Runs a suite with the default fork mode; returns the process exit status. */
int tu_run_suite(Suite *s);

#endif
