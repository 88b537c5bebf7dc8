/* microc logs: one JSON object per line on stderr (ts, level, service, msg,
 * trace_id and fields), or a readable text line with --log-format text.
 *
 * The library itself never logs on its own; daemons and the service runner
 * (mc_app_main) do, through this. Lines written on a worker thread are
 * buffered and flushed once per loop iteration, so logging every request
 * costs one write(2) per batch, not per line. */
#ifndef MICROC_LOG_H
#define MICROC_LOG_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_log_level {
  MC_LOG_DEBUG = 0,
  MC_LOG_INFO,
  MC_LOG_WARN,
  MC_LOG_ERROR,
  MC_LOG_OFF,
} mc_log_level;

typedef enum mc_log_type {
  MC_LF_STR = 1,
  MC_LF_INT,
  MC_LF_NUM,
  MC_LF_BOOL
} mc_log_type;

typedef struct mc_log_field {
  const char *key;
  mc_log_type type;
  mc_slice s;
  int64_t i;
  double d;
} mc_log_field;

#define MC_LOG_STR(k, v)                                                       \
  ((mc_log_field){.key = (k), .type = MC_LF_STR, .s = (v)})
#define MC_LOG_CSTR(k, v) MC_LOG_STR(k, mc_slice_cstr(v))
#define MC_LOG_INT(k, v)                                                       \
  ((mc_log_field){.key = (k), .type = MC_LF_INT, .i = (v)})
#define MC_LOG_NUM(k, v)                                                       \
  ((mc_log_field){.key = (k), .type = MC_LF_NUM, .d = (v)})
#define MC_LOG_BOOL(k, v)                                                      \
  ((mc_log_field){.key = (k), .type = MC_LF_BOOL, .i = (v)})

/* Process-wide settings; call before starting threads. service is kept by
 * pointer. */
MC_EXTERN void mc_log_setup(const char *service, mc_log_level level, bool json);
/* Parses "debug", "info", "warn", "error", "off". MC_EINVAL otherwise. */
MC_EXTERN int mc_log_level_parse(const char *s, mc_log_level *out);
MC_EXTERN bool mc_log_enabled(mc_log_level level);
/* Writes one line. trace_id may be {NULL,0}. Fields are copied at once. */
MC_EXTERN void mc_log_write(mc_log_level level, mc_slice trace_id,
                            const char *msg, const mc_log_field *fields,
                            size_t nfields);
/* Convenience: checks the level first, then writes msg with fields. */
#define MC_LOG(level, msg, ...)                                                \
  do {                                                                         \
    if (mc_log_enabled(level)) {                                               \
      const mc_log_field mc__lf[] = {MC_LOG_STR(NULL, MC_SLICE_NULL),          \
                                     ##__VA_ARGS__};                           \
      mc_log_write(level, MC_SLICE_NULL, msg, mc__lf + 1,                      \
                   sizeof mc__lf / sizeof mc__lf[0] - 1);                      \
    }                                                                          \
  } while (0)

/* Buffers this thread's lines until mc_log_flush (worker threads). */
MC_EXTERN void mc_log_thread_buffered(bool on);
MC_EXTERN void mc_log_flush(void);

#ifdef __cplusplus
}
#endif
#endif
