/*
 * address.h - worker addresses as users write them (MODALTENSOR_WORKER),
 * turned into a gRPC target and the decision whether to speak TLS.
 *
 * Forms: "unix:PATH" (always plain), "host:port", "[v6]:port", gRPC's own
 * "dns:", "ipv4:" and "ipv6:" targets, and URLs: "https://host[:port]" or
 * "grpcs://host[:port]" (TLS, default port 443), "http://host[:port]" or
 * "grpc://host[:port]" (plain, default port 80). A URL may end in one "/"
 * (as modal.forward(...).url may be pasted) but carries no other path.
 * Without a scheme, MODALTENSOR_TLS decides: "1" TLS, "0" plain, unset TLS
 * unless the host is loopback (127.0.0.0/8, ::1, localhost).
 */
#ifndef MTI_ADDRESS_H
#define MTI_ADDRESS_H

#include "modaltensor.h"

#define MTI_ADDRESS_MAX 512

typedef enum mti_tls_mode {
  MTI_TLS_AUTO, /* MODALTENSOR_TLS unset or empty */
  MTI_TLS_ON,   /* "1" */
  MTI_TLS_OFF   /* "0" */
} mti_tls_mode;

typedef struct mti_address {
  char target[MTI_ADDRESS_MAX]; /* what gRPC connects to */
  int tls;                      /* 1: a TLS channel */
  int local;                    /* a unix socket or a loopback host */
} mti_address;

/* Reads the value of MODALTENSOR_TLS (NULL: unset). MT_ERR_INVALID_ARGUMENT
 * for anything but "", "0" and "1". */
mt_status mti_tls_mode_parse(const char *fn, const char *value, mti_tls_mode *out);

/* Parses one worker address; MT_ERR_INVALID_ARGUMENT, naming text, when it
 * is none of the forms above. */
mt_status mti_address_parse(const char *fn, const char *text, mti_tls_mode mode,
                            mti_address *out);

#endif
