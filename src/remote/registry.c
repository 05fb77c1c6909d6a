/*
 * registry.c - the workers of this process: configuration, connecting (without
 * waiting for any reply), device discovery when a program asks for it,
 * following the worker file, reviving a local worker, shutdown.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/protocol.h"
#include "remote/client.h"

registry_state registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ config */

/* Settings given by mt_modal_configure, by the variable each stands for;
 * NULL: the environment decides. Changed only while the registry is not
 * ready, under its lock. */
static const char *const config_names[] = {"MODALTENSOR_WORKER",  "MODALTENSOR_TOKEN",
                                           "MODALTENSOR_TLS",     "MODALTENSOR_TLS_CA",
                                           "MODALTENSOR_TIMEOUT", "MODALTENSOR_CONNECT_TIMEOUT"};
#define CONFIG_COUNT (sizeof config_names / sizeof *config_names)
static char *config_values[CONFIG_COUNT];

/* A setting: what mt_modal_configure gave, else the environment's. */
static const char *config_get(const char *name) {
  for (size_t i = 0; i < CONFIG_COUNT; i++)
    if (!strcmp(config_names[i], name) && config_values[i]) return config_values[i];
  return getenv(name);
}

static int64_t env_seconds_ms(const char *name, double fallback) {
  const char *v = config_get(name);
  char *end;
  double s = v && *v ? strtod(v, &end) : fallback;
  if (!v || !*v || *end || !(s > 0) || s > 1e7) s = fallback;
  return (int64_t)(s * 1000.0);
}

static mt_status read_config(const char *fn) {
  registry.timeout_ms = env_seconds_ms("MODALTENSOR_TIMEOUT", 60);
  registry.connect_timeout_ms = env_seconds_ms("MODALTENSOR_CONNECT_TIMEOUT", 10);
  const char *eager = getenv("MODALTENSOR_EAGER");
  registry.eager = eager && *eager && strcmp(eager, "0") != 0;
  const char *ca = config_get("MODALTENSOR_TLS_CA");
  free(registry.tls_ca);
  registry.tls_ca = ca && *ca ? strdup(ca) : NULL;
  if (ca && *ca && !registry.tls_ca) return mti_error_oom(fn, strlen(ca) + 1);
  /* The worker file names the workers only when MODALTENSOR_WORKER does not. */
  const char *list = config_get("MODALTENSOR_WORKER"), *file = getenv("MODALTENSOR_WORKER_FILE");
  free(registry.worker_file);
  registry.worker_file = NULL;
  if ((!list || !*list) && file && *file && !(registry.worker_file = strdup(file)))
    return mti_error_oom(fn, strlen(file) + 1);
  return mti_tls_mode_parse(fn, config_get("MODALTENSOR_TLS"), &registry.tls_mode);
}

static const char *next_address(const char **p, size_t *len);

/* Checks every address of a list (as MODALTENSOR_WORKER holds one). */
static mt_status check_addresses(const char *fn, const char *list, mti_tls_mode mode) {
  const char *p = list, *a;
  size_t len;
  int n = 0;
  for (; (a = next_address(&p, &len)); n++) {
    char one[MTI_ADDRESS_MAX];
    mti_address addr;
    if (len >= sizeof one)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: worker: an address of %zu characters", fn, len);
    memcpy(one, a, len);
    one[len] = '\0';
    if (mti_address_parse(fn, one, mode, &addr)) return mt_last_status();
  }
  return n ? MT_OK : mti_error(MT_ERR_INVALID_ARGUMENT, "%s: worker: no address in \"%s\"", fn, list);
}

/* The settings of cfg as the variables' values; NULL where cfg leaves the
 * environment in charge. */
static mt_status config_from(const char *fn, const mt_modal_config *cfg, char **out) {
  char tls[4], timeout[32], connect[32];
  if (cfg->tls < -1 || cfg->tls > 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: tls: %d is not -1, 0 or 1", fn, cfg->tls);
  if (!(cfg->timeout_s >= 0 && cfg->timeout_s <= 1e7) ||
      !(cfg->connect_timeout_s >= 0 && cfg->connect_timeout_s <= 1e7))
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: timeout_s %g, connect_timeout_s %g: seconds from 0 (the default) to 1e7",
                     fn, cfg->timeout_s, cfg->connect_timeout_s);
  mti_tls_mode mode = cfg->tls == 1 ? MTI_TLS_ON : cfg->tls == 0 ? MTI_TLS_OFF : MTI_TLS_AUTO;
  if (cfg->worker && check_addresses(fn, cfg->worker, mode)) return mt_last_status();
  snprintf(tls, sizeof tls, "%d", cfg->tls);
  snprintf(timeout, sizeof timeout, "%.17g", cfg->timeout_s);
  snprintf(connect, sizeof connect, "%.17g", cfg->connect_timeout_s);
  const char *values[CONFIG_COUNT] = {cfg->worker, cfg->token, cfg->tls >= 0 ? tls : NULL,
                                      cfg->tls_ca, cfg->timeout_s > 0 ? timeout : NULL,
                                      cfg->connect_timeout_s > 0 ? connect : NULL};
  for (size_t i = 0; i < CONFIG_COUNT; i++) {
    out[i] = values[i] ? strdup(values[i]) : NULL;
    if (values[i] && !out[i]) {
      size_t len = strlen(values[i]) + 1;
      while (i-- > 0) free(out[i]);
      return mti_error_oom(fn, len);
    }
  }
  return MT_OK;
}

mt_status mti_remote_configure(const char *fn, const mt_modal_config *cfg) {
  char *values[CONFIG_COUNT] = {0};
  mt_status st = cfg ? config_from(fn, cfg, values) : MT_OK;
  if (st) return st;
  pthread_mutex_lock(&registry.lock);
  if (atomic_load(&registry.ready)) {
    pthread_mutex_unlock(&registry.lock);
    for (size_t i = 0; i < CONFIG_COUNT; i++) free(values[i]);
    return mti_error(MT_ERR_UNSUPPORTED,
                     "%s: the modal device is in use (its configuration was read at the first "
                     "modal call); call mt_shutdown() first", fn);
  }
  for (size_t i = 0; i < CONFIG_COUNT; i++) {
    free(config_values[i]);
    config_values[i] = values[i];
  }
  pthread_mutex_unlock(&registry.lock);
  return MT_OK;
}

/* ------------------------------------------------------------ workers */

mt_status client_status(const Modaltensor__V1__Status *st) {
  return st ? (mt_status)st->code : MT_OK;
}

/* One Hello call to w: the handshake, and the only call that reports the
 * devices' memory as of now. */
static mt_status call_hello(const char *fn, worker *w, int64_t timeout_ms,
                            ProtobufCMessage **raw) {
  Modaltensor__V1__HelloRequest req = MODALTENSOR__V1__HELLO_REQUEST__INIT;
  req.protocol_version = MTI_PROTOCOL_VERSION;
  req.op_count = MTI_OP_COUNT;
  req.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  return mti_channel_unary(fn, w->ch, MTI_METHOD_HELLO, &req.base,
                           &modaltensor__v1__hello_reply__descriptor, timeout_ms, raw);
}

/* After nothing accepted a connection to w in time: a failed TLS handshake
 * when gRPC says so, else "no worker answered". MT_ERR_UNAVAILABLE. */
mt_status registry_unreachable(const char *fn, worker *w) {
  if (mti_channel_tls_failure(fn, w->ch)) return MT_ERR_UNAVAILABLE;
  return mti_error(MT_ERR_UNAVAILABLE, "%s: no worker answered at %s within %.0f s "
                   "(MODALTENSOR_CONNECT_TIMEOUT)", fn, w->target,
                   (double)registry.connect_timeout_ms / 1000.0);
}

/* Handshake with w: checks compatibility and learns its devices. */
static mt_status hello(const char *fn, worker *w) {
  ProtobufCMessage *raw;
  mt_status s = call_hello(fn, w, registry.connect_timeout_ms, &raw);
  atomic_fetch_add(&registry.counters.round_trips, 1);
  if (s == MT_ERR_TIMEOUT) return registry_unreachable(fn, w);
  if (s) return s;
  Modaltensor__V1__HelloReply *rep = (Modaltensor__V1__HelloReply *)raw;
  if ((s = client_status(rep->status))) {
    mti_error(s, "%s: worker %s refused this client: %s", fn, w->target, rep->status->message);
  } else if (rep->n_devices == 0) {
    s = mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s has no devices", fn, w->target);
  } else if (!(w->props = realloc(w->props, rep->n_devices * sizeof *w->props))) {
    s = mti_error_oom(fn, rep->n_devices * sizeof *w->props);
  } else {
    w->ndevices = (int)rep->n_devices;
    for (size_t i = 0; i < rep->n_devices; i++) {
      const Modaltensor__V1__DeviceInfo *d = rep->devices[i];
      mt_device_properties *p = &w->props[i];
      snprintf(p->name, sizeof p->name, "%s", d->name ? d->name : "");
      p->total_memory = d->total_memory;
      p->free_memory = d->free_memory;
      p->major = d->major;
      p->minor = d->minor;
      p->multiprocessors = d->multiprocessors;
    }
  }
  protobuf_c_message_free_unpacked(raw, NULL);
  return s;
}

/* Starts the local worker (if w is local) and makes its channel, which
 * starts connecting at once, so that TCP, TLS and HTTP/2's SETTINGS overlap
 * whatever the program does before its first modal call that sends. With
 * handshake, also a Hello (compatibility and devices), which waits. */
static mt_status worker_connect(const char *fn, worker *w, const char *token, int handshake) {
  if (w->local) {
    mt_status s = mti_local_worker_start(fn, &w->proc);
    if (s) return s;
    free(w->target);
    if (!(w->target = strdup(w->proc.target))) return mti_error_oom(fn, sizeof w->proc.target);
  }
  mti_channel_config cfg = {token, registry.tls_mode, registry.tls_ca};
  mt_status s = mti_channel_create(fn, w->target, &cfg, &w->ch);
  if (!s) mti_channel_connect(w->ch);
  if (!s && handshake) s = hello(fn, w);
  if (s && w->local) {
    char why[96];
    if (!mti_local_worker_alive(&w->proc, why, sizeof why))
      s = mti_error(MT_ERR_UNAVAILABLE, "%s: the local worker %s (its messages went to stderr)",
                    fn, why);
  }
  return s;
}

/* Closes w's channel and those it was switched away from. Only local
 * workers are disconnected while sessions may be open, and they are never
 * switched, so no stream is left pointing at a replaced channel. */
static void worker_disconnect(worker *w) {
  mti_channel_destroy(w->ch);
  w->ch = NULL;
  free(w->props);
  w->props = NULL;
  w->ndevices = 0;
  if (w->local) mti_local_worker_stop(&w->proc);
  while (w->replaced) {
    replaced_channel *old = w->replaced;
    w->replaced = old->next;
    mti_channel_destroy(old->ch);
    free(old->target);
    free(old);
  }
}

/* Restarts a local worker that died, so that new work can go on. Called
 * with the session lock held; takes the worker's lock. */
mt_status registry_worker_revive(const char *fn, worker *w) {
  char why[96];
  mt_status s = MT_OK;
  pthread_mutex_lock(&w->lock);
  if (w->local && !mti_local_worker_alive(&w->proc, why, sizeof why)) {
    int ndevices = w->ndevices;
    worker_disconnect(w);
    s = worker_connect(fn, w, NULL, ndevices > 0);
    if (!s && ndevices && w->ndevices != ndevices)
      s = mti_error(MT_ERR_UNAVAILABLE, "%s: the restarted local worker has %d devices, not %d",
                    fn, w->ndevices, ndevices);
  }
  pthread_mutex_unlock(&w->lock);
  return s;
}

/* The next address of a comma-separated list at *p (trailing spaces
 * dropped, *len its length), advancing *p past it; NULL at the end. */
static const char *next_address(const char **p, size_t *len) {
  while (**p == ',' || **p == ' ') (*p)++;
  if (!**p) return NULL;
  const char *start = *p;
  *len = strcspn(start, ",");
  *p = start + *len;
  while (*len && start[*len - 1] == ' ') (*len)--;
  return start;
}

/* The first non-empty line of MODALTENSOR_WORKER_FILE, trimmed, into line.
 * A missing or empty file means no worker is up (`down` leaves it so):
 * MT_ERR_UNAVAILABLE, saying how to start one. */
static mt_status read_worker_file(const char *fn, char *line, size_t len) {
  FILE *f = fopen(registry.worker_file, "r");
  if (!f && errno == ENOENT)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s does not exist: no "
                     "worker is up (start one: python -m modaltensor.modal up)", fn,
                     registry.worker_file);
  if (!f)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s: %s", fn,
                     registry.worker_file, strerror(errno));
  int found = 0;
  while (!found && fgets(line, (int)len, f)) {
    size_t start = strspn(line, " \t\r\n"), end = strlen(line);
    while (end > start && strchr(" \t\r\n", line[end - 1])) end--;
    memmove(line, line + start, end - start);
    line[end - start] = '\0';
    found = line[0] != '\0';
  }
  fclose(f);
  if (!found)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s is empty: no worker is "
                     "up (start one: python -m modaltensor.modal up)", fn, registry.worker_file);
  return MT_OK;
}

/* Adds to an MT_ERR_UNAVAILABLE about a worker named by the worker file
 * what to do: a Modal worker goes away on idle shutdown or preemption, and
 * `up` rewrites the file, which the next use reads. */
mt_status registry_file_hint(mt_status st) {
  if (st != MT_ERR_UNAVAILABLE || !registry.worker_file) return st;
  char why[512];
  snprintf(why, sizeof why, "%s", mt_last_error());
  return mti_error(st, "%s [the address is from MODALTENSOR_WORKER_FILE=%s: a Modal worker stops "
                   "on idle shutdown or preemption; run python -m modaltensor.modal up and use "
                   "the device again]", why, registry.worker_file);
}

/* The address the worker file now gives w (its place in the list), into
 * out; the number of workers must not change. */
static mt_status file_address(const char *fn, const worker *w, char *out, size_t len) {
  char line[4 * MTI_ADDRESS_MAX];
  mt_status st = read_worker_file(fn, line, sizeof line);
  if (st) return st;
  const char *p = line, *a;
  size_t alen;
  int n = 0;
  for (; (a = next_address(&p, &alen)); n++)
    if (n == (int)(w - registry.workers)) snprintf(out, len, "%.*s", (int)alen, a);
  if (n != registry.nworkers)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s now names %d workers, "
                     "this program started with %d: restart it to use them", fn,
                     registry.worker_file, n, registry.nworkers);
  return MT_OK;
}

/* Connects to address in place of w's worker, which must have as many
 * devices. The old channel stays until w is disconnected. Called with w's
 * lock held. */
static mt_status worker_switch(const char *fn, worker *w, const char *address) {
  worker fresh = {.target = strdup(address)};
  replaced_channel *old = malloc(sizeof *old);
  mt_status st = fresh.target && old ? worker_connect(fn, &fresh, config_get("MODALTENSOR_TOKEN"), 1)
                                     : mti_error_oom(fn, sizeof *old + strlen(address) + 1);
  if (st) {
    st = registry_file_hint(st);
  } else if (w->ndevices && fresh.ndevices != w->ndevices) {
    st = mti_error(MT_ERR_UNAVAILABLE, "%s: the worker at %s (from MODALTENSOR_WORKER_FILE=%s) "
                   "has %d devices, this program started with %d: restart it to use them", fn,
                   address, registry.worker_file, fresh.ndevices, w->ndevices);
  }
  if (st) {
    worker_disconnect(&fresh);
    free(fresh.target);
    free(old);
    return st;
  }
  *old = (replaced_channel){w->ch, w->target, w->replaced};
  free(w->props);
  w->replaced = old;
  w->ch = fresh.ch;
  w->target = fresh.target;
  w->props = fresh.props;
  w->ndevices = fresh.ndevices;
  return MT_OK;
}

/* Before a session of w opens again: when the worker file now names
 * another address (a new `up`), switches w there. Called with the session
 * lock held; takes the worker's lock. */
mt_status registry_worker_follow_file(const char *fn, worker *w) {
  if (!registry.worker_file) return MT_OK;
  char address[MTI_ADDRESS_MAX];
  mt_status st = file_address(fn, w, address, sizeof address);
  if (st) return st;
  pthread_mutex_lock(&w->lock);
  if (strcmp(address, w->target) != 0) st = worker_switch(fn, w, address);
  pthread_mutex_unlock(&w->lock);
  return st;
}

static void stop_local_worker_at_exit(void) {
  for (int i = 0; i < registry.nworkers; i++)
    if (registry.workers[i].local) mti_local_worker_stop(&registry.workers[i].proc);
}

/* Splits MODALTENSOR_WORKER, or the line of MODALTENSOR_WORKER_FILE, into
 * workers (one local worker when neither is set). */
static mt_status make_workers(const char *fn) {
  char line[4 * MTI_ADDRESS_MAX];
  const char *list = config_get("MODALTENSOR_WORKER");
  if (registry.worker_file) {
    mt_status st = read_worker_file(fn, line, sizeof line);
    if (st) return st;
    list = line;
  }
  int n = 1;
  for (const char *p = list; p && *p; p++) n += *p == ',';
  registry.workers = calloc((size_t)n, sizeof *registry.workers);
  if (!registry.workers) return mti_error_oom(fn, (size_t)n * sizeof *registry.workers);
  registry.nworkers = 0;
  if (!list || !*list) {
    registry.workers[0].local = 1;
    registry.nworkers = 1;
  }
  size_t len;
  for (const char *p = list, *a; p && (a = next_address(&p, &len));)
    registry.workers[registry.nworkers++].target = strndup(a, len);
  for (int i = 0; i < registry.nworkers; i++) pthread_mutex_init(&registry.workers[i].lock, NULL);
  if (registry.nworkers == 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: no address in \"%s\"", fn,
                     registry.worker_file ? "MODALTENSOR_WORKER_FILE" : "MODALTENSOR_WORKER", list);
  return MT_OK;
}

static void free_registry(void) {
  for (int i = 0; i < registry.nworkers; i++) {
    worker_disconnect(&registry.workers[i]);
    free(registry.workers[i].target);
    pthread_mutex_destroy(&registry.workers[i].lock);
  }
  for (int i = 0; i < registry.nsessions; i++) {
    pthread_mutex_destroy(&registry.sessions[i]->lock);
    content_forget(registry.sessions[i]);
    free(registry.sessions[i]->known);
    free(registry.sessions[i]->held);
    free(registry.sessions[i]);
  }
  free(registry.workers);
  free(registry.sessions);
  free(registry.tls_ca);
  registry.tls_ca = NULL;
  free(registry.worker_file);
  registry.worker_file = NULL;
  registry.workers = NULL;
  registry.sessions = NULL;
  registry.nworkers = registry.nsessions = 0;
}

/* A closed session of device d of w; NULL with the error set. */
static session *session_new(const char *fn, worker *w, int d) {
  session *s = calloc(1, sizeof *s);
  if (!s) {
    mti_error_oom(fn, sizeof *s);
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  s->w = w;
  s->device = d;
  s->generation = 1;
  return s;
}

/* Reads the configuration and makes a channel to every configured worker,
 * once; later calls are one load. Nothing waits for a worker here: modal:0
 * (device 0 of the first worker) exists before any reply, and its session's
 * Open goes out with its first work. A failed attempt leaves nothing
 * behind, so the next call tries again. */
mt_status registry_connect(const char *fn) {
  if (atomic_load_explicit(&registry.ready, memory_order_acquire)) return MT_OK;
  pthread_mutex_lock(&registry.lock);
  mt_status s = MT_OK;
  if (!atomic_load(&registry.ready)) {
    const char *token = config_get("MODALTENSOR_TOKEN");
    s = read_config(fn);
    if (!s) s = make_workers(fn);
    for (int i = 0; !s && i < registry.nworkers; i++)
      s = registry_file_hint(worker_connect(fn, &registry.workers[i], token, 0));
    if (!s && !(registry.sessions = calloc(1, sizeof *registry.sessions)))
      s = mti_error_oom(fn, sizeof *registry.sessions);
    if (!s && !(registry.sessions[0] = session_new(fn, &registry.workers[0], 0)))
      s = mt_last_status();
    if (s) {
      free_registry();
    } else {
      registry.nsessions = 1;
      atomic_store(&registry.discovered, 0);
      if (!registry.atexit_registered)
        registry.atexit_registered = !atexit(stop_local_worker_at_exit);
      atomic_store_explicit(&registry.ready, 1, memory_order_release);
    }
  }
  pthread_mutex_unlock(&registry.lock);
  return s;
}

typedef struct hello_job {
  const char *fn;
  worker *w;
  int threaded;
  mt_status status;
  char message[512];
} hello_job;

/* One worker's Hello on a thread of its own, so that discovering several
 * workers takes one round trip, not one per worker. */
static void *hello_thread(void *arg) {
  hello_job *j = arg;
  pthread_mutex_lock(&j->w->lock);
  j->status = j->w->ndevices ? MT_OK : registry_file_hint(hello(j->fn, j->w));
  pthread_mutex_unlock(&j->w->lock);
  if (j->status) snprintf(j->message, sizeof j->message, "%s", mt_last_error());
  return NULL;
}

/* Every worker's sessions, after each has told its devices: modal:N in
 * list order, session 0 kept (buffers point at it). */
static mt_status make_sessions(const char *fn) {
  int n = 0;
  for (int i = 0; i < registry.nworkers; i++) n += registry.workers[i].ndevices;
  session **all = calloc((size_t)n, sizeof *all);
  if (!all) return mti_error_oom(fn, (size_t)n * sizeof *all);
  all[0] = registry.sessions[0];
  int k = 0;
  for (int i = 0; i < registry.nworkers; i++)
    for (int d = 0; d < registry.workers[i].ndevices; d++, k++)
      if (k && !(all[k] = session_new(fn, &registry.workers[i], d))) {
        while (--k > 0) free(all[k]);
        free(all);
        return mt_last_status();
      }
  free(registry.sessions);
  registry.sessions = all;
  registry.nsessions = n;
  return MT_OK;
}

/* Learns every worker's devices (a Hello to each, all at once) when the
 * program asks for them: a device count, properties, modal:N for N > 0. */
mt_status registry_discover(const char *fn) {
  mt_status st = registry_connect(fn);
  if (st || atomic_load_explicit(&registry.discovered, memory_order_acquire)) return st;
  pthread_mutex_lock(&registry.lock);
  hello_job *jobs = calloc((size_t)registry.nworkers, sizeof *jobs);
  pthread_t *threads = calloc((size_t)registry.nworkers, sizeof *threads);
  if (!jobs || !threads) st = mti_error_oom(fn, (size_t)registry.nworkers * sizeof *jobs);
  int started = 0;
  for (; !st && started < registry.nworkers; started++) {
    jobs[started].fn = fn;
    jobs[started].w = &registry.workers[started];
    jobs[started].threaded = !pthread_create(&threads[started], NULL, hello_thread, &jobs[started]);
    if (!jobs[started].threaded) hello_thread(&jobs[started]); /* no thread: ask it here */
  }
  for (int i = 0; i < started; i++) {
    if (jobs[i].threaded) pthread_join(threads[i], NULL);
    if (!st && jobs[i].status) st = mti_error(jobs[i].status, "%s: %s", fn, jobs[i].message);
  }
  if (!st && !atomic_load(&registry.discovered) && !(st = make_sessions(fn)))
    atomic_store_explicit(&registry.discovered, 1, memory_order_release);
  pthread_mutex_unlock(&registry.lock);
  free(jobs);
  free(threads);
  return st;
}

session *registry_session(int device) { return registry.sessions[device]; }

/* ------------------------------------------------------------ public */

int mti_remote_device_count(void) {
  return registry_discover("mt_modal_device_count") ? 0 : registry.nsessions;
}

/* modal:0 needs no discovery; another index does (how many devices each
 * worker has decides which worker it is). */
mt_status registry_check_index(const char *fn, int index) {
  mt_status st = index == 0 ? registry_connect(fn) : registry_discover(fn);
  if (st) return st;
  if (index < 0 || index >= registry.nsessions)
    return mti_error(MT_ERR_DEVICE, "%s: device: modal:%d does not exist (%d modal devices)", fn,
                     index, registry.nsessions);
  return MT_OK;
}

mt_status mti_remote_device_properties(const char *fn, int index, mt_device_properties *out) {
  mt_status st = registry_discover(fn);
  if (!st) st = mti_remote_check_device(fn, index);
  if (st) return st;
  session *s = registry_session(index);
  pthread_mutex_lock(&s->w->lock);
  *out = s->w->props[s->device];
  pthread_mutex_unlock(&s->w->lock);
  return MT_OK;
}

/* Reads device's memory numbers from a reply to a fresh Hello to w. Called
 * with w's lock held, so that a restart cannot swap the channel under it. */
static mt_status memory_from_hello(const char *fn, worker *w, int device, int64_t *allocated,
                                   int64_t *reserved) {
  if (!w->ch)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: the worker at %s is disconnected", fn, w->target);
  ProtobufCMessage *raw;
  mt_status st = call_hello(fn, w, registry.timeout_ms, &raw);
  if (st) return st;
  Modaltensor__V1__HelloReply *rep = (Modaltensor__V1__HelloReply *)raw;
  if ((st = client_status(rep->status))) {
    mti_error(st, "%s: worker %s refused this client: %s", fn, w->target, rep->status->message);
  } else if ((size_t)device >= rep->n_devices) {
    st = mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s now reports %zu devices, not %d", fn,
                   w->target, rep->n_devices, w->ndevices);
  } else {
    *allocated = rep->devices[device]->used_memory;
    *reserved = rep->devices[device]->reserved_memory;
  }
  protobuf_c_message_free_unpacked(raw, NULL);
  return st;
}

mt_status mti_remote_memory_usage(const char *fn, int index, int64_t *allocated,
                                  int64_t *reserved) {
  mt_status st = mti_remote_check_device(fn, index);
  if (st) return st;
  session *s = registry_session(index);
  pthread_mutex_lock(&s->w->lock);
  st = memory_from_hello(fn, s->w, s->device, allocated, reserved);
  atomic_fetch_add(&registry.counters.round_trips, 1);
  pthread_mutex_unlock(&s->w->lock);
  return st;
}


/* Registries from before an mt_shutdown: buffers that outlive it still
 * point at their sessions, so those stay allocated (and reachable), marked
 * retired. */
typedef struct retired_registry {
  worker *workers;
  session **sessions;
  int nsessions;
  struct retired_registry *next;
} retired_registry;
static retired_registry *retired;

void mti_remote_shutdown(void) {
  pthread_mutex_lock(&registry.lock);
  if (atomic_load(&registry.ready)) {
    for (int i = 0; i < registry.nsessions; i++) {
      session *s = registry.sessions[i];
      pthread_mutex_lock(&s->lock);
      snprintf(s->lost, sizeof s->lost, "mt_shutdown closed it");
      mti_stream_close(s->stream); /* the worker frees the session's memory */
      s->stream = NULL;
      s->retired = 1;
      s->generation++;
      recorder_drop_pending(s);
      recorder_forget_templates(s);
      content_forget(s);
      pthread_mutex_unlock(&s->lock);
    }
    for (int i = 0; i < registry.nworkers; i++) {
      pthread_mutex_lock(&registry.workers[i].lock);
      worker_disconnect(&registry.workers[i]);
      pthread_mutex_unlock(&registry.workers[i].lock);
    }
    retired_registry *r = malloc(sizeof *r);
    if (r) { /* without it the arrays are simply never freed: same effect */
      *r = (retired_registry){registry.workers, registry.sessions, registry.nsessions, retired};
      retired = r;
    }
    registry.workers = NULL;
    registry.sessions = NULL;
    registry.nworkers = registry.nsessions = 0;
    atomic_store(&registry.discovered, 0);
    atomic_store(&registry.ready, 0);
  }
  pthread_mutex_unlock(&registry.lock);
}

void mti_remote_stats(mt_modal_stats *out) {
  client_counters *c = &registry.counters;
  *out = (mt_modal_stats){atomic_load(&c->round_trips), atomic_load(&c->syncs),
                          atomic_load(&c->graphs), atomic_load(&c->nodes),
                          atomic_load(&c->bytes_up), atomic_load(&c->bytes_down),
                          atomic_load(&c->messages), atomic_load(&c->bytes_skipped),
                          atomic_load(&c->uploads_skipped), atomic_load(&c->graph_bytes),
                          atomic_load(&c->graphs_reused)};
}

void mti_remote_stats_reset(void) {
  client_counters *c = &registry.counters;
  _Atomic uint64_t *all[] = {&c->round_trips, &c->syncs, &c->graphs, &c->nodes, &c->bytes_up,
                             &c->bytes_down, &c->messages, &c->bytes_skipped,
                             &c->uploads_skipped, &c->graph_bytes, &c->graphs_reused};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) atomic_store(all[i], 0);
}
