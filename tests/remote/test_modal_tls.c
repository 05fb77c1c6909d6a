/*
 * test_modal_tls.c - TLS and the token end to end on loopback: a worker
 * serving TLS with a throw-away CA's certificate (made with openssl by
 * make_test_certs.sh when the suite starts), clients that trust that CA
 * and clients that do not, tokens, the address forms, and the worker's
 * startup refusals and timed exits.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modal_harness.h"

#define TOKEN "tls-t0ken"

static char certs[256]; /* the suite's certificate directory */
static const int64_t four = 4;

/* certs/name, in a static buffer per call site slot. */
static const char *cert_path(const char *name) {
  static char paths[4][320];
  static int next;
  char *p = paths[next++ % 4];
  snprintf(p, sizeof paths[0], "%s/%s", certs, name);
  return p;
}

/* A TLS worker with the token, serving the certificate pair named leaf
 * ("server" or "other"); the library is not pointed at it yet. */
static void start_tls_worker(wt_worker *w, const char *leaf) {
  char cert[320], key[320];
  snprintf(cert, sizeof cert, "%s/%s.pem", certs, leaf);
  snprintf(key, sizeof key, "%s/%s.key", certs, leaf);
  const char *const args[] = {"--tls-cert", cert, "--tls-key", key, "--log-level", "error", NULL};
  static const char *const env[] = {"MODALTENSOR_WORKER_TOKEN=" TOKEN, NULL};
  ck_assert_msg(wt_worker_start(w, args, env) == 0, "the TLS worker did not start");
}

/* The port of w ("127.0.0.1:PORT"). */
static const char *port_of(const wt_worker *w) { return strrchr(w->addr, ':') + 1; }

/* Points the library at w over TLS, trusting the test CA, with the token. */
static void use_trusting_client(const wt_worker *w) {
  mh_setenv("MODALTENSOR_WORKER", w->addr);
  mh_setenv("MODALTENSOR_TLS", "1");
  mh_setenv("MODALTENSOR_TLS_CA", cert_path("ca.pem"));
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
}

static void finish(wt_worker *w) {
  mt_shutdown();
  ck_assert_msg(wt_worker_stop(w) == 0, "the worker did not exit cleanly on SIGTERM");
}

/* One small computation through the worker. */
static void expect_working(void) {
  ck_assert_int_eq(mt_modal_is_available(), 1);
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *b = MH_MADE(mt_mul(a, a));
  MH_OK(mt_to_host(b, got, sizeof got));
  ck_assert(got[0] == 1.0f && got[3] == 16.0f);
  mt_tensor_free(b);
  mt_tensor_free(a);
}

/* Every entry point that asks the worker fails with want and a message
 * naming the worker and needle. */
static void expect_refused(const wt_worker *w, mt_status want, const char *needle) {
  mt_clear_error();
  ck_assert_int_eq(mt_modal_is_available(), 0);
  mh_expect_at(__FILE__, __LINE__, "mt_modal_is_available()", mt_last_status(), want, w->addr,
               needle);
  /* A made tensor learns of the refusal at its first sync point (the Open
   * travels with the work). */
  mt_tensor *z = mt_zeros(1, &four, MT_FLOAT32, MH_MODAL);
  ck_assert_ptr_nonnull(z);
  MH_EXPECT(mt_synchronize(MH_MODAL), want, w->addr, needle);
  mt_tensor_free(z);
}

/* ------------------------------------------------ conformance over TLS */

/* Values of t on the host (float32). */
static float *host_values(const mt_tensor *t, size_t n) {
  float *v = malloc(n * sizeof *v);
  ck_assert_ptr_nonnull(v);
  MH_OK(mt_to_host(t, v, n * sizeof *v));
  return v;
}

static void expect_close(const float *got, const float *want, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f * (1.0f + fabsf(want[i])),
                  "%s[%zu]: modal %g, cpu %g", what, i, got[i], want[i]);
}

/* The same op on cpu and on the worker gives the same values. */
static void compare_op(mt_tensor *on_cpu, mt_tensor *on_modal, size_t n, const char *what) {
  ck_assert_ptr_nonnull(on_cpu);
  ck_assert_ptr_nonnull(on_modal);
  float *want = host_values(on_cpu, n), *got = host_values(on_modal, n);
  expect_close(got, want, n, what);
  free(got);
  free(want);
  mt_tensor_free(on_modal);
  mt_tensor_free(on_cpu);
}

START_TEST(test_conformance_over_tls) {
  wt_worker w;
  start_tls_worker(&w, "server");
  use_trusting_client(&w);
  /* 3 MiB and a bit: uploaded and downloaded in several 1 MiB chunks. */
  const int64_t big_shape[2] = {769, 1024};
  const size_t big_n = 769 * 1024;
  mt_tensor *big_cpu = MH_MADE(mt_rand(2, big_shape, MT_FLOAT32, MH_CPU, 7));
  float *big = host_values(big_cpu, big_n);
  mt_tensor *big_modal = MH_MADE(mt_to(big_cpu, MH_MODAL, MT_FLOAT32, 1));
  float *back = host_values(big_modal, big_n);
  ck_assert_int_eq(memcmp(back, big, big_n * sizeof *big), 0);
  free(back);
  free(big);
  /* A reduction over each dim, an elementwise op, a matmul. */
  for (int dim = 0; dim < 2; dim++)
    compare_op(mt_sum(big_cpu, 1, &dim, 0), mt_sum(big_modal, 1, &dim, 0),
               (size_t)big_shape[1 - dim], "sum");
  compare_op(mt_mul(big_cpu, big_cpu), mt_mul(big_modal, big_modal), big_n, "mul");
  const int64_t as[2] = {64, 48}, bs[2] = {48, 32};
  mt_tensor *a = MH_MADE(mt_rand(2, as, MT_FLOAT32, MH_CPU, 1));
  mt_tensor *b = MH_MADE(mt_rand(2, bs, MT_FLOAT32, MH_CPU, 2));
  mt_tensor *am = MH_MADE(mt_to(a, MH_MODAL, MT_FLOAT32, 1));
  mt_tensor *bm = MH_MADE(mt_to(b, MH_MODAL, MT_FLOAT32, 1));
  compare_op(mt_matmul(a, b), mt_matmul(am, bm), 64 * 32, "matmul");
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor *handles[] = {bm, am, b, a, big_modal, big_cpu};
  for (size_t i = 0; i < sizeof handles / sizeof *handles; i++) mt_tensor_free(handles[i]);
  finish(&w);
}
END_TEST

/* ------------------------------------------------ address forms */

/* What modal.forward(...).url prints: an https URL, here with a port and
 * the trailing slash a browser adds. No MODALTENSOR_TLS needed. */
START_TEST(test_https_url_form) {
  wt_worker w;
  start_tls_worker(&w, "server");
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%s/", port_of(&w));
  mh_setenv("MODALTENSOR_WORKER", url);
  mh_setenv("MODALTENSOR_TLS_CA", cert_path("ca.pem"));
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  finish(&w);
}
END_TEST

/* A host name checked against the certificate's DNS name. The name is
 * resolved with getaddrinfo (GRPC_DNS_RESOLVER=native): gRPC's default
 * c-ares resolver leaks a few bytes inside libcares, which the sanitizer
 * build would report as this test's. */
START_TEST(test_grpcs_localhost_form) {
  mh_setenv("GRPC_DNS_RESOLVER", "native");
  wt_worker w;
  start_tls_worker(&w, "server");
  char url[128];
  snprintf(url, sizeof url, "grpcs://localhost:%s", port_of(&w));
  mh_setenv("MODALTENSOR_WORKER", url);
  mh_setenv("MODALTENSOR_TLS_CA", cert_path("ca.pem"));
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  finish(&w);
}
END_TEST

/* Without MODALTENSOR_TLS_CA the library trusts gRPC's default roots,
 * which GRPC_DEFAULT_SSL_ROOTS_FILE_PATH replaces. */
START_TEST(test_grpc_default_roots) {
  wt_worker w;
  start_tls_worker(&w, "server");
  mh_setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", cert_path("ca.pem"));
  mh_setenv("MODALTENSOR_WORKER", w.addr);
  mh_setenv("MODALTENSOR_TLS", "1");
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  finish(&w);
}
END_TEST

/* ------------------------------------------------ trust failures */

/* A certificate the client cannot verify: MT_ERR_UNAVAILABLE within the
 * connect timeout (plus the probe), saying TLS and naming the remedy. */
static void expect_tls_refused(const char *leaf, const char *ca) {
  wt_worker w;
  start_tls_worker(&w, leaf);
  use_trusting_client(&w);
  if (ca) mh_setenv("MODALTENSOR_TLS_CA", cert_path(ca));
  else ck_assert_int_eq(unsetenv("MODALTENSOR_TLS_CA"), 0);
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "2");
  int64_t t0 = mh_now_ms();
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, w.addr,
                 "TLS handshake");
  ck_assert_msg(mh_now_ms() - t0 < 15000, "refusing took %lld ms",
                (long long)(mh_now_ms() - t0));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_UNAVAILABLE, "MODALTENSOR_TLS_CA", "certificate");
  finish(&w);
}

START_TEST(test_client_without_the_ca) { expect_tls_refused("server", NULL); }
END_TEST

START_TEST(test_client_with_another_ca) { expect_tls_refused("server", "stranger-ca.pem"); }
END_TEST

START_TEST(test_certificate_for_another_name) { expect_tls_refused("other", "ca.pem"); }
END_TEST

/* A TLS address of a worker that serves plain gRPC. */
START_TEST(test_tls_to_a_plain_worker) {
  wt_worker w;
  ck_assert_int_eq(wt_worker_start(&w, NULL, NULL), 0);
  mh_setenv("MODALTENSOR_WORKER", w.addr);
  mh_setenv("MODALTENSOR_TLS", "1");
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "2");
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_UNAVAILABLE, w.addr, "does not seem to speak TLS");
  finish(&w);
}
END_TEST

/* A loopback port nothing listens on (free a moment ago). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  ck_assert_msg(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                    getsockname(fd, (struct sockaddr *)&a, &len) == 0,
                "no free port");
  close(fd);
  return ntohs(a.sin_port);
}

/* A TLS endpoint with a trusted certificate that does not offer HTTP/2,
 * as a Modal tunnel opened without h2_enabled=True: openssl's s_server. */
START_TEST(test_tls_endpoint_without_http2) {
  char accept[32], url[64];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", free_port());
  snprintf(url, sizeof url, "https://%s", accept);
  pid_t server = fork();
  if (server == 0) {
    execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept, "-cert",
           cert_path("server.pem"), "-key", cert_path("server.key"), (char *)NULL);
    _exit(127);
  }
  ck_assert_int_gt(server, 0);
  mh_sleep_ms(500); /* s_server binds at once; the client's wait covers the rest */
  mh_setenv("MODALTENSOR_WORKER", url);
  mh_setenv("MODALTENSOR_TLS_CA", cert_path("ca.pem"));
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "2");
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_UNAVAILABLE, url, "h2_enabled=True");
  mt_shutdown();
  kill(server, SIGTERM);
  waitpid(server, NULL, 0);
}
END_TEST

START_TEST(test_unreadable_ca_file) {
  wt_worker w;
  start_tls_worker(&w, "server");
  use_trusting_client(&w);
  mh_setenv("MODALTENSOR_TLS_CA", "/nonexistent/ca.pem");
  ck_assert_int_eq(mt_modal_is_available(), 0);
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "MODALTENSOR_TLS_CA",
            "/nonexistent/ca.pem");
  mh_setenv("MODALTENSOR_TLS_CA", cert_path("ca.key")); /* a file, but no certificate */
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "MODALTENSOR_TLS_CA", "PEM");
  finish(&w);
}
END_TEST

/* ------------------------------------------------ tokens over TLS */

START_TEST(test_wrong_token_over_tls) {
  wt_worker w;
  start_tls_worker(&w, "server");
  use_trusting_client(&w);
  mh_setenv("MODALTENSOR_TOKEN", TOKEN "x");
  expect_refused(&w, MT_ERR_UNAUTHENTICATED, "token");
  finish(&w);
}
END_TEST

START_TEST(test_missing_token_over_tls) {
  wt_worker w;
  start_tls_worker(&w, "server");
  use_trusting_client(&w);
  ck_assert_int_eq(unsetenv("MODALTENSOR_TOKEN"), 0);
  expect_refused(&w, MT_ERR_UNAUTHENTICATED, "token");
  finish(&w);
}
END_TEST

/* The token never travels in clear to another host: refused before any
 * connection (192.0.2.1 is a documentation address nothing answers at). */
START_TEST(test_token_not_sent_in_clear) {
  static const char *const plain[] = {"http://192.0.2.1:50051", "grpc://192.0.2.1"};
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  for (size_t i = 0; i < 2; i++) {
    mh_setenv("MODALTENSOR_WORKER", plain[i]);
    MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, plain[i], "in clear");
  }
  mh_setenv("MODALTENSOR_WORKER", "192.0.2.1:50051");
  mh_setenv("MODALTENSOR_TLS", "0");
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "192.0.2.1:50051", "TLS");
  mt_shutdown();
}
END_TEST

START_TEST(test_bad_tls_setting) {
  mh_setenv("MODALTENSOR_WORKER", "127.0.0.1:1");
  mh_setenv("MODALTENSOR_TLS", "yes");
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "MODALTENSOR_TLS=yes", NULL);
  mt_shutdown();
}
END_TEST

/* The library's own worker listens on a unix socket, always plain. */
START_TEST(test_local_worker_stays_plain) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  mh_setenv("MODALTENSOR_TLS", "1");
  mh_setenv("MODALTENSOR_WORKER_BINARY", WT_WORKER_PATH);
  expect_working();
  mt_shutdown();
}
END_TEST

/* ------------------------------------------------ the worker's side */

static void expect_usage_error(const char *const *args, const char *needle) {
  char err[2048];
  int rc = wt_worker_run(args, err, sizeof err);
  ck_assert_msg(rc == 2, "%s: exit status %d, expected 2 (stderr: %s)", args[1], rc, err);
  ck_assert_msg(strstr(err, needle), "stderr \"%s\" does not mention \"%s\"", err, needle);
}

START_TEST(test_public_listen_needs_a_token) {
  const char *const v4[] = {"--listen", "0.0.0.0:0", NULL};
  expect_usage_error(v4, "MODALTENSOR_WORKER_TOKEN");
  const char *const v6[] = {"--listen", "[::]:0", NULL};
  expect_usage_error(v6, "not a loopback address");
  const char *const named[] = {"--listen", "127.example.invalid:0", NULL};
  expect_usage_error(named, "no token");
  /* With a token it starts. */
  wt_worker w;
  const char *const args[] = {"--listen", "0.0.0.0:0", "--log-level", "error", NULL};
  static const char *const env[] = {"MODALTENSOR_WORKER_TOKEN=" TOKEN, NULL};
  ck_assert_int_eq(wt_worker_start(&w, args, env), 0);
  ck_assert_int_eq(wt_worker_stop(&w), 0);
}
END_TEST

START_TEST(test_bad_tls_files) {
  const char *const missing[] = {"--tls-cert", "/nonexistent.pem", "--tls-key",
                                 cert_path("server.key"), NULL};
  expect_usage_error(missing, "cannot read");
  const char *const not_pem[] = {"--tls-cert", cert_path("ca.srl"), "--tls-key",
                                 cert_path("server.key"), NULL};
  expect_usage_error(not_pem, "not PEM");
  const char *const half[] = {"--tls-cert", cert_path("server.pem"), NULL};
  expect_usage_error(half, "--tls-key");
  const char *const mismatched[] = {"--listen", "127.0.0.1:0", "--tls-cert",
                                    cert_path("server.pem"), "--tls-key", cert_path("other.key"),
                                    NULL};
  expect_usage_error(mismatched, "refused the certificate and key");
}
END_TEST

/* Waits up to timeout_ms for the worker to exit; its status, or -2 when it
 * is still running. */
static int wait_for_exit(wt_worker *w, int timeout_ms) {
  int64_t until = mh_now_ms() + timeout_ms;
  while (mh_now_ms() < until) {
    int status;
    if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
      w->pid = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    mh_sleep_ms(50);
  }
  return -2;
}

/* --idle-exit: an open session keeps the worker; once it ends, the worker
 * exits with status 0 after the idle time. */
START_TEST(test_idle_exit) {
  mh_worker w;
  const char *const args[] = {"--idle-exit", "2", NULL};
  mh_worker_start(&w, args, NULL, NULL);
  mh_point_at(&w);
  expect_working(); /* the session stays open */
  mh_sleep_ms(3500);
  ck_assert_msg(wait_for_exit(&w.proc, 10) == -2, "the worker exited with a session open");
  mt_shutdown();
  wc_channel_free(w.stats);
  int64_t t0 = mh_now_ms();
  ck_assert_int_eq(wait_for_exit(&w.proc, 15000), 0);
  ck_assert_msg(mh_now_ms() - t0 >= 1000, "the worker exited %lld ms after the last call",
                (long long)(mh_now_ms() - t0));
}
END_TEST

START_TEST(test_idle_exit_from_environment) {
  wt_worker w;
  static const char *const env[] = {"MODALTENSOR_WORKER_IDLE_EXIT=1", NULL};
  ck_assert_int_eq(wt_worker_start(&w, NULL, env), 0);
  ck_assert_int_eq(wait_for_exit(&w, 15000), 0);
}
END_TEST

START_TEST(test_max_lifetime) {
  wt_worker w;
  const char *const args[] = {"--max-lifetime", "1", NULL};
  ck_assert_int_eq(wt_worker_start(&w, args, NULL), 0);
  ck_assert_int_eq(wait_for_exit(&w, 15000), 0);
}
END_TEST

/* ------------------------------------------------ runner */

/* Runs make_test_certs.sh into a fresh directory; 0 on success. */
static int make_certs(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(certs, sizeof certs, "%s/mt-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(certs)) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sh '%s' '%s'", MH_CERT_SCRIPT, certs);
  return system(cmd);
}

static void remove_certs(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", certs);
}

static Suite *tls_suite(void) {
  Suite *s = suite_create("modal_tls");
  TCase *tc = tcase_create("tls");
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_conformance_over_tls);
  tcase_add_test(tc, test_https_url_form);
  tcase_add_test(tc, test_grpcs_localhost_form);
  tcase_add_test(tc, test_grpc_default_roots);
  tcase_add_test(tc, test_client_without_the_ca);
  tcase_add_test(tc, test_client_with_another_ca);
  tcase_add_test(tc, test_certificate_for_another_name);
  tcase_add_test(tc, test_tls_to_a_plain_worker);
  tcase_add_test(tc, test_tls_endpoint_without_http2);
  tcase_add_test(tc, test_unreadable_ca_file);
  tcase_add_test(tc, test_wrong_token_over_tls);
  tcase_add_test(tc, test_missing_token_over_tls);
  tcase_add_test(tc, test_token_not_sent_in_clear);
  tcase_add_test(tc, test_bad_tls_setting);
  tcase_add_test(tc, test_local_worker_stays_plain);
  tcase_add_test(tc, test_public_listen_needs_a_token);
  tcase_add_test(tc, test_bad_tls_files);
  tcase_add_test(tc, test_idle_exit);
  tcase_add_test(tc, test_idle_exit_from_environment);
  tcase_add_test(tc, test_max_lifetime);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (make_certs() != 0) {
    fprintf(stderr, "test_modal_tls: making the test certificates failed (is openssl "
                    "installed? scripts/setup.sh)\n");
    return EXIT_FAILURE;
  }
  int rc = mh_run_suite(tls_suite());
  remove_certs();
  return rc;
}
