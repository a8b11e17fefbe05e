/* registry.c: the running pollers' states for the log, /metrics and the
 * intake page.  One process-wide list under a mutex; readers get copies
 * (poll_get_states) or the Prometheus text (poll_metrics_write), so the web
 * thread never holds a poller's data while it renders. */
#include "config.h"

#include "poll/poll-private.h"

#include <string.h>

#include "util/sktime.h"

struct poll_state_entry {
	struct poll_state state;
};

static GMutex registry_lock;
static GPtrArray *registry; /* struct poll_state_entry * */

static void
state_clear(struct poll_state *st)
{
	g_free(st->name);
	g_free(st->kind);
	g_free(st->mailbox);
	g_free(st->after);
	g_free(st->last_error);
}

void
poll_state_free(struct poll_state **statep)
{
	if (*statep == NULL)
		return;
	state_clear(*statep);
	g_free(*statep);
	*statep = NULL;
}

struct poll_state_entry *
poll_registry_add(const struct poll_settings *s)
{
	struct poll_state_entry *e = g_new0(struct poll_state_entry, 1);

	e->state.name = g_strdup(s->name);
	e->state.kind = g_strdup(poll_kind_name(s->kind));
	e->state.mailbox = g_strdup(s->key);
	e->state.after = g_strdup(poll_after_name(s->after));
	e->state.running = true;
	g_mutex_lock(&registry_lock);
	if (registry == NULL)
		registry = g_ptr_array_new();
	g_ptr_array_add(registry, e);
	g_mutex_unlock(&registry_lock);
	return e;
}

void
poll_registry_remove(struct poll_state_entry **entryp)
{
	struct poll_state_entry *e = *entryp;

	if (e == NULL)
		return;
	g_mutex_lock(&registry_lock);
	g_ptr_array_remove(registry, e);
	g_mutex_unlock(&registry_lock);
	state_clear(&e->state);
	g_free(e);
	*entryp = NULL;
}

void
poll_registry_pass(struct poll_state_entry *e, const struct poll_pass_stats *stats,
		   const char *error, int64_t next_pass_us)
{
	int64_t now = sk_time_now_us();

	g_mutex_lock(&registry_lock);
	struct poll_state *st = &e->state;
	st->passes++;
	st->last_pass_us = now;
	st->taken += stats->taken;
	st->duplicates += stats->duplicates;
	st->failed += stats->failed;
	st->skipped += stats->skipped;
	st->next_pass_us = next_pass_us;
	st->idle = false;
	g_free(st->last_error);
	st->last_error = NULL;
	if (error != NULL) {
		st->errors++;
		st->consecutive_errors++;
		st->last_error_us = now;
		st->last_error = g_strdup(error);
	} else {
		st->consecutive_errors = 0;
		st->last_success_us = now;
	}
	g_mutex_unlock(&registry_lock);
}

void
poll_registry_idle(struct poll_state_entry *e, bool idle, int64_t next_pass_us)
{
	g_mutex_lock(&registry_lock);
	e->state.idle = idle;
	e->state.next_pass_us = next_pass_us;
	g_mutex_unlock(&registry_lock);
}

static gint
state_cmp(gconstpointer a, gconstpointer b)
{
	const struct poll_state *x = *(struct poll_state *const *)a,
				*y = *(struct poll_state *const *)b;

	return strcmp(x->name, y->name);
}

static void
state_free_ptr(gpointer p)
{
	struct poll_state *st = p;
	poll_state_free(&st);
}

GPtrArray *
poll_get_states(void)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(state_free_ptr);

	g_mutex_lock(&registry_lock);
	for (guint i = 0; registry != NULL && i < registry->len; i++) {
		const struct poll_state *src =
		    &((struct poll_state_entry *)g_ptr_array_index(registry, i))->state;
		struct poll_state *st = g_new0(struct poll_state, 1);
		*st = *src;
		st->name = g_strdup(src->name);
		st->kind = g_strdup(src->kind);
		st->mailbox = g_strdup(src->mailbox);
		st->after = g_strdup(src->after);
		st->last_error = g_strdup(src->last_error);
		g_ptr_array_add(out, st);
	}
	g_mutex_unlock(&registry_lock);
	g_ptr_array_sort(out, state_cmp);
	return out;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
append_label(GString *out, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			g_string_append_c(out, '\\');
		if (*p == '\n') {
			g_string_append(out, "\\n");
			continue;
		}
		g_string_append_c(out, *p);
	}
}

static void
append_sample(GString *out, const char *metric, const struct poll_state *st, const char *result,
	      double value)
{
	g_string_append_printf(out, "%s{poller=\"", metric);
	append_label(out, st->name);
	if (result != NULL)
		g_string_append_printf(out, "\",result=\"%s", result);
	g_string_append_printf(out, "\"} %.17g\n", value);
}

void
poll_metrics_write(GString *out)
{
	GPtrArray *states = poll_get_states();

	if (states->len == 0) {
		g_ptr_array_unref(states);
		return;
	}
	g_string_append(
	    out, "# HELP snapkeep_poll_messages_total Messages taken from mailboxes, by result.\n"
		 "# TYPE snapkeep_poll_messages_total counter\n");
	for (guint i = 0; i < states->len; i++) {
		const struct poll_state *st = g_ptr_array_index(states, i);
		append_sample(out, "snapkeep_poll_messages_total", st, "stored", (double)st->taken);
		append_sample(out, "snapkeep_poll_messages_total", st, "duplicate",
			      (double)st->duplicates);
		append_sample(out, "snapkeep_poll_messages_total", st, "failed",
			      (double)st->failed);
		append_sample(out, "snapkeep_poll_messages_total", st, "skipped",
			      (double)st->skipped);
	}
	g_string_append(out, "# HELP snapkeep_poll_passes_total Passes over the mailbox.\n"
			     "# TYPE snapkeep_poll_passes_total counter\n");
	for (guint i = 0; i < states->len; i++)
		append_sample(out, "snapkeep_poll_passes_total", g_ptr_array_index(states, i), NULL,
			      (double)((struct poll_state *)g_ptr_array_index(states, i))->passes);
	g_string_append(out, "# HELP snapkeep_poll_errors_total Passes that ended in an error.\n"
			     "# TYPE snapkeep_poll_errors_total counter\n");
	for (guint i = 0; i < states->len; i++)
		append_sample(out, "snapkeep_poll_errors_total", g_ptr_array_index(states, i), NULL,
			      (double)((struct poll_state *)g_ptr_array_index(states, i))->errors);
	g_string_append(
	    out, "# HELP snapkeep_poll_last_success_timestamp_seconds End of the last good pass.\n"
		 "# TYPE snapkeep_poll_last_success_timestamp_seconds gauge\n");
	for (guint i = 0; i < states->len; i++)
		append_sample(
		    out, "snapkeep_poll_last_success_timestamp_seconds",
		    g_ptr_array_index(states, i), NULL,
		    (double)((struct poll_state *)g_ptr_array_index(states, i))->last_success_us /
			1e6);
	g_string_append(out, "# HELP snapkeep_poll_up 1 when the poller's last pass succeeded.\n"
			     "# TYPE snapkeep_poll_up gauge\n");
	for (guint i = 0; i < states->len; i++) {
		const struct poll_state *st = g_ptr_array_index(states, i);
		append_sample(out, "snapkeep_poll_up", st, NULL,
			      st->passes > 0 && st->last_error == NULL ? 1.0 : 0.0);
	}
	g_ptr_array_unref(states);
}
