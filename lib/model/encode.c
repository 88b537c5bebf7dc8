/* Encoding declared models as JSON, straight into a buffer: no DOM, one
 * pass over the fields in declaration order. */
#include <string.h>

#include "model/model_int.h"

static int encode_object(const mc_model *m, const char *base, mc_buf *b,
                         int depth);

/* depth: how many arrays and objects enclose the value. At most
 * MC__MODEL_MAX_DEPTH of them nest, as the decoder accepts. */
static int encode_value(const mc_field *f, const char *p, mc_buf *b,
                        int depth) {
  switch (f->type) {
  case MC_T_STRING: {
    const mc_slice *s = (const mc_slice *)p;
    if (!s->ptr)
      return mc_buf_append_cstr(b, "null");
    return mc_buf_append_json_str(b, s->ptr, s->len);
  }
  case MC_T_INT: {
    int64_t v;
    memcpy(&v, p, sizeof v);
    return mc_buf_appendf(b, "%lld", (long long)v);
  }
  case MC_T_NUMBER: {
    double v;
    memcpy(&v, p, sizeof v);
    return mc__json_number(b, v);
  }
  case MC_T_BOOL:
    return mc_buf_append_cstr(b, *(const bool *)p ? "true" : "false");
  case MC_T_OBJECT:
    return encode_object(f->model, p, b, depth);
  case MC_T_ARRAY: {
    const mc__array *a = (const mc__array *)p;
    if (!a->items)
      return mc_buf_append_cstr(b, "null");
    if (depth >= MC__MODEL_MAX_DEPTH)
      return MC_ETOOBIG;
    size_t sz = mc__field_csize(f->items);
    int err = mc_buf_append_char(b, '[');
    for (size_t i = 0; !err && i < a->len; i++) {
      if (i)
        err = mc_buf_append_char(b, ',');
      if (!err)
        err = encode_value(f->items, (const char *)a->items + i * sz, b,
                           depth + 1);
    }
    return err ? err : mc_buf_append_char(b, ']');
  }
  }
  return MC_EINVAL;
}

static int encode_object(const mc_model *m, const char *base, mc_buf *b,
                         int depth) {
  if (depth >= MC__MODEL_MAX_DEPTH)
    return MC_ETOOBIG;
  int err = mc_buf_append_char(b, '{');
  for (size_t i = 0; !err && i < m->nfields; i++) {
    const mc_field *f = &m->fields[i];
    if (i)
      err = mc_buf_append_char(b, ',');
    if (!err)
      err = mc_buf_append_json_str(b, f->name, strlen(f->name));
    if (!err)
      err = mc_buf_append_char(b, ':');
    if (err)
      break;
    if (f->has_present && !*(const bool *)(base + f->present_offset))
      err = mc_buf_append_cstr(b, "null");
    else
      err = encode_value(f, base + f->offset, b, depth + 1);
  }
  return err ? err : mc_buf_append_char(b, '}');
}

int mc_model_encode_json(const mc_model *m, const void *obj, mc_buf *out) {
  size_t start = out->len;
  int err = encode_object(m, obj, out, 0);
  if (err) {
    out->len = start;
    if (out->ptr)
      out->ptr[start] = 0;
  }
  return err;
}
