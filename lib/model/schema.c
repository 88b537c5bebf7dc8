/* JSON Schema 2020-12 (the dialect of OpenAPI 3.1) from declared models. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model_int.h"

static int str(mc_buf *b, const char *s) {
  return mc_buf_append_json_str(b, s, strlen(s));
}

/* A limit: integers without a fraction for integer fields. */
static int limit(mc_buf *b, const mc_field *f, double v) {
  if (f->type == MC_T_INT && v == floor(v) && fabs(v) < 9.2e18)
    return mc_buf_appendf(b, "%.0f", v);
  return mc__json_number(b, v);
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

static int ref(mc_buf *b, const mc_model *m) {
  mc_buf_append_cstr(b, "{\"$ref\":\"#/components/schemas/");
  mc_buf_append_cstr(b, m->name);
  return mc_buf_append_cstr(b, "\"}");
}

static int field_schema(const mc_field *f, mc_buf *b, bool nullable_ok);

static int annotations(const mc_field *f, mc_buf *b) {
  if (f->description) {
    mc_buf_append_cstr(b, ",\"description\":");
    str(b, f->description);
  }
  if (f->example) {
    mc_buf_append_cstr(b, ",\"examples\":[");
    mc_buf_append_cstr(b, f->example);
    mc_buf_append_char(b, ']');
  }
  if (f->has_default) {
    mc_buf_append_cstr(b, ",\"default\":");
    switch (f->type) {
    case MC_T_STRING:
      if (f->def_str)
        str(b, f->def_str);
      else
        mc_buf_append_cstr(b, "null");
      break;
    case MC_T_BOOL:
      mc_buf_append_cstr(b, f->def_num != 0 ? "true" : "false");
      break;
    default:
      limit(b, f, f->def_num);
      break;
    }
  }
  return 0;
}

static int field_schema(const mc_field *f, mc_buf *b, bool nullable_ok) {
  bool nullable = nullable_ok && f->nullable;
  if (f->type == MC_T_OBJECT) {
    /* A $ref with siblings is allowed in 3.1, but tools read anyOf best. */
    if (nullable) {
      mc_buf_append_cstr(b, "{\"anyOf\":[");
      ref(b, f->model);
      mc_buf_append_cstr(b, ",{\"type\":\"null\"}]");
      annotations(f, b);
      return mc_buf_append_char(b, '}');
    }
    if (!f->description && !f->example)
      return ref(b, f->model);
    mc_buf_append_cstr(b, "{\"allOf\":[");
    ref(b, f->model);
    mc_buf_append_char(b, ']');
    annotations(f, b);
    return mc_buf_append_char(b, '}');
  }
  if (nullable)
    mc_buf_appendf(b, "{\"type\":[\"%s\",\"null\"]", type_name(f->type));
  else
    mc_buf_appendf(b, "{\"type\":\"%s\"", type_name(f->type));
  if (f->format) {
    mc_buf_append_cstr(b, ",\"format\":");
    str(b, f->format);
  } else if (f->type == MC_T_INT) {
    mc_buf_append_cstr(b, ",\"format\":\"int64\"");
  } else if (f->type == MC_T_NUMBER) {
    mc_buf_append_cstr(b, ",\"format\":\"double\"");
  }
  if (f->has_min) {
    mc_buf_append_cstr(b, f->exclusive_min ? ",\"exclusiveMinimum\":"
                                           : ",\"minimum\":");
    limit(b, f, f->min);
  }
  if (f->has_max) {
    mc_buf_append_cstr(b, f->exclusive_max ? ",\"exclusiveMaximum\":"
                                           : ",\"maximum\":");
    limit(b, f, f->max);
  }
  bool is_array = f->type == MC_T_ARRAY;
  if (f->has_min_len)
    mc_buf_appendf(b, is_array ? ",\"minItems\":%zu" : ",\"minLength\":%zu",
                   f->min_len);
  if (f->has_max_len)
    mc_buf_appendf(b, is_array ? ",\"maxItems\":%zu" : ",\"maxLength\":%zu",
                   f->max_len);
  if (f->pattern) {
    mc_buf_append_cstr(b, ",\"pattern\":");
    str(b, f->pattern);
  }
  if (f->enum_values) {
    mc_buf_append_cstr(b, ",\"enum\":[");
    for (const char *const *e = f->enum_values; *e; e++) {
      if (e != f->enum_values)
        mc_buf_append_char(b, ',');
      str(b, *e);
    }
    mc_buf_append_char(b, ']');
  }
  if (is_array && f->items) {
    mc_buf_append_cstr(b, ",\"items\":");
    field_schema(f->items, b, true);
  }
  annotations(f, b);
  return mc_buf_append_char(b, '}');
}

int mc_field_schema_json(const mc_field *f, mc_buf *out) {
  return field_schema(f, out, true);
}

int mc_model_schema_json(const mc_model *m, mc_buf *b) {
  mc_buf_append_cstr(b, "{\"type\":\"object\",\"title\":");
  str(b, m->name);
  if (m->description) {
    mc_buf_append_cstr(b, ",\"description\":");
    str(b, m->description);
  }
  mc_buf_append_cstr(b, ",\"properties\":{");
  for (size_t i = 0; i < m->nfields; i++) {
    const mc_field *f = &m->fields[i];
    if (i)
      mc_buf_append_char(b, ',');
    str(b, f->name);
    mc_buf_append_char(b, ':');
    /* An optional field may also be sent as null (it then counts as
     * absent), so say so in the schema. */
    if (!f->required && !f->nullable) {
      mc_field g = *f;
      g.nullable = true;
      field_schema(&g, b, true);
    } else {
      field_schema(f, b, true);
    }
  }
  mc_buf_append_char(b, '}');
  bool any = false;
  for (size_t i = 0; i < m->nfields; i++) {
    if (!m->fields[i].required)
      continue;
    mc_buf_append_cstr(b, any ? "," : ",\"required\":[");
    any = true;
    str(b, m->fields[i].name);
  }
  if (any)
    mc_buf_append_char(b, ']');
  if (m->forbid_extra)
    mc_buf_append_cstr(b, ",\"additionalProperties\":false");
  return mc_buf_append_char(b, '}');
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
    if (seen[i] == m || strcmp(seen[i]->name, m->name) == 0)
      return 0;
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
