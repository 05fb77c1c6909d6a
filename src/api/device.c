/*
 * device.c - devices, the execution switch, and library-wide calls.
 *
 * Where modal tensors run is decided when they are made: in a worker while
 * remote execution is on, in-process (on host memory, one device modal:0)
 * while it is off.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/tensor_impl.h"
#include "core/error.h"

#define MTI_STR2(x) #x
#define MTI_STR(x) MTI_STR2(x)

static atomic_int remote_execution = 1;

const char *mt_version(void) {
  return MTI_STR(MT_VERSION_MAJOR) "." MTI_STR(MT_VERSION_MINOR) "." MTI_STR(MT_VERSION_PATCH);
}

const char *mti_device_str(char *buf, size_t len, mt_device d) {
  if (d.type == MT_DEVICE_CPU && d.index == 0) snprintf(buf, len, "cpu");
  else if (d.type == MT_DEVICE_CPU) snprintf(buf, len, "cpu:%d", (int)d.index);
  else if (d.type == MT_DEVICE_MODAL) snprintf(buf, len, "modal:%d", (int)d.index);
  else snprintf(buf, len, "device(type %d, index %d)", (int)d.type, (int)d.index);
  return buf;
}

/* Parses a decimal index (no sign, no junk) into *out. */
static int parse_index(const char *s, int32_t *out) {
  if (!*s || *s == '+' || *s == '-') return 0;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0 || v > INT32_MAX) return 0;
  *out = (int32_t)v;
  return 1;
}

mt_status mt_device_parse(const char *s, mt_device *out) {
  const char *fn = "mt_device_parse";
  if (!s) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: s: NULL", fn);
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  mt_device d = {MT_DEVICE_CPU, 0};
  const char *rest = NULL;
  if (strncmp(s, "cpu", 3) == 0) rest = s + 3;
  else if (strncmp(s, "modal", 5) == 0) d.type = MT_DEVICE_MODAL, rest = s + 5;
  int ok = rest && (*rest == '\0' || (*rest == ':' && parse_index(rest + 1, &d.index)));
  if (!ok || (d.type == MT_DEVICE_CPU && d.index != 0))
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: s: \"%.64s\" is not a device (expected cpu, modal or modal:N)", fn, s);
  *out = d;
  return MT_OK;
}

mt_status mti_check_device(const char *fn, mt_device device) {
  char buf[48];
  if (device.type == MT_DEVICE_CPU) {
    if (device.index == 0) return MT_OK;
  } else if (device.type == MT_DEVICE_MODAL) {
    if (atomic_load(&remote_execution)) return mti_remote_check_device(fn, device.index);
    if (device.index == 0) return MT_OK;
    return mti_error(MT_ERR_DEVICE, "%s: device: %s: in-process execution has one modal device, "
                     "modal:0", fn, mti_device_str(buf, sizeof buf, device));
  }
  return mti_error(MT_ERR_DEVICE, "%s: device: %s does not exist", fn,
                   mti_device_str(buf, sizeof buf, device));
}

int mti_device_is_remote(mt_device d) {
  return d.type == MT_DEVICE_MODAL && atomic_load(&remote_execution);
}

void mt_set_remote_execution(int enabled) { atomic_store(&remote_execution, enabled != 0); }

int mt_remote_execution_enabled(void) { return atomic_load(&remote_execution); }

int mt_modal_is_available(void) { return mt_modal_device_count() > 0; }

int mt_modal_device_count(void) {
  return atomic_load(&remote_execution) ? mti_remote_device_count() : 1;
}

/* Properties of the in-process modal device: the host. */
static void host_properties(mt_device_properties *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "in-process (host cpu)");
  long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  out->total_memory = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
  out->free_memory = avail > 0 && page > 0 ? (int64_t)avail * page : 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  out->multiprocessors = cpus > 0 ? (int32_t)cpus : 1;
}

mt_status mt_modal_get_device_properties(int index, mt_device_properties *out) {
  const char *fn = "mt_modal_get_device_properties";
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  mt_device d = {MT_DEVICE_MODAL, index};
  if (atomic_load(&remote_execution)) return mti_remote_device_properties(fn, index, out);
  mt_status s = mti_check_device(fn, d);
  if (s) return s;
  host_properties(out);
  return MT_OK;
}

/* Both public memory queries: one Hello to the worker (which reports both
 * numbers), or zeros in-process, where modal tensors are plain host memory
 * that no pool accounts for apart from cpu tensors. */
static mt_status memory_usage(const char *fn, int index, int64_t *allocated,
                              int64_t *reserved) {
  if (atomic_load(&remote_execution))
    return mti_remote_memory_usage(fn, index, allocated, reserved);
  mt_status s = mti_check_device(fn, (mt_device){MT_DEVICE_MODAL, index});
  if (s) return s;
  *allocated = *reserved = 0;
  return MT_OK;
}

mt_status mt_modal_memory_allocated(int index, int64_t *out) {
  const char *fn = "mt_modal_memory_allocated";
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  int64_t reserved;
  return memory_usage(fn, index, out, &reserved);
}

mt_status mt_modal_memory_reserved(int index, int64_t *out) {
  const char *fn = "mt_modal_memory_reserved";
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  int64_t allocated;
  return memory_usage(fn, index, &allocated, out);
}

mt_status mt_synchronize(mt_device d) {
  const char *fn = "mt_synchronize";
  /* In-process work is done when each call returns: nothing is queued. */
  if (mti_device_is_remote(d)) return mti_remote_synchronize(fn, d.index);
  if (d.type == MT_DEVICE_CPU && d.index == 0) return MT_OK;
  return mti_check_device(fn, d);
}

mt_status mt_modal_synchronize_all(void) {
  /* In-process modal work, like cpu work, is done when each call returns. */
  return mti_remote_synchronize_all("mt_modal_synchronize_all");
}

mt_status mt_modal_configure(const mt_modal_config *cfg) {
  return mti_remote_configure("mt_modal_configure", cfg);
}

mt_status mt_modal_get_stats(mt_modal_stats *out) {
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_modal_get_stats: out: NULL");
  mti_remote_stats(out);
  return MT_OK;
}

void mt_modal_stats_reset(void) { mti_remote_stats_reset(); }

mt_status mt_modal_set_progress(mt_modal_progress_fn fn, void *ctx, uint64_t min_bytes) {
  mti_remote_set_progress(fn, ctx, min_bytes);
  return MT_OK;
}

void mt_shutdown(void) { mti_remote_shutdown(); }
