/* Discovery internals shared with the app runner (lib/http/app.c). */
#ifndef MICROC_DISCOVERY_INT_H
#define MICROC_DISCOVERY_INT_H

#include "microc/discovery.h"
#include "microc/http.h"
#include "microc/resilience.h"

typedef struct mc__register_opts {
  const char *registry;  /* base URL, no trailing slash */
  const char *advertise; /* address to register; NULL: the listen host */
  const char *tags;      /* comma-separated */
  const char *version;   /* the app's, for Meta */
  uint64_t check_interval_ms;
  uint64_t deregister_after_ms; /* 0: never */
} mc__register_opts;

/* Adds the hooks that register the app once it listens and deregister it
 * when it drains. */
int mc__register_setup(mc_app *app, const mc__register_opts *o);

/* Frees the process-wide discovery state (after every thread is gone). */
void mc__discovery_free(void);

#endif
