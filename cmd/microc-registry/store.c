/* Persistence: registrations and check states in SQLite, so they survive a
 * restart. WAL with synchronous=NORMAL: a commit is a write to the log, not
 * an fsync, which keeps it cheap enough to do on the loop; a power cut may
 * lose the last moments, never the database. Each change is one
 * transaction that also records the index, so the index never goes back. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry.h"

struct reg_store {
  sqlite3 *db;
  sqlite3_stmt *put_service, *del_service, *del_service_checks, *put_check,
      *del_check, *put_meta;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT "
    "NULL);"
    "CREATE TABLE IF NOT EXISTS services(id TEXT PRIMARY KEY, def TEXT NOT "
    "NULL, create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checks(id TEXT PRIMARY KEY, service_id TEXT "
    "NOT NULL, def TEXT NOT NULL, status TEXT NOT NULL, output TEXT NOT NULL, "
    "create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL, "
    "critical_since INTEGER NOT NULL);";

int reg_store_open(const char *dir, reg_store **out, char *err, size_t errcap) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
    return MC_EIO;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/registry.db", dir);
  reg_store *st = calloc(1, sizeof *st);
  if (!st)
    return MC_ENOMEM;
  int rc = sqlite3_open_v2(
      path, &st->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  char *msg = NULL;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(st->db, schema, NULL, NULL, &msg);
  struct {
    sqlite3_stmt **stmt;
    const char *sql;
  } stmts[] = {
      {&st->put_service,
       "INSERT OR REPLACE INTO services(id, def, create_index, modify_index) "
       "VALUES (?1, ?2, ?3, ?4)"},
      {&st->del_service, "DELETE FROM services WHERE id = ?1"},
      {&st->del_service_checks, "DELETE FROM checks WHERE service_id = ?1"},
      {&st->put_check,
       "INSERT OR REPLACE INTO checks(id, service_id, def, status, output, "
       "create_index, modify_index, critical_since) VALUES (?1, ?2, ?3, ?4, "
       "?5, ?6, ?7, ?8)"},
      {&st->del_check, "DELETE FROM checks WHERE id = ?1"},
      {&st->put_meta,
       "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)"},
  };
  for (size_t i = 0; i < sizeof stmts / sizeof stmts[0] && rc == SQLITE_OK; i++)
    rc = sqlite3_prepare_v2(st->db, stmts[i].sql, -1, stmts[i].stmt, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errcap, "cannot open %s: %s", path,
             msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    reg_store_close(st);
    return MC_EIO;
  }
  *out = st;
  return 0;
}

void reg_store_close(reg_store *st) {
  if (!st)
    return;
  sqlite3_stmt *all[] = {st->put_service,        st->del_service,
                         st->del_service_checks, st->put_check,
                         st->del_check,          st->put_meta};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    sqlite3_finalize(all[i]);
  sqlite3_close(st->db);
  free(st);
}

static int run(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_DONE ? 0 : MC_EIO;
}

static int begin(reg_store *st) {
  return sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                      : MC_EIO;
}

/* Commits with the index as of now; rolls back when something failed. */
static int finish(reg_store *st, int err) {
  if (!err)
    err = reg_store_index(st);
  if (err) {
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
  }
  return sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                       : MC_EIO;
}

int reg_store_meta(reg_store *st, const char *key, const char *value) {
  sqlite3_bind_text(st->put_meta, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st->put_meta, 2, value, -1, SQLITE_STATIC);
  return run(st->put_meta);
}

int reg_store_index(reg_store *st) {
  char v[24];
  snprintf(v, sizeof v, "%llu", (unsigned long long)R.index);
  return reg_store_meta(st, "index", v);
}

static int put_check(reg_store *st, const reg_check *c) {
  mc_buf def;
  mc_buf_init(&def, 0);
  int err = mc_consul_encode_check(&c->def, &def);
  if (!err) {
    sqlite3_stmt *s = st->put_check;
    sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->service_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, def.ptr, (int)def.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, mc_health_name(c->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, c->output, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)c->create_index);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)c->modify_index);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)c->critical_since_ms);
    err = run(s);
  }
  mc_buf_free(&def);
  return err;
}

int reg_store_service(reg_store *st, const reg_service *svc) {
  mc_buf def;
  mc_buf_init(&def, 0);
  int err = begin(st);
  if (!err)
    err = mc_consul_encode_service(&svc->def, &def);
  if (!err) {
    sqlite3_stmt *s = st->put_service;
    sqlite3_bind_text(s, 1, svc->def.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, def.ptr, (int)def.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)svc->create_index);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)svc->modify_index);
    err = run(s);
  }
  for (size_t i = 0; !err && i < svc->nchecks; i++)
    err = put_check(st, svc->checks[i]);
  mc_buf_free(&def);
  return finish(st, err);
}

int reg_store_service_del(reg_store *st, const char *id) {
  int err = begin(st);
  if (!err) {
    sqlite3_bind_text(st->del_service, 1, id, -1, SQLITE_STATIC);
    err = run(st->del_service);
  }
  if (!err) {
    sqlite3_bind_text(st->del_service_checks, 1, id, -1, SQLITE_STATIC);
    err = run(st->del_service_checks);
  }
  return finish(st, err);
}

int reg_store_check(reg_store *st, const reg_check *c) {
  int err = begin(st);
  if (!err)
    err = put_check(st, c);
  return finish(st, err);
}

int reg_store_check_del(reg_store *st, const char *id) {
  int err = begin(st);
  if (!err) {
    sqlite3_bind_text(st->del_check, 1, id, -1, SQLITE_STATIC);
    err = run(st->del_check);
  }
  return finish(st, err);
}

/* ---- loading ---------------------------------------------------------------
 */

static int load_meta(reg_store *st, uint64_t *index) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(st->db, "SELECT key, value FROM meta", -1, &s, NULL) !=
      SQLITE_OK)
    return MC_EIO;
  while (sqlite3_step(s) == SQLITE_ROW) {
    const char *k = (const char *)sqlite3_column_text(s, 0);
    const char *v = (const char *)sqlite3_column_text(s, 1);
    if (!k || !v)
      continue;
    if (!strcmp(k, "index"))
      *index = strtoull(v, NULL, 10);
    else if (!strcmp(k, "node_id") && strlen(v) == 36)
      memcpy(R.node_id, v, 37);
    else if (!strcmp(k, "node_index"))
      R.node_index = strtoull(v, NULL, 10);
  }
  sqlite3_finalize(s);
  return 0;
}

int reg_store_load(reg_store *st) {
  uint64_t index = 0;
  int err = load_meta(st, &index);
  if (err)
    return err;
  mc_arena *a;
  if (mc_arena_new(&a, 4096, 0) != 0)
    return MC_ENOMEM;
  char msg[256];
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(st->db,
                         "SELECT def, create_index, modify_index FROM "
                         "services ORDER BY create_index",
                         -1, &s, NULL) != SQLITE_OK) {
    mc_arena_free(a);
    return MC_EIO;
  }
  while (!err && sqlite3_step(s) == SQLITE_ROW) {
    mc_consul_service def;
    mc_slice json = {(const char *)sqlite3_column_text(s, 0),
                     (size_t)sqlite3_column_bytes(s, 0)};
    if (mc_consul_decode_service(json, a, &def, msg, sizeof msg) != 0)
      continue; /* a row we cannot read: skip it rather than refuse to run */
    err = reg_service_put(&def, false, false, msg, sizeof msg);
    reg_service *svc = reg_service_get(mc_slice_cstr(def.id));
    if (svc) {
      svc->create_index = (uint64_t)sqlite3_column_int64(s, 1);
      svc->modify_index = (uint64_t)sqlite3_column_int64(s, 2);
    }
    mc_arena_reset(a);
  }
  sqlite3_finalize(s);
  if (!err &&
      sqlite3_prepare_v2(st->db,
                         "SELECT def, status, output, create_index, "
                         "modify_index, critical_since FROM checks ORDER BY "
                         "create_index",
                         -1, &s, NULL) == SQLITE_OK) {
    while (!err && sqlite3_step(s) == SQLITE_ROW) {
      mc_consul_check def;
      mc_slice json = {(const char *)sqlite3_column_text(s, 0),
                       (size_t)sqlite3_column_bytes(s, 0)};
      if (mc_consul_decode_check(json, a, &def, msg, sizeof msg) != 0)
        continue;
      if (reg_check_put(&def, false, msg, sizeof msg) == 0) {
        reg_check *c = reg_check_get(mc_slice_cstr(def.id));
        if (c) {
          mc_health h = MC_HEALTH_CRITICAL;
          const char *status = (const char *)sqlite3_column_text(s, 1);
          if (status)
            mc_health_parse(mc_slice_cstr(status), &h);
          c->status = h;
          const char *out = (const char *)sqlite3_column_text(s, 2);
          char *o = strdup(out ? out : "");
          if (o) {
            free(c->output);
            c->output = o;
          }
          c->create_index = (uint64_t)sqlite3_column_int64(s, 3);
          c->modify_index = (uint64_t)sqlite3_column_int64(s, 4);
          c->critical_since_ms = (uint64_t)sqlite3_column_int64(s, 5);
        }
      }
      mc_arena_reset(a);
    }
    sqlite3_finalize(s);
  }
  mc_arena_free(a);
  /* Loading advanced the index; the stored one is never smaller. */
  if (index > R.index)
    R.index = index;
  R.services_index = R.index;
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.names, &it, NULL, &v))
    ((reg_name *)v)->index = R.index;
  return err;
}
