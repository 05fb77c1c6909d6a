/*
 * delay_proxy.h - a TCP proxy on loopback that adds a one-way delay (half
 * a chosen round trip) and a bandwidth limit to both directions, for
 * measuring the modal device as if its worker were far away (kernel
 * traffic shaping, tc netem, is not available here). Threads in the
 * calling process; only 127.0.0.1.
 */
#ifndef MTB_DELAY_PROXY_H
#define MTB_DELAY_PROXY_H

#include <stdint.h>

typedef struct mtb_proxy mtb_proxy;

typedef struct mtb_proxy_counters {
  uint64_t bytes_up;   /* client to worker, as sent on the wire (framing included) */
  uint64_t bytes_down; /* worker to client */
  /* Turns of the conversation: data from the worker arriving after data
   * from the client, counted at the proxy. Every round trip the client
   * waits for is one; HTTP/2 window updates and pings during a bulk
   * transfer add some that nobody waits for. */
  uint64_t turns;
  uint64_t connections;
} mtb_proxy_counters;

/* Listens on 127.0.0.1 (a free port, into *port) and forwards each
 * connection to 127.0.0.1:target_port, each direction delayed by
 * rtt_ms / 2 and limited to bytes_per_s (0: unlimited). NULL on failure. */
mtb_proxy *mtb_proxy_start(int target_port, double rtt_ms, double bytes_per_s, int *port);

void mtb_proxy_read(mtb_proxy *p, mtb_proxy_counters *out);
void mtb_proxy_reset(mtb_proxy *p);

/* Stops accepting, closes every connection, joins every thread. */
void mtb_proxy_stop(mtb_proxy *p);

#endif
