/*
 * modal_fake_worker.h - stand-ins for things that are not a compatible
 * worker, for the client's failure paths: a gRPC server that answers Hello
 * as a worker of another protocol version does, and a TCP port that accepts
 * connections and closes them at once.
 */
#ifndef MODAL_FAKE_WORKER_H
#define MODAL_FAKE_WORKER_H

#include <stddef.h>

typedef struct mh_fake mh_fake;

/* A gRPC server on a free loopback port whose Hello replies with status
 * MT_ERR_UNSUPPORTED and the reason a worker of protocol version 99 would
 * give; every other method ends with UNIMPLEMENTED. Serves on a thread of its
 * own. Writes "127.0.0.1:PORT" to addr; NULL on failure. */
mh_fake *mh_fake_incompatible_start(char *addr, size_t len);

/* A gRPC server that accepts Sessions (Opened with MT_OK), reads the
 * message after the Open and answers it with a Need for storage
 * MH_FAKE_LIE_ID, which the client never named; then ends the call. */
mh_fake *mh_fake_liar_start(char *addr, size_t len);
#define MH_FAKE_LIE_ID 424242u

/* A listening TCP port whose connections are closed as soon as they are
 * accepted: something that is there, but does not speak gRPC. */
mh_fake *mh_fake_closer_start(char *addr, size_t len);

/* Stops either kind and frees it. */
void mh_fake_stop(mh_fake *f);

/* The reason the incompatible worker gives. */
#define MH_FAKE_REASON "the client speaks protocol 1, this worker 99"

#endif
