/* mc_model_schema_json, mc_field_schema_json and mc_model_walk. The output
 * is parsed with jansson and checked key by key. */
#include "model_test.h"

TestSuite(schema, .init = t_setup, .fini = t_teardown);
TestSuite(walk, .init = t_setup, .fini = t_teardown);

typedef struct {
  mc_slice city;
} saddr;

MC_MODEL(saddr, MC_STRING(saddr, city, MC_REQUIRED));

typedef MC_ARRAY_OF(mc_slice) sstr_list;

typedef struct {
  mc_slice name;
  mc_slice code;
  mc_slice color;
  mc_slice note;
  int64_t count;
  int64_t ex;
  double price;
  bool flag;
  saddr home;
  saddr work;
  saddr doc;
  MC_ARRAY_OF(mc_slice) tags;
  MC_ARRAY_OF(saddr) addrs;
  MC_ARRAY_OF(sstr_list) grid;
  mc_slice email;
  int64_t big;
} full;

MC_MODEL(full,
         MC_STRING(full, name, MC_REQUIRED, MC_LEN(1, 256),
                   MC_DESC("Who \"it\" is"), MC_EXAMPLE("\"Ann\"")),
         MC_STRING(full, code, MC_REQUIRED, MC_PATTERN("^\\d{3}$")),
         MC_STRING(full, color, MC_ENUM("red", "green"), MC_DEFAULT_STR("red")),
         MC_STRING(full, note, MC_REQUIRED, MC_NULLABLE),
         MC_INT(full, count, MC_REQUIRED, MC_MIN(1), MC_MAX(100),
                MC_DEFAULT(5)),
         MC_INT(full, ex, MC_REQUIRED, MC_GT(0), MC_LT(10)),
         MC_NUMBER(full, price, MC_REQUIRED, MC_GT(0.5), MC_DEFAULT(2.5)),
         MC_BOOL(full, flag, MC_REQUIRED, MC_DEFAULT(true)),
         MC_OBJECT(full, home, saddr, MC_REQUIRED),
         MC_OBJECT(full, work, saddr),
         MC_OBJECT(full, doc, saddr, MC_REQUIRED, MC_DESC("documented")),
         MC_ARRAY(full, tags, MC_STRING_ITEMS(MC_MAX_LEN(8)), MC_REQUIRED,
                  MC_MIN_ITEMS(1), MC_MAX_ITEMS(10)),
         MC_ARRAY(full, addrs, MC_OBJECT_ITEMS(saddr), MC_REQUIRED),
         MC_ARRAY(full, grid,
                  MC__ITEMS(MC_T_ARRAY, .items = MC_STRING_ITEMS(MC_NULLABLE),
                            MC_MAX_ITEMS(3)),
                  MC_REQUIRED),
         MC_STRING(full, email, MC_REQUIRED, MC_FORMAT("email")),
         MC_INT(full, big, MC_REQUIRED, MC_MIN(INT64_MIN), MC_MAX(INT64_MAX)));

static json_t *prop(json_t *schema, const char *name) {
  json_t *p = json_object_get(json_object_get(schema, "properties"), name);
  cr_assert_not_null(p, "no property %s", name);
  return p;
}

static const char *str_at(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  cr_assert(json_is_string(v), "%s is not a string", key);
  return json_string_value(v);
}

Test(schema, object_level_keys) {
  json_t *s = t_model_schema(&full_model);
  cr_assert_str_eq(str_at(s, "type"), "object");
  cr_assert_str_eq(str_at(s, "title"), "full");
  cr_assert_eq(json_object_size(json_object_get(s, "properties")), 16);
  /* properties in declaration order */
  const char *key;
  json_t *v;
  size_t i = 0;
  json_object_foreach(json_object_get(s, "properties"), key, v) {
    cr_assert_str_eq(key, full_model.fields[i].name);
    i++;
  }
  json_t *req = json_object_get(s, "required");
  const char *want[] = {"name",  "code", "note",  "count", "ex",
                        "price", "flag", "home",  "doc",   "tags",
                        "addrs", "grid", "email", "big"};
  cr_assert_eq(json_array_size(req), sizeof want / sizeof *want);
  for (i = 0; i < json_array_size(req); i++)
    cr_assert_str_eq(json_string_value(json_array_get(req, i)), want[i]);
  cr_assert_null(json_object_get(s, "additionalProperties"));
}

Test(schema, string_keys) {
  json_t *s = t_model_schema(&full_model);
  json_t *p = prop(s, "name");
  cr_assert_str_eq(str_at(p, "type"), "string");
  cr_assert_eq(json_integer_value(json_object_get(p, "minLength")), 1);
  cr_assert_eq(json_integer_value(json_object_get(p, "maxLength")), 256);
  cr_assert_str_eq(str_at(p, "description"), "Who \"it\" is");
  cr_assert_str_eq(
      json_string_value(json_array_get(json_object_get(p, "examples"), 0)),
      "Ann");
  p = prop(s, "code");
  cr_assert_str_eq(str_at(p, "pattern"), "^\\d{3}$");
  p = prop(s, "email");
  cr_assert_str_eq(str_at(p, "format"), "email");
}

Test(schema, enum_and_default) {
  json_t *p = prop(t_model_schema(&full_model), "color");
  json_t *e = json_object_get(p, "enum");
  cr_assert_eq(json_array_size(e), 2);
  cr_assert_str_eq(json_string_value(json_array_get(e, 0)), "red");
  cr_assert_str_eq(json_string_value(json_array_get(e, 1)), "green");
  cr_assert_str_eq(str_at(p, "default"), "red");
}

Test(schema, optional_and_nullable_fields_admit_null) {
  json_t *s = t_model_schema(&full_model);
  for (int i = 0; i < 2; i++) {
    json_t *t = json_object_get(prop(s, i ? "color" : "note"), "type");
    cr_assert(json_is_array(t));
    cr_assert_eq(json_array_size(t), 2);
    cr_assert_str_eq(json_string_value(json_array_get(t, 0)), "string");
    cr_assert_str_eq(json_string_value(json_array_get(t, 1)), "null");
  }
  cr_assert_str_eq(str_at(prop(s, "name"), "type"), "string");
}

Test(schema, integer_and_number_keys) {
  json_t *s = t_model_schema(&full_model);
  json_t *p = prop(s, "count");
  cr_assert_str_eq(str_at(p, "type"), "integer");
  cr_assert_str_eq(str_at(p, "format"), "int64");
  cr_assert(json_is_integer(json_object_get(p, "minimum")));
  cr_assert_eq(json_integer_value(json_object_get(p, "minimum")), 1);
  cr_assert_eq(json_integer_value(json_object_get(p, "maximum")), 100);
  cr_assert_eq(json_integer_value(json_object_get(p, "default")), 5);
  cr_assert_null(json_object_get(p, "exclusiveMinimum"));
  p = prop(s, "ex");
  cr_assert_eq(json_integer_value(json_object_get(p, "exclusiveMinimum")), 0);
  cr_assert_eq(json_integer_value(json_object_get(p, "exclusiveMaximum")), 10);
  cr_assert_null(json_object_get(p, "minimum"));
  cr_assert_null(json_object_get(p, "maximum"));
  p = prop(s, "price");
  cr_assert_str_eq(str_at(p, "type"), "number");
  cr_assert_str_eq(str_at(p, "format"), "double");
  cr_assert_float_eq(json_number_value(json_object_get(p, "exclusiveMinimum")),
                     0.5, 0);
  cr_assert_float_eq(json_number_value(json_object_get(p, "default")), 2.5, 0);
  p = prop(s, "flag");
  cr_assert_str_eq(str_at(p, "type"), "boolean");
  cr_assert(json_is_true(json_object_get(p, "default")));
}

Test(schema, int64_limits_are_exact_integers) {
  json_t *p = prop(t_model_schema(&full_model), "big");
  json_t *lo = json_object_get(p, "minimum"),
         *hi = json_object_get(p, "maximum");
  cr_assert(json_is_integer(lo));
  cr_assert(json_is_integer(hi));
  cr_assert_eq(json_integer_value(lo), INT64_MIN);
  cr_assert_eq(json_integer_value(hi), INT64_MAX);
}

Test(schema, nested_models_are_refs) {
  json_t *s = t_model_schema(&full_model);
  cr_assert_str_eq(str_at(prop(s, "home"), "$ref"),
                   "#/components/schemas/saddr");
  cr_assert_eq(json_object_size(prop(s, "home")), 1);
  json_t *any = json_object_get(prop(s, "work"), "anyOf");
  cr_assert_eq(json_array_size(any), 2);
  cr_assert_str_eq(str_at(json_array_get(any, 0), "$ref"),
                   "#/components/schemas/saddr");
  cr_assert_str_eq(str_at(json_array_get(any, 1), "type"), "null");
  json_t *doc = prop(s, "doc");
  cr_assert_str_eq(str_at(doc, "description"), "documented");
  cr_assert_str_eq(
      str_at(json_array_get(json_object_get(doc, "allOf"), 0), "$ref"),
      "#/components/schemas/saddr");
}

Test(schema, arrays_and_items) {
  json_t *s = t_model_schema(&full_model);
  json_t *p = prop(s, "tags");
  cr_assert_str_eq(str_at(p, "type"), "array");
  cr_assert_eq(json_integer_value(json_object_get(p, "minItems")), 1);
  cr_assert_eq(json_integer_value(json_object_get(p, "maxItems")), 10);
  cr_assert_null(json_object_get(p, "minLength"));
  json_t *items = json_object_get(p, "items");
  cr_assert_str_eq(str_at(items, "type"), "string");
  cr_assert_eq(json_integer_value(json_object_get(items, "maxLength")), 8);
  items = json_object_get(prop(s, "addrs"), "items");
  cr_assert_str_eq(str_at(items, "$ref"), "#/components/schemas/saddr");
  items = json_object_get(prop(s, "grid"), "items");
  cr_assert_str_eq(str_at(items, "type"), "array");
  cr_assert_eq(json_integer_value(json_object_get(items, "maxItems")), 3);
  json_t *inner = json_object_get(json_object_get(items, "items"), "type");
  cr_assert_str_eq(json_string_value(json_array_get(inner, 0)), "string");
  cr_assert_str_eq(json_string_value(json_array_get(inner, 1)), "null");
}

Test(schema, forbid_extra_and_description) {
  static const mc_field f[] = {{.name = "a", .type = MC_T_INT}};
  static const mc_model m = {.name = "strict",
                             .size = 8,
                             .fields = f,
                             .nfields = 1,
                             .description = "A \"strict\" one",
                             .forbid_extra = true};
  json_t *s = t_model_schema(&m);
  cr_assert(json_is_false(json_object_get(s, "additionalProperties")));
  cr_assert_str_eq(str_at(s, "description"), "A \"strict\" one");
  cr_assert_null(json_object_get(s, "required")); /* none required */
}

Test(schema, empty_model) {
  static const mc_model m = {.name = "empty", .size = 1};
  json_t *s = t_model_schema(&m);
  cr_assert_eq(json_object_size(json_object_get(s, "properties")), 0);
}

Test(schema, field_schema_for_parameters) {
  static const mc_field page = {
      .name = "page", .type = MC_T_INT, .required = true, MC_MIN(1)};
  json_t *s = t_field_schema(&page);
  cr_assert_str_eq(str_at(s, "type"), "integer");
  cr_assert_eq(json_integer_value(json_object_get(s, "minimum")), 1);
  /* a parameter's optionality is the parameter's "required", not null */
  static const mc_field q = {.name = "q", .type = MC_T_STRING, MC_LEN(0, 5)};
  s = t_field_schema(&q);
  cr_assert_str_eq(str_at(s, "type"), "string");
  cr_assert_eq(json_integer_value(json_object_get(s, "minLength")), 0);
  static const mc_field n = {
      .name = "n", .type = MC_T_NUMBER, MC_NULLABLE, MC_LT(1.5)};
  s = t_field_schema(&n);
  cr_assert_str_eq(
      json_string_value(json_array_get(json_object_get(s, "type"), 1)), "null");
  cr_assert_float_eq(json_number_value(json_object_get(s, "exclusiveMaximum")),
                     1.5, 0);
}

Test(schema, buffer_limit_is_reported_and_leaves_the_buffer) {
  /* Regression: errors in the middle were dropped and a later short append
   * could succeed, returning 0 with broken JSON. */
  for (size_t limit = 3; limit < 1500; limit += 7) {
    mc_buf b;
    mc_buf_init(&b, limit);
    mc_buf_append_cstr(&b, "ab");
    int err = mc_model_schema_json(&full_model, &b);
    if (err == 0) {
      t_parse(b.ptr + 2);
    } else {
      cr_assert_eq(err, MC_ETOOBIG);
      cr_assert_str_eq(b.ptr, "ab", "limit %zu", limit);
    }
    mc_buf_free(&b);
    mc_buf_init(&b, limit / 8 + 3);
    mc_buf_append_cstr(&b, "ab");
    err = mc_field_schema_json(&full_model.fields[0], &b);
    if (err == 0)
      t_parse(b.ptr + 2);
    else
      cr_assert_str_eq(b.ptr, "ab");
    mc_buf_free(&b);
  }
}

/* ---- walk --------------------------------------------------------------- */

typedef struct {
  int64_t v;
} wc;
MC_MODEL(wc, MC_INT(wc, v));

typedef struct {
  wc c;
} wb;
MC_MODEL(wb, MC_OBJECT(wb, c, wc));

typedef struct {
  wb b;
  MC_ARRAY_OF(wc) cs;
  MC_ARRAY_OF(sstr_list) strs;
} wa;
MC_MODEL(wa, MC_OBJECT(wa, b, wb), MC_ARRAY(wa, cs, MC_OBJECT_ITEMS(wc)),
         MC_ARRAY(wa, strs, MC__ITEMS(MC_T_ARRAY, .items = MC_STRING_ITEMS())));

typedef MC_ARRAY_OF(wc) wc_list;
typedef struct {
  MC_ARRAY_OF(wc_list) deep;
} wd;
MC_MODEL(wd, MC_ARRAY(wd, deep,
                      MC__ITEMS(MC_T_ARRAY, .items = MC_OBJECT_ITEMS(wc))));

typedef struct wx wx;
typedef struct wy wy;
MC_MODEL_DECLARE(wx);
MC_MODEL_DECLARE(wy);
struct wy {
  MC_ARRAY_OF(wx) xs;
};
struct wx {
  MC_ARRAY_OF(wy) ys;
  MC_ARRAY_OF(wx) self;
};
MC_MODEL(wy, MC_ARRAY(wy, xs, MC_OBJECT_ITEMS(wx)));
MC_MODEL(wx, MC_ARRAY(wx, ys, MC_OBJECT_ITEMS(wy)),
         MC_ARRAY(wx, self, MC_OBJECT_ITEMS(wx)));

typedef struct {
  const mc_model *order[16];
  size_t n;
  int fail_at; /* returns MC_EIO on this call (1-based); 0: never */
} visits;

static int visit(const mc_model *m, void *arg) {
  visits *v = arg;
  v->order[v->n++] = m;
  return (int)v->n == v->fail_at ? MC_EIO : 0;
}

Test(walk, dependencies_first_each_once) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wa_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(v.n, 3);
  cr_assert_eq(v.order[0], &wc_model);
  cr_assert_eq(v.order[1], &wb_model);
  cr_assert_eq(v.order[2], &wa_model);
  cr_assert_eq(nseen, 3);
}

Test(walk, roots_share_the_seen_list) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wa_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(mc_model_walk(&wd_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(mc_model_walk(&wb_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(v.n, 4);
  cr_assert_eq(v.order[3], &wd_model);
}

Test(walk, models_inside_arrays_of_arrays) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wd_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(v.n, 2);
  cr_assert_eq(v.order[0], &wc_model);
  cr_assert_eq(v.order[1], &wd_model);
}

Test(walk, cycles_terminate) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wx_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(v.n, 2);
  cr_assert_eq(v.order[0], &wy_model);
  cr_assert_eq(v.order[1], &wx_model);
}

Test(walk, cap_is_too_big) {
  const mc_model *seen[2];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wa_model, seen, &nseen, 2, visit, &v),
               MC_ETOOBIG);
  cr_assert_leq(nseen, 2);
  nseen = 0;
  cr_assert_eq(mc_model_walk(&wc_model, seen, &nseen, 0, visit, &v),
               MC_ETOOBIG);
}

Test(walk, callback_error_stops_the_walk) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {.fail_at = 1};
  cr_assert_eq(mc_model_walk(&wa_model, seen, &nseen, 8, visit, &v), MC_EIO);
  cr_assert_eq(v.n, 1);
}

/* A second model that calls itself "wc": its schema would overwrite the
 * first one's under #/components/schemas. */
static const mc_field impostor_fields[] = {MC_STRING(wc, v)};
static const mc_model impostor = {
    .name = "wc", .size = sizeof(wc), .fields = impostor_fields, .nfields = 1};

Test(walk, two_models_with_one_name_are_refused) {
  const mc_model *seen[8];
  size_t nseen = 0;
  visits v = {0};
  cr_assert_eq(mc_model_walk(&wa_model, seen, &nseen, 8, visit, &v), 0);
  cr_assert_eq(mc_model_walk(&impostor, seen, &nseen, 8, visit, &v),
               MC_EEXISTS);
}

typedef struct {
  MC_ARRAY_OF(wc_list) grid;
} wgrid;
MC_MODEL_WITH(wgrid, (.description = "a grid", .forbid_extra = true),
              MC_ARRAY(wgrid, grid,
                       MC_ARRAY_ITEMS(MC_OBJECT_ITEMS(wc), MC_MAX_ITEMS(3))));

Test(walk, model_attributes_and_array_items_macros) {
  cr_assert_str_eq(wgrid_model.description, "a grid");
  cr_assert(wgrid_model.forbid_extra);
  cr_assert_eq(wgrid_model.fields[0].items->type, MC_T_ARRAY);
  cr_assert_eq(wgrid_model.fields[0].items->max_len, 3);
  cr_assert_eq(mc_model_check(&wgrid_model), 0);
}
