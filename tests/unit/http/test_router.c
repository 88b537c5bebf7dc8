#include <criterion/criterion.h>
#include <string.h>

#include "http/http_int.h"

static int h(mc_req *req) {
  return 0;
}

static mc__router r;
static void teardown(void) {
  mc__router_free(&r);
}
TestSuite(router, .fini = teardown);

static const mc_route routes[] = {
    {"GET", "/books", h},      {"POST", "/books", h},
    {"GET", "/books/{id}", h}, {"PUT", "/books/{id}", h},
    {"GET", "/books/new", h},  {"GET", "/books/{id}/reviews/{rid}", h},
    {"PURGE", "/cache", h},    {"GET", "/", h},
};

static void add_all(void) {
  for (uint32_t i = 0; i < MC_COUNT(routes); i++)
    cr_assert_eq(mc__router_add(&r, &routes[i], i), 0, "route %u", i);
}

static mc__match match(const char *method, const char *path) {
  mc__match m;
  mc__router_match(&r, mc_slice_cstr(method), mc_slice_cstr(path), &m);
  return m;
}

Test(router, literal_paths) {
  add_all();
  mc__match m = match("GET", "/books");
  cr_assert_not_null(m.entry);
  cr_assert_eq(m.entry->route, &routes[0]);
  cr_assert_eq(match("POST", "/books").entry->route, &routes[1]);
  cr_assert_eq(match("GET", "/").entry->route, &routes[7]);
}

Test(router, parameters_are_captured_raw) {
  add_all();
  mc__match m = match("GET", "/books/a%20b");
  cr_assert_eq(m.entry->route, &routes[2]);
  cr_assert_eq(m.nparams, 1);
  cr_assert(mc_slice_eq(m.names[0], MC_LIT("id")));
  cr_assert(mc_slice_eq(m.raw_values[0], MC_LIT("a%20b")));
  m = match("GET", "/books/7/reviews/9");
  cr_assert_eq(m.entry->route, &routes[5]);
  cr_assert_eq(m.nparams, 2);
  cr_assert(mc_slice_eq(m.names[1], MC_LIT("rid")));
  cr_assert(mc_slice_eq(m.raw_values[1], MC_LIT("9")));
}

Test(router, literal_segment_beats_parameter) {
  add_all();
  cr_assert_eq(match("GET", "/books/new").entry->route, &routes[4]);
  cr_assert_eq(match("GET", "/books/old").entry->route, &routes[2]);
}

Test(router, empty_segments_do_not_match_parameters) {
  add_all();
  mc__match m = match("GET", "/books/");
  cr_assert_null(m.entry);
  cr_assert_not(m.path_matched);
  cr_assert_null(match("GET", "/books//reviews/1").entry);
}

Test(router, wrong_method_gives_allow_mask) {
  add_all();
  mc__match m = match("DELETE", "/books/3");
  cr_assert_null(m.entry);
  cr_assert(m.path_matched);
  uint32_t want = (1u << MC__M_GET) | (1u << MC__M_HEAD) | (1u << MC__M_PUT) |
                  (1u << MC__M_OPTIONS);
  cr_assert_eq(m.allow_mask, want, "mask %x", m.allow_mask);
}

Test(router, head_falls_back_to_get) {
  add_all();
  mc__match m = match("HEAD", "/books/3");
  cr_assert_eq(m.entry->route, &routes[2]);
  cr_assert_eq(m.nparams, 1);
}

Test(router, unknown_methods_match_exactly) {
  add_all();
  cr_assert_eq(match("PURGE", "/cache").entry->route, &routes[6]);
  mc__match m = match("BREW", "/cache");
  cr_assert_null(m.entry);
  cr_assert(m.path_matched);
}

Test(router, unknown_path) {
  add_all();
  mc__match m = match("GET", "/authors");
  cr_assert_null(m.entry);
  cr_assert_not(m.path_matched);
  cr_assert_eq(m.allow_mask, 0);
}

Test(router, methods_are_case_sensitive) {
  add_all();
  cr_assert_null(match("get", "/books").entry);
}

Test(router, duplicates_are_refused) {
  add_all();
  mc_route dup = {"GET", "/books/{other}", h};
  cr_assert_eq(mc__router_add(&r, &dup, 99), MC_EEXISTS);
  mc_route ok = {"DELETE", "/books/{other}", h};
  cr_assert_eq(mc__router_add(&r, &ok, 99), 0);
}

Test(router, malformed_templates_are_refused) {
  const mc_route bad[] = {
      {"GET", "books", h},
      {"GET", "/a/{x", h},
      {"GET", "/a/x}", h},
      {"GET", "/a/b{x}", h},
      {"GET", "/a", NULL},
      {NULL, "/a", h},
      {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h},
  };
  for (size_t i = 0; i < MC_COUNT(bad); i++)
    cr_assert_eq(mc__router_add(&r, &bad[i], 0), MC_EINVAL, "template %zu", i);
}

Test(router, too_many_segments_in_a_request) {
  add_all();
  char path[200];
  size_t n = 0;
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(path + n, sizeof path - n, "/x");
  cr_assert_null(match("GET", path).entry);
}

Test(router, method_index) {
  cr_assert_eq(mc__method_index(MC_LIT("GET")), MC__M_GET);
  cr_assert_eq(mc__method_index(MC_LIT("OPTIONS")), MC__M_OPTIONS);
  cr_assert_eq(mc__method_index(MC_LIT("PURGE")), MC__M_OTHER);
}

Test(router, percent_decoding) {
  mc_arena *a;
  cr_assert_eq(mc_arena_new(&a, 0, 0), 0);
  mc_slice out;
  cr_assert_eq(mc__percent_decode(a, MC_LIT("J%C3%BCrgen+x"), false, &out), 0);
  cr_assert(mc_slice_eq(out, MC_LIT("J\xc3\xbcrgen+x")));
  cr_assert_eq(mc__percent_decode(a, MC_LIT("a+b%2B"), true, &out), 0);
  cr_assert(mc_slice_eq(out, MC_LIT("a b+")));
  cr_assert_eq(mc__percent_decode(a, MC_LIT("plain"), false, &out), 0);
  cr_assert(mc_slice_eq(out, MC_LIT("plain")));
  cr_assert_eq(mc__percent_decode(a, MC_LIT("%4"), false, &out), MC_EPARSE);
  cr_assert_eq(mc__percent_decode(a, MC_LIT("%zz"), false, &out), MC_EPARSE);
  cr_assert_eq(mc__percent_decode(a, MC_LIT("a%"), false, &out), MC_EPARSE);
  cr_assert_eq(mc__percent_decode(a, MC_LIT("%41"), false, &out), 0);
  cr_assert(mc_slice_eq(out, MC_LIT("A")));
  mc_arena_free(a);
}

/* ---- {name...} and "*" ------------------------------------------------- */

static const mc_route rest_routes[] = {
    {"*", "/{path...}", h},          {"GET", "/metrics", h},
    {"GET", "/files/{path...}", h},  {"*", "/api/{rest...}", h},
    {"GET", "/files/{name}/raw", h},
};

static void add_rest(void) {
  for (uint32_t i = 0; i < MC_COUNT(rest_routes); i++)
    cr_assert_eq(mc__router_add(&r, &rest_routes[i], i), 0, "route %u", i);
}

Test(router, rest_parameter_takes_the_rest_of_the_path) {
  add_rest();
  mc__match m = match("GET", "/files/a/b%20c/d");
  cr_assert_eq(m.entry->route, &rest_routes[2]);
  cr_assert_eq(m.nparams, 1);
  cr_assert(mc_slice_eq(m.names[0], MC_LIT("path")));
  cr_assert(mc_slice_eq(m.raw_values[0], MC_LIT("a/b%20c/d")));
  /* "/files/" leaves it empty; "/files" is not under it */
  m = match("GET", "/files/");
  cr_assert_eq(m.entry->route, &rest_routes[2]);
  cr_assert_eq(m.raw_values[0].len, 0);
  cr_assert_eq(match("GET", "/files").entry->route, &rest_routes[0]);
}

Test(router, fixed_routes_beat_rest_and_any_method) {
  add_rest();
  cr_assert_eq(match("GET", "/metrics").entry->route, &rest_routes[1]);
  cr_assert_eq(match("HEAD", "/metrics").entry->route, &rest_routes[1]);
  cr_assert_eq(match("POST", "/metrics").entry->route, &rest_routes[0]);
  cr_assert_eq(match("GET", "/files/x/raw").entry->route, &rest_routes[4]);
  /* more literal segments win across methods */
  cr_assert_eq(match("GET", "/api/x").entry->route, &rest_routes[3]);
  cr_assert_eq(match("PURGE", "/api/x/y").entry->route, &rest_routes[3]);
  mc__match m = match("DELETE", "/");
  cr_assert_eq(m.entry->route, &rest_routes[0]);
  cr_assert(mc_slice_eq(m.raw_values[0], MC_LIT("")));
}

Test(router, any_method_allows_every_method) {
  add_rest();
  mc__match m = match("GET", "/anything");
  cr_assert(m.allow_mask & (1u << MC__M_POST));
  cr_assert(m.allow_mask & (1u << MC__M_DELETE));
}

Test(router, rest_takes_paths_past_the_segment_cap) {
  add_rest();
  char path[200] = "/files";
  size_t n = strlen(path);
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(path + n, sizeof path - n, "/x");
  mc__match m = match("GET", path);
  cr_assert_eq(m.entry->route, &rest_routes[2]);
  cr_assert(mc_slice_eq(m.raw_values[0], mc_slice_cstr(path + 7)));
}

Test(router, rest_only_last_and_named) {
  static const mc_route bad[] = {
      {"GET", "/{a...}/b", h},
      {"GET", "/{...}", h},
      {"GET", "/x{a...}", h},
  };
  for (size_t i = 0; i < MC_COUNT(bad); i++)
    cr_assert_eq(mc__router_add(&r, &bad[i], 0), MC_EINVAL, "template %zu", i);
  static const mc_route ok[] = {{"GET", "/a/{p...}", h}, {"GET", "/a/{p}", h}};
  cr_assert_eq(mc__router_add(&r, &ok[0], 0), 0);
  cr_assert_eq(mc__router_add(&r, &ok[1], 1), 0);
  cr_assert_eq(mc__router_add(&r, &ok[0], 2), MC_EEXISTS);
}
