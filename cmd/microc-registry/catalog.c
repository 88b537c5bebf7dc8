/* The catalog: services by ID, checks by ID, instances by service name,
 * and the index that every change advances. Each change wakes the
 * blocking queries whose answers it can touch: watchers of the service's
 * name, and watchers of registry-wide answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

registry R;

/* ---- copies ----------------------------------------------------------------
 */

/* Definitions are copied by encoding and decoding them again into an arena
 * of their own: one code path, and what is kept is what the store and a
 * client would read back. */
static int copy_service(const mc_consul_service *in, mc_arena **arena,
                        mc_consul_service *out) {
  mc_consul_service shallow = *in;
  shallow.checks = NULL;
  shallow.nchecks = 0;
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc_consul_encode_service(&shallow, &b);
  if (!err)
    err = mc_arena_new(arena, 1024, 0);
  if (!err) {
    char msg[128];
    err = mc_consul_decode_service(mc_buf_slice(&b), *arena, out, msg,
                                   sizeof msg);
    if (err) {
      mc_arena_free(*arena);
      *arena = NULL;
    }
  }
  mc_buf_free(&b);
  return err ? MC_ENOMEM : 0;
}

static int copy_check(const mc_consul_check *in, mc_arena **arena,
                      mc_consul_check *out) {
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc_consul_encode_check(in, &b);
  if (!err)
    err = mc_arena_new(arena, 512, 0);
  if (!err) {
    char msg[128];
    err =
        mc_consul_decode_check(mc_buf_slice(&b), *arena, out, msg, sizeof msg);
    if (err) {
      mc_arena_free(*arena);
      *arena = NULL;
    }
  }
  mc_buf_free(&b);
  return err ? MC_ENOMEM : 0;
}

/* ---- lookups
 * ------------------------------------------------------------------ */

reg_service *reg_service_get(mc_slice id) {
  return mc_map_get(&R.services, id);
}

reg_check *reg_check_get(mc_slice id) {
  return mc_map_get(&R.checks, id);
}

reg_name *reg_name_get(mc_slice name) {
  return mc_map_get(&R.names, name);
}

static reg_name *name_get_or_add(const char *name) {
  reg_name *n = reg_name_get(mc_slice_cstr(name));
  if (n)
    return n;
  n = calloc(1, sizeof *n);
  if (!n || !(n->name = strdup(name)) ||
      mc_map_put(&R.names, mc_slice_cstr(name), n, NULL) != 0) {
    if (n)
      free(n->name);
    free(n);
    return NULL;
  }
  return n;
}

static void name_remove_inst(reg_name *n, reg_service *s) {
  for (size_t i = 0; i < n->n; i++)
    if (n->inst[i] == s) {
      memmove(&n->inst[i], &n->inst[i + 1], (n->n - i - 1) * sizeof *n->inst);
      n->n--;
      return;
    }
}

static int name_add_inst(reg_name *n, reg_service *s) {
  if (n->n == n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 4;
    reg_service **inst = realloc(n->inst, cap * sizeof *inst);
    if (!inst)
      return MC_ENOMEM;
    n->inst = inst;
    n->cap = cap;
  }
  n->inst[n->n++] = s;
  return 0;
}

mc_health reg_service_health(const reg_service *s) {
  mc_health worst = MC_HEALTH_PASSING;
  for (size_t i = 0; i < s->nchecks; i++)
    if (s->checks[i]->status > worst)
      worst = s->checks[i]->status;
  return worst;
}

bool reg_service_has_tag(const reg_service *s, mc_slice tag) {
  for (size_t i = 0; i < s->def.ntags; i++)
    if (mc_slice_eq(mc_slice_cstr(s->def.tags[i]), tag))
      return true;
  return false;
}

/* ---- changes
 * --------------------------------------------------------------------- */

static uint64_t bump(void) {
  return ++R.index;
}

static void wake(reg_name *n) {
  if (n)
    mc_waitq_wake_all(&n->watchers);
  mc_waitq_wake_all(&R.any);
}

void reg_check_free(reg_check *c) {
  free(c->id);
  free(c->service_id);
  free(c->output);
  mc_arena_free(c->arena);
  free(c);
}

/* Takes c out of the catalog; its fiber, if any, frees it. */
static void check_unlink(reg_check *c) {
  mc_map_del(&R.checks, mc_slice_cstr(c->id));
  reg_service *s = c->svc;
  if (s)
    for (size_t i = 0; i < s->nchecks; i++)
      if (s->checks[i] == c) {
        memmove(&s->checks[i], &s->checks[i + 1],
                (s->nchecks - i - 1) * sizeof *s->checks);
        s->nchecks--;
        break;
      }
  c->svc = NULL;
  c->removed = true;
  if (c->has_fiber)
    mc_waitq_wake_all(&c->wake);
  else
    reg_check_free(c);
}

static int service_add_check(reg_service *s, reg_check *c) {
  if (s->nchecks == s->checks_cap) {
    size_t cap = s->checks_cap ? s->checks_cap * 2 : 2;
    reg_check **cs = realloc(s->checks, cap * sizeof *cs);
    if (!cs)
      return MC_ENOMEM;
    s->checks = cs;
    s->checks_cap = cap;
  }
  s->checks[s->nchecks++] = c;
  c->svc = s;
  return 0;
}

/* Adds or updates a check from def under id; keeps the status and output
 * of a check that exists unless def says otherwise. A check that moves to
 * another service (or between a service and the node) starts over. */
static int check_put(const char *id, const mc_consul_check *def,
                     reg_service *svc, uint64_t index, bool *created,
                     reg_check **out) {
  reg_check *c = reg_check_get(mc_slice_cstr(id));
  if (c && c->svc != svc) {
    check_unlink(c);
    c = NULL;
  }
  mc_arena *arena;
  mc_consul_check copy;
  int err = copy_check(def, &arena, &copy);
  if (err)
    return err;
  *created = c == NULL;
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c || !(c->id = strdup(id)) || !(c->output = strdup("")) ||
        mc_map_put(&R.checks, mc_slice_cstr(id), c, NULL) != 0) {
      if (c) {
        free(c->id);
        free(c->output);
        free(c);
      }
      mc_arena_free(arena);
      return MC_ENOMEM;
    }
    c->create_index = index;
    c->status = def->status ? def->status : MC_HEALTH_CRITICAL;
    if (c->status == MC_HEALTH_CRITICAL)
      c->critical_since_ms = mc_wall_ms();
  } else {
    mc_arena_free(c->arena);
    if (def->status)
      c->status = def->status;
  }
  c->arena = arena;
  c->def = copy;
  c->modify_index = index;
  char *sid = strdup(svc ? svc->def.id : def->service_id);
  if (!sid)
    return MC_ENOMEM;
  free(c->service_id);
  c->service_id = sid;
  if (c->def.kind == MC_CHECK_TTL && !c->ttl_deadline_ms)
    c->ttl_deadline_ms =
        mc_now_ns() / 1000000 + (uint64_t)(c->def.ttl_ns / 1000000);
  if (svc && !c->svc)
    err = service_add_check(svc, c);
  *out = c;
  return err;
}

int reg_service_put(const mc_consul_service *def, bool replace_checks,
                    bool persist, char *err, size_t errcap) {
  /* Check IDs as Consul gives them: service:<id>, or service:<id>:<n>
   * counting from 1 when there are several. */
  size_t n = def->nchecks;
  char **ids = calloc(n ? n : 1, sizeof *ids);
  if (!ids)
    return MC_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    const mc_consul_check *c = &def->checks[i];
    if (*c->id)
      ids[i] = strdup(c->id);
    else if (n == 1 && asprintf(&ids[i], "service:%s", def->id) < 0)
      ids[i] = NULL;
    else if (n > 1 && asprintf(&ids[i], "service:%s:%zu", def->id, i + 1) < 0)
      ids[i] = NULL;
    if (!ids[i])
      rc = MC_ENOMEM;
    for (size_t k = 0; k < i && !rc; k++)
      if (!strcmp(ids[k], ids[i])) {
        snprintf(err, errcap, "Invalid check: CheckID \"%s\" is used twice",
                 ids[i]);
        rc = MC_EINVAL;
      }
  }
  uint64_t index = rc ? 0 : bump();
  reg_service *s = rc ? NULL : reg_service_get(mc_slice_cstr(def->id));
  reg_name *old_name = NULL;
  if (!rc && !s) {
    s = calloc(1, sizeof *s);
    if (!s || mc_map_put(&R.services, mc_slice_cstr(def->id), s, NULL)) {
      free(s);
      rc = MC_ENOMEM;
    } else {
      s->create_index = index;
    }
  } else if (s) {
    old_name = s->name;
  }
  mc_arena *arena = NULL;
  mc_consul_service copy;
  if (!rc && (rc = copy_service(def, &arena, &copy)) != 0 && !s->arena) {
    mc_map_del(&R.services, mc_slice_cstr(def->id));
    free(s);
    s = NULL;
  }
  if (!rc) {
    mc_arena_free(s->arena);
    s->arena = arena;
    s->def = copy;
    s->modify_index = index;
    reg_name *nm = name_get_or_add(copy.name);
    if (!nm)
      rc = MC_ENOMEM;
    else if (nm != old_name) {
      if (old_name) {
        name_remove_inst(old_name, s);
        old_name->index = index;
        wake(old_name);
      }
      rc = name_add_inst(nm, s);
      s->name = nm;
    }
    if (nm)
      nm->index = index;
  }
  /* checks */
  for (size_t i = 0; i < n && !rc; i++) {
    mc_consul_check c = def->checks[i];
    char name[300];
    if (!*c.name) {
      snprintf(name, sizeof name, "Service '%s' check", def->name);
      c.name = name;
    }
    c.service_id = def->id;
    c.id = ids[i];
    bool created;
    reg_check *rc_check;
    rc = check_put(ids[i], &c, s, index, &created, &rc_check);
    if (!rc && created && !R.stopping)
      rc = reg_check_start(rc_check);
  }
  if (!rc && replace_checks)
    for (size_t i = s->nchecks; i-- > 0;) {
      bool named = false;
      for (size_t k = 0; k < n && !named; k++)
        named = !strcmp(s->checks[i]->id, ids[k]);
      if (!named) {
        if (persist && R.store)
          reg_store_check_del(R.store, s->checks[i]->id);
        check_unlink(s->checks[i]);
      }
    }
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
  if (rc)
    return rc;
  R.services_index = index;
  if (persist && R.store && reg_store_service(R.store, s) != 0) {
    snprintf(err, errcap, "the registry could not write its data");
    return MC_EIO;
  }
  wake(s->name);
  return 0;
}

int reg_service_del(const char *id) {
  reg_service *s = reg_service_get(mc_slice_cstr(id));
  if (!s)
    return MC_ENOTFOUND;
  uint64_t index = bump();
  while (s->nchecks)
    check_unlink(s->checks[s->nchecks - 1]);
  reg_name *nm = s->name;
  if (nm) {
    name_remove_inst(nm, s);
    nm->index = index;
  }
  R.services_index = index;
  mc_map_del(&R.services, mc_slice_cstr(id));
  if (R.store)
    reg_store_service_del(R.store, id);
  mc_arena_free(s->arena);
  free(s->checks);
  free(s);
  wake(nm);
  return 0;
}

int reg_check_put(const mc_consul_check *def, bool persist, char *err,
                  size_t errcap) {
  reg_service *svc = NULL;
  if (*def->service_id) {
    svc = reg_service_get(mc_slice_cstr(def->service_id));
    if (!svc) {
      snprintf(err, errcap, "ServiceID \"%s\" does not exist", def->service_id);
      return MC_EINVAL;
    }
  }
  const char *id = *def->id ? def->id : def->name;
  uint64_t index = bump();
  bool created;
  reg_check *c;
  int rc = check_put(id, def, svc, index, &created, &c);
  if (rc)
    return rc;
  if (created && !R.stopping && (rc = reg_check_start(c)) != 0)
    return rc;
  if (svc && svc->name)
    svc->name->index = index;
  if (persist && R.store && reg_store_check(R.store, c) != 0) {
    snprintf(err, errcap, "the registry could not write its data");
    return MC_EIO;
  }
  wake(svc ? svc->name : NULL);
  return 0;
}

int reg_check_del(const char *id) {
  reg_check *c = reg_check_get(mc_slice_cstr(id));
  if (!c)
    return MC_ENOTFOUND;
  uint64_t index = bump();
  reg_name *nm = c->svc ? c->svc->name : NULL;
  if (nm)
    nm->index = index;
  if (R.store)
    reg_store_check_del(R.store, id);
  check_unlink(c);
  wake(nm);
  return 0;
}

void reg_check_set(reg_check *c, mc_health status, const char *output,
                   size_t outlen) {
  if (c->removed)
    return;
  if (outlen > REG_OUTPUT_MAX)
    outlen = REG_OUTPUT_MAX;
  char *o = malloc(outlen + 1);
  if (o) {
    memcpy(o, output, outlen);
    o[outlen] = 0;
    free(c->output);
    c->output = o;
  }
  if (status == c->status)
    return;
  c->status = status;
  uint64_t index = bump();
  c->modify_index = index;
  if (status == MC_HEALTH_CRITICAL)
    c->critical_since_ms = mc_wall_ms();
  else
    c->critical_since_ms = 0;
  reg_name *nm = c->svc ? c->svc->name : NULL;
  if (nm)
    nm->index = index;
  if (R.store)
    reg_store_check(R.store, c);
  wake(nm);
}

void reg_catalog_free(void) {
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.checks, &it, NULL, &v))
    reg_check_free(v);
  it = 0;
  while (mc_map_next(&R.services, &it, NULL, &v)) {
    reg_service *s = v;
    mc_arena_free(s->arena);
    free(s->checks);
    free(s);
  }
  it = 0;
  while (mc_map_next(&R.names, &it, NULL, &v)) {
    reg_name *n = v;
    free(n->name);
    free(n->inst);
    free(n);
  }
  mc_map_free(&R.checks);
  mc_map_free(&R.services);
  mc_map_free(&R.names);
}
