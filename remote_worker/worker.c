/*
 * worker.c - the state every call handler shares, set up from the options.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"

int mtw_worker_setup(mtw_worker *w, const mtw_options *o) {
  memset(w, 0, sizeof *w);
  w->options = o;
  if (mtw_backend_open(o->backend, o->max_memory, &w->backend) != MT_OK) {
    fprintf(stderr, "modaltensor-worker: %s\n", mt_last_error());
    return -1;
  }
  w->device_count = w->backend->ops->device_count(w->backend);
  w->memory = calloc((size_t)(w->device_count > 0 ? w->device_count : 1), sizeof *w->memory);
  if (!w->memory) {
    w->backend->ops->destroy(w->backend);
    fprintf(stderr, "modaltensor-worker: out of memory\n");
    return -1;
  }
  for (int i = 0; i < w->device_count; i++) {
    mtw_device_props props;
    w->backend->ops->device_props(w->backend, i, &props);
    mtw_memory_init(&w->memory[i], props.total_memory > 0 ? (uint64_t)props.total_memory : 0);
    mtw_log(MTW_LOG_INFO, "device %d: %s backend, %s, %lld bytes for tensors", i, w->backend->name,
            props.name, (long long)props.total_memory);
  }
  w->max_node_work = o->max_node_work ? o->max_node_work
                     : strcmp(w->backend->name, "cuda") == 0 ? MTW_DEFAULT_NODE_WORK_CUDA
                                                             : MTW_DEFAULT_NODE_WORK_CPU;
  char why[512];
  if (!(w->content = mtw_content_open(o->cache_dir, o->cache_max_bytes, why, sizeof why))) {
    fprintf(stderr, "modaltensor-worker: %s\n", why);
    free(w->memory);
    w->backend->ops->destroy(w->backend);
    return -1;
  }
  mtw_stats_init(&w->stats);
  clock_gettime(CLOCK_MONOTONIC, &w->started);
  return 0;
}

void mtw_worker_teardown(mtw_worker *w) {
  mtw_stats_destroy(&w->stats);
  mtw_content_close(w->content);
  free(w->memory);
  w->backend->ops->destroy(w->backend);
}
