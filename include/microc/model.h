/* microc models: declare a type's fields once; get a validating JSON
 * decoder, an encoder and the OpenAPI 3.1 (JSON Schema 2020-12) schema.
 *
 *   typedef struct {
 *     mc_slice message;
 *     int64_t count;
 *     MC_ARRAY_OF(mc_slice) tags;
 *   } echo_in;
 *
 *   MC_MODEL(echo_in,
 *     MC_STRING(echo_in, message, MC_REQUIRED, MC_LEN(1, 256)),
 *     MC_INT(echo_in, count, MC_REQUIRED, MC_MIN(1), MC_MAX(100)),
 *     MC_ARRAY(echo_in, tags, MC_STRING_ITEMS(), MC_MAX_ITEMS(10)));
 *
 * defines `const mc_model echo_in_model`. Declare it elsewhere with
 * MC_MODEL_DECLARE(echo_in).
 *
 * C representation of each field type:
 *   MC_T_STRING  mc_slice  (arena copy, NUL-terminated; {NULL,0} if absent)
 *   MC_T_INT     int64_t
 *   MC_T_NUMBER  double
 *   MC_T_BOOL    bool
 *   MC_T_OBJECT  the nested struct, embedded by value (MC_OBJECT); absent
 *                optional objects are all zero
 *   MC_T_ARRAY   MC_ARRAY_OF(T): { T *items; size_t len; }; items are laid
 *                out as the item type's C representation above
 * Absent optional scalars take their MC_DEFAULT (or zero). A presence flag
 * can be requested with MC_PRESENT(type, bool_member).
 *
 * Error reporting follows FastAPI/pydantic: every violation is reported,
 * each with a loc (JSON array text such as ["body","count"]), a msg for
 * people and a machine-readable type ("missing", "string_too_short", ...).
 */
#ifndef MICROC_MODEL_H
#define MICROC_MODEL_H

#include <stddef.h>

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_type {
  MC_T_STRING = 1,
  MC_T_INT,
  MC_T_NUMBER,
  MC_T_BOOL,
  MC_T_OBJECT,
  MC_T_ARRAY,
} mc_type;

struct mc_model;

typedef struct mc_field {
  const char *name; /* JSON key, also the parameter name */
  mc_type type;
  size_t offset; /* of the member in the struct */
  bool required;
  bool nullable; /* JSON null accepted and treated as absent */
  /* numbers and integers */
  bool has_min, has_max, exclusive_min, exclusive_max;
  double min, max;
  /* strings: characters (code points); arrays: items */
  bool has_min_len, has_max_len;
  size_t min_len, max_len;
  const char *pattern;            /* POSIX ERE, unanchored, as JSON Schema */
  const char *const *enum_values; /* NULL-terminated; strings only */
  const struct mc_model *model;   /* MC_T_OBJECT */
  const struct mc_field *items;   /* MC_T_ARRAY: the item's description */
  /* default for an absent optional field */
  bool has_default;
  double def_num;      /* int, number, bool (nonzero = true) */
  const char *def_str; /* string */
  /* optional presence flag: a bool member set when the field was given */
  bool has_present;
  size_t present_offset;
  const char *description;
  const char *example; /* JSON text, copied into the schema */
  const char *format;  /* OpenAPI format annotation, e.g. "email" */
} mc_field;

typedef struct mc_model {
  const char *name; /* schema name under #/components/schemas */
  size_t size;      /* sizeof the C struct */
  const mc_field *fields;
  size_t nfields;
  const char *description;
  bool forbid_extra; /* unknown keys are errors ("extra_forbidden") */
} mc_model;

#define MC_ARRAY_OF(T)                                                         \
  struct {                                                                     \
    T *items;                                                                  \
    size_t len;                                                                \
  }

/* ---- declaring -------------------------------------------------------- */

#define MC_REQUIRED .required = true
#define MC_NULLABLE .nullable = true
#define MC_MIN(x) .has_min = true, .min = (double)(x)
#define MC_MAX(x) .has_max = true, .max = (double)(x)
#define MC_GT(x) .has_min = true, .exclusive_min = true, .min = (double)(x)
#define MC_LT(x) .has_max = true, .exclusive_max = true, .max = (double)(x)
#define MC_MIN_LEN(n) .has_min_len = true, .min_len = (n)
#define MC_MAX_LEN(n) .has_max_len = true, .max_len = (n)
#define MC_LEN(lo, hi) MC_MIN_LEN(lo), MC_MAX_LEN(hi)
#define MC_MIN_ITEMS(n) MC_MIN_LEN(n)
#define MC_MAX_ITEMS(n) MC_MAX_LEN(n)
#define MC_PATTERN(re) .pattern = (re)
#define MC_ENUM(...)                                                           \
  .enum_values = (const char *const[]) {                                       \
    __VA_ARGS__, NULL                                                          \
  }
#define MC_DEFAULT(x) .has_default = true, .def_num = (double)(x)
#define MC_DEFAULT_STR(s) .has_default = true, .def_str = (s)
#define MC_DESC(s) .description = (s)
#define MC_EXAMPLE(json) .example = (json)
#define MC_FORMAT(f) .format = (f)
#define MC_PRESENT(T, member)                                                  \
  .has_present = true, .present_offset = offsetof(T, member)

#define MC__FIELD(T, member, ty, ...)                                          \
  { .name = #member, .type = (ty), .offset = offsetof(T, member), __VA_ARGS__ }
#define MC_STRING(T, member, ...) MC__FIELD(T, member, MC_T_STRING, __VA_ARGS__)
#define MC_INT(T, member, ...) MC__FIELD(T, member, MC_T_INT, __VA_ARGS__)
#define MC_NUMBER(T, member, ...) MC__FIELD(T, member, MC_T_NUMBER, __VA_ARGS__)
#define MC_BOOL(T, member, ...) MC__FIELD(T, member, MC_T_BOOL, __VA_ARGS__)
#define MC_OBJECT(T, member, M, ...)                                           \
  MC__FIELD(T, member, MC_T_OBJECT, .model = &M##_model, __VA_ARGS__)
#define MC_ARRAY(T, member, ITEMS, ...)                                        \
  MC__FIELD(T, member, MC_T_ARRAY, .items = ITEMS, __VA_ARGS__)

/* Item descriptions for MC_ARRAY, with their own constraints. */
#define MC__ITEMS(ty, ...)                                                     \
  (&(const mc_field){.name = "", .type = (ty), __VA_ARGS__})
#define MC_STRING_ITEMS(...) MC__ITEMS(MC_T_STRING, __VA_ARGS__)
#define MC_INT_ITEMS(...) MC__ITEMS(MC_T_INT, __VA_ARGS__)
#define MC_NUMBER_ITEMS(...) MC__ITEMS(MC_T_NUMBER, __VA_ARGS__)
#define MC_BOOL_ITEMS(...) MC__ITEMS(MC_T_BOOL, __VA_ARGS__)
#define MC_OBJECT_ITEMS(M, ...)                                                \
  MC__ITEMS(MC_T_OBJECT, .model = &M##_model, __VA_ARGS__)
/* Arrays of arrays: MC_ARRAY_ITEMS(MC_INT_ITEMS(), MC_MAX_ITEMS(3)) is an
 * item that is itself an array of at most three integers. */
#define MC_ARRAY_ITEMS(ITEMS, ...)                                             \
  MC__ITEMS(MC_T_ARRAY, .items = ITEMS, __VA_ARGS__)

#define MC_MODEL_DECLARE(T) extern const mc_model T##_model
#define MC_MODEL(T, ...) MC_MODEL_WITH(T, (), __VA_ARGS__)
/* MC_MODEL with model attributes in parentheses:
 *   MC_MODEL_WITH(book, (.description = "A book", .forbid_extra = true),
 *                 MC_STRING(book, title, MC_REQUIRED), ...);
 * The model's schema name is the type's name; two different models with
 * one name make the OpenAPI document fail to build at start-up. */
#define MC_MODEL_WITH(T, ATTRS, ...)                                           \
  static const mc_field T##__fields[] = {__VA_ARGS__};                         \
  const mc_model T##_model = {.name = #T,                                      \
                              .size = sizeof(T),                               \
                              .fields = T##__fields,                           \
                              .nfields = sizeof(T##__fields) /                 \
                                         sizeof(T##__fields[0]),               \
                              MC__UNPAREN ATTRS}
#define MC__UNPAREN(...) __VA_ARGS__

/* ---- errors ----------------------------------------------------------- */

typedef struct mc_model_error {
  const char *loc;  /* JSON array text, e.g. ["body","tags",3] */
  const char *msg;  /* for people */
  const char *type; /* for programs */
} mc_model_error;

/* A list of violations. Memory comes from the arena given at init. */
typedef struct mc_model_errors {
  mc_model_error *items;
  size_t len;
  size_t cap;
  mc_arena *arena;
} mc_model_errors;

MC_EXTERN void mc_model_errors_init(mc_model_errors *e, mc_arena *a);
/* Adds one violation; loc_json is copied. MC_ENOMEM. */
MC_EXTERN int mc_model_errors_add(mc_model_errors *e, const char *loc_json,
                                  const char *msg, const char *type);
/* Appends the list as a JSON array of {"loc","msg","type"} objects. */
MC_EXTERN int mc_model_errors_json(const mc_model_errors *e, mc_buf *out);

/* ---- checking --------------------------------------------------------- */

/* Checks a declaration once, at start-up: field names present and unique,
 * patterns that compile, enums only on strings and not empty, examples that
 * are JSON, arrays with an item type, min not above max. Returns 0,
 * MC_EINVAL, or MC_ENOMEM. mc_app_routes calls it for every model a route
 * names.
 *
 * Patterns are JSON Schema patterns (unanchored) and match characters, not
 * bytes; \d \w \s \D \W \S and \t \n \r \f \v are understood, and the
 * rest is POSIX ERE. What ERE cannot express faithfully (\x41, \p{L},
 * lookarounds) is refused rather than mis-matched. */
MC_EXTERN int mc_model_check(const mc_model *m);

/* ---- decoding --------------------------------------------------------- */

/* Decodes JSON text into a new zeroed struct of m->size bytes allocated
 * from `a` (strings and arrays also come from `a`), validating as it goes.
 * `where` is the first loc element ("body").
 *
 * Returns 0 and sets *out; MC_EPARSE when the text is not JSON (one error of
 * type "json_invalid" is added, with the position in msg); MC_EVALIDATION
 * when the JSON does not fit the model (every violation is added; *out is
 * still set to the partly filled struct); MC_ETOOBIG when the text nests
 * deeper than 64 (one "json_invalid" error is added); MC_ENOMEM.
 *
 * JSON is read strictly: duplicate keys and NUL characters make it invalid;
 * an integer field takes an integer or a number with no fraction, never a
 * string or a bool; integers beyond 64 bits are validation errors of their
 * field, not parse errors. */
MC_EXTERN int mc_model_decode_json(const mc_model *m, mc_slice json,
                                   mc_arena *a, const char *where, void **out,
                                   mc_model_errors *errs);

/* Decodes string pairs (path or query parameters, form fields) into `obj`
 * (m->size bytes, zeroed by the caller). Values are coerced to each field's
 * type as FastAPI does: "12" for an int, "true"/"false"/"1"/"0"/"yes"/"no"/
 * "on"/"off" for a bool; repeated keys fill an array field, and for any other
 * field the last one wins (as in FastAPI). Keys not in the model are
 * ignored. Returns 0, MC_EVALIDATION (errors added), MC_ENOMEM. */
MC_EXTERN int mc_model_decode_pairs(const mc_model *m, const mc_slice *keys,
                                    const mc_slice *values, size_t n,
                                    mc_arena *a, const char *where, void *obj,
                                    mc_model_errors *errs);

/* ---- encoding --------------------------------------------------------- */

/* Appends obj as a JSON object in field order. Absent optional strings and
 * arrays (NULL ptr) and fields whose presence flag is false are written as
 * null. Numbers are written in their shortest exact form, whole ones with a
 * ".0" (2.0); infinities and NaN as null. Returns 0, MC_ENOMEM or
 * MC_ETOOBIG (buffer limit, or nesting deeper than 64); on failure the
 * buffer is left as it was. */
MC_EXTERN int mc_model_encode_json(const mc_model *m, const void *obj,
                                   mc_buf *out);

/* ---- schemas ---------------------------------------------------------- */

/* Appends the JSON Schema (2020-12, as OpenAPI 3.1 uses) of m. Nested models
 * are written as {"$ref": "#/components/schemas/<name>"}. */
MC_EXTERN int mc_model_schema_json(const mc_model *m, mc_buf *out);
/* Appends the schema of a single field (a parameter's schema). */
MC_EXTERN int mc_field_schema_json(const mc_field *f, mc_buf *out);

/* Calls fn for m and every model reachable from it, each once (depth first,
 * dependencies before dependents). `seen`/`nseen`/`cap` hold the models
 * already visited across calls so several roots share one list. Returns
 * the first nonzero fn result, MC_ETOOBIG when more than cap models are
 * reachable, or MC_EEXISTS when two different models share a name (their
 * schemas would collide under #/components/schemas). */
MC_EXTERN int mc_model_walk(const mc_model *m, const mc_model **seen,
                            size_t *nseen, size_t cap,
                            int (*fn)(const mc_model *, void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
