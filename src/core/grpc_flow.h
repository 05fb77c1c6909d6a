/*
 * grpc_flow.h - how both ends of the wire size their HTTP/2 receive
 * windows (docs/REMOTE.md, "Full links").
 *
 * gRPC core 1.51 (Debian 12) sets a connection's receive windows only by
 * BDP probing: GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES never reaches the
 * wire while probing is on, and with probing off the windows reopen about
 * one message per round trip (measured: 11 MB/s at 80 ms). By default the
 * window follows a PID-smoothed 2 x BDP estimate with a 4 MiB floor,
 * which takes several round trips to pass the link's BDP; the core's
 * "memory_pressure_controller" experiment (the later releases' only
 * behaviour) announces max(4 MiB, 2 x BDP estimate) at once, rounded up
 * to a power of two, and shrinks it only under memory pressure.
 */
#ifndef MTI_GRPC_FLOW_H
#define MTI_GRPC_FLOW_H

#include <stdlib.h>

/* The experiments of gRPC core that this process turns on. */
#define MTI_GRPC_EXPERIMENTS "memory_pressure_controller"

/* Turns on MTI_GRPC_EXPERIMENTS through GRPC_EXPERIMENTS, unless the
 * environment already sets that variable (then it is left as it is).
 * Call before the process first uses gRPC: the core reads it once. */
static inline void mti_grpc_choose_flow_control(void) {
  setenv("GRPC_EXPERIMENTS", MTI_GRPC_EXPERIMENTS, 0);
}

#endif
