/*
 * remap.h - where each output index of flip, roll, repeat and pad reads.
 *
 * These ops move whole elements and decide the source of an output element
 * dim by dim: out index i along dim d reads index map_d[i] of the input
 * along d (the input seen with out's number of dims, missing leading dims
 * of size 1), or the fill value s0 when map_d[i] is -1 (constant padding).
 * Computed here once, from shapes and attributes only, so that the cpu and
 * cuda kernels follow the same maps.
 */
#ifndef MTI_REMAP_H
#define MTI_REMAP_H

#include "core/op_table.h"

/* Entries of the maps of out: the sum of its dims. */
int64_t mti_remap_map_len(const mti_meta *out);

/* Fills maps (mti_remap_map_len(out) entries: dim 0's map, then dim 1's,
 * ...) for op (FLIP, ROLL, REPEAT, PAD) on in with attributes at, which
 * mti_infer has accepted and which gave out. */
void mti_remap_maps(mti_op op, const mti_attrs *at, const mti_meta *in, const mti_meta *out,
                    int64_t *maps);

#endif
