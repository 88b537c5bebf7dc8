/* Consul's HTTP API, the subset that clients use: agent, health, catalog
 * and status endpoints, with blocking queries. Answers carry Consul's field
 * names and nesting; errors are Consul's plain-text messages. */
#include <jansson.h>
#include <microc/options.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define MAX_TAGS 16
#define WAIT_DEFAULT_MS (5u * 60 * 1000)
#define WAIT_MAX_MS (10u * 60 * 1000)

/* ---- answers ------------------------------------------------------------- */

static int plain(mc_req *req, int status, const char *msg) {
  return mc_res_send(req, status, MC_LIT("text/plain; charset=utf-8"),
                     mc_slice_cstr(msg));
}

static int ok_empty(mc_req *req) {
  return mc_res_send(req, 200, MC_LIT("text/plain; charset=utf-8"), MC_LIT(""));
}

static int json_answer(mc_req *req, mc_buf *b, uint64_t index) {
  char idx[24];
  int n = snprintf(idx, sizeof idx, "%llu",
                   (unsigned long long)(index ? index : 1));
  mc_res_header(req, MC_LIT("X-Consul-Index"), (mc_slice){idx, (size_t)n});
  mc_res_header(req, MC_LIT("X-Consul-KnownLeader"), MC_LIT("true"));
  mc_res_header(req, MC_LIT("X-Consul-LastContact"), MC_LIT("0"));
  int err = b->len > 0 ? 0 : MC_ENOMEM;
  if (!err)
    err = mc_res_json(req, 200, mc_buf_slice(b));
  mc_buf_free(b);
  return err;
}

static void js(mc_buf *b, const char *s) {
  mc_buf_append_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void dur(mc_buf *b, int64_t ns) {
  mc_buf_append_char(b, '"');
  if (ns)
    mc_go_duration_format(ns, b);
  mc_buf_append_char(b, '"');
}

/* ---- pieces of answers ------------------------------------------------------
 */

static void tagged_addresses(mc_buf *b) {
  mc_buf_append_cstr(b, "{\"lan\":");
  js(b, R.address);
  mc_buf_append_cstr(b, ",\"lan_ipv4\":");
  js(b, R.address);
  mc_buf_append_cstr(b, ",\"wan\":");
  js(b, R.address);
  mc_buf_append_cstr(b, ",\"wan_ipv4\":");
  js(b, R.address);
  mc_buf_append_char(b, '}');
}

static void node_json(mc_buf *b) {
  mc_buf_append_cstr(b, "{\"ID\":");
  js(b, R.node_id);
  mc_buf_append_cstr(b, ",\"Node\":");
  js(b, R.node);
  mc_buf_append_cstr(b, ",\"Address\":");
  js(b, R.address);
  mc_buf_append_cstr(b, ",\"Datacenter\":");
  js(b, R.datacenter);
  mc_buf_append_cstr(b, ",\"TaggedAddresses\":");
  tagged_addresses(b);
  mc_buf_appendf(b,
                 ",\"Meta\":{\"consul-network-segment\":\"\"},"
                 "\"CreateIndex\":%llu,\"ModifyIndex\":%llu}",
                 (unsigned long long)R.node_index,
                 (unsigned long long)R.node_index);
}

static void tags_json(mc_buf *b, const reg_service *s) {
  mc_buf_append_char(b, '[');
  for (size_t i = 0; s && i < s->def.ntags; i++) {
    if (i)
      mc_buf_append_char(b, ',');
    js(b, s->def.tags[i]);
  }
  mc_buf_append_char(b, ']');
}

static void meta_json(mc_buf *b, const reg_service *s) {
  mc_buf_append_char(b, '{');
  for (size_t i = 0; i < s->def.nmeta; i++) {
    if (i)
      mc_buf_append_char(b, ',');
    js(b, s->def.meta[i].key);
    mc_buf_append_char(b, ':');
    js(b, s->def.meta[i].value);
  }
  mc_buf_append_char(b, '}');
}

static void weights_json(mc_buf *b, const reg_service *s) {
  mc_buf_appendf(b, "{\"Passing\":%lld,\"Warning\":%lld}",
                 (long long)s->def.weight_passing,
                 (long long)s->def.weight_warning);
}

/* /v1/agent/services entries */
static void agent_service_json(mc_buf *b, const reg_service *s) {
  mc_buf_append_cstr(b, "{\"ID\":");
  js(b, s->def.id);
  mc_buf_append_cstr(b, ",\"Service\":");
  js(b, s->def.name);
  mc_buf_append_cstr(b, ",\"Tags\":");
  tags_json(b, s);
  mc_buf_append_cstr(b, ",\"Meta\":");
  meta_json(b, s);
  mc_buf_appendf(b, ",\"Port\":%d,\"Address\":", s->def.port);
  js(b, s->def.address);
  mc_buf_append_cstr(b, ",\"Weights\":");
  weights_json(b, s);
  mc_buf_appendf(b, ",\"EnableTagOverride\":%s,\"Datacenter\":",
                 s->def.enable_tag_override ? "true" : "false");
  js(b, R.datacenter);
  mc_buf_append_char(b, '}');
}

/* the Service of a /v1/health/service entry */
static void health_service_json(mc_buf *b, const reg_service *s) {
  mc_buf_append_cstr(b, "{\"ID\":");
  js(b, s->def.id);
  mc_buf_append_cstr(b, ",\"Service\":");
  js(b, s->def.name);
  mc_buf_append_cstr(b, ",\"Tags\":");
  tags_json(b, s);
  mc_buf_append_cstr(b, ",\"Address\":");
  js(b, s->def.address);
  mc_buf_append_cstr(b, ",\"Meta\":");
  meta_json(b, s);
  mc_buf_appendf(b, ",\"Port\":%d,\"Weights\":", s->def.port);
  weights_json(b, s);
  mc_buf_appendf(b,
                 ",\"EnableTagOverride\":%s,\"Proxy\":{\"Mode\":\"\","
                 "\"MeshGateway\":{},\"Expose\":{}},\"Connect\":{},"
                 "\"PeerName\":\"\",\"CreateIndex\":%llu,\"ModifyIndex\":%llu}",
                 s->def.enable_tag_override ? "true" : "false",
                 (unsigned long long)s->create_index,
                 (unsigned long long)s->modify_index);
}

static void check_json(mc_buf *b, const reg_check *c) {
  const reg_service *s = c->svc;
  mc_buf_append_cstr(b, "{\"Node\":");
  js(b, R.node);
  mc_buf_append_cstr(b, ",\"CheckID\":");
  js(b, c->id);
  mc_buf_append_cstr(b, ",\"Name\":");
  js(b, c->def.name);
  mc_buf_append_cstr(b, ",\"Status\":");
  js(b, mc_health_name(c->status));
  mc_buf_append_cstr(b, ",\"Notes\":");
  js(b, c->def.notes);
  mc_buf_append_cstr(b, ",\"Output\":");
  js(b, c->output);
  mc_buf_append_cstr(b, ",\"ServiceID\":");
  js(b, s ? s->def.id : "");
  mc_buf_append_cstr(b, ",\"ServiceName\":");
  js(b, s ? s->def.name : "");
  mc_buf_append_cstr(b, ",\"ServiceTags\":");
  tags_json(b, s);
  mc_buf_append_cstr(b, ",\"Type\":");
  js(b, mc_check_kind_name(c->def.kind));
  mc_buf_append_cstr(b, ",\"Interval\":");
  dur(b, c->def.interval_ns);
  mc_buf_append_cstr(b, ",\"Timeout\":");
  dur(b, c->def.timeout_ns);
  mc_buf_appendf(b,
                 ",\"ExposedPort\":0,\"Definition\":{},\"CreateIndex\":%llu,"
                 "\"ModifyIndex\":%llu}",
                 (unsigned long long)c->create_index,
                 (unsigned long long)c->modify_index);
}

/* The node's own check, which Consul always lists. */
static void serf_json(mc_buf *b) {
  mc_buf_append_cstr(b, "{\"Node\":");
  js(b, R.node);
  mc_buf_appendf(b,
                 ",\"CheckID\":\"serfHealth\",\"Name\":\"Serf Health "
                 "Status\",\"Status\":\"passing\",\"Notes\":\"\",\"Output\":"
                 "\"Agent alive and reachable\",\"ServiceID\":\"\","
                 "\"ServiceName\":\"\",\"ServiceTags\":[],\"Type\":\"\","
                 "\"Interval\":\"\",\"Timeout\":\"\",\"ExposedPort\":0,"
                 "\"Definition\":{},\"CreateIndex\":%llu,\"ModifyIndex\":%llu}",
                 (unsigned long long)R.node_index,
                 (unsigned long long)R.node_index);
}

static void catalog_service_json(mc_buf *b, const reg_service *s) {
  mc_buf_append_cstr(b, "{\"ID\":");
  js(b, R.node_id);
  mc_buf_append_cstr(b, ",\"Node\":");
  js(b, R.node);
  mc_buf_append_cstr(b, ",\"Address\":");
  js(b, R.address);
  mc_buf_append_cstr(b, ",\"Datacenter\":");
  js(b, R.datacenter);
  mc_buf_append_cstr(b, ",\"TaggedAddresses\":");
  tagged_addresses(b);
  mc_buf_append_cstr(b, ",\"NodeMeta\":{\"consul-network-segment\":\"\"},"
                        "\"ServiceKind\":\"\",\"ServiceID\":");
  js(b, s->def.id);
  mc_buf_append_cstr(b, ",\"ServiceName\":");
  js(b, s->def.name);
  mc_buf_append_cstr(b, ",\"ServiceTags\":");
  tags_json(b, s);
  mc_buf_append_cstr(b, ",\"ServiceAddress\":");
  js(b, s->def.address);
  mc_buf_append_cstr(b, ",\"ServiceWeights\":");
  weights_json(b, s);
  mc_buf_append_cstr(b, ",\"ServiceMeta\":");
  meta_json(b, s);
  mc_buf_appendf(b,
                 ",\"ServicePort\":%d,\"ServiceEnableTagOverride\":%s,"
                 "\"ServiceProxy\":{\"Mode\":\"\",\"MeshGateway\":{},"
                 "\"Expose\":{}},\"ServiceConnect\":{},\"CreateIndex\":%llu,"
                 "\"ModifyIndex\":%llu}",
                 s->def.port, s->def.enable_tag_override ? "true" : "false",
                 (unsigned long long)s->create_index,
                 (unsigned long long)s->modify_index);
}

/* ---- query parameters
 * ---------------------------------------------------------- */

typedef struct query {
  uint64_t index; /* 0: do not block */
  uint64_t wait_ms;
  mc_slice tags[MAX_TAGS];
  size_t ntags;
  bool passing;
} query;

/* Reads what every read endpoint takes; answers 400 or 500 itself and
 * returns nonzero when the query is refused. */
static int read_query(mc_req *req, query *q) {
  memset(q, 0, sizeof *q);
  mc_slice v = mc_req_query_param(req, "dc");
  if (v.len && !mc_slice_eq(v, mc_slice_cstr(R.datacenter)))
    return plain(req, 500, "No path to datacenter"), 1;
  if (mc_req_query_param(req, "filter").len)
    return plain(req, 400,
                 "filter expressions are not supported by "
                 "microc-registry"),
           1;
  v = mc_req_query_param(req, "index");
  if (v.len) {
    int64_t i;
    if (mc_slice_to_i64(v, &i) != 0 || i < 0)
      return plain(req, 400, "Invalid index"), 1;
    q->index = (uint64_t)i;
  }
  q->wait_ms = WAIT_DEFAULT_MS;
  v = mc_req_query_param(req, "wait");
  if (v.len) {
    int64_t ns;
    int64_t ms;
    if (mc_parse_go_duration(v, &ns) == 0 && ns >= 0)
      q->wait_ms = (uint64_t)(ns / 1000000);
    else if (mc_slice_to_i64(v, &ms) == 0 && ms >= 0) /* as older clients */
      q->wait_ms = (uint64_t)ms * 1000;
    else
      return plain(req, 400, "Invalid wait time"), 1;
    if (q->wait_ms > WAIT_MAX_MS)
      q->wait_ms = WAIT_MAX_MS;
  }
  /* Consul spreads the wake-ups of many watchers by up to a 16th. */
  q->wait_ms += q->wait_ms / 16 ? mc_rand64() % (q->wait_ms / 16) : 0;
  q->ntags = mc_req_query_all(req, "tag", q->tags, MAX_TAGS);
  if (q->ntags > MAX_TAGS)
    return plain(req, 400, "too many tag parameters"), 1;
  v = mc_req_query_param(req, "passing");
  if (v.ptr) {
    if (!v.len || mc_slice_eq_nocase(v, MC_LIT("true")) ||
        mc_slice_eq(v, MC_LIT("1")))
      q->passing = true;
    else if (!mc_slice_eq_nocase(v, MC_LIT("false")) &&
             !mc_slice_eq(v, MC_LIT("0")))
      return plain(req, 400, "Invalid value for ?passing"), 1;
  }
  return 0;
}

/* ---- blocking queries
 * ------------------------------------------------------------ */

/* The index of an answer about one service name. A name never seen is
 * answered with the index of the set of names, and waits for any change. */
static uint64_t name_index(mc_slice name) {
  reg_name *n = reg_name_get(name);
  return n ? n->index : R.services_index;
}

/* Waits are cut into slices of a second so that a draining registry
 * answers its long polls at once instead of holding its shutdown up. */
static uint64_t wait_slice(uint64_t left_ns) {
  uint64_t ms = left_ns / 1000000 + 1;
  return ms > 1000 ? 1000 : ms;
}

/* Waits until index_of() passes q->index or the wait is over. The answer
 * is then computed from whatever is current, as Consul does. */
static void block_name(query *q, mc_slice name) {
  if (!q->index)
    return;
  uint64_t deadline = mc_now_ns() + q->wait_ms * 1000000;
  while (name_index(name) <= q->index) {
    uint64_t now = mc_now_ns();
    if (now >= deadline)
      return;
    reg_name *n = reg_name_get(name);
    mc_waitq *wq = n ? &n->watchers : &R.any;
    if (mc_waitq_wait(wq, wait_slice(deadline - now)) == MC_ECANCELED ||
        mc_app_draining(R.app))
      return;
  }
}

static void block_any(query *q, const uint64_t *index) {
  if (!q->index)
    return;
  uint64_t deadline = mc_now_ns() + q->wait_ms * 1000000;
  while (*index <= q->index) {
    uint64_t now = mc_now_ns();
    if (now >= deadline)
      return;
    if (mc_waitq_wait(&R.any, wait_slice(deadline - now)) == MC_ECANCELED ||
        mc_app_draining(R.app))
      return;
  }
}

static bool tags_match(const reg_service *s, const query *q) {
  for (size_t i = 0; i < q->ntags; i++)
    if (!reg_service_has_tag(s, q->tags[i]))
      return false;
  return true;
}

/* ---- health
 * ------------------------------------------------------------------------ */

static int health_service(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  mc_slice name = mc_req_param(req, "name");
  block_name(&q, name);
  reg_name *n = reg_name_get(name);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  bool first = true;
  for (size_t i = 0; n && i < n->n; i++) {
    reg_service *s = n->inst[i];
    if (!tags_match(s, &q) ||
        (q.passing && reg_service_health(s) != MC_HEALTH_PASSING))
      continue;
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    mc_buf_append_cstr(&b, "{\"Node\":");
    node_json(&b);
    mc_buf_append_cstr(&b, ",\"Service\":");
    health_service_json(&b, s);
    mc_buf_append_cstr(&b, ",\"Checks\":[");
    serf_json(&b);
    for (size_t k = 0; k < s->nchecks; k++) {
      mc_buf_append_char(&b, ',');
      check_json(&b, s->checks[k]);
    }
    mc_buf_append_cstr(&b, "]}");
  }
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, name_index(name));
}

static int health_checks(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  mc_slice name = mc_req_param(req, "name");
  block_name(&q, name);
  reg_name *n = reg_name_get(name);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  bool first = true;
  for (size_t i = 0; n && i < n->n; i++)
    for (size_t k = 0; k < n->inst[i]->nchecks; k++) {
      if (!first)
        mc_buf_append_char(&b, ',');
      first = false;
      check_json(&b, n->inst[i]->checks[k]);
    }
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, name_index(name));
}

/* Checks by state, and a node's checks: every check the registry has. */
static int list_checks(mc_req *req, int state /* 0: any */) {
  query q;
  if (read_query(req, &q))
    return 0;
  block_any(&q, &R.index);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  bool first = true;
  if (!state || state == MC_HEALTH_PASSING) {
    serf_json(&b);
    first = false;
  }
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.checks, &it, NULL, &v)) {
    reg_check *c = v;
    if (state && (int)c->status != state)
      continue;
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    check_json(&b, c);
  }
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, R.index);
}

static int health_state(mc_req *req) {
  mc_slice st = mc_req_param(req, "state");
  mc_health h;
  if (mc_slice_eq(st, MC_LIT("any")))
    return list_checks(req, 0);
  if (mc_health_parse(st, &h) != 0)
    return plain(req, 400, "Invalid state");
  return list_checks(req, (int)h);
}

static int health_node(mc_req *req) {
  if (!mc_slice_eq(mc_req_param(req, "node"), mc_slice_cstr(R.node))) {
    mc_buf b;
    mc_buf_init(&b, 0);
    mc_buf_append_cstr(&b, "[]");
    return json_answer(req, &b, R.index);
  }
  return list_checks(req, 0);
}

/* ---- catalog
 * ------------------------------------------------------------------------- */

static int catalog_services(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  block_any(&q, &R.services_index);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '{');
  bool first = true;
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.names, &it, NULL, &v)) {
    reg_name *n = v;
    if (!n->n)
      continue;
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    js(&b, n->name);
    mc_buf_append_cstr(&b, ":[");
    /* the union of the instances' tags, each once */
    size_t count = 0;
    for (size_t i = 0; i < n->n; i++)
      for (size_t t = 0; t < n->inst[i]->def.ntags; t++) {
        const char *tag = n->inst[i]->def.tags[t];
        bool seen = false;
        for (size_t j = 0; j <= i && !seen; j++)
          for (size_t u = 0; u < n->inst[j]->def.ntags && !seen; u++) {
            if (j == i && u >= t)
              break;
            seen = !strcmp(n->inst[j]->def.tags[u], tag);
          }
        if (seen)
          continue;
        if (count++)
          mc_buf_append_char(&b, ',');
        js(&b, tag);
      }
    mc_buf_append_char(&b, ']');
  }
  mc_buf_append_char(&b, '}');
  return json_answer(req, &b, R.services_index);
}

static int catalog_service(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  mc_slice name = mc_req_param(req, "name");
  block_name(&q, name);
  reg_name *n = reg_name_get(name);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  bool first = true;
  for (size_t i = 0; n && i < n->n; i++) {
    if (!tags_match(n->inst[i], &q))
      continue;
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    catalog_service_json(&b, n->inst[i]);
  }
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, name_index(name));
}

static int catalog_nodes(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  node_json(&b);
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, R.node_index);
}

static int catalog_node(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  mc_buf b;
  mc_buf_init(&b, 0);
  if (!mc_slice_eq(mc_req_param(req, "node"), mc_slice_cstr(R.node))) {
    mc_buf_append_cstr(&b, "null");
    return json_answer(req, &b, R.index);
  }
  block_any(&q, &R.index);
  mc_buf_append_cstr(&b, "{\"Node\":");
  node_json(&b);
  mc_buf_append_cstr(&b, ",\"Services\":{");
  bool first = true;
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.services, &it, NULL, &v)) {
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    js(&b, ((reg_service *)v)->def.id);
    mc_buf_append_char(&b, ':');
    agent_service_json(&b, v);
  }
  mc_buf_append_cstr(&b, "}}");
  return json_answer(req, &b, R.index);
}

static int catalog_datacenters(mc_req *req) {
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  js(&b, R.datacenter);
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, R.index);
}

/* ---- status
 * ---------------------------------------------------------------------------
 */

static void raft_address(mc_buf *b) {
  char a[96];
  snprintf(a, sizeof a, "%s:8300", R.address);
  js(b, a);
}

static int status_leader(mc_req *req) {
  mc_buf b;
  mc_buf_init(&b, 0);
  raft_address(&b);
  return json_answer(req, &b, R.index);
}

static int status_peers(mc_req *req) {
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '[');
  raft_address(&b);
  mc_buf_append_char(&b, ']');
  return json_answer(req, &b, R.index);
}

/* ---- agent: reads
 * --------------------------------------------------------------------- */

static int agent_self(mc_req *req) {
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_cstr(&b, "{\"Config\":{\"Datacenter\":");
  js(&b, R.datacenter);
  mc_buf_append_cstr(&b, ",\"NodeName\":");
  js(&b, R.node);
  mc_buf_append_cstr(&b, ",\"NodeID\":");
  js(&b, R.node_id);
  mc_buf_append_cstr(&b, ",\"Server\":true,\"Revision\":\"microc\","
                         "\"Version\":\"1.15.0\",\"BuildDate\":\"\"},"
                         "\"Member\":{\"Name\":");
  js(&b, R.node);
  mc_buf_append_cstr(&b, ",\"Addr\":");
  js(&b, R.address);
  mc_buf_append_cstr(&b, ",\"Port\":8301,\"Tags\":{\"role\":\"consul\","
                         "\"dc\":");
  js(&b, R.datacenter);
  mc_buf_appendf(&b,
                 "},\"Status\":1},\"Meta\":{\"consul-network-segment\":\"\"},"
                 "\"xDS\":null,\"Stats\":{\"microc\":{\"version\":\"%s\","
                 "\"services\":\"%zu\",\"checks\":\"%zu\"}}}",
                 MC_VERSION, mc_map_len(&R.services), mc_map_len(&R.checks));
  return json_answer(req, &b, R.index);
}

static int agent_members(mc_req *req) {
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_cstr(&b, "[{\"Name\":");
  js(&b, R.node);
  mc_buf_append_cstr(&b, ",\"Addr\":");
  js(&b, R.address);
  mc_buf_append_cstr(&b, ",\"Port\":8301,\"Tags\":{\"role\":\"consul\","
                         "\"dc\":");
  js(&b, R.datacenter);
  mc_buf_append_cstr(&b, "},\"Status\":1}]");
  return json_answer(req, &b, R.index);
}

static int agent_services(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  block_any(&q, &R.index);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '{');
  bool first = true;
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.services, &it, NULL, &v)) {
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    js(&b, ((reg_service *)v)->def.id);
    mc_buf_append_char(&b, ':');
    agent_service_json(&b, v);
  }
  mc_buf_append_char(&b, '}');
  return json_answer(req, &b, R.index);
}

static int agent_service(mc_req *req) {
  mc_slice id = mc_req_param(req, "id");
  reg_service *s = reg_service_get(id);
  if (!s) {
    char msg[300];
    snprintf(msg, sizeof msg, "unknown service ID: %.*s",
             (int)(id.len > 200 ? 200 : id.len), id.ptr);
    return plain(req, 404, msg);
  }
  mc_buf b;
  mc_buf_init(&b, 0);
  agent_service_json(&b, s);
  return json_answer(req, &b, s->modify_index);
}

static int agent_checks(mc_req *req) {
  query q;
  if (read_query(req, &q))
    return 0;
  block_any(&q, &R.index);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '{');
  bool first = true;
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.checks, &it, NULL, &v)) {
    if (!first)
      mc_buf_append_char(&b, ',');
    first = false;
    js(&b, ((reg_check *)v)->id);
    mc_buf_append_char(&b, ':');
    check_json(&b, v);
  }
  mc_buf_append_char(&b, '}');
  return json_answer(req, &b, R.index);
}

/* ---- agent: writes
 * ---------------------------------------------------------------------- */

static int answer_put(mc_req *req, int err, const char *msg) {
  switch (err) {
  case 0:
    return ok_empty(req);
  case MC_EPARSE:
  case MC_EINVAL:
    return plain(req, 400, msg);
  case MC_ENOMEM:
    return plain(req, 500, "out of memory");
  default:
    return plain(req, 500, *msg ? msg : mc_strerror(err));
  }
}

static int service_register(mc_req *req) {
  mc_consul_service def;
  char msg[512] = "";
  int err = mc_consul_decode_service(mc_req_body_raw(req), mc_req_arena(req),
                                     &def, msg, sizeof msg);
  if (!err) {
    mc_slice v = mc_req_query_param(req, "replace-existing-checks");
    bool replace = v.ptr && !mc_slice_eq(v, MC_LIT("false")) &&
                   !mc_slice_eq(v, MC_LIT("0"));
    err = reg_service_put(&def, replace, true, msg, sizeof msg);
  }
  return answer_put(req, err, msg);
}

static int service_deregister(mc_req *req) {
  mc_slice id = mc_req_param(req, "id");
  char *cid = mc_arena_strndup(mc_req_arena(req), id.ptr, id.len);
  if (!cid)
    return MC_ENOMEM;
  if (reg_service_del(cid) != 0) {
    char msg[400];
    snprintf(msg, sizeof msg,
             "Unknown service ID \"%.200s\". Ensure that the service ID is "
             "passed, not the service name.",
             cid);
    return plain(req, 404, msg);
  }
  return ok_empty(req);
}

static int check_register(mc_req *req) {
  mc_consul_check def;
  char msg[512] = "";
  int err = mc_consul_decode_check(mc_req_body_raw(req), mc_req_arena(req),
                                   &def, msg, sizeof msg);
  if (!err)
    err = reg_check_put(&def, true, msg, sizeof msg);
  return answer_put(req, err, msg);
}

static int unknown_check(mc_req *req, mc_slice id) {
  char msg[400];
  snprintf(msg, sizeof msg,
           "Unknown check ID \"%.*s\". Ensure that the check ID is passed, "
           "not the check name.",
           (int)(id.len > 200 ? 200 : id.len), id.ptr);
  return plain(req, 404, msg);
}

static int check_deregister(mc_req *req) {
  mc_slice id = mc_req_param(req, "id");
  char *cid = mc_arena_strndup(mc_req_arena(req), id.ptr, id.len);
  if (!cid)
    return MC_ENOMEM;
  if (reg_check_del(cid) != 0)
    return unknown_check(req, id);
  return ok_empty(req);
}

/* A TTL check's heartbeat: a status and an output, and a new deadline. */
static int ttl_update(mc_req *req, mc_health status, mc_slice output) {
  mc_slice id = mc_req_param(req, "id");
  reg_check *c = reg_check_get(id);
  if (!c)
    return unknown_check(req, id);
  if (c->def.kind != MC_CHECK_TTL) {
    char msg[300];
    snprintf(msg, sizeof msg, "CheckID \"%.*s\" does not have associated TTL",
             (int)(id.len > 200 ? 200 : id.len), id.ptr);
    return plain(req, 500, msg);
  }
  c->ttl_deadline_ms =
      mc_now_ns() / 1000000 + (uint64_t)(c->def.ttl_ns / 1000000);
  reg_check_set(c, status, output.ptr ? output.ptr : "", output.len);
  mc_waitq_wake_all(&c->wake);
  return ok_empty(req);
}

static int check_pass(mc_req *req) {
  return ttl_update(req, MC_HEALTH_PASSING, mc_req_query_param(req, "note"));
}
static int check_warn(mc_req *req) {
  return ttl_update(req, MC_HEALTH_WARNING, mc_req_query_param(req, "note"));
}
static int check_fail(mc_req *req) {
  return ttl_update(req, MC_HEALTH_CRITICAL, mc_req_query_param(req, "note"));
}

/* PUT /v1/agent/check/update/:id with {"Status": ..., "Output": ...} */
static int check_update(mc_req *req) {
  mc_slice body = mc_req_body_raw(req);
  json_error_t je;
  json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, &je);
  if (!root || !json_is_object(root)) {
    char msg[300];
    snprintf(msg, sizeof msg, "Request decode failed: %s",
             root ? "the body must be an object" : je.text);
    json_decref(root);
    return plain(req, 400, msg);
  }
  const char *status = NULL, *output = "";
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (!strcasecmp(key, "status") && json_is_string(v))
      status = json_string_value(v);
    else if (!strcasecmp(key, "output") && json_is_string(v))
      output = json_string_value(v);
  }
  mc_health h;
  if (!status || mc_health_parse(mc_slice_cstr(status), &h) != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "Invalid check status: \"%.64s\"",
             status ? status : "");
    json_decref(root);
    return plain(req, 400, msg);
  }
  char *out = mc_arena_strndup(mc_req_arena(req), output, strlen(output));
  json_decref(root);
  return ttl_update(req, h, mc_slice_cstr(out ? out : ""));
}

static int ui_page(mc_req *req) {
  return mc_res_send(req, 200, MC_LIT("text/html; charset=utf-8"),
                     mc_slice_cstr(reg_ui_html));
}

#define GET_AND_PUT(path, fn, what)                                            \
  {"PUT", path, fn, .summary = what, .tag = "agent"}, {                        \
    "GET", path, fn, .summary = what " (older clients)", .tag = "agent",       \
                     .hidden = true                                            \
  }

const mc_route reg_routes[] = {
    {"GET", "/", ui_page, .hidden = true},
    {"GET", "/ui", ui_page, .hidden = true},
    {"GET", "/v1/agent/self", agent_self, .tag = "agent"},
    {"GET", "/v1/agent/members", agent_members, .tag = "agent"},
    {"GET", "/v1/agent/services", agent_services, .tag = "agent"},
    {"GET", "/v1/agent/service/{id}", agent_service, .tag = "agent"},
    {"GET", "/v1/agent/checks", agent_checks, .tag = "agent"},
    {"PUT", "/v1/agent/service/register", service_register,
     .summary = "Register a service and its checks", .tag = "agent"},
    GET_AND_PUT("/v1/agent/service/deregister/{id}", service_deregister,
                "Deregister a service"),
    {"PUT", "/v1/agent/check/register", check_register,
     .summary = "Register a check", .tag = "agent"},
    GET_AND_PUT("/v1/agent/check/deregister/{id}", check_deregister,
                "Deregister a check"),
    GET_AND_PUT("/v1/agent/check/pass/{id}", check_pass, "TTL check: pass"),
    GET_AND_PUT("/v1/agent/check/warn/{id}", check_warn, "TTL check: warn"),
    GET_AND_PUT("/v1/agent/check/fail/{id}", check_fail, "TTL check: fail"),
    {"PUT", "/v1/agent/check/update/{id}", check_update,
     .summary = "TTL check: set status and output", .tag = "agent"},
    {"GET", "/v1/health/service/{name}", health_service,
     .summary = "Instances of a service with their checks", .tag = "health"},
    {"GET", "/v1/health/checks/{name}", health_checks, .tag = "health"},
    {"GET", "/v1/health/state/{state}", health_state, .tag = "health"},
    {"GET", "/v1/health/node/{node}", health_node, .tag = "health"},
    {"GET", "/v1/catalog/services", catalog_services, .tag = "catalog"},
    {"GET", "/v1/catalog/service/{name}", catalog_service, .tag = "catalog"},
    {"GET", "/v1/catalog/nodes", catalog_nodes, .tag = "catalog"},
    {"GET", "/v1/catalog/node/{node}", catalog_node, .tag = "catalog"},
    {"GET", "/v1/catalog/datacenters", catalog_datacenters, .tag = "catalog"},
    {"GET", "/v1/status/leader", status_leader, .tag = "status"},
    {"GET", "/v1/status/peers", status_peers, .tag = "status"},
};
const size_t reg_nroutes = sizeof reg_routes / sizeof reg_routes[0];
