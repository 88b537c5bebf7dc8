/* JSON Schema 2020-12 (the dialect of OpenAPI 3.1) from declared models. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/model_int.h"

/* A writer that remembers the first failed append: once one fails, later
 * shorter ones must not succeed and leave broken JSON behind. */
typedef struct out {
  mc_buf *b;
  int err;
} out;

static void cstr(out *o, const char *s) {
  if (!o->err)
    o->err = mc_buf_append_cstr(o->b, s);
}

static void chr(out *o, char c) {
  if (!o->err)
    o->err = mc_buf_append_char(o->b, c);
}

static void str(out *o, const char *s) {
  if (!o->err)
    o->err = mc_buf_append_json_str(o->b, s, strlen(s));
}

static void fmt(out *o, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

static void fmt(out *o, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  if (!o->err)
    o->err = mc_buf_vappendf(o->b, f, ap);
  va_end(ap);
}

/* A limit: integer fields' whole limits as exact integers (2^63, which is
 * how INT64_MAX is held, as INT64_MAX). */
static void limit(out *o, const mc_field *f, double v) {
  if (f->type == MC_T_INT && v == floor(v) && fabs(v) <= 0x1p63) {
    fmt(o, "%lld", (long long)mc__int_of_double(v));
  } else if (!o->err) {
    o->err = mc__json_number(o->b, v);
  }
}

static const char *type_name(mc_type t) {
  switch (t) {
  case MC_T_STRING:
    return "string";
  case MC_T_INT:
    return "integer";
  case MC_T_NUMBER:
    return "number";
  case MC_T_BOOL:
    return "boolean";
  case MC_T_OBJECT:
    return "object";
  case MC_T_ARRAY:
    return "array";
  }
  return "null";
}

static void ref(out *o, const mc_model *m) {
  cstr(o, "{\"$ref\":\"#/components/schemas/");
  cstr(o, m->name);
  cstr(o, "\"}");
}

static void annotations(out *o, const mc_field *f) {
  if (f->description) {
    cstr(o, ",\"description\":");
    str(o, f->description);
  }
  if (f->example) {
    cstr(o, ",\"examples\":[");
    cstr(o, f->example);
    chr(o, ']');
  }
  if (f->has_default) {
    cstr(o, ",\"default\":");
    switch (f->type) {
    case MC_T_STRING:
      if (f->def_str)
        str(o, f->def_str);
      else
        cstr(o, "null");
      break;
    case MC_T_BOOL:
      cstr(o, f->def_num != 0 ? "true" : "false");
      break;
    default:
      limit(o, f, f->def_num);
      break;
    }
  }
}

static void field_schema(out *o, const mc_field *f, bool nullable_ok) {
  bool nullable = nullable_ok && f->nullable;
  if (f->type == MC_T_OBJECT) {
    /* A $ref with siblings is allowed in 3.1, but tools read anyOf best. */
    if (nullable) {
      cstr(o, "{\"anyOf\":[");
      ref(o, f->model);
      cstr(o, ",{\"type\":\"null\"}]");
      annotations(o, f);
      chr(o, '}');
      return;
    }
    if (!f->description && !f->example) {
      ref(o, f->model);
      return;
    }
    cstr(o, "{\"allOf\":[");
    ref(o, f->model);
    chr(o, ']');
    annotations(o, f);
    chr(o, '}');
    return;
  }
  if (nullable)
    fmt(o, "{\"type\":[\"%s\",\"null\"]", type_name(f->type));
  else
    fmt(o, "{\"type\":\"%s\"", type_name(f->type));
  if (f->format) {
    cstr(o, ",\"format\":");
    str(o, f->format);
  } else if (f->type == MC_T_INT) {
    cstr(o, ",\"format\":\"int64\"");
  } else if (f->type == MC_T_NUMBER) {
    cstr(o, ",\"format\":\"double\"");
  }
  if (f->has_min) {
    cstr(o, f->exclusive_min ? ",\"exclusiveMinimum\":" : ",\"minimum\":");
    limit(o, f, f->min);
  }
  if (f->has_max) {
    cstr(o, f->exclusive_max ? ",\"exclusiveMaximum\":" : ",\"maximum\":");
    limit(o, f, f->max);
  }
  bool is_array = f->type == MC_T_ARRAY;
  if (f->has_min_len)
    fmt(o, is_array ? ",\"minItems\":%zu" : ",\"minLength\":%zu", f->min_len);
  if (f->has_max_len)
    fmt(o, is_array ? ",\"maxItems\":%zu" : ",\"maxLength\":%zu", f->max_len);
  if (f->pattern) {
    cstr(o, ",\"pattern\":");
    str(o, f->pattern);
  }
  if (f->enum_values) {
    cstr(o, ",\"enum\":[");
    for (const char *const *e = f->enum_values; *e; e++) {
      if (e != f->enum_values)
        chr(o, ',');
      str(o, *e);
    }
    chr(o, ']');
  }
  if (is_array && f->items) {
    cstr(o, ",\"items\":");
    field_schema(o, f->items, true);
  }
  annotations(o, f);
  chr(o, '}');
}

/* Ends a write: on failure the buffer is left as it was before. */
static int finish(out *o, size_t start) {
  if (o->err) {
    o->b->len = start;
    if (o->b->ptr)
      o->b->ptr[start] = 0;
  }
  return o->err;
}

int mc_field_schema_json(const mc_field *f, mc_buf *b) {
  out o = {b, 0};
  size_t start = b->len;
  field_schema(&o, f, true);
  return finish(&o, start);
}

int mc_model_schema_json(const mc_model *m, mc_buf *b) {
  out o = {b, 0};
  size_t start = b->len;
  cstr(&o, "{\"type\":\"object\",\"title\":");
  str(&o, m->name);
  if (m->description) {
    cstr(&o, ",\"description\":");
    str(&o, m->description);
  }
  cstr(&o, ",\"properties\":{");
  for (size_t i = 0; i < m->nfields; i++) {
    const mc_field *f = &m->fields[i];
    if (i)
      chr(&o, ',');
    str(&o, f->name);
    chr(&o, ':');
    /* An optional field may also be sent as null (it then counts as
     * absent), so say so in the schema. */
    if (!f->required && !f->nullable) {
      mc_field g = *f;
      g.nullable = true;
      field_schema(&o, &g, true);
    } else {
      field_schema(&o, f, true);
    }
  }
  chr(&o, '}');
  bool any = false;
  for (size_t i = 0; i < m->nfields; i++) {
    if (!m->fields[i].required)
      continue;
    cstr(&o, any ? "," : ",\"required\":[");
    any = true;
    str(&o, m->fields[i].name);
  }
  if (any)
    chr(&o, ']');
  if (m->forbid_extra)
    cstr(&o, ",\"additionalProperties\":false");
  chr(&o, '}');
  return finish(&o, start);
}

static int walk_field(const mc_field *f, const mc_model **seen, size_t *nseen,
                      size_t cap, int (*fn)(const mc_model *, void *),
                      void *arg) {
  if (f->type == MC_T_OBJECT && f->model)
    return mc_model_walk(f->model, seen, nseen, cap, fn, arg);
  if (f->type == MC_T_ARRAY && f->items)
    return walk_field(f->items, seen, nseen, cap, fn, arg);
  return 0;
}

int mc_model_walk(const mc_model *m, const mc_model **seen, size_t *nseen,
                  size_t cap, int (*fn)(const mc_model *, void *), void *arg) {
  for (size_t i = 0; i < *nseen; i++)
    if (seen[i] == m)
      return 0;
    else if (strcmp(seen[i]->name, m->name) == 0)
      return MC_EEXISTS;
  if (*nseen >= cap)
    return MC_ETOOBIG;
  seen[(*nseen)++] = m; /* before the fields, so cycles end */
  for (size_t i = 0; i < m->nfields; i++) {
    int err = walk_field(&m->fields[i], seen, nseen, cap, fn, arg);
    if (err)
      return err;
  }
  return fn(m, arg);
}
