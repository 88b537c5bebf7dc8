#include <criterion/criterion.h>
#include <stdlib.h>

#include "microc/options.h"

static int64_t go(const char *s, int *err) {
  int64_t ns = 0;
  *err = mc_parse_go_duration(mc_slice_cstr(s), &ns);
  return ns;
}

Test(options, go_durations) {
  struct {
    const char *text;
    int64_t ns;
  } ok[] = {
      {"0", 0},
      {"10s", 10000000000},
      {"120000ms", 120000000000},
      {"1m30s", 90000000000},
      {"1.5h", 5400000000000},
      {"300us", 300000},
      {"300\xc2\xb5s", 300000},
      {"7ns", 7},
      {"-2m", -120000000000},
      {"+5s", 5000000000},
      {".5s", 500000000},
      {"1h2m3s4ms5us6ns", 3723004005006},
      {"9223372036854775807ns", INT64_MAX},
      {"-9223372036854775808ns", INT64_MIN},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int err;
    int64_t ns = go(ok[i].text, &err);
    cr_assert_eq(err, 0, "%s", ok[i].text);
    cr_assert_eq(ns, ok[i].ns, "%s: %lld", ok[i].text, (long long)ns);
  }
}

Test(options, go_durations_refused) {
  const char *bad[] = {"",   "s",      "10",   "1.s2", "abc",
                       "5x", "1m 30s", "--1s", ".",    "1e3s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int err;
    go(bad[i], &err);
    cr_assert_eq(err, MC_EINVAL, "%s", bad[i]);
  }
  int err;
  go("9223372036854775808ns", &err);
  cr_assert_eq(err, MC_ETOOBIG);
  go("3000000h", &err);
  cr_assert_eq(err, MC_ETOOBIG);
}

Test(options, sizes) {
  uint64_t v;
  cr_assert_eq(mc_parse_size("16k", &v), 0);
  cr_assert_eq(v, 16384);
  cr_assert_eq(mc_parse_size("1m", &v), 0);
  cr_assert_eq(v, 1 << 20);
  cr_assert_eq(mc_parse_size("2GB", &v), 0);
  cr_assert_eq(v, 2ull << 30);
  cr_assert_eq(mc_parse_size("512", &v), 0);
  cr_assert_eq(v, 512);
  cr_assert_eq(mc_parse_size("-1", &v), MC_EINVAL);
  cr_assert_eq(mc_parse_size("1t", &v), MC_EINVAL);
  cr_assert_eq(mc_parse_size("99999999999999999999g", &v), MC_EINVAL);
}

static const char *s_opt;
static int64_t i_opt;
static uint64_t d_opt, z_opt;
static bool b_opt;
static const mc_option table[] = {
    {"name", "TEST_OPT_NAME", MC_OPT_STR, &s_opt, "dflt", "a name"},
    {"count", NULL, MC_OPT_INT, &i_opt, "3", "a count", 1, 10},
    {"wait", "TEST_OPT_WAIT", MC_OPT_DURATION, &d_opt, "10s", "a wait"},
    {"size", NULL, MC_OPT_SIZE, &z_opt, "1k", "a size"},
    {"flag", NULL, MC_OPT_BOOL, &b_opt, "off", "a flag"},
};

static int parse(int argc, char **argv, bool *help) {
  bool version;
  FILE *null = fopen("/dev/null", "w");
  int rc = mc_options_parse(table, 5, argc, argv, "t", null, help, &version);
  fclose(null);
  return rc;
}

Test(options, defaults_env_then_flags) {
  setenv("TEST_OPT_NAME", "from-env", 1);
  setenv("TEST_OPT_WAIT", "1m30s", 1);
  char *argv[] = {"t", "--count", "7", "--wait=250", "--flag", "yes", NULL};
  bool help;
  cr_assert_eq(parse(6, argv, &help), 0);
  cr_assert_not(help);
  cr_assert_str_eq(s_opt, "from-env");
  cr_assert_eq(i_opt, 7);
  cr_assert_eq(d_opt, 250, "a bare number is milliseconds");
  cr_assert_eq(z_opt, 1024);
  cr_assert(b_opt);
  unsetenv("TEST_OPT_NAME");
  unsetenv("TEST_OPT_WAIT");
  char *argv2[] = {"t", NULL};
  cr_assert_eq(parse(1, argv2, &help), 0);
  cr_assert_str_eq(s_opt, "dflt");
  cr_assert_eq(d_opt, 10000);
}

Test(options, bad_input_is_refused) {
  bool help;
  char *out_of_range[] = {"t", "--count", "11", NULL};
  cr_assert_eq(parse(3, out_of_range, &help), MC_EINVAL);
  char *unknown[] = {"t", "--nope", "1", NULL};
  cr_assert_eq(parse(3, unknown, &help), MC_EINVAL);
  char *missing[] = {"t", "--count", NULL};
  cr_assert_eq(parse(2, missing, &help), MC_EINVAL);
  char *stray[] = {"t", "stray", NULL};
  cr_assert_eq(parse(2, stray, &help), MC_EINVAL);
  char *bad_bool[] = {"t", "--flag", "maybe", NULL};
  cr_assert_eq(parse(3, bad_bool, &help), MC_EINVAL);
  char *neg_wait[] = {"t", "--wait", "-5s", NULL};
  cr_assert_eq(parse(3, neg_wait, &help), MC_EINVAL);
  char *h[] = {"t", "--help", NULL};
  cr_assert_eq(parse(2, h, &help), 0);
  cr_assert(help);
}
