/*
 * fuzz_worker.h - the worker's session, fed in-process (no network).
 *
 * An input is one session: a flags byte, then messages, each a 2-byte
 * little-endian length and that many bytes of a ClientMessage. Unless flag
 * bit 0 is set, the harness opens the session with this build's valid Open
 * first, so that the fuzzer spends its time past the handshake. The
 * session runs against the cpu backend with small limits; every reply the
 * worker sends must decode as a WorkerMessage.
 */
#ifndef MT_FUZZ_WORKER_H
#define MT_FUZZ_WORKER_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_FLAG_RAW_OPEN 1u /* the input's first message is the Open */

/* Bounds of the fuzzed worker: small enough that every input ends fast. */
#define FUZZ_MAX_MEMORY (64ull << 20)
#define FUZZ_MAX_NODE_WORK (1ull << 24)

/* libFuzzer's entry points (also driven by fuzz_replay.c). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fake call (fake_call.c): the session's messages come from the
 * records of data[0, size), replies are decoded and dropped. */
void fake_call_feed(const uint8_t *data, size_t size, const uint8_t *first, size_t first_len);

#endif
