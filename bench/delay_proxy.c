/*
 * delay_proxy.c - see delay_proxy.h. Per connection and direction, a
 * reader stamps each piece with its arrival time and queues it; a writer
 * sends it when its delay has passed and the link (paced at the rate) is
 * free. The queue is bounded, so a full link pushes back on the sender as
 * a real one does.
 */
#include "delay_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PIECE_BYTES (64 * 1024)
#define QUEUE_MAX_BYTES (256u << 20)
#define MAX_CONNECTIONS 64

typedef struct piece {
  struct piece *next;
  double due; /* seconds, CLOCK_MONOTONIC */
  size_t len;
  char data[];
} piece;

typedef struct conn conn;

typedef struct direction {
  conn *c;
  int up; /* client to worker */
  int from, to;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  piece *head, *tail;
  size_t queued;
  int eof;
  pthread_t reader, writer;
} direction;

struct conn {
  mtb_proxy *p;
  direction dir[2];
  int used;
};

struct mtb_proxy {
  int listen_fd, target_port;
  double delay_s, rate;
  atomic_int stop;
  pthread_t acceptor;
  conn conns[MAX_CONNECTIONS];
  int nconns;
  _Atomic uint64_t bytes_up, bytes_down, turns, connections;
  atomic_int last_up; /* direction of the last piece that arrived */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  double d = t - now_s();
  if (d <= 0) return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Reads pieces, stamps them and queues them; counts turns. */
static void *reader_main(void *arg) {
  direction *d = arg;
  mtb_proxy *p = d->c->p;
  for (;;) {
    piece *pc = malloc(sizeof *pc + PIECE_BYTES);
    ssize_t n = pc ? read(d->from, pc->data, PIECE_BYTES) : -1;
    if (n <= 0) {
      free(pc);
      break;
    }
    pc->len = (size_t)n;
    pc->due = now_s() + p->delay_s;
    pc->next = NULL;
    atomic_fetch_add(d->up ? &p->bytes_up : &p->bytes_down, (uint64_t)n);
    if (!d->up && atomic_exchange(&p->last_up, 0)) atomic_fetch_add(&p->turns, 1);
    if (d->up) atomic_store(&p->last_up, 1);
    pthread_mutex_lock(&d->lock);
    while (d->queued > QUEUE_MAX_BYTES && !atomic_load(&p->stop))
      pthread_cond_wait(&d->cond, &d->lock);
    if (d->tail) d->tail->next = pc;
    else d->head = pc;
    d->tail = pc;
    d->queued += pc->len;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
  }
  pthread_mutex_lock(&d->lock);
  d->eof = 1;
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->lock);
  return NULL;
}

/* Sends queued pieces when due, paced at the rate. */
static void *writer_main(void *arg) {
  direction *d = arg;
  mtb_proxy *p = d->c->p;
  double link_free = 0;
  for (;;) {
    pthread_mutex_lock(&d->lock);
    while (!d->head && !d->eof) pthread_cond_wait(&d->cond, &d->lock);
    piece *pc = d->head;
    if (pc) {
      d->head = pc->next;
      if (!d->head) d->tail = NULL;
      d->queued -= pc->len;
      pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    if (!pc) break;
    double start = pc->due > link_free ? pc->due : link_free;
    link_free = start + (p->rate > 0 ? (double)pc->len / p->rate : 0);
    sleep_until(link_free);
    int failed = 0;
    for (size_t off = 0; off < pc->len && !failed;) {
      ssize_t n = send(d->to, pc->data + off, pc->len - off, MSG_NOSIGNAL);
      if (n <= 0) failed = 1;
      else off += (size_t)n;
    }
    free(pc);
    if (failed) break;
  }
  shutdown(d->to, SHUT_WR);
  return NULL;
}

static int connect_target(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static void start_direction(conn *c, int i, int from, int to) {
  direction *d = &c->dir[i];
  memset(d, 0, sizeof *d);
  d->c = c;
  d->up = i == 0;
  d->from = from;
  d->to = to;
  pthread_mutex_init(&d->lock, NULL);
  pthread_cond_init(&d->cond, NULL);
  pthread_create(&d->reader, NULL, reader_main, d);
  pthread_create(&d->writer, NULL, writer_main, d);
}

/* Accepts connections (polling, so that stop is seen) until stopped. */
static void *acceptor_main(void *arg) {
  mtb_proxy *p = arg;
  while (!atomic_load(&p->stop)) {
    struct pollfd pf = {p->listen_fd, POLLIN, 0};
    if (poll(&pf, 1, 50) <= 0) continue;
    int cfd = accept(p->listen_fd, NULL, NULL);
    if (cfd < 0) continue;
    int wfd = connect_target(p->target_port);
    if (wfd < 0 || p->nconns == MAX_CONNECTIONS) {
      close(cfd);
      if (wfd >= 0) close(wfd);
      continue;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = &p->conns[p->nconns++];
    c->p = p;
    c->used = 1;
    atomic_fetch_add(&p->connections, 1);
    start_direction(c, 0, cfd, wfd);
    start_direction(c, 1, wfd, cfd);
  }
  return NULL;
}

mtb_proxy *mtb_proxy_start(int target_port, double rtt_ms, double bytes_per_s, int *port) {
  mtb_proxy *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->target_port = target_port;
  p->delay_s = rtt_ms / 2000.0;
  p->rate = bytes_per_s;
  p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) ||
      listen(p->listen_fd, 16) || getsockname(p->listen_fd, (struct sockaddr *)&a, &len)) {
    if (p->listen_fd >= 0) close(p->listen_fd);
    free(p);
    return NULL;
  }
  *port = ntohs(a.sin_port);
  pthread_create(&p->acceptor, NULL, acceptor_main, p);
  return p;
}

void mtb_proxy_read(mtb_proxy *p, mtb_proxy_counters *out) {
  *out = (mtb_proxy_counters){atomic_load(&p->bytes_up), atomic_load(&p->bytes_down),
                              atomic_load(&p->turns), atomic_load(&p->connections)};
}

void mtb_proxy_reset(mtb_proxy *p) {
  atomic_store(&p->bytes_up, 0);
  atomic_store(&p->bytes_down, 0);
  atomic_store(&p->turns, 0);
  atomic_store(&p->last_up, 0);
}

void mtb_proxy_stop(mtb_proxy *p) {
  atomic_store(&p->stop, 1);
  pthread_join(p->acceptor, NULL);
  for (int i = 0; i < p->nconns; i++)
    for (int k = 0; k < 2; k++) shutdown(p->conns[i].dir[k].from, SHUT_RDWR);
  for (int i = 0; i < p->nconns; i++)
    for (int k = 0; k < 2; k++) {
      direction *d = &p->conns[i].dir[k];
      pthread_mutex_lock(&d->lock);
      pthread_cond_broadcast(&d->cond);
      pthread_mutex_unlock(&d->lock);
      pthread_join(d->reader, NULL);
      pthread_join(d->writer, NULL);
    }
  for (int i = 0; i < p->nconns; i++) {
    close(p->conns[i].dir[0].from);
    close(p->conns[i].dir[1].from);
  }
  close(p->listen_fd);
  free(p);
}
