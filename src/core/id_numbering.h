/*
 * id_numbering.h - numbering ids by first appearance, as graph templates
 * name their parameters (shared by the client and the worker).
 */
#ifndef MTI_ID_NUMBERING_H
#define MTI_ID_NUMBERING_H

#include <stddef.h>
#include <stdint.h>

#include "modaltensor.h"

/* For each of the n ids, the number (0, 1, ...) of its distinct value in
 * order of first appearance into param (0 ids get -1), and how many
 * distinct non-zero ids there are into *nparams. MT_ERR_OUT_OF_MEMORY with
 * the error set when the table cannot be made. */
mt_status mti_number_ids(const char *fn, const uint64_t *ids, size_t n, int64_t *param,
                         size_t *nparams);

#endif
