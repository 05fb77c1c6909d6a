/*
 * remap.c - the per-dim index maps of flip, roll, repeat and pad (remap.h).
 */
#include "core/remap.h"

int64_t mti_remap_map_len(const mti_meta *out) {
  int64_t n = 0;
  for (int d = 0; d < out->ndim; d++) n += out->shape[d];
  return n;
}

/* Index along a dim of size n that pad reads for j = i - before (j may be
 * outside [0, n)); -1 for constant padding's fill. */
static int64_t pad_source(uint32_t flags, int64_t j, int64_t n) {
  if (j >= 0 && j < n) return j;
  if (flags & MTI_FLAG_PAD_REFLECT) return j < 0 ? -j : 2 * (n - 1) - j;
  if (flags & MTI_FLAG_PAD_REPLICATE) return j < 0 ? 0 : n - 1;
  return -1;
}

/* The identity map of every dim, then each op changes the dims it names. */
void mti_remap_maps(mti_op op, const mti_attrs *at, const mti_meta *in, const mti_meta *out,
                    int64_t *maps) {
  int lead = out->ndim - in->ndim;
  int64_t *map = maps;
  for (int d = 0; d < out->ndim; d++) {
    int64_t n = out->shape[d], size = d < lead ? 1 : in->shape[d - lead];
    int64_t shift = 0, before = 0;
    int flipped = op == MTI_OP_FLIP && (at->dims_mask >> d & 1u);
    if (op == MTI_OP_ROLL)
      for (int k = 0; k < at->n_ints; k += 2)
        if (at->ints[k] == d && size) shift = (at->ints[k + 1] % size + size) % size;
    if (op == MTI_OP_PAD && in->ndim - 1 - d < at->n_ints / 2)
      before = at->ints[2 * (in->ndim - 1 - d)];
    for (int64_t i = 0; i < n; i++) {
      if (op == MTI_OP_REPEAT) map[i] = i % size;
      else if (op == MTI_OP_PAD) map[i] = pad_source(at->flags, i - before, size);
      else if (flipped) map[i] = n - 1 - i;
      else map[i] = i >= shift ? i - shift : i - shift + n;
    }
    map += n;
  }
}
