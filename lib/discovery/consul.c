/* Consul's registration and health JSON. See microc/consul.h.
 *
 * Consul decodes request bodies leniently: keys in any case, snake_case as
 * well as PascalCase (python-consul sends "deregister_critical_service_after"
 * style keys in places), unknown keys ignored, durations as Go strings or
 * nanosecond numbers. Field names are matched against their canonical
 * lowercase spelling with underscores dropped; user data (Meta keys, header
 * names) is kept as sent. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "microc/consul.h"
#include "microc/options.h"

const char *mc_health_name(mc_health h) {
  switch (h) {
  case MC_HEALTH_PASSING:
    return "passing";
  case MC_HEALTH_WARNING:
    return "warning";
  case MC_HEALTH_CRITICAL:
    return "critical";
  }
  return "critical";
}

int mc_health_parse(mc_slice s, mc_health *out) {
  if (mc_slice_eq(s, MC_LIT("passing")))
    *out = MC_HEALTH_PASSING;
  else if (mc_slice_eq(s, MC_LIT("warning")))
    *out = MC_HEALTH_WARNING;
  else if (mc_slice_eq(s, MC_LIT("critical")))
    *out = MC_HEALTH_CRITICAL;
  else
    return MC_EINVAL;
  return 0;
}

const char *mc_check_kind_name(mc_check_kind k) {
  switch (k) {
  case MC_CHECK_TTL:
    return "ttl";
  case MC_CHECK_HTTP:
    return "http";
  case MC_CHECK_TCP:
    return "tcp";
  case MC_CHECK_GRPC:
    return "grpc";
  }
  return "";
}

/* ---- decoding helpers ---------------------------------------------------- */

typedef struct dec {
  mc_arena *a;
  char *err;
  size_t errcap;
  int rc; /* first failure */
} dec;

static void failf(dec *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failf(dec *d, int rc, const char *fmt, ...) {
  if (d->rc)
    return;
  d->rc = rc;
  if (d->err && d->errcap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->errcap, fmt, ap);
    va_end(ap);
  }
}

/* key matches canon (lowercase, no underscores) ignoring case and '_' */
static bool key_is(const char *key, const char *canon) {
  for (;;) {
    while (*key == '_')
      key++;
    char c = *key;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + 32);
    if (c != *canon)
      return false;
    if (!c)
      return true;
    key++;
    canon++;
  }
}

static const char *dup_str(dec *d, json_t *v, const char *field) {
  if (json_is_null(v))
    return "";
  if (!json_is_string(v)) {
    failf(d, MC_EPARSE, "Request decode failed: %s must be a string", field);
    return "";
  }
  const char *s =
      mc_arena_strndup(d->a, json_string_value(v), json_string_length(v));
  if (!s)
    failf(d, MC_ENOMEM, "out of memory");
  return s ? s : "";
}

static int64_t get_int(dec *d, json_t *v, const char *field, int64_t lo,
                       int64_t hi) {
  if (json_is_null(v))
    return 0;
  if (!json_is_number(v)) {
    failf(d, MC_EPARSE, "Request decode failed: %s must be an integer", field);
    return 0;
  }
  /* The range first: every number arrives as a real
   * (JSON_DECODE_INT_AS_REAL), and converting one outside int64_t's range,
   * 1e300 say, is undefined behaviour. */
  double x = json_number_value(v);
  if (x < (double)lo || x > (double)hi) {
    /* %g: 1e300 written out in full pushed "out of range" past errcap */
    failf(d, MC_EINVAL, "Invalid %s: %.15g is out of range", field, x);
    return 0;
  }
  if (x != (double)(int64_t)x) {
    failf(d, MC_EPARSE, "Request decode failed: %s must be an integer", field);
    return 0;
  }
  return (int64_t)x;
}

static bool get_bool(dec *d, json_t *v, const char *field) {
  if (json_is_null(v))
    return false;
  if (!json_is_boolean(v)) {
    failf(d, MC_EPARSE, "Request decode failed: %s must be true or false",
          field);
    return false;
  }
  return json_is_true(v);
}

/* A JSON number as int64_t, truncated toward zero. False when it does not
 * fit: converting such a double is undefined behaviour, and every number
 * arrives as a real (JSON_DECODE_INT_AS_REAL), 2^63-1 included (it rounds
 * to 2^63). */
static bool number_i64(json_t *v, int64_t *out) {
  double x = json_number_value(v);
  if (!(x >= -0x1p63 && x < 0x1p63))
    return false;
  *out = (int64_t)x;
  return true;
}

/* Durations: Go syntax in a string, or a number of nanoseconds. */
static int64_t get_duration(dec *d, json_t *v, const char *field) {
  if (json_is_null(v))
    return 0;
  if (json_is_integer(v))
    return json_integer_value(v);
  if (json_is_real(v)) {
    int64_t ns;
    if (!number_i64(v, &ns)) {
      /* as Go's decoder refuses a number that overflows a Duration */
      failf(d, MC_EPARSE, "Request decode failed: %s: duration out of range",
            field);
      return 0;
    }
    return ns;
  }
  if (!json_is_string(v)) {
    failf(d, MC_EPARSE, "Request decode failed: %s must be a duration", field);
    return 0;
  }
  int64_t ns;
  mc_slice s = {json_string_value(v), json_string_length(v)};
  if (s.len == 0)
    return 0;
  if (mc_parse_go_duration(s, &ns) != 0) {
    failf(d, MC_EPARSE,
          "Request decode failed: %s: time: invalid duration \"%.*s\"", field,
          (int)(s.len > 64 ? 64 : s.len), s.ptr);
    return 0;
  }
  return ns;
}

static bool meta_key_ok(const char *k) {
  for (; *k; k++)
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
          (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
      return false;
  return true;
}

static void get_meta(dec *d, json_t *v, mc_consul_kv **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (json_is_null(v))
    return;
  if (!json_is_object(v)) {
    failf(d, MC_EPARSE, "Request decode failed: Meta must be an object");
    return;
  }
  size_t count = json_object_size(v);
  if (count > 64) {
    failf(d, MC_EINVAL,
          "Invalid Service Meta: Node metadata cannot contain more than 64 "
          "key/value pairs");
    return;
  }
  mc_consul_kv *kv = mc_arena_calloc(d->a, (count ? count : 1) * sizeof *kv);
  if (!kv) {
    failf(d, MC_ENOMEM, "out of memory");
    return;
  }
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    if (!*key) {
      failf(d, MC_EINVAL, "Invalid Service Meta: Key cannot be blank");
      return;
    }
    if (strlen(key) > 128) {
      failf(d, MC_EINVAL,
            "Invalid Service Meta: Key is too long (limit: 128 characters)");
      return;
    }
    if (!meta_key_ok(key)) {
      failf(d, MC_EINVAL,
            "Invalid Service Meta: Key contains invalid characters");
      return;
    }
    if (strncmp(key, "consul-", 7) == 0) {
      failf(d, MC_EINVAL,
            "Invalid Service Meta: Key prefix 'consul-' is reserved for "
            "internal use");
      return;
    }
    if (!json_is_string(val)) {
      failf(d, MC_EPARSE, "Request decode failed: Meta values must be strings");
      return;
    }
    if (json_string_length(val) > 512) {
      failf(d, MC_EINVAL,
            "Invalid Service Meta: Value is too long (limit: 512 characters)");
      return;
    }
    /* a key that does not fit fails the decode: it came back NULL in a
     * service that decoded without an error */
    if (!(kv[*n].key = mc_arena_strndup(d->a, key, strlen(key)))) {
      failf(d, MC_ENOMEM, "out of memory");
      return;
    }
    kv[*n].value = dup_str(d, val, "Meta");
    (*n)++;
  }
  *out = kv;
}

static void get_tags(dec *d, json_t *v, const char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (json_is_null(v))
    return;
  if (!json_is_array(v)) {
    failf(d, MC_EPARSE, "Request decode failed: Tags must be a list");
    return;
  }
  size_t count = json_array_size(v);
  const char **tags = mc_arena_calloc(d->a, (count ? count : 1) * sizeof *tags);
  if (!tags) {
    failf(d, MC_ENOMEM, "out of memory");
    return;
  }
  for (size_t i = 0; i < count; i++)
    tags[i] = dup_str(d, json_array_get(v, i), "Tags");
  *out = tags;
  *n = count;
}

/* Header: {"Name": ["v1", "v2"]} */
static void get_headers(dec *d, json_t *v, mc_consul_check *c) {
  /* A second spelling ("Header", then "header") replaces the first, as for
   * Meta and Tags; the count left over wrote past the new array. */
  c->headers = NULL;
  c->nheaders = 0;
  if (json_is_null(v))
    return;
  if (!json_is_object(v)) {
    failf(d, MC_EPARSE, "Request decode failed: Header must be an object");
    return;
  }
  size_t count = 0;
  const char *key;
  json_t *vals;
  json_object_foreach(v, key, vals) {
    if (!json_is_array(vals)) {
      failf(d, MC_EPARSE,
            "Request decode failed: Header values must be lists of strings");
      return;
    }
    count += json_array_size(vals);
  }
  c->headers = mc_arena_calloc(d->a, (count ? count : 1) * sizeof *c->headers);
  if (!c->headers) {
    failf(d, MC_ENOMEM, "out of memory");
    return;
  }
  json_object_foreach(v, key, vals) {
    for (size_t i = 0; i < json_array_size(vals); i++) {
      /* one copy of the name per value: a long name with many null values
       * runs the arena dry here, and a NULL name must not pass */
      if (!(c->headers[c->nheaders].key =
                mc_arena_strndup(d->a, key, strlen(key)))) {
        failf(d, MC_ENOMEM, "out of memory");
        return;
      }
      c->headers[c->nheaders].value =
          dup_str(d, json_array_get(vals, i), "Header");
      c->nheaders++;
    }
  }
}

/* ---- checks ----------------------------------------------------------------
 */

static void decode_check(dec *d, json_t *o, mc_consul_check *c) {
  memset(c, 0, sizeof *c);
  c->id = c->name = c->notes = c->service_id = c->target = c->method = c->body =
      "";
  if (!json_is_object(o)) {
    failf(d, MC_EPARSE, "Request decode failed: a check must be an object");
    return;
  }
  const char *unsupported = NULL;
  int kinds = 0;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (key_is(key, "checkid") || key_is(key, "id"))
      c->id = dup_str(d, v, "CheckID");
    else if (key_is(key, "name"))
      c->name = dup_str(d, v, "Name");
    else if (key_is(key, "notes"))
      c->notes = dup_str(d, v, "Notes");
    else if (key_is(key, "serviceid"))
      c->service_id = dup_str(d, v, "ServiceID");
    else if (key_is(key, "status")) {
      const char *st = dup_str(d, v, "Status");
      if (*st && mc_health_parse(mc_slice_cstr(st), &c->status) != 0)
        failf(d, MC_EINVAL, "Invalid check status: \"%.64s\"", st);
    } else if (key_is(key, "http")) {
      /* An empty one is not this kind, and must not clear the target of
       * the kind that is set ({"TCP":"h:1","HTTP":""} left no target). */
      const char *t = dup_str(d, v, "HTTP");
      if (*t)
        c->target = t, c->kind = MC_CHECK_HTTP, kinds++;
    } else if (key_is(key, "tcp")) {
      const char *t = dup_str(d, v, "TCP");
      if (*t)
        c->target = t, c->kind = MC_CHECK_TCP, kinds++;
    } else if (key_is(key, "grpc")) {
      const char *t = dup_str(d, v, "GRPC");
      if (*t)
        c->target = t, c->kind = MC_CHECK_GRPC, kinds++;
    } else if (key_is(key, "ttl")) {
      c->ttl_ns = get_duration(d, v, "TTL");
      if (!json_is_null(v) && !(json_is_string(v) && !json_string_length(v)))
        c->kind = MC_CHECK_TTL, kinds++;
    } else if (key_is(key, "method"))
      c->method = dup_str(d, v, "Method");
    else if (key_is(key, "header"))
      get_headers(d, v, c);
    else if (key_is(key, "body"))
      c->body = dup_str(d, v, "Body");
    else if (key_is(key, "tlsskipverify"))
      c->tls_skip_verify = get_bool(d, v, "TLSSkipVerify");
    else if (key_is(key, "grpcusetls"))
      c->grpc_use_tls = get_bool(d, v, "GRPCUseTLS");
    else if (key_is(key, "interval"))
      c->interval_ns = get_duration(d, v, "Interval");
    else if (key_is(key, "timeout"))
      c->timeout_ns = get_duration(d, v, "Timeout");
    else if (key_is(key, "deregistercriticalserviceafter"))
      c->deregister_after_ns =
          get_duration(d, v, "DeregisterCriticalServiceAfter");
    else if (key_is(key, "successbeforepassing"))
      c->success_before_passing =
          get_int(d, v, "SuccessBeforePassing", 0, 1000000);
    else if (key_is(key, "failuresbeforecritical"))
      c->failures_before_critical =
          get_int(d, v, "FailuresBeforeCritical", 0, 1000000);
    else if ((key_is(key, "script") || key_is(key, "args")) && !json_is_null(v))
      unsupported = "script";
    else if (key_is(key, "dockercontainerid") && !json_is_null(v))
      unsupported = "docker";
    else if ((key_is(key, "h2ping") || key_is(key, "udp") ||
              key_is(key, "osservice") || key_is(key, "aliasservice") ||
              key_is(key, "aliasnode")) &&
             !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)))
      unsupported = key;
  }
  if (d->rc)
    return;
  if (unsupported && !strcmp(unsupported, "script")) {
    failf(d, MC_EINVAL,
          "Scripts are disabled on this agent; to enable, configure "
          "'enable_script_checks' or 'enable_local_script_checks' to true");
    return;
  }
  if (unsupported) {
    failf(d, MC_EINVAL, "Invalid check: %s checks are not supported here",
          unsupported);
    return;
  }
  if (kinds == 0) {
    failf(d, MC_EINVAL,
          "Invalid check: one of HTTP, TCP, GRPC or TTL must be set");
    return;
  }
  if (kinds > 1) {
    failf(d, MC_EINVAL,
          "Invalid check: only one of HTTP, TCP, GRPC or TTL may be set");
    return;
  }
  if (c->kind == MC_CHECK_TTL) {
    if (c->ttl_ns <= 0)
      failf(d, MC_EINVAL, "Invalid check: TTL must be > 0 for TTL checks");
    else if (c->interval_ns)
      failf(d, MC_EINVAL,
            "Invalid check: Interval cannot be set for TTL checks");
  } else if (c->interval_ns <= 0) {
    failf(d, MC_EINVAL,
          "Invalid check: Interval must be > 0 for HTTP, TCP and GRPC checks");
  }
  if (c->timeout_ns < 0)
    failf(d, MC_EINVAL, "Invalid check: Timeout must be >= 0");
  if (c->deregister_after_ns < 0)
    failf(d, MC_EINVAL,
          "Invalid check: DeregisterCriticalServiceAfter must be >= 0");
  if (c->kind == MC_CHECK_HTTP && strncmp(c->target, "http://", 7) != 0 &&
      strncmp(c->target, "https://", 8) != 0)
    failf(d, MC_EINVAL, "Invalid check: HTTP must be an http:// URL");
}

/* ---- services --------------------------------------------------------------
 */

static int parse_root(mc_slice json, json_t **root, dec *d) {
  json_error_t je;
  *root = json_loadb(json.ptr ? json.ptr : "", json.len,
                     JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
  if (!*root) {
    failf(d, MC_EPARSE, "Request decode failed: %s", je.text);
    return d->rc;
  }
  if (!json_is_object(*root)) {
    json_decref(*root);
    *root = NULL;
    failf(d, MC_EPARSE, "Request decode failed: the body must be an object");
    return d->rc;
  }
  return 0;
}

int mc_consul_decode_service(mc_slice json, mc_arena *a, mc_consul_service *out,
                             char *err, size_t errcap) {
  dec d = {.a = a, .err = err, .errcap = errcap};
  memset(out, 0, sizeof *out);
  out->id = out->name = out->address = "";
  out->weight_passing = out->weight_warning = 1;
  json_t *root;
  if (parse_root(json, &root, &d))
    return d.rc;
  json_t *check = NULL, *checks = NULL;
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (key_is(key, "id"))
      out->id = dup_str(&d, v, "ID");
    else if (key_is(key, "name"))
      out->name = dup_str(&d, v, "Name");
    else if (key_is(key, "address"))
      out->address = dup_str(&d, v, "Address");
    else if (key_is(key, "port"))
      out->port = (int)get_int(&d, v, "Port", 0, 65535);
    else if (key_is(key, "tags"))
      get_tags(&d, v, &out->tags, &out->ntags);
    else if (key_is(key, "meta"))
      get_meta(&d, v, &out->meta, &out->nmeta);
    else if (key_is(key, "enabletagoverride"))
      out->enable_tag_override = get_bool(&d, v, "EnableTagOverride");
    else if (key_is(key, "weights") && !json_is_null(v)) {
      if (!json_is_object(v)) {
        failf(&d, MC_EPARSE,
              "Request decode failed: Weights must be an "
              "object");
        continue;
      }
      const char *wk;
      json_t *wv;
      json_object_foreach(v, wk, wv) {
        if (json_is_null(wv))
          continue; /* not given: the default of 1 stays, where get_int's 0
                       was out of Passing's range, so the encoding of a
                       decoded service was refused */
        if (key_is(wk, "passing"))
          out->weight_passing = get_int(&d, wv, "Weights.Passing", 1, 65535);
        else if (key_is(wk, "warning"))
          out->weight_warning = get_int(&d, wv, "Weights.Warning", 0, 65535);
      }
    } else if (key_is(key, "check"))
      check = json_is_null(v) ? NULL : v;
    else if (key_is(key, "checks"))
      checks = json_is_null(v) ? NULL : v;
  }
  if (!d.rc && !*out->name)
    failf(&d, MC_EINVAL, "Missing service name");
  if (!d.rc && checks && !json_is_array(checks))
    failf(&d, MC_EPARSE, "Request decode failed: Checks must be a list");
  size_t n = (check ? 1 : 0) + (checks ? json_array_size(checks) : 0);
  if (!d.rc && n > 64)
    failf(&d, MC_EINVAL, "Invalid check: a service takes at most 64 checks");
  if (!d.rc && n) {
    out->checks = mc_arena_calloc(a, n * sizeof *out->checks);
    if (!out->checks)
      failf(&d, MC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !d.rc; i++) {
      json_t *o =
          check && i == 0 ? check : json_array_get(checks, i - (check ? 1 : 0));
      decode_check(&d, o, &out->checks[i]);
      out->nchecks++;
    }
  }
  if (!d.rc && !*out->id)
    out->id = out->name;
  json_decref(root);
  return d.rc;
}

int mc_consul_decode_check(mc_slice json, mc_arena *a, mc_consul_check *out,
                           char *err, size_t errcap) {
  dec d = {.a = a, .err = err, .errcap = errcap};
  json_t *root;
  memset(out, 0, sizeof *out);
  if (parse_root(json, &root, &d))
    return d.rc;
  decode_check(&d, root, out);
  if (!d.rc && !*out->name)
    failf(&d, MC_EINVAL, "Missing check name");
  json_decref(root);
  return d.rc;
}

/* ---- encoding
 * ---------------------------------------------------------------- */

int mc_go_duration_format(int64_t ns, mc_buf *out) {
  if (ns == 0)
    return mc_buf_append_cstr(out, "0s");
  char tmp[48];
  size_t n = 0;
  uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
  if (ns < 0)
    tmp[n++] = '-';
  /* Below a second: one unit with a fraction, as Go writes it. */
  const char *unit;
  uint64_t div;
  if (u < 1000)
    unit = "ns", div = 1;
  else if (u < 1000000)
    unit = "\xc2\xb5s", div = 1000;
  else if (u < 1000000000)
    unit = "ms", div = 1000000;
  else
    unit = NULL, div = 1000000000;
  uint64_t whole = u / div, frac = u % div;
  if (!unit) {
    uint64_t h = whole / 3600, m = whole / 60 % 60;
    whole %= 60;
    if (h)
      n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%lluh",
                            (unsigned long long)h);
    if (h || m)
      n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%llum",
                            (unsigned long long)m);
    unit = "s";
  }
  n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%llu",
                        (unsigned long long)whole);
  if (frac) {
    char f[16];
    int digits = div == 1000 ? 3 : div == 1000000 ? 6 : 9;
    snprintf(f, sizeof f, "%0*llu", digits, (unsigned long long)frac);
    int len = digits;
    while (len > 0 && f[len - 1] == '0')
      len--;
    n += (size_t)snprintf(tmp + n, sizeof tmp - n, ".%.*s", len, f);
  }
  n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%s", unit);
  return mc_buf_append(out, tmp, n);
}

static void jstr(mc_buf *b, const char *key, const char *v, bool *first) {
  mc_buf_appendf(b, "%s\"%s\":", *first ? "" : ",", key);
  mc_buf_append_json_str(b, v ? v : "", v ? strlen(v) : 0);
  *first = false;
}

static void jdur(mc_buf *b, const char *key, int64_t ns, bool *first) {
  mc_buf_appendf(b, "%s\"%s\":\"", *first ? "" : ",", key);
  mc_go_duration_format(ns, b);
  mc_buf_append_char(b, '"');
  *first = false;
}

int mc_consul_encode_check(const mc_consul_check *c, mc_buf *b) {
  bool first = true;
  mc_buf_append_char(b, '{');
  if (c->id && *c->id)
    jstr(b, "CheckID", c->id, &first);
  if (c->name && *c->name)
    jstr(b, "Name", c->name, &first);
  if (c->notes && *c->notes)
    jstr(b, "Notes", c->notes, &first);
  if (c->service_id && *c->service_id)
    jstr(b, "ServiceID", c->service_id, &first);
  switch (c->kind) {
  case MC_CHECK_HTTP:
    jstr(b, "HTTP", c->target, &first);
    if (c->method && *c->method)
      jstr(b, "Method", c->method, &first);
    if (c->body && *c->body)
      jstr(b, "Body", c->body, &first);
    if (c->nheaders) {
      mc_buf_append_cstr(b, ",\"Header\":{");
      for (size_t i = 0; i < c->nheaders; i++) {
        /* group the values of one name */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
          seen = !strcmp(c->headers[k].key, c->headers[i].key);
        if (seen)
          continue;
        if (b->ptr[b->len - 1] != '{')
          mc_buf_append_char(b, ',');
        mc_buf_append_json_str(b, c->headers[i].key, strlen(c->headers[i].key));
        mc_buf_append_cstr(b, ":[");
        bool firstv = true;
        for (size_t k = i; k < c->nheaders; k++)
          if (!strcmp(c->headers[k].key, c->headers[i].key)) {
            if (!firstv)
              mc_buf_append_char(b, ',');
            firstv = false;
            mc_buf_append_json_str(b, c->headers[k].value,
                                   strlen(c->headers[k].value));
          }
        mc_buf_append_char(b, ']');
      }
      mc_buf_append_char(b, '}');
    }
    if (c->tls_skip_verify)
      mc_buf_append_cstr(b, ",\"TLSSkipVerify\":true");
    break;
  case MC_CHECK_TCP:
    jstr(b, "TCP", c->target, &first);
    break;
  case MC_CHECK_GRPC:
    jstr(b, "GRPC", c->target, &first);
    if (c->grpc_use_tls)
      mc_buf_append_cstr(b, ",\"GRPCUseTLS\":true");
    break;
  case MC_CHECK_TTL:
    jdur(b, "TTL", c->ttl_ns, &first);
    break;
  }
  if (c->interval_ns)
    jdur(b, "Interval", c->interval_ns, &first);
  if (c->timeout_ns)
    jdur(b, "Timeout", c->timeout_ns, &first);
  if (c->deregister_after_ns)
    jdur(b, "DeregisterCriticalServiceAfter", c->deregister_after_ns, &first);
  if (c->status)
    jstr(b, "Status", mc_health_name(c->status), &first);
  if (c->success_before_passing)
    mc_buf_appendf(b, ",\"SuccessBeforePassing\":%lld",
                   (long long)c->success_before_passing);
  if (c->failures_before_critical)
    mc_buf_appendf(b, ",\"FailuresBeforeCritical\":%lld",
                   (long long)c->failures_before_critical);
  return mc_buf_append_char(b, '}');
}

int mc_consul_encode_service(const mc_consul_service *s, mc_buf *b) {
  size_t start = b->len;
  bool first = true;
  mc_buf_append_char(b, '{');
  jstr(b, "ID", s->id && *s->id ? s->id : s->name, &first);
  jstr(b, "Name", s->name, &first);
  if (s->address && *s->address)
    jstr(b, "Address", s->address, &first);
  mc_buf_appendf(b, ",\"Port\":%d", s->port);
  if (s->ntags) {
    mc_buf_append_cstr(b, ",\"Tags\":[");
    for (size_t i = 0; i < s->ntags; i++) {
      if (i)
        mc_buf_append_char(b, ',');
      mc_buf_append_json_str(b, s->tags[i], strlen(s->tags[i]));
    }
    mc_buf_append_char(b, ']');
  }
  if (s->nmeta) {
    mc_buf_append_cstr(b, ",\"Meta\":{");
    for (size_t i = 0; i < s->nmeta; i++) {
      if (i)
        mc_buf_append_char(b, ',');
      mc_buf_append_json_str(b, s->meta[i].key, strlen(s->meta[i].key));
      mc_buf_append_char(b, ':');
      mc_buf_append_json_str(b, s->meta[i].value, strlen(s->meta[i].value));
    }
    mc_buf_append_char(b, '}');
  }
  mc_buf_appendf(b, ",\"Weights\":{\"Passing\":%lld,\"Warning\":%lld}",
                 (long long)s->weight_passing, (long long)s->weight_warning);
  if (s->enable_tag_override)
    mc_buf_append_cstr(b, ",\"EnableTagOverride\":true");
  if (s->nchecks) {
    mc_buf_append_cstr(b, ",\"Checks\":[");
    for (size_t i = 0; i < s->nchecks; i++) {
      if (i)
        mc_buf_append_char(b, ',');
      mc_consul_encode_check(&s->checks[i], b);
    }
    mc_buf_append_char(b, ']');
  }
  int err = mc_buf_append_char(b, '}');
  if (err) {
    b->len = start;
    if (b->ptr)
      b->ptr[start] = 0;
  }
  return err;
}

/* ---- health answers
 * ----------------------------------------------------------- */

static json_t *get_ci(json_t *o, const char *canon) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (key_is(key, canon))
      return v;
  }
  return NULL;
}

int mc_consul_decode_health(mc_slice json, mc_arena *a,
                            mc_consul_instance **out, size_t *n) {
  *out = NULL;
  *n = 0;
  json_error_t je;
  json_t *root = json_loadb(json.ptr ? json.ptr : "", json.len,
                            JSON_DECODE_INT_AS_REAL, &je);
  if (!root)
    return MC_EPARSE;
  if (!json_is_array(root)) {
    json_decref(root);
    return MC_EPARSE;
  }
  dec d = {.a = a};
  size_t count = json_array_size(root);
  mc_consul_instance *list =
      mc_arena_calloc(a, (count ? count : 1) * sizeof *list);
  if (!list) {
    json_decref(root);
    return MC_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < count && !d.rc; i++) {
    json_t *e = json_array_get(root, i);
    json_t *svc = json_is_object(e) ? get_ci(e, "service") : NULL;
    if (!json_is_object(svc)) {
      d.rc = MC_EPARSE;
      break;
    }
    mc_consul_instance *in = &list[k];
    json_t *node = get_ci(e, "node");
    const char *node_addr = "";
    if (json_is_object(node) && json_is_string(get_ci(node, "address")))
      node_addr = dup_str(&d, get_ci(node, "address"), "Node.Address");
    json_t *v;
    in->id = (v = get_ci(svc, "id")) ? dup_str(&d, v, "ID") : "";
    in->service = (v = get_ci(svc, "service")) ? dup_str(&d, v, "Service") : "";
    in->address = (v = get_ci(svc, "address")) ? dup_str(&d, v, "Address") : "";
    if (!*in->address)
      in->address = node_addr;
    in->port =
        (v = get_ci(svc, "port")) ? (int)get_int(&d, v, "Port", 0, 65535) : 0;
    if ((v = get_ci(svc, "tags")))
      get_tags(&d, v, &in->tags, &in->ntags);
    if ((v = get_ci(svc, "meta")) && json_is_object(v)) {
      /* any keys: what a registry answers is not ours to police */
      size_t mc = json_object_size(v);
      in->meta = mc_arena_calloc(a, (mc ? mc : 1) * sizeof *in->meta);
      if (!in->meta) /* not an answer without its meta */
        failf(&d, MC_ENOMEM, "out of memory");
      const char *mk;
      json_t *mv;
      json_object_foreach(v, mk, mv) {
        if (in->meta && json_is_string(mv)) {
          /* nor with a NULL key, as a key that did not fit came back */
          if (!(in->meta[in->nmeta].key = mc_arena_strndup(a, mk, strlen(mk))))
            failf(&d, MC_ENOMEM, "out of memory");
          in->meta[in->nmeta].value = dup_str(&d, mv, "Meta");
          in->nmeta++;
        }
      }
    }
    in->health = MC_HEALTH_PASSING;
    json_t *checks = get_ci(e, "checks");
    for (size_t c = 0; json_is_array(checks) && c < json_array_size(checks);
         c++) {
      json_t *st = get_ci(json_array_get(checks, c), "status");
      mc_health h = MC_HEALTH_CRITICAL;
      if (json_is_string(st))
        mc_health_parse(mc_slice_cstr(json_string_value(st)), &h);
      if (h > in->health)
        in->health = h;
    }
    int64_t wp = 1, ww = 1;
    json_t *w = get_ci(svc, "weights");
    if (json_is_object(w)) {
      /* beyond int64_t the conversion is undefined: a malformed answer */
      if ((v = get_ci(w, "passing")) && json_is_number(v) &&
          !number_i64(v, &wp))
        failf(&d, MC_EPARSE, "Weights.Passing out of range");
      if ((v = get_ci(w, "warning")) && json_is_number(v) &&
          !number_i64(v, &ww))
        failf(&d, MC_EPARSE, "Weights.Warning out of range");
    }
    in->weight = in->health == MC_HEALTH_WARNING ? ww : wp;
    k++;
  }
  json_decref(root);
  /* get_int refuses a port out of range with MC_EINVAL, which this
   * function does not return: for an answer that is malformed input */
  if (d.rc)
    return d.rc == MC_ENOMEM ? MC_ENOMEM : MC_EPARSE;
  *out = list;
  *n = k;
  return 0;
}
