/* Shared fixtures for the model unit tests: one arena and one error list
 * per test (Criterion forks per test, so globals are per test). */
#ifndef MODEL_TEST_H
#define MODEL_TEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "microc/model.h"
#include "model/model_int.h"

extern mc_arena *t_arena;
extern mc_model_errors t_errs;

/* .init and .fini of every suite: a fresh arena and an empty error list. */
void t_setup(void);
void t_teardown(void);

/* Decodes text as a JSON body ("body") into *out; returns the result. */
int t_decode(const mc_model *m, const char *json, void *out);
int t_decode_n(const mc_model *m, const char *json, size_t len, void *out);

/* The error list as JSON text (arena memory), for assertion messages. */
const char *t_errors_text(void);

/* Asserts the error list holds exactly n (loc, type, msg) triples, in
 * order. A NULL msg is not compared. */
void t_expect_errors(size_t n, ...);
#define t_expect_one(loc, type, msg) t_expect_errors(1, loc, type, msg)
#define t_expect_none() t_expect_errors(0)

/* Encodes obj and returns the text (arena memory); asserts success. */
const char *t_encode(const mc_model *m, const void *obj);

/* Parses JSON text with jansson; the value is released with the arena. */
json_t *t_parse(const char *text);
/* The schema of m / of f, parsed; released with the arena. */
json_t *t_model_schema(const mc_model *m);
json_t *t_field_schema(const mc_field *f);

/* A string made of n copies of s, in arena memory. */
char *t_repeat(const char *s, size_t n);

#endif
