/* Fuzzes the model JSON decoder (lib/model/decode.c) and, through it, the
 * encoder and the error list.
 *
 * The input is a request body for `order`, a model that uses every field
 * type and constraint: strings with length, pattern, enum and default;
 * integers and numbers with inclusive and exclusive bounds; booleans;
 * nested objects, required and optional; arrays of strings, integers,
 * numbers, booleans, objects and arrays; nullable fields and items;
 * presence flags; forbid_extra; and a recursive model for deep nesting.
 * Checked, with abort():
 *  - mc_model_decode_json returns only what its contract lists, with
 *    errors exactly when it says so ("json_invalid" for MC_EPARSE and
 *    MC_ETOOBIG, none for success);
 *  - the error list, written by mc_model_errors_json, is valid JSON;
 *  - what decodes encodes, and the encoding decodes again without a single
 *    error and encodes to the same bytes (encode-decode is a fixed point).
 *
 * The encoder writes null only for absent strings and arrays and for fields
 * with a presence flag; an absent field without one is written as its zero
 * value or default. So every optional field here whose zero value would
 * break its own constraints has a default or a presence flag, as a model
 * must for its output to be valid input. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "microc/model.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

typedef struct address {
  mc_slice street;
  mc_slice zip;
  mc_slice country;
} address;

MC_MODEL(address, MC_STRING(address, street, MC_REQUIRED, MC_LEN(1, 64)),
         MC_STRING(address, zip, MC_REQUIRED, MC_PATTERN("^\\d{5}(-\\d{4})?$")),
         MC_STRING(address, country, MC_ENUM("DE", "FR", "US"),
                   MC_DEFAULT_STR("DE")));

typedef struct line_item {
  int64_t book_id;
  int64_t qty;
  double price;
  bool gift_wrap;
} line_item;

MC_MODEL_WITH(line_item, (.forbid_extra = true),
              MC_INT(line_item, book_id, MC_REQUIRED, MC_GT(0)),
              MC_INT(line_item, qty, MC_MIN(1), MC_MAX(99), MC_DEFAULT(1)),
              MC_NUMBER(line_item, price, MC_REQUIRED, MC_MIN(0), MC_LT(1e6)),
              MC_BOOL(line_item, gift_wrap));

/* A tree, for nesting as deep as the decoder follows. */
typedef struct node node;
struct node {
  mc_slice label;
  MC_ARRAY_OF(node) kids;
};
MC_MODEL_DECLARE(node);
MC_MODEL(node, MC_STRING(node, label, MC_MAX_LEN(16)),
         MC_ARRAY(node, kids, MC_OBJECT_ITEMS(node), MC_MAX_ITEMS(8)));

typedef struct order {
  mc_slice id;
  mc_slice status;
  mc_slice note;
  mc_slice email;
  mc_slice coupon;
  bool has_coupon;
  int64_t count;
  int64_t big;
  int64_t page;
  int64_t offset;
  bool has_offset;
  double total;
  double ratio;
  bool has_ratio;
  double anything;
  bool gift;
  bool express;
  address ship;
  address bill;
  bool has_bill;
  MC_ARRAY_OF(mc_slice) tags;
  MC_ARRAY_OF(mc_slice) aliases;
  MC_ARRAY_OF(line_item) items;
  MC_ARRAY_OF(int64_t) scores;
  MC_ARRAY_OF(double) weights;
  MC_ARRAY_OF(bool) flags;
  MC_ARRAY_OF(MC_ARRAY_OF(int64_t)) matrix;
  node tree;
  bool has_tree;
} order;

MC_MODEL_WITH(
    order, (.forbid_extra = true),
    MC_STRING(order, id, MC_REQUIRED, MC_LEN(1, 36),
              MC_PATTERN("^[a-z0-9][a-z0-9-]*$")),
    MC_STRING(order, status, MC_ENUM("pending", "confirmed", "cancelled"),
              MC_DEFAULT_STR("pending")),
    MC_STRING(order, note, MC_NULLABLE, MC_MAX_LEN(200)),
    MC_STRING(order, email, MC_PATTERN("^\\S+@\\S+\\.\\w+$"),
              MC_FORMAT("email")),
    MC_STRING(order, coupon, MC_REQUIRED, MC_NULLABLE, MC_LEN(4, 12),
              MC_PRESENT(order, has_coupon)),
    MC_INT(order, count, MC_REQUIRED, MC_MIN(-5), MC_MAX(1000)),
    MC_INT(order, big, MC_MIN(-0x1p63), MC_MAX(0x1p63)), /* INT64_MIN..MAX */
    MC_INT(order, page, MC_GT(0), MC_LT(101), MC_DEFAULT(1)),
    MC_INT(order, offset, MC_NULLABLE, MC_MIN(10), MC_MAX(9.2e18),
           MC_PRESENT(order, has_offset)),
    MC_NUMBER(order, total, MC_MIN(0), MC_MAX(1e9), MC_DEFAULT(2.5)),
    MC_NUMBER(order, ratio, MC_NULLABLE, MC_GT(0), MC_LT(1),
              MC_PRESENT(order, has_ratio)),
    MC_NUMBER(order, anything), /* any double */
    MC_BOOL(order, gift, MC_DEFAULT(true)),
    MC_BOOL(order, express, MC_REQUIRED, MC_NULLABLE),
    MC_OBJECT(order, ship, address, MC_REQUIRED),
    MC_OBJECT(order, bill, address, MC_NULLABLE, MC_PRESENT(order, has_bill)),
    MC_ARRAY(order, tags,
             MC_STRING_ITEMS(MC_LEN(1, 20), MC_PATTERN("^[[:alnum:]_-]+$")),
             MC_MAX_ITEMS(10)),
    MC_ARRAY(order, aliases, MC_STRING_ITEMS(MC_NULLABLE, MC_MAX_LEN(8)),
             MC_NULLABLE),
    MC_ARRAY(order, items, MC_OBJECT_ITEMS(line_item), MC_REQUIRED,
             MC_MIN_ITEMS(1), MC_MAX_ITEMS(50)),
    MC_ARRAY(order, scores, MC_INT_ITEMS(MC_MIN(-0.5), MC_LT(10.5))),
    MC_ARRAY(order, weights,
             MC_NUMBER_ITEMS(MC_NULLABLE, MC_GT(-2.5), MC_MAX(1e300)),
             MC_MIN_ITEMS(2)),
    MC_ARRAY(order, flags, MC_BOOL_ITEMS()),
    MC_ARRAY(order, matrix,
             MC_ARRAY_ITEMS(MC_INT_ITEMS(MC_MIN(-1)), MC_MAX_ITEMS(4)),
             MC_MAX_ITEMS(4)),
    MC_OBJECT(order, tree, node, MC_PRESENT(order, has_tree)));

/* Small enough that long arrays and strings run the arena dry, so the
 * MC_ENOMEM paths run too. */
#define ARENA_LIMIT (64u << 10)

/* Decodes json; returns the result and leaves the error list as JSON in
 * *errs_out (a valid JSON array). */
static int decode(mc_slice json, mc_arena *a, void **out, mc_buf *errs_out,
                  size_t *nerrs) {
  mc_model_errors errs;
  mc_model_errors_init(&errs, a);
  *out = NULL;
  int rc = mc_model_decode_json(&order_model, json, a, "body", out, &errs);
  CHECK(rc == 0 || rc == MC_EPARSE || rc == MC_EVALIDATION ||
        rc == MC_ETOOBIG || rc == MC_ENOMEM);
  if (rc == 0)
    CHECK(errs.len == 0 && *out);
  if (rc == MC_EVALIDATION)
    CHECK(errs.len > 0 && *out);
  if (rc == MC_EPARSE)
    CHECK(errs.len == 1 && strcmp(errs.items[0].type, "json_invalid") == 0);
  if (rc == MC_ETOOBIG) /* the last error says why */
    CHECK(errs.len >= 1 &&
          strcmp(errs.items[errs.len - 1].type, "json_invalid") == 0);
  for (size_t i = 0; i < errs.len; i++)
    CHECK(errs.items[i].loc && errs.items[i].msg && errs.items[i].type &&
          strncmp(errs.items[i].loc, "[\"body\"", 7) == 0);
  CHECK(mc_model_errors_json(&errs, errs_out) == 0);
  json_error_t je;
  json_t *parsed = json_loadb(errs_out->ptr, errs_out->len, 0, &je);
  CHECK(json_is_array(parsed) && json_array_size(parsed) == errs.len);
  json_decref(parsed);
  *nerrs = errs.len;
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool checked;
  if (!checked) {
    CHECK(mc_model_check(&order_model) == 0);
    checked = true;
  }
  mc_arena *a, *b;
  CHECK(mc_arena_new(&a, 4096, ARENA_LIMIT) == 0);
  /* the encoding decodes into no more than the input did; twice the
   * room keeps MC_ENOMEM out of the second decode all the same */
  CHECK(mc_arena_new(&b, 4096, 2 * ARENA_LIMIT) == 0);
  mc_buf errs1, errs2, enc1, enc2;
  mc_buf_init(&errs1, 0);
  mc_buf_init(&errs2, 0);
  mc_buf_init(&enc1, 0);
  mc_buf_init(&enc2, 0);

  void *obj;
  size_t n;
  int rc = decode((mc_slice){(const char *)data, size}, a, &obj, &errs1, &n);
  if (rc == 0) {
    CHECK(mc_model_encode_json(&order_model, obj, &enc1) == 0);
    void *again;
    int rc2 = decode(mc_buf_slice(&enc1), b, &again, &errs2, &n);
    CHECK(rc2 == 0);
    CHECK(mc_model_encode_json(&order_model, again, &enc2) == 0);
    CHECK(enc1.len == enc2.len && memcmp(enc1.ptr, enc2.ptr, enc1.len) == 0);
  } else if (rc == MC_EVALIDATION) {
    /* a partly filled struct must still encode */
    int e = mc_model_encode_json(&order_model, obj, &enc1);
    CHECK(e == 0 || e == MC_ETOOBIG);
  }

  mc_buf_free(&errs1);
  mc_buf_free(&errs2);
  mc_buf_free(&enc1);
  mc_buf_free(&enc2);
  mc_arena_free(a);
  mc_arena_free(b);
  return 0;
}
