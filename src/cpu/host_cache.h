/*
 * host_cache.h - freed host buffers kept for the next tensor of their size.
 *
 * A training step makes and frees the same tensors every step. Straight
 * from malloc, each buffer past glibc's mmap threshold is a fresh mapping
 * whose pages fault in on first touch, and freeing trims them again: a
 * quarter of a small CNN's step went to page faults (perf, bench_train.py
 * --model cnn; the worker's cpu backend makes and frees the same way). The
 * cache keeps freed buffers of 4 KiB to 64 MiB in size
 * classes (eight per power of two, so at most 1/8 is slack), process-wide
 * under one lock (a tensor is often freed on another thread than the one
 * that made it), up to MTI_HOST_CACHE_BYTES in all; beyond that, and for
 * larger buffers, memory goes straight back to the system. Under
 * AddressSanitizer a cached buffer is poisoned.
 */
#ifndef MTI_HOST_CACHE_H
#define MTI_HOST_CACHE_H

#include <stddef.h>

#define MTI_HOST_CACHE_BYTES ((size_t)512 << 20)

/* A buffer of mti_host_capacity(nbytes) bytes, 64-byte aligned (2 MiB
 * aligned and asking for huge pages from 16 MiB), uninitialised: a cached
 * one of the same class or a new one; NULL when memory is exhausted. */
void *mti_host_alloc(size_t nbytes);

/* Gives back a buffer from mti_host_alloc(nbytes), on any thread. */
void mti_host_free(void *data, size_t nbytes);

/* The bytes mti_host_alloc(nbytes) takes: its size class, or nbytes
 * rounded up to its alignment; 0 past the address space. */
size_t mti_host_capacity(size_t nbytes);

/* The bytes of the buffers the cache holds now. */
size_t mti_host_cached_bytes(void);

#endif
