/*
 * template.c - graphs a session keeps (Graph.template_id) and runs again
 * with new ids (Invoke): a repeated step crosses the wire once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/id_numbering.h"
#include "log.h"
#include "session.h"

/* A kept graph: the decoded message, the addresses of its id fields in
 * walk order (inputs, into, outputs of each node), the parameter of each
 * (-1 for an absent id), and its original ids to put back after a run. */
typedef struct mtw_template {
  uint64_t id;
  Modaltensor__V1__Graph *graph;
  uint64_t **slots;
  uint64_t *orig;
  int64_t *param;
  size_t nslots, nparams;
} mtw_template;

/* The id fields of g in walk order into slots (NULL: count only). */
static size_t walk_ids(Modaltensor__V1__Graph *g, uint64_t **slots) {
  size_t n = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    Modaltensor__V1__Node *node = g->nodes[i];
    for (size_t k = 0; k < node->n_inputs; k++, n++)
      if (slots) slots[n] = &node->inputs[k]->id;
    if (node->into) {
      if (slots) slots[n] = &node->into->id;
      n++;
    }
    for (size_t k = 0; k < node->n_outputs; k++, n++)
      if (slots) slots[n] = &node->outputs[k]->id;
  }
  return n;
}

static void template_free(mtw_template *t) {
  if (!t) return;
  mtw_unpacked_free(t->graph ? &t->graph->base : NULL);
  free(t->slots);
  free(t->orig);
  free(t->param);
  free(t);
}

static mtw_template *template_new(uint64_t id, Modaltensor__V1__Graph *g) {
  mtw_template *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->id = id;
  t->nslots = walk_ids(g, NULL);
  size_t n = t->nslots ? t->nslots : 1;
  t->slots = malloc(n * sizeof *t->slots);
  t->orig = malloc(n * sizeof *t->orig);
  t->param = malloc(n * sizeof *t->param);
  if (!t->slots || !t->orig || !t->param) {
    template_free(t);
    return NULL;
  }
  t->graph = g;
  walk_ids(g, t->slots);
  for (size_t k = 0; k < t->nslots; k++) t->orig[k] = *t->slots[k];
  if (mti_number_ids("template", t->orig, t->nslots, t->param, &t->nparams)) {
    t->graph = NULL; /* the caller still owns g */
    template_free(t);
    return NULL;
  }
  return t;
}

static mtw_template **template_find(mtw_session *s, uint64_t id) {
  for (size_t i = 0; i < s->n_templates; i++)
    if (s->templates[i]->id == id) return &s->templates[i];
  return NULL;
}

void mtw_session_template_keep(mtw_session *s, Modaltensor__V1__Graph *g) {
  mtw_template **slot = template_find(s, g->template_id);
  if (!slot && s->n_templates == MTI_TEMPLATES_MAX) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT,
                      "graph %llu: template %llu: the session keeps %u templates already",
                      (unsigned long long)s->graphs, (unsigned long long)g->template_id,
                      MTI_TEMPLATES_MAX);
    mtw_unpacked_free(&g->base);
    return;
  }
  mtw_template *t = template_new(g->template_id, g);
  if (!t) {
    mtw_session_defer(s, MT_ERR_OUT_OF_MEMORY, "graph %llu: no memory to keep it as a template",
                      (unsigned long long)s->graphs);
    mtw_unpacked_free(&g->base);
    return;
  }
  if (slot) {
    template_free(*slot);
    *slot = t;
  } else {
    s->templates[s->n_templates++] = t;
  }
}

int mtw_session_invoke(mtw_session *s, const Modaltensor__V1__Invoke *inv) {
  mtw_template **slot = inv->template_id ? template_find(s, inv->template_id) : NULL;
  if (!slot) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT, "invoke: no template %llu in this session",
                      (unsigned long long)inv->template_id);
    return 0;
  }
  mtw_template *t = *slot;
  if (inv->n_ids != t->nparams) {
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT,
                      "invoke: template %llu has %zu parameters, %zu ids given",
                      (unsigned long long)t->id, t->nparams, inv->n_ids);
    return 0;
  }
  for (size_t k = 0; k < t->nslots; k++)
    if (t->param[k] >= 0) *t->slots[k] = inv->ids[t->param[k]];
  int rc = mtw_session_graph(s, t->graph);
  for (size_t k = 0; k < t->nslots; k++) *t->slots[k] = t->orig[k];
  return rc;
}

void mtw_session_templates_clear(mtw_session *s) {
  for (size_t i = 0; i < s->n_templates; i++) template_free(s->templates[i]);
  s->n_templates = 0;
}
