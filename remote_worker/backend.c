/*
 * backend.c - picks the backend named on the command line.
 */
#include "backend.h"

#include <string.h>

#include "core/error.h"
#include "log.h"

#ifdef MTW_HAVE_CUDA
/* auto: the GPUs when the cuda backend opens (a device is visible), else
 * the cpu, saying why CUDA was not used (no device, no driver, ...). */
static mt_status open_auto(uint64_t max_memory, mtw_backend **out) {
  if (mtw_backend_cuda_open(max_memory, out) == MT_OK) return MT_OK;
  mtw_log(MTW_LOG_INFO, "--backend auto: using the cpu backend: %s", mt_last_error());
  mt_clear_error();
  return mtw_backend_cpu_open(max_memory, out);
}
#endif

mt_status mtw_backend_open(const char *name, uint64_t max_memory, mtw_backend **out) {
  *out = NULL;
  if (strcmp(name, "cpu") == 0) return mtw_backend_cpu_open(max_memory, out);
#ifdef MTW_HAVE_CUDA
  if (strcmp(name, "auto") == 0) return open_auto(max_memory, out);
  if (strcmp(name, "cuda") == 0) return mtw_backend_cuda_open(max_memory, out);
#else
  if (strcmp(name, "auto") == 0) return mtw_backend_cpu_open(max_memory, out);
  if (strcmp(name, "cuda") == 0)
    return mti_error(MT_ERR_UNSUPPORTED,
                     "--backend cuda: this worker was built without the CUDA backend; "
                     "use --backend cpu (or auto)");
#endif
  return mti_error(MT_ERR_INVALID_ARGUMENT, "--backend: '%s' is not cpu, cuda or auto", name);
}
