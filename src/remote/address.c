/*
 * address.c - worker addresses: forms, loopback detection, TLS decision
 * (see address.h).
 */
#include "remote/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

typedef struct url_scheme {
  const char *prefix;
  int tls;
  const char *default_port;
} url_scheme;

static const url_scheme url_schemes[] = {
    {"https://", 1, "443"}, {"grpcs://", 1, "443"}, {"http://", 0, "80"}, {"grpc://", 0, "80"}};

/* gRPC's own target prefixes, passed through as they are. */
static const char *const grpc_prefixes[] = {"dns:///", "dns:", "ipv4:", "ipv6:"};

mt_status mti_tls_mode_parse(const char *fn, const char *value, mti_tls_mode *out) {
  if (!value || !*value) *out = MTI_TLS_AUTO;
  else if (strcmp(value, "1") == 0) *out = MTI_TLS_ON;
  else if (strcmp(value, "0") == 0) *out = MTI_TLS_OFF;
  else
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: MODALTENSOR_TLS=%s: use 1 (always TLS) or 0 (no TLS); unset means TLS "
                     "except on loopback", fn, value);
  return MT_OK;
}

static mt_status bad_address(const char *fn, const char *text, const char *why) {
  return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: MODALTENSOR_WORKER: \"%s\": %s", fn, text, why);
}

/* Whether host (without brackets) is this machine. Only literal loopback
 * addresses and "localhost" count: a DNS name such as "127.example.com"
 * may point anywhere, and the token must not travel to it in clear. */
static int is_loopback_host(const char *host) {
  if (strcasecmp(host, "localhost") == 0) return 1;
  struct in_addr v4;
  if (inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  struct in6_addr v6;
  if (inet_pton(AF_INET6, host, &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return 0;
}

static const url_scheme *find_scheme(const char *text) {
  for (size_t i = 0; i < sizeof url_schemes / sizeof *url_schemes; i++)
    if (strncasecmp(text, url_schemes[i].prefix, strlen(url_schemes[i].prefix)) == 0)
      return &url_schemes[i];
  return NULL;
}

/* text after a gRPC target prefix, or text itself. */
static const char *after_grpc_prefix(const char *text) {
  for (size_t i = 0; i < sizeof grpc_prefixes / sizeof *grpc_prefixes; i++)
    if (strncmp(text, grpc_prefixes[i], strlen(grpc_prefixes[i])) == 0)
      return text + strlen(grpc_prefixes[i]);
  return text;
}

/* Splits hp in place into host (brackets removed) and port (NULL when
 * absent); -1 when malformed (an empty host, IPv6 without brackets). */
static int split_host_port(char *hp, char **host, char **port) {
  *port = NULL;
  if (*hp == '[') {
    char *end = strchr(hp, ']');
    if (!end || (end[1] != '\0' && end[1] != ':')) return -1;
    if (end[1] == ':') *port = end + 2;
    *end = '\0';
    *host = hp + 1;
  } else {
    char *colon = strchr(hp, ':');
    if (colon && strchr(colon + 1, ':')) return -1;
    if (colon) {
      *colon = '\0';
      *port = colon + 1;
    }
    *host = hp;
  }
  return **host ? 0 : -1;
}

static int valid_port(const char *p) {
  size_t n = strspn(p, "0123456789");
  if (n == 0 || n > 5 || p[n]) return 0;
  long v = strtol(p, NULL, 10);
  return v >= 1 && v <= 65535;
}

/* The host:port part of a URL or a plain address, checked; fills out. */
static mt_status parse_host_port(const char *fn, const char *text, const url_scheme *sc,
                                 const char *rest, mti_tls_mode mode, mti_address *out) {
  char hp[MTI_ADDRESS_MAX];
  snprintf(hp, sizeof hp, "%s", rest);
  size_t n = strlen(hp);
  if (sc && n && hp[n - 1] == '/') hp[n - 1] = '\0';
  if (strpbrk(hp, "/?#@ \t"))
    return bad_address(fn, text, "only a host and a port may follow the scheme (no path)");
  char *host, *port;
  if (split_host_port(hp, &host, &port))
    return bad_address(fn, text, "expected host:port, [IPv6]:port, unix:PATH or a URL such as "
                                 "https://host");
  if (!port && !sc)
    return bad_address(fn, text, "no port: write host:port, or https://host for port 443");
  if (port && !valid_port(port))
    return bad_address(fn, text, "the port is not a number from 1 to 65535");
  out->local = is_loopback_host(host);
  if (sc) {
    out->tls = sc->tls;
    snprintf(out->target, sizeof out->target, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             port ? port : sc->default_port);
  } else {
    out->tls = mode == MTI_TLS_ON ? 1 : mode == MTI_TLS_OFF ? 0 : !out->local;
    snprintf(out->target, sizeof out->target, "%s", text);
  }
  return MT_OK;
}

mt_status mti_address_parse(const char *fn, const char *text, mti_tls_mode mode,
                            mti_address *out) {
  memset(out, 0, sizeof *out);
  if (strlen(text) >= MTI_ADDRESS_MAX - 8) return bad_address(fn, text, "too long");
  if (strncmp(text, "unix:", 5) == 0) {
    if (!text[5]) return bad_address(fn, text, "no socket path after unix:");
    snprintf(out->target, sizeof out->target, "%s", text);
    out->local = 1;
    return MT_OK;
  }
  const url_scheme *sc = find_scheme(text);
  const char *rest = sc ? text + strlen(sc->prefix) : after_grpc_prefix(text);
  if (!sc && rest == text && strstr(text, "://"))
    return bad_address(fn, text, "unknown scheme: use https://, grpcs://, http:// or grpc://");
  return parse_host_port(fn, text, sc, rest, mode, out);
}
