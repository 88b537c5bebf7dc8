/* microc options: one table gives each flag its environment variable, its
 * default, its parsing and its --help line. Flags override MICROC_*
 * variables, which override defaults.
 *
 *   static const char *data_dir;
 *   static const mc_option opts[] = {
 *     {"data-dir", "MICROC_DATA_DIR", MC_OPT_STR, &data_dir, "./data",
 *      "where registrations are kept"},
 *   };
 *   mc_app_options(app, opts, MC_COUNT(opts));
 */
#ifndef MICROC_OPTIONS_H
#define MICROC_OPTIONS_H

#include <stdio.h>

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_opt_type {
  MC_OPT_STR = 1,  /* const char *: the argv or environment string itself */
  MC_OPT_INT,      /* int64_t, within [min, max] */
  MC_OPT_SIZE,     /* uint64_t bytes: "512", "16k", "1m", "2g" */
  MC_OPT_DURATION, /* uint64_t milliseconds: "250" (ms), "500ms", "10s",
                      "1m30s", "2h" */
  MC_OPT_BOOL,     /* bool: on/off, true/false, yes/no, 1/0 */
} mc_opt_type;

typedef struct mc_option {
  const char *flag; /* without the leading "--" */
  const char *env;  /* environment variable, or NULL */
  mc_opt_type type;
  void *target;    /* see mc_opt_type for the C type it points to */
  const char *def; /* default, written as on the command line; NULL: none */
  const char *help;
  int64_t min, max; /* MC_OPT_INT bounds; both 0 means 0..1000000 */
} mc_option;

/* Parses value into o->target. Returns 0 or MC_EINVAL (target untouched). */
MC_EXTERN int mc_option_set(const mc_option *o, const char *value);

/* Sets every target from its default, then its environment variable, then
 * argv[1..]. "--flag value" and "--flag=value" both work. --help and
 * --version are left to the caller: *help or *version is set and parsing
 * stops. Returns 0, or MC_EINVAL after writing one line saying what is
 * wrong to err (prefixed with prog). */
MC_EXTERN int mc_options_parse(const mc_option *opts, size_t n, int argc,
                               char **argv, const char *prog, FILE *err,
                               bool *help, bool *version);

/* Writes the --help lines for the table. */
MC_EXTERN void mc_options_usage(const mc_option *opts, size_t n, FILE *out);

/* Go's time.ParseDuration: "300ms", "-1.5h", "2h45m", units ns us µs ms s
 * m h; "0" alone. Returns 0, MC_EINVAL, or MC_ETOOBIG past int64. */
MC_EXTERN int mc_parse_go_duration(mc_slice s, int64_t *ns);
/* Sizes as options take them: digits with an optional k, m or g (powers of
 * 1024) and an optional b. */
MC_EXTERN int mc_parse_size(const char *s, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
