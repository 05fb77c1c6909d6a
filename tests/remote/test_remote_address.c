/*
 * test_remote_address.c - worker addresses as users paste them
 * (src/remote/address.c): the gRPC target, TLS or plain, loopback or not,
 * and the refusals. No worker and no network.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "remote/address.h"

typedef struct address_case {
  const char *text;
  mti_tls_mode mode;
  const char *target;
  int tls, local;
} address_case;

static const address_case accepted[] = {
    /* what modal.forward(...).url gives, verbatim or with a slash */
    {"https://ab12cd-34.r5.modal.host", MTI_TLS_AUTO, "ab12cd-34.r5.modal.host:443", 1, 0},
    {"https://ab12cd-34.r5.modal.host/", MTI_TLS_AUTO, "ab12cd-34.r5.modal.host:443", 1, 0},
    {"https://w.modal.run:8443", MTI_TLS_OFF, "w.modal.run:8443", 1, 0},
    {"HTTPS://w.modal.run", MTI_TLS_AUTO, "w.modal.run:443", 1, 0},
    {"grpcs://10.0.0.5:50051", MTI_TLS_AUTO, "10.0.0.5:50051", 1, 0},
    {"grpcs://[2001:db8::1]", MTI_TLS_AUTO, "[2001:db8::1]:443", 1, 0},
    {"http://127.0.0.1:50051", MTI_TLS_ON, "127.0.0.1:50051", 0, 1},
    {"grpc://gpu-box", MTI_TLS_AUTO, "gpu-box:80", 0, 0},
    /* no scheme: TLS unless loopback, or as MODALTENSOR_TLS says */
    {"gpu-box:50051", MTI_TLS_AUTO, "gpu-box:50051", 1, 0},
    {"gpu-box:50051", MTI_TLS_OFF, "gpu-box:50051", 0, 0},
    {"127.0.0.1:50051", MTI_TLS_AUTO, "127.0.0.1:50051", 0, 1},
    {"127.8.9.10:50051", MTI_TLS_AUTO, "127.8.9.10:50051", 0, 1},
    {"127.0.0.1:50051", MTI_TLS_ON, "127.0.0.1:50051", 1, 1},
    {"localhost:7", MTI_TLS_AUTO, "localhost:7", 0, 1},
    {"[::1]:50051", MTI_TLS_AUTO, "[::1]:50051", 0, 1},
    {"[::ffff:127.0.0.1]:1", MTI_TLS_AUTO, "[::ffff:127.0.0.1]:1", 0, 1},
    {"ipv4:127.0.0.1:9", MTI_TLS_AUTO, "ipv4:127.0.0.1:9", 0, 1},
    {"dns:///gpu-box:50051", MTI_TLS_AUTO, "dns:///gpu-box:50051", 1, 0},
    /* a name that only looks like loopback is not */
    {"127.example.com:50051", MTI_TLS_AUTO, "127.example.com:50051", 1, 0},
    {"128.0.0.1:50051", MTI_TLS_AUTO, "128.0.0.1:50051", 1, 0},
    /* unix sockets are local and plain, whatever MODALTENSOR_TLS says */
    {"unix:/tmp/w.sock", MTI_TLS_ON, "unix:/tmp/w.sock", 0, 1},
};

START_TEST(test_accepted_forms) {
  const address_case *c = &accepted[_i];
  mti_address a;
  ck_assert_msg(mti_address_parse("test", c->text, c->mode, &a) == MT_OK, "%s: %s", c->text,
                mt_last_error());
  ck_assert_str_eq(a.target, c->target);
  ck_assert_msg(a.tls == c->tls, "%s: tls %d, expected %d", c->text, a.tls, c->tls);
  ck_assert_msg(a.local == c->local, "%s: local %d, expected %d", c->text, a.local, c->local);
}
END_TEST

typedef struct refused_case {
  const char *text, *needle;
} refused_case;

static const refused_case refused[] = {
    {"gpu-box", "no port"},
    {"127.0.0.1", "no port"},
    {"https://w.modal.run/v1/worker", "no path"},
    {"https://user@w.modal.run", "no path"},
    {"https://", "expected host:port"},
    {"ftp://w.modal.run", "unknown scheme"},
    {"gpu-box:0", "1 to 65535"},
    {"gpu-box:65536", "1 to 65535"},
    {"gpu-box:http", "1 to 65535"},
    {"::1:50051", "expected host:port"},
    {"[::1:50051", "expected host:port"},
    {"unix:", "no socket path"},
    {":50051", "expected host:port"},
};

START_TEST(test_refused_forms) {
  const refused_case *c = &refused[_i];
  mti_address a;
  mt_clear_error();
  ck_assert_msg(mti_address_parse("mt_test", c->text, MTI_TLS_AUTO, &a) ==
                    MT_ERR_INVALID_ARGUMENT,
                "%s was accepted", c->text);
  const char *msg = mt_last_error();
  ck_assert_msg(strstr(msg, "MODALTENSOR_WORKER") && strstr(msg, c->text) &&
                    strstr(msg, c->needle) && strncmp(msg, "mt_test: ", 9) == 0,
                "%s: message \"%s\" lacks \"%s\"", c->text, msg, c->needle);
}
END_TEST

START_TEST(test_tls_mode_values) {
  mti_tls_mode m;
  ck_assert_int_eq(mti_tls_mode_parse("f", NULL, &m), MT_OK);
  ck_assert_int_eq(m, MTI_TLS_AUTO);
  ck_assert_int_eq(mti_tls_mode_parse("f", "", &m), MT_OK);
  ck_assert_int_eq(m, MTI_TLS_AUTO);
  ck_assert_int_eq(mti_tls_mode_parse("f", "1", &m), MT_OK);
  ck_assert_int_eq(m, MTI_TLS_ON);
  ck_assert_int_eq(mti_tls_mode_parse("f", "0", &m), MT_OK);
  ck_assert_int_eq(m, MTI_TLS_OFF);
  ck_assert_int_eq(mti_tls_mode_parse("f", "true", &m), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "MODALTENSOR_TLS=true"));
}
END_TEST

static Suite *address_suite(void) {
  Suite *s = suite_create("remote_address");
  TCase *tc = tcase_create("address");
  tcase_add_loop_test(tc, test_accepted_forms, 0, (int)(sizeof accepted / sizeof *accepted));
  tcase_add_loop_test(tc, test_refused_forms, 0, (int)(sizeof refused / sizeof *refused));
  tcase_add_test(tc, test_tls_mode_values);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(address_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
