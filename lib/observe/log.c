/* JSON log lines. See microc/log.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "microc/log.h"

static const char *service_name = "microc";
static mc_log_level min_level = MC_LOG_INFO;
static bool as_json = true;

static __thread mc_buf tbuf;
static __thread bool buffered;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void mc_log_setup(const char *service, mc_log_level level, bool json) {
  if (service)
    service_name = service;
  min_level = level;
  as_json = json;
}

int mc_log_level_parse(const char *s, mc_log_level *out) {
  for (int i = 0; i <= MC_LOG_OFF; i++)
    if (strcmp(s, level_names[i]) == 0) {
      *out = (mc_log_level)i;
      return 0;
    }
  if (strcmp(s, "warning") == 0) {
    *out = MC_LOG_WARN;
    return 0;
  }
  return MC_EINVAL;
}

bool mc_log_enabled(mc_log_level level) {
  return level >= min_level && level < MC_LOG_OFF;
}

static void write_all(const char *p, size_t n) {
  while (n) {
    ssize_t w = write(2, p, n);
    if (w <= 0)
      return; /* stderr gone: nothing sensible to do */
    p += w;
    n -= (size_t)w;
  }
}

void mc_log_flush(void) {
  if (tbuf.len) {
    write_all(tbuf.ptr, tbuf.len);
    mc_buf_reset(&tbuf);
  }
}

void mc_log_thread_buffered(bool on) {
  if (!on) {
    mc_log_flush();
    mc_buf_free(&tbuf); /* the thread may be about to end */
  }
  buffered = on;
}

/* ISO 8601 UTC with milliseconds, cached per second per thread. */
static void timestamp(char out[32]) {
  static __thread time_t last;
  static __thread char cached[24];
  uint64_t ms = mc_wall_ms();
  time_t sec = (time_t)(ms / 1000);
  if (sec != last) {
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    last = sec;
  }
  snprintf(out, 32, "%s.%03uZ", cached, (unsigned)(ms % 1000));
}

static void field_value(mc_buf *b, const mc_log_field *f, bool json) {
  switch (f->type) {
  case MC_LF_STR:
    if (json)
      mc_buf_append_json_str(b, f->s.ptr ? f->s.ptr : "", f->s.len);
    else
      mc_buf_append(b, f->s.ptr, f->s.len);
    break;
  case MC_LF_INT:
    mc_buf_appendf(b, "%lld", (long long)f->i);
    break;
  case MC_LF_NUM:
    mc_buf_appendf(b, "%.3f", f->d);
    break;
  case MC_LF_BOOL:
    mc_buf_append_cstr(b, f->i ? "true" : "false");
    break;
  }
}

void mc_log_write(mc_log_level level, mc_slice trace_id, const char *msg,
                  const mc_log_field *fields, size_t nfields) {
  if (!mc_log_enabled(level))
    return;
  mc_buf local = {0};
  mc_buf *b = buffered ? &tbuf : &local;
  char ts[32];
  timestamp(ts);
  if (as_json) {
    mc_buf_appendf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts,
                   level_names[level]);
    mc_buf_append_json_str(b, service_name, strlen(service_name));
    mc_buf_append_cstr(b, ",\"msg\":");
    mc_buf_append_json_str(b, msg, strlen(msg));
    if (trace_id.len) {
      mc_buf_append_cstr(b, ",\"trace_id\":");
      mc_buf_append_json_str(b, trace_id.ptr, trace_id.len);
    }
    for (size_t i = 0; i < nfields; i++) {
      mc_buf_append_char(b, ',');
      mc_buf_append_json_str(b, fields[i].key, strlen(fields[i].key));
      mc_buf_append_char(b, ':');
      field_value(b, &fields[i], true);
    }
    mc_buf_append_cstr(b, "}\n");
  } else {
    mc_buf_appendf(b, "%s %-5s %s: %s", ts, level_names[level], service_name,
                   msg);
    if (trace_id.len)
      mc_buf_appendf(b, " trace_id=%.*s", MC_SLICE_ARG(trace_id));
    for (size_t i = 0; i < nfields; i++) {
      mc_buf_appendf(b, " %s=", fields[i].key);
      field_value(b, &fields[i], false);
    }
    mc_buf_append_char(b, '\n');
  }
  if (!buffered) {
    write_all(local.ptr, local.len);
    mc_buf_free(&local);
  } else if (tbuf.len > 32 * 1024) {
    mc_log_flush();
  }
}
