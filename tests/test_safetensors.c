/*
 * test_safetensors.c - mt_safetensors_*: files written by hand byte for
 * byte (the format as its specification gives it), save/open round trips
 * of every dtype, and every way a header can be malformed.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static char dir[64];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/mt_st_%ld_XXXXXX", (long)getpid());
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static const char *path_of(const char *name) {
  static char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return p;
}

/* Writes a file: the 8-byte length of header, header, then data. */
static const char *write_file(const char *header, const void *data, size_t data_len) {
  const char *p = path_of("t.safetensors");
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  uint64_t n = strlen(header);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
  ck_assert_uint_eq(fwrite(len8, 1, 8, f), 8);
  ck_assert_uint_eq(fwrite(header, 1, n, f), n);
  if (data_len) ck_assert_uint_eq(fwrite(data, 1, data_len, f), data_len);
  ck_assert_int_eq(fclose(f), 0);
  return p;
}

/* open must fail with MT_ERR_INVALID_ARGUMENT and a message holding want. */
static void check_refused(const char *path, const char *want) {
  mt_clear_error();
  mt_safetensors *f = mt_safetensors_open(path);
  ck_assert_msg(f == NULL, "opened a bad file (expected: %s)", want);
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(mt_last_error(), "mt_safetensors_open") &&
                    strstr(mt_last_error(), want),
                "message \"%s\" lacks \"%s\"", mt_last_error(), want);
}

static void check_header_refused(const char *header, size_t data_len, const char *want) {
  static const unsigned char zeros[64];
  check_refused(write_file(header, zeros, data_len), want);
}

/* A file as the format's specification spells it, with metadata, escapes
 * in a name and a 0-d and an empty tensor. */
START_TEST(test_reads_a_handmade_file) {
  const float a[3] = {1.5f, -2.0f, 0.25f};
  const int16_t b = -7;
  unsigned char data[14];
  memcpy(data, a, 12);
  memcpy(data + 12, &b, 2);
  const char *p = write_file(
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"w\\u00e9\\\"ight\":{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[0,12]},"
      " \"s\" : { \"shape\" : [ ] , \"dtype\" : \"I16\", \"data_offsets\" : [12, 14] },"
      "\"e\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[14,14]}}   ",
      data, sizeof data);
  mt_safetensors *f = mt_safetensors_open(p);
  ck_assert_msg(f != NULL, "%s", mt_last_error());
  ck_assert_int_eq(mt_safetensors_count(f), 3);
  ck_assert_str_eq(mt_safetensors_name(f, 0), "w\xc3\xa9\"ight"); /* in data order */
  ck_assert_str_eq(mt_safetensors_name(f, 1), "s");
  ck_assert_str_eq(mt_safetensors_name(f, 2), "e");
  ck_assert_ptr_null(mt_safetensors_name(f, 3));
  mt_tensor *w = TU_OK(mt_safetensors_get(f, "w\xc3\xa9\"ight", TU_CPU));
  mt_tensor *s = TU_OK(mt_safetensors_get(f, "s", TU_CPU));
  mt_tensor *e = TU_OK(mt_safetensors_get(f, "e", TU_CPU));
  mt_safetensors_close(f); /* the tensors stay valid */
  TU_CHECK_META(w, MT_FLOAT32, 2, TU_SHAPE(3, 1));
  TU_CHECK_RAW(w, a, 3);
  TU_CHECK_META(s, MT_INT16, 0, NULL);
  TU_CHECK_RAW(s, &b, 1);
  TU_CHECK_META(e, MT_BFLOAT16, 2, TU_SHAPE(0, 4));
  mt_tensor_free(w);
  mt_tensor_free(s);
  mt_tensor_free(e);
}
END_TEST

/* Every dtype, 0-d, empty and 3-d shapes, a non-contiguous view: saved,
 * reopened, equal bit for bit; the header is padded to 8 bytes. */
START_TEST(test_round_trip_every_dtype) {
  mt_tensor *ts[REF_NUM_DTYPES + 3];
  char names[REF_NUM_DTYPES + 3][32];
  const char *name_ptrs[REF_NUM_DTYPES + 3];
  int n = 0;
  for (int d = 0; d < REF_NUM_DTYPES; d++) {
    mt_dtype dt = tu_all_dtypes[d];
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = dt == MT_BOOL ? i % 3 == 0 : (i * 7 % 11) - 5 + 0.5 * (dt >= MT_FLOAT16);
    ts[n] = TU_TENSOR(v, 3, TU_SHAPE(2, 3, 4), dt);
    snprintf(names[n], sizeof names[n], "t.%s", mt_dtype_name(dt));
    n++;
  }
  mt_tensor *base = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5, 6), 2, TU_SHAPE(2, 3), MT_FLOAT64);
  ts[n] = TU_OK(mt_transpose(base, 0, 1));
  snprintf(names[n++], 32, "transposed");
  ts[n] = TU_TENSOR(TU_VALS(42), 0, NULL, MT_INT64);
  snprintf(names[n++], 32, "scalar");
  ts[n] = TU_OK(mt_zeros(2, TU_SHAPE(0, 3), MT_FLOAT16, TU_CPU));
  snprintf(names[n++], 32, "empty");
  for (int i = 0; i < n; i++) name_ptrs[i] = names[i];
  const char *p = path_of("round.safetensors");
  TU_CHECK_OK(mt_safetensors_save(p, n, name_ptrs, (const mt_tensor *const *)ts));

  FILE *raw = fopen(p, "rb");
  unsigned char len8[8];
  ck_assert_uint_eq(fread(len8, 1, 8, raw), 8);
  fclose(raw);
  ck_assert_int_eq(len8[0] % 8, 0);

  mt_safetensors *f = mt_safetensors_open(p);
  ck_assert_msg(f != NULL, "%s", mt_last_error());
  ck_assert_int_eq(mt_safetensors_count(f), n);
  for (int i = 0; i < n; i++) {
    ck_assert_str_eq(mt_safetensors_name(f, i), names[i]); /* saved order = data order */
    mt_tensor *got = TU_OK(mt_safetensors_get(f, names[i], TU_CPU));
    int64_t shape[MT_MAX_DIMS];
    for (int d = 0; d < mt_ndim(ts[i]); d++) shape[d] = mt_shape(ts[i], d);
    TU_CHECK_META(got, mt_tensor_dtype(ts[i]), mt_ndim(ts[i]), shape);
    size_t bytes = (size_t)mt_numel(got) * mt_dtype_size(mt_tensor_dtype(got));
    void *want = malloc(bytes + 1), *have = malloc(bytes + 1);
    TU_CHECK_OK(mt_to_host(ts[i], want, bytes));
    TU_CHECK_OK(mt_to_host(got, have, bytes));
    ck_assert_msg(memcmp(want, have, bytes) == 0, "%s differs", names[i]);
    free(want), free(have);
    mt_tensor_free(got);
  }
  mt_safetensors_close(f);
  for (int i = 0; i < n; i++) mt_tensor_free(ts[i]);
  mt_tensor_free(base);
}
END_TEST

/* The exact bytes the writer produces for one small tensor. */
START_TEST(test_writes_the_format_exactly) {
  mt_tensor *t = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_INT32);
  const char *name = "a\"b";
  const char *p = path_of("exact.safetensors");
  TU_CHECK_OK(mt_safetensors_save(p, 1, &name, (const mt_tensor *const *)&t));
  static const char header[] = "{\"a\\\"b\":{\"dtype\":\"I32\",\"shape\":[2],"
                               "\"data_offsets\":[0,8]}}";
  size_t padded = (sizeof header - 1 + 7) / 8 * 8;
  unsigned char got[256];
  FILE *raw = fopen(p, "rb");
  size_t n = fread(got, 1, sizeof got, raw);
  fclose(raw);
  ck_assert_uint_eq(n, 8 + padded + 8);
  ck_assert_uint_eq(got[0], padded);
  for (int i = 1; i < 8; i++) ck_assert_uint_eq(got[i], 0);
  ck_assert_int_eq(memcmp(got + 8, header, sizeof header - 1), 0);
  for (size_t i = 8 + sizeof header - 1; i < 8 + padded; i++) ck_assert_uint_eq(got[i], ' ');
  const int32_t values[2] = {1, 2};
  ck_assert_int_eq(memcmp(got + 8 + padded, values, 8), 0);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_malformed_headers_are_refused) {
  static const struct {
    const char *header;
    size_t data;
    const char *want;
  } cases[] = {
      {"", 0, "must be a JSON object"},
      {"[]", 0, "must be a JSON object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected ',' or '}'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "bytes after"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "do not hold"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "starts at byte 4"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6, "starts at byte 2"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "named twice"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
       "unknown field"},
      {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
       "field given twice"},
      {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, "needs dtype, shape and data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, "leading zero"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
       "expected an integer"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
       "more dims"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
       "too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
       "\"data_offsets\":[0,4]}}", 4, "shape too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "[begin, end]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, "the file has 6"},
      {"{\"a\\q\":{}}", 0, "unknown escape"},
      {"{\"a\\ud800\":{}}", 0, "high surrogate"},
      {"{\"a\\u0000\":{}}", 0, "NUL in a string"},
      {"{\"a\n\":{}}", 0, "control character"},
      {"{\"a", 0, "unterminated string"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "expected a string"},
      {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "given twice"},
  };
  for (int i = 0; i < TU_COUNT(cases); i++)
    check_header_refused(cases[i].header, cases[i].data, cases[i].want);
}
END_TEST

START_TEST(test_bad_files_are_refused) {
  check_refused(path_of("missing.safetensors"), "cannot open");
  check_refused(dir, "not a regular file");
  FILE *f = fopen(path_of("short"), "wb");
  fwrite("abc", 1, 3, f);
  fclose(f);
  check_refused(path_of("short"), "too short");
  /* a header length past the file's end, and past the limit */
  unsigned char huge[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}', ' ', ' '};
  f = fopen(path_of("huge"), "wb");
  fwrite(huge, 1, sizeof huge, f);
  fclose(f);
  check_refused(path_of("huge"), "header of");
  mt_clear_error();
  ck_assert_ptr_null(mt_safetensors_open(NULL));
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
}
END_TEST

/* U16 opens but does not load; bool bytes must be 0 or 1; unknown names. */
START_TEST(test_get_refusals) {
  const unsigned char data[5] = {1, 0, 2, 0, 1};
  const char *p = write_file("{\"u\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                             "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[2,5]}}",
                             data, sizeof data);
  mt_safetensors *f = mt_safetensors_open(p);
  ck_assert_msg(f != NULL, "%s", mt_last_error());
  TU_FAILS(mt_safetensors_get(f, "u", TU_CPU), MT_ERR_DTYPE, "mt_safetensors_get");
  TU_FAILS(mt_safetensors_get(f, "b", TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_safetensors_get");
  TU_FAILS(mt_safetensors_get(f, "nope", TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_safetensors_get");
  TU_FAILS(mt_safetensors_get(f, NULL, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_safetensors_get");
  TU_FAILS(mt_safetensors_get(NULL, "u", TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_safetensors_get");
  mt_safetensors_close(f);
  mt_safetensors_close(NULL);
  ck_assert_int_eq(mt_safetensors_count(NULL), 0);
}
END_TEST

START_TEST(test_save_refusals) {
  mt_tensor *t = TU_OK(mt_zeros(1, TU_SHAPE(2), MT_FLOAT32, TU_CPU));
  const mt_tensor *two[2] = {t, t};
  const char *dup[2] = {"x", "x"}, *reserved[1] = {"__metadata__"}, *empty[1] = {""};
  char p[128];
  snprintf(p, sizeof p, "%s", path_of("s.safetensors")); /* path_of's buffer is reused below */
  TU_STATUS(mt_safetensors_save(p, 2, dup, two), MT_ERR_INVALID_ARGUMENT, "mt_safetensors_save");
  TU_STATUS(mt_safetensors_save(p, 1, reserved, two), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  TU_STATUS(mt_safetensors_save(p, 1, empty, two), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  TU_STATUS(mt_safetensors_save(NULL, 1, dup, two), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  TU_STATUS(mt_safetensors_save(p, -1, dup, two), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  const mt_tensor *none[1] = {NULL};
  TU_STATUS(mt_safetensors_save(p, 1, dup, none), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  TU_STATUS(mt_safetensors_save(path_of("no/such/dir/x"), 1, dup, two), MT_ERR_INVALID_ARGUMENT,
            "mt_safetensors_save");
  ck_assert_int_eq(access(p, F_OK), -1); /* nothing was written */
  TU_CHECK_OK(mt_safetensors_save(p, 0, NULL, NULL)); /* an empty file is a valid one */
  mt_safetensors *f = mt_safetensors_open(p);
  ck_assert_msg(f != NULL, "%s", mt_last_error());
  ck_assert_int_eq(mt_safetensors_count(f), 0);
  mt_safetensors_close(f);
  mt_tensor_free(t);
}
END_TEST

static Suite *safetensors_suite(void) {
  Suite *s = suite_create("safetensors");
  TCase *tc = tcase_create("safetensors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_reads_a_handmade_file);
  tcase_add_test(tc, test_round_trip_every_dtype);
  tcase_add_test(tc, test_writes_the_format_exactly);
  tcase_add_test(tc, test_malformed_headers_are_refused);
  tcase_add_test(tc, test_bad_files_are_refused);
  tcase_add_test(tc, test_get_refusals);
  tcase_add_test(tc, test_save_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(safetensors_suite()); }
