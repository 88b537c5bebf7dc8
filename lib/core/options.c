/* Option tables: defaults, environment, flags, --help. See options.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "microc/options.h"

int mc_parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (!s || s[0] < '0' || s[0] > '9')
    return MC_EINVAL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno)
    return MC_EINVAL;
  uint64_t mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1024, end++;
  else if (*end == 'm' || *end == 'M')
    mul = 1024 * 1024, end++;
  else if (*end == 'g' || *end == 'G')
    mul = 1024ull * 1024 * 1024, end++;
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end || (v && mul > UINT64_MAX / v))
    return MC_EINVAL;
  *out = (uint64_t)v * mul;
  return 0;
}

/* ---- Go durations ---------------------------------------------------------
 */

static const struct {
  const char *name;
  uint64_t ns;
} units[] = {
    {"ns", 1ull},           {"us", 1000ull},
    {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
    {"ms", 1000000ull},     {"s", 1000000000ull},
    {"m", 60000000000ull},  {"h", 3600000000000ull},
};

int mc_parse_go_duration(mc_slice s, int64_t *out) {
  const char *p = s.ptr, *end = s.ptr + s.len;
  bool neg = false;
  if (p < end && (*p == '-' || *p == '+'))
    neg = *p++ == '-';
  if (end - p == 1 && *p == '0') {
    *out = 0;
    return 0;
  }
  if (p == end)
    return MC_EINVAL;
  uint64_t total = 0;
  while (p < end) {
    uint64_t whole = 0, frac = 0, scale = 1;
    bool digits = false, overflow = false;
    while (p < end && *p >= '0' && *p <= '9') {
      if (whole > (UINT64_MAX - 9) / 10)
        overflow = true;
      else
        whole = whole * 10 + (uint64_t)(*p - '0');
      digits = true;
      p++;
    }
    if (p < end && *p == '.') {
      p++;
      while (p < end && *p >= '0' && *p <= '9') {
        if (scale < 1000000000000000000ull) { /* further digits are noise */
          frac = frac * 10 + (uint64_t)(*p - '0');
          scale *= 10;
        }
        digits = true;
        p++;
      }
    }
    if (!digits)
      return MC_EINVAL;
    const char *u = p;
    while (p < end && !(*p >= '0' && *p <= '9') && *p != '.')
      p++;
    size_t ulen = (size_t)(p - u);
    uint64_t unit = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
      if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
        unit = units[i].ns;
    if (!unit)
      return MC_EINVAL; /* missing or unknown unit */
    if (overflow || (whole && unit > UINT64_MAX / whole))
      return MC_ETOOBIG;
    uint64_t v = whole * unit;
    /* frac/scale of a unit, rounded down as Go does */
    v += (uint64_t)((long double)frac * (long double)unit / (long double)scale);
    if (v > (uint64_t)INT64_MAX - total + (neg ? 1 : 0))
      return MC_ETOOBIG;
    total += v;
  }
  if (total > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
    return MC_ETOOBIG;
  *out = neg ? (int64_t)(0 - total) : (int64_t)total;
  return 0;
}

/* ---- one option
 * -------------------------------------------------------------- */

static bool word(const char *v, const char *a, const char *b, const char *c,
                 const char *d) {
  return !strcmp(v, a) || !strcmp(v, b) || !strcmp(v, c) || !strcmp(v, d);
}

int mc_option_set(const mc_option *o, const char *value) {
  if (!value)
    return MC_EINVAL;
  switch (o->type) {
  case MC_OPT_STR:
    *(const char **)o->target = value;
    return 0;
  case MC_OPT_INT: {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    int64_t lo = o->min, hi = o->max;
    if (!lo && !hi)
      hi = 1000000;
    if (end == value || *end || errno || v < lo || v > hi)
      return MC_EINVAL;
    *(int64_t *)o->target = v;
    return 0;
  }
  case MC_OPT_SIZE:
    return mc_parse_size(value, (uint64_t *)o->target);
  case MC_OPT_DURATION: {
    /* a bare number is milliseconds; otherwise Go's syntax */
    int64_t ns;
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(value, &end, 10);
    if (end != value && !*end && !errno && value[0] >= '0' && value[0] <= '9') {
      *(uint64_t *)o->target = ms;
      return 0;
    }
    if (mc_parse_go_duration(mc_slice_cstr(value), &ns) != 0 || ns < 0)
      return MC_EINVAL;
    *(uint64_t *)o->target = (uint64_t)ns / 1000000u;
    return 0;
  }
  case MC_OPT_BOOL:
    if (word(value, "on", "true", "yes", "1"))
      *(bool *)o->target = true;
    else if (word(value, "off", "false", "no", "0"))
      *(bool *)o->target = false;
    else
      return MC_EINVAL;
    return 0;
  }
  return MC_EINVAL;
}

/* ---- tables
 * -------------------------------------------------------------------- */

int mc_options_parse(const mc_option *opts, size_t n, int argc, char **argv,
                     const char *prog, FILE *err, bool *help, bool *version) {
  *help = *version = false;
  for (size_t i = 0; i < n; i++)
    if (opts[i].def && mc_option_set(&opts[i], opts[i].def) != 0) {
      fprintf(err, "%s: bad default for --%s: %s\n", prog, opts[i].flag,
              opts[i].def);
      return MC_EINVAL;
    }
  for (size_t i = 0; i < n; i++) {
    const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
    if (v && *v && mc_option_set(&opts[i], v) != 0) {
      fprintf(err, "%s: bad value for %s: %s\n", prog, opts[i].env, v);
      return MC_EINVAL;
    }
  }
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      *help = true;
      return 0;
    }
    if (!strcmp(arg, "--version")) {
      *version = true;
      return 0;
    }
    if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
      fprintf(err, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
      return MC_EINVAL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    const mc_option *o = NULL;
    for (size_t i = 0; i < n && !o; i++)
      if (strlen(opts[i].flag) == nl && !strncmp(opts[i].flag, name, nl))
        o = &opts[i];
    if (!o) {
      fprintf(err, "%s: unknown option '%s' (see --help)\n", prog, arg);
      return MC_EINVAL;
    }
    const char *val = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
    if (!val) {
      fprintf(err, "%s: --%s needs a value\n", prog, o->flag);
      return MC_EINVAL;
    }
    if (mc_option_set(o, val) != 0) {
      fprintf(err, "%s: bad value for --%s: %s\n", prog, o->flag, val);
      return MC_EINVAL;
    }
  }
  return 0;
}

void mc_options_usage(const mc_option *opts, size_t n, FILE *out) {
  for (size_t i = 0; i < n; i++) {
    const mc_option *o = &opts[i];
    static const char *const kinds[] = {"",     "VALUE",    "N",
                                        "SIZE", "DURATION", "on|off"};
    char left[64];
    snprintf(left, sizeof left, "--%s %s", o->flag, kinds[o->type]);
    fprintf(out, "  %-30s %s\n", left, o->help ? o->help : "");
    if (o->env || o->def)
      fprintf(out, "  %-30s [%s%s%s]\n", "", o->env ? o->env : "",
              o->env && o->def ? ", default "
              : o->def         ? "default "
                               : "",
              o->def ? o->def : "");
  }
}
