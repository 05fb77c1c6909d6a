/* A program outside the project, built against an installed libmodaltensor:
 * adds two small float32 tensors on the cpu and checks the sum. Exits 0 when
 * every value matches, 1 otherwise. */
#include <modaltensor.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what) {
  fprintf(stderr, "consumer: %s failed: %s (%s)\n", what, mt_last_error(),
          mt_status_name(mt_last_status()));
  return 1;
}

/* The header the program was compiled with and the library it runs with
 * must be the same release. */
static int check_version(void) {
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", MT_VERSION_MAJOR, MT_VERSION_MINOR,
           MT_VERSION_PATCH);
  if (strcmp(mt_version(), expected) != 0) {
    fprintf(stderr, "consumer: library version %s, header version %s\n", mt_version(), expected);
    return 1;
  }
  return 0;
}

static int check_add(mt_device cpu) {
  const float a_data[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  const float b_data[6] = {0.5f, -1.0f, 10.0f, 0.25f, -5.0f, 100.0f};
  const int64_t shape[2] = {2, 3};
  float sum[6] = {0};
  int rc = 1;

  mt_tensor *a = mt_from_data(a_data, 2, shape, MT_FLOAT32, cpu);
  mt_tensor *b = mt_from_data(b_data, 2, shape, MT_FLOAT32, cpu);
  mt_tensor *c = (a && b) ? mt_add(a, b) : NULL;
  if (!a || !b) {
    rc = fail("mt_from_data");
  } else if (!c) {
    rc = fail("mt_add");
  } else if (mt_to_host(c, sum, sizeof sum) != MT_OK) {
    rc = fail("mt_to_host");
  } else {
    rc = 0;
    for (int i = 0; i < 6; i++) {
      if (sum[i] != a_data[i] + b_data[i]) {
        fprintf(stderr, "consumer: element %d is %g, expected %g\n", i, (double)sum[i],
                (double)(a_data[i] + b_data[i]));
        rc = 1;
      }
    }
  }
  mt_tensor_free(c);
  mt_tensor_free(b);
  mt_tensor_free(a);
  return rc;
}

int main(void) {
  mt_device cpu;
  if (mt_device_parse("cpu", &cpu) != MT_OK) return fail("mt_device_parse");
  if (check_version() != 0 || check_add(cpu) != 0) return 1;
  printf("consumer: libmodaltensor %s: ok\n", mt_version());
  return 0;
}
