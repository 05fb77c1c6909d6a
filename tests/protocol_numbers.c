/*
 * protocol_numbers.c - prints the wire numbers as the C build has them, for
 * CTest protocol_numbers: scripts/protocol_doc.py --numbers compares these
 * lines with what it parsed from the .def files and headers and with the
 * op-table hashes it computes by the algorithm docs/PROTOCOL.md states.
 *
 * Lines: "protocol VERSION", "op N name KIND arity nout optional attrs"
 * (optional and attrs in hex), "hash COUNT HEX" for every prefix of the op
 * table, "dtype N name size", "status N NAME" and "const NAME VALUE".
 */
#include <stdio.h>
#include <string.h>

#include "core/op_table.h"
#include "core/protocol.h"
#include "modaltensor.h"

/* Every op row, and the hash a peer announcing each op count must send. */
static void print_ops(void) {
  for (int op = 0; op < MTI_OP_COUNT; op++) {
    const mti_op_info *i = mti_op_get(op);
    printf("op %d %s %s %d %d %x %x\n", op, i->name, mti_kind_name(i->kind), i->arity, i->nout,
           i->optional, i->attrs);
  }
  for (int count = 0; count <= MTI_OP_COUNT; count++)
    printf("hash %d %016llx\n", count, (unsigned long long)mti_op_table_hash(count));
}

/* Dtypes and statuses by enum value, up to the first value with no name. */
static void print_enums(void) {
  for (int d = 0; mt_dtype_size((mt_dtype)d) != 0; d++)
    printf("dtype %d %s %zu\n", d, mt_dtype_name((mt_dtype)d), mt_dtype_size((mt_dtype)d));
  for (int s = 0; s < 256; s++) {
    const char *name = mt_status_name((mt_status)s);
    if (strcmp(name, "MT_ERR_UNKNOWN") == 0) break;
    printf("status %d %s\n", s, name);
  }
}

int main(void) {
  printf("protocol %u\n", MTI_PROTOCOL_VERSION);
  print_ops();
  print_enums();
  printf("const MTI_CHUNK_BYTES %u\n", MTI_CHUNK_BYTES);
  printf("const MTI_MAX_MESSAGE_BYTES %u\n", MTI_MAX_MESSAGE_BYTES);
  printf("const MTI_CONTENT_MIN_BYTES %u\n", MTI_CONTENT_MIN_BYTES);
  printf("const MTI_DIGEST_BYTES %u\n", MTI_DIGEST_BYTES);
  printf("const MTI_HELD_MAX %u\n", MTI_HELD_MAX);
  printf("const MTI_TEMPLATES_MAX %u\n", MTI_TEMPLATES_MAX);
  printf("const MTI_MAX_INT_ATTRS %d\n", MTI_MAX_INT_ATTRS);
  printf("const MTI_MAX_OUTPUTS %d\n", MTI_MAX_OUTPUTS);
  printf("const MT_MAX_DIMS %d\n", MT_MAX_DIMS);
  printf("const MTI_FLAG_PRESENT_SHIFT %d\n", MTI_FLAG_PRESENT_SHIFT);
  printf("const MTI_ATTR_FLAG_SHIFT %d\n", MTI_ATTR_FLAG_SHIFT);
  return 0;
}
