/* microc-registry internals: the catalog (services, checks, indexes and
 * the fibers waiting on them), its persistence and its check runner.
 *
 * Everything here lives on the registry's one worker thread: the HTTP
 * handlers, the check fibers and the SQLite connection. No locks. */
#ifndef MICROC_REGISTRY_H
#define MICROC_REGISTRY_H

#include <microc/consul.h>
#include <microc/fiber.h>
#include <microc/http.h>
#include <microc/map.h>

#define REG_OUTPUT_MAX 4096 /* bytes of check output kept, as Consul */

typedef struct reg_service reg_service;
typedef struct reg_check reg_check;
typedef struct reg_name reg_name;
typedef struct reg_store reg_store;

struct reg_check {
  char *id;
  mc_consul_check def; /* strings in `arena` */
  mc_arena *arena;
  char *service_id; /* "" for a check on the node */
  reg_service *svc; /* NULL when on the node, or once the service is gone */
  mc_health status;
  char *output; /* malloc'd */
  uint64_t create_index, modify_index;
  uint64_t critical_since_ms;  /* wall clock; 0 when not critical */
  uint64_t ttl_deadline_ms;    /* TTL checks: when it expires (monotonic) */
  int64_t successes, failures; /* consecutive, for the Before* thresholds */
  mc_waitq wake;               /* the check's fiber waits here */
  bool removed;                /* the fiber frees the check and ends */
  bool has_fiber;
};

struct reg_service {
  mc_consul_service def; /* strings in `arena`; def.checks unused */
  mc_arena *arena;
  reg_name *name;
  uint64_t create_index, modify_index;
  reg_check **checks;
  size_t nchecks, checks_cap;
};

/* Everything known of one service name; kept after its last instance
 * goes, so the index of a query for it never goes back. */
struct reg_name {
  char *name;
  reg_service **inst;
  size_t n, cap;
  uint64_t index; /* of the last change to any answer about this name */
  mc_waitq watchers;
};

typedef struct registry {
  mc_app *app;
  mc_map services;         /* id -> reg_service */
  mc_map checks;           /* id -> reg_check */
  mc_map names;            /* name -> reg_name */
  uint64_t index;          /* every change takes the next one */
  uint64_t services_index; /* the set of names or their tags changed */
  mc_waitq any;            /* watchers of registry-wide answers */
  const char *node;
  char node_id[37];
  const char *datacenter;
  char address[64]; /* the node's address, for answers */
  int port;
  uint64_t node_index; /* when the node was first seen */
  uint64_t min_interval_ms;
  uint64_t default_timeout_ms;
  reg_store *store;
  bool stopping;
  uint64_t checks_run, checks_failed; /* for /metrics */
} registry;

extern registry R;

/* ---- the catalog (catalog.c) ------------------------------------------ */

/* Adds or replaces a service and its checks. replace_checks drops the
 * service's checks that the new definition does not name. persist: write
 * it to the store (false while loading it). err gets Consul's message.
 * Returns 0, MC_EINVAL (400), MC_ENOMEM, MC_EIO (the store failed). */
int reg_service_put(const mc_consul_service *def, bool replace_checks,
                    bool persist, char *err, size_t errcap);
/* Removes a service and its checks. MC_ENOTFOUND. */
int reg_service_del(const char *id);
/* A check of its own (/v1/agent/check/register). */
int reg_check_put(const mc_consul_check *def, bool persist, char *err,
                  size_t errcap);
int reg_check_del(const char *id);
/* A check's new result. Status changes bump the index, persist and wake
 * watchers; an output-only change is kept quietly (as Consul does). */
void reg_check_set(reg_check *c, mc_health status, const char *output,
                   size_t outlen);
reg_service *reg_service_get(mc_slice id);
reg_check *reg_check_get(mc_slice id);
reg_name *reg_name_get(mc_slice name);
/* The worst status of the service's checks (passing when it has none). */
mc_health reg_service_health(const reg_service *s);
bool reg_service_has_tag(const reg_service *s, mc_slice tag);
/* Frees a check taken out of the catalog (its fiber calls this). */
void reg_check_free(reg_check *c);
/* Called once all its fibers are gone: frees everything. */
void reg_catalog_free(void);

/* ---- persistence (store.c) ---------------------------------------------- */

/* Opens (creating) DIR/registry.db. MC_EIO with a message in err. */
int reg_store_open(const char *dir, reg_store **out, char *err, size_t errcap);
void reg_store_close(reg_store *st);
/* Reads everything back into the catalog: services, checks and their
 * states, the index and the node id. */
int reg_store_load(reg_store *st);
int reg_store_service(reg_store *st, const reg_service *s);
int reg_store_service_del(reg_store *st, const char *id);
int reg_store_check(reg_store *st, const reg_check *c);
int reg_store_check_del(reg_store *st, const char *id);
int reg_store_index(reg_store *st);
int reg_store_meta(reg_store *st, const char *key, const char *value);

/* ---- checks (checks.c) --------------------------------------------------- */

/* Starts the fiber that runs c at its interval (or watches its TTL). */
int reg_check_start(reg_check *c);

/* ---- HTTP (api.c, ui.c) ----------------------------------------------------
 */

extern const mc_route reg_routes[];
extern const size_t reg_nroutes;
extern const char reg_ui_html[];

#endif
