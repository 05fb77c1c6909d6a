/*
 * backend.c - picks the backend named on the command line.
 */
#include "backend.h"

#include <string.h>

#include "core/error.h"

mt_status mtw_backend_open(const char *name, uint64_t max_memory, mtw_backend **out) {
  *out = NULL;
  if (strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0)
    return mtw_backend_cpu_open(max_memory, out);
  if (strcmp(name, "cuda") == 0)
    return mti_error(MT_ERR_UNSUPPORTED,
                     "--backend cuda: this worker was built without the CUDA backend; "
                     "use --backend cpu (or auto)");
  return mti_error(MT_ERR_INVALID_ARGUMENT, "--backend: '%s' is not cpu, cuda or auto", name);
}
