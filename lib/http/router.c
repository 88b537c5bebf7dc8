/* Path routing: templates split into segments once; a request's path is
 * compared segment by segment. Literal segments beat parameters, a route
 * for the method beats one for any method ("*"), and a fixed number of
 * segments beats a trailing {name...}, which takes the rest of the path. */
#include <string.h>
#include <stdlib.h>

#include "http/http_int.h"

const char *const mc__method_names[MC__M_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"};

int mc__method_index(mc_slice m) {
  for (int i = 0; i < MC__M_OTHER; i++)
    if (mc_slice_eq(m, mc_slice_cstr(mc__method_names[i])))
      return i;
  return MC__M_OTHER;
}

/* Splits at '/'. Past max segments it returns max + 1, with the first max
 * in segs (a {name...} route may still take the rest). */
static uint32_t split(mc_slice path, mc_slice *segs, uint32_t max) {
  uint32_t n = 0;
  size_t i = 0;
  if (path.len && path.ptr[0] == '/')
    i = 1;
  size_t start = i;
  for (; i <= path.len; i++) {
    if (i == path.len || path.ptr[i] == '/') {
      if (n == max)
        return max + 1;
      segs[n++] = (mc_slice){path.ptr + start, i - start};
      start = i + 1;
    }
  }
  return n;
}

/* Parameter names are identifiers: they name model fields. */
static bool ident(const char *p, size_t n) {
  if (n == 0 || (p[0] >= '0' && p[0] <= '9'))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

int mc__router_add(mc__router *r, const mc_route *route, uint32_t index) {
  if (!route->path || route->path[0] != '/' || !route->method ||
      !route->handler)
    return MC_EINVAL;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    mc__route_entry *e = realloc(r->entries, cap * sizeof *e);
    if (!e)
      return MC_ENOMEM;
    r->entries = e;
    r->cap = cap;
  }
  mc__route_entry *e = &r->entries[r->n];
  memset(e, 0, sizeof *e);
  e->route = route;
  e->index = index;
  mc_slice segs[MC__MAX_SEGMENTS];
  uint32_t n = split(mc_slice_cstr(route->path), segs, MC__MAX_SEGMENTS);
  if (n > MC__MAX_SEGMENTS)
    return MC_EINVAL;
  uint32_t nparams = 0;
  e->any_method = !strcmp(route->method, "*");
  for (uint32_t i = 0; i < n; i++) {
    mc_slice s = segs[i];
    if (s.len >= 2 && s.ptr[0] == '{' && s.ptr[s.len - 1] == '}') {
      mc_slice name = {s.ptr + 1, s.len - 2};
      if (name.len > 3 && !memcmp(name.ptr + name.len - 3, "...", 3)) {
        if (i + 1 != n) /* only the last segment takes the rest */
          return MC_EINVAL;
        name.len -= 3;
        e->rest = true;
      }
      if (++nparams > MC__MAX_PARAMS || !ident(name.ptr, name.len))
        return MC_EINVAL;
      e->segs[i] = (mc__route_seg){name, true};
    } else {
      if (memchr(s.ptr, '{', s.len) || memchr(s.ptr, '}', s.len))
        return MC_EINVAL;
      e->segs[i] = (mc__route_seg){s, false};
      e->nstatic++;
    }
  }
  e->nsegs = n;
  for (size_t i = 0; i < r->n; i++) {
    mc__route_entry *o = &r->entries[i];
    if (strcmp(o->route->method, route->method) != 0 || o->nsegs != n ||
        o->rest != e->rest)
      continue;
    bool same = true;
    for (uint32_t k = 0; k < n && same; k++)
      same =
          o->segs[k].param == e->segs[k].param &&
          (e->segs[k].param || mc_slice_eq(o->segs[k].text, e->segs[k].text));
    if (same)
      return MC_EEXISTS;
  }
  r->n++;
  return 0;
}

void mc__router_free(mc__router *r) {
  free(r->entries);
  memset(r, 0, sizeof *r);
}

/* n may be MC__MAX_SEGMENTS + 1: more segments than segs holds. */
static bool entry_matches(const mc__route_entry *e, const mc_slice *segs,
                          uint32_t n) {
  if (e->rest ? n < e->nsegs : e->nsegs != n)
    return false;
  for (uint32_t i = 0; i < e->nsegs; i++) {
    if (e->segs[i].param) {
      /* {name...} may be empty: "/files/" matches "/files/{path...}" */
      if (segs[i].len == 0 && !(e->rest && i + 1 == e->nsegs))
        return false;
    } else if (!mc_slice_eq(e->segs[i].text, segs[i])) {
      return false;
    }
  }
  return true;
}

/* Whether e is the more specific match: more literal segments, then a
 * fixed length over one that takes the rest. */
static bool better(const mc__route_entry *e, const mc__route_entry *than) {
  if (!than)
    return true;
  if (e->nstatic != than->nstatic)
    return e->nstatic > than->nstatic;
  if (e->rest != than->rest)
    return !e->rest;
  return e->nsegs > than->nsegs;
}

void mc__router_match(const mc__router *r, mc_slice method, mc_slice path,
                      mc__match *m) {
  memset(m, 0, sizeof *m);
  mc_slice segs[MC__MAX_SEGMENTS];
  uint32_t n = split(path, segs, MC__MAX_SEGMENTS);
  int mi = mc__method_index(method);
  const mc__route_entry *best = NULL;
  const mc__route_entry *best_head = NULL; /* for HEAD falling back to GET */
  const mc__route_entry *best_any = NULL;  /* a "*" route */
  for (size_t i = 0; i < r->n; i++) {
    const mc__route_entry *e = &r->entries[i];
    if (!entry_matches(e, segs, n))
      continue;
    m->path_matched = true;
    if (e->any_method) {
      m->allow_mask |= (1u << MC__M_OTHER) - 1;
      if (!better(e, best_any))
        continue;
      best_any = e;
      continue;
    }
    int ri = mc__method_index(mc_slice_cstr(e->route->method));
    m->allow_mask |= 1u << ri;
    if (ri == MC__M_GET)
      m->allow_mask |= 1u << MC__M_HEAD;
    if (ri == mi && (ri != MC__M_OTHER ||
                     mc_slice_eq(method, mc_slice_cstr(e->route->method)))) {
      if (better(e, best))
        best = e;
    } else if (mi == MC__M_HEAD && ri == MC__M_GET) {
      if (better(e, best_head))
        best_head = e;
    }
  }
  if (m->path_matched)
    m->allow_mask |= 1u << MC__M_OPTIONS;
  /* the method's own route, else GET's for HEAD; a route for any method
   * where there is none of those or it is the more specific */
  if (!best)
    best = best_head;
  if (!best || (best_any && better(best_any, best)))
    best = best_any ? best_any : best;
  if (!best)
    return;
  m->entry = best;
  for (uint32_t i = 0; i < best->nsegs; i++)
    if (best->segs[i].param) {
      m->names[m->nparams] = best->segs[i].text;
      mc_slice v = segs[i];
      if (best->rest && i + 1 == best->nsegs) /* to the end of the path */
        v.len = (size_t)(path.ptr + path.len - v.ptr);
      m->raw_values[m->nparams] = v;
      m->nparams++;
    }
}

static int hexv(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int mc__percent_decode(mc_arena *a, mc_slice s, bool plus_is_space,
                       mc_slice *out) {
  if (!memchr(s.ptr, '%', s.len) &&
      !(plus_is_space && memchr(s.ptr, '+', s.len))) {
    *out = s;
    return 0;
  }
  char *d = mc_arena_alloc(a, s.len + 1);
  if (!d)
    return MC_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= s.len || (hi = hexv(s.ptr[i + 1])) < 0 ||
          (lo = hexv(s.ptr[i + 2])) < 0)
        return MC_EPARSE;
      d[k++] = (char)(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      d[k++] = ' ';
    } else {
      d[k++] = c;
    }
  }
  d[k] = 0;
  *out = (mc_slice){d, k};
  return 0;
}
