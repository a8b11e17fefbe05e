/* service.h: what snapkeepd runs, as a list of services with one life cycle.
 *
 *   check (snapkeepd -n) | prepare (as root: bind, read keys) -> drop
 *   privileges -> start (intake open) -> reload (SIGHUP)* -> stop (SIGTERM)
 *   -> busy? (until done or stop_timeout) -> free
 *
 * SMTP is the first; the web view ([web]) and the pollers ([poll.NAME])
 * join by adding an ops table to services[] in main.c, their rows to the
 * settings table (config-table.c), and nothing else: main.c stays the same. */
#ifndef SK_DAEMON_SERVICE_H
#define SK_DAEMON_SERVICE_H

#include <glib.h>
#include <stdbool.h>

#include "daemon/config-table.h"
#include "intake/intake.h"

struct daemon_service_ops {
	const char *name;
	/* Validates the settings without side effects.  0 or -1. */
	int (*check)(const struct config *config, char **error_r);
	/* Before privileges are dropped.  *state_r NULL: not enabled. */
	int (*prepare)(const struct config *config, void **state_r, char **error_r);
	/* After intake_open, with the main context. */
	int (*start)(void *state, struct intake *intake, GMainContext *context, char **error_r);
	/* New settings (SIGHUP); -1 keeps the old ones. */
	int (*reload)(void *state, const struct config *config, char **error_r);
	/* Stop taking new work; finish what is under way. */
	void (*stop)(void *state);
	/* Work still under way after stop. */
	bool (*busy)(void *state);
	/* How long stop may take before free cuts it short. */
	unsigned (*stop_timeout_ms)(const struct config *config);
	/* Ends everything at once, waits for threads, frees.  Accepts NULL. */
	void (*free)(void **state);
};

extern const struct daemon_service_ops daemon_service_smtp;
extern const struct daemon_service_ops daemon_service_poll; /* [poll.NAME]: service-poll.c */
extern const struct daemon_service_ops daemon_service_web;  /* [web]: service-web.c */
extern const struct daemon_service_ops daemon_service_maintenance; /* retention: service-maintenance.c */

/* The state of the service called name once services start (NULL before,
 * or when it is not enabled); the web view's /metrics reads the others'. */
void *daemon_service_state(const char *name);

#endif
