/* service-poll.c: the [poll.NAME] sections -> src/poll/ pollers, as a
 * daemon service: one thread per section, started after the intake opens,
 * stopped on SIGTERM, and on SIGHUP restarted when their section changed
 * (added and removed sections start and stop; unchanged ones keep running,
 * IDLE connection and all).
 *
 * A section named "*" ([poll.*], the template in the sample configuration)
 * is documentation and is skipped.  Passwords are read from password_file
 * at each connection, as the daemon's user (after privileges are dropped),
 * so that file must be readable by [daemon] user. */
#include "config.h"

#include <string.h>

#include "daemon/service.h"
#include "poll/poll.h"

struct poll_service {
	GPtrArray *settings; /* struct poll_settings * */
	struct poll_set *set;
	char *db_path;
};

static void
settings_free_ptr(gpointer p)
{
	struct poll_settings *s = p;
	poll_settings_free(&s);
}

static unsigned
seconds(const struct config *config, const char *section, const char *key)
{
	unsigned ms = config_get_ms(config, section, key);
	return ms == 0 ? 0 : MAX(1u, (ms + 999) / 1000);
}

static int
settings_from_config(const struct config *config, GPtrArray **list_r, char **error_r)
{
	char **names = config_sections(config, "poll");
	GPtrArray *list = g_ptr_array_new_with_free_func(settings_free_ptr);
	int ret = -1;

	for (char **n = names; *n != NULL; n++) {
		if (strcmp(*n, "*") == 0)
			continue;
		char *section = g_strdup_printf("poll.%s", *n);
		struct poll_settings *s = poll_settings_new(*n);
		char *why = NULL;
		const char *after = config_get(config, section, "after");
		const char *starttls = config_get(config, section, "starttls");
		const char *ca = config_get(config, section, "tls_ca_file");

		g_ptr_array_add(list, s);
		if (poll_settings_set_url(s, config_get(config, section, "url"), &why) < 0) {
			*error_r = g_strdup_printf("[%s] url: %s", section, why);
			g_free(why);
			g_free(section);
			goto out;
		}
		s->password_file = g_strdup(config_get(config, section, "password_file"));
		s->interval_s = seconds(config, section, "interval");
		if (after[0] != '\0' && poll_after_parse(after, &s->after) < 0) {
			*error_r = g_strdup_printf(
			    "[%s] after: \"%s\": use move, flag, delete or keep", section, after);
			g_free(section);
			goto out;
		}
		g_free(s->move_to);
		s->move_to = g_strdup(config_get(config, section, "move_to"));
		g_free(s->failed_to);
		s->failed_to = g_strdup(config_get(config, section, "failed_to"));
		s->tls_verify = config_get_bool(config, section, "tls_verify");
		s->tls_ca_file = ca[0] != '\0' ? g_strdup(ca) : NULL;
		if (strcmp(starttls, "auto") == 0)
			s->starttls = POLL_STARTTLS_AUTO;
		else if (strcmp(starttls, "required") == 0)
			s->starttls = POLL_STARTTLS_REQUIRED;
		else if (strcmp(starttls, "no") == 0)
			s->starttls = POLL_STARTTLS_NO;
		else {
			*error_r = g_strdup_printf(
			    "[%s] starttls: \"%s\": use auto, required or no", section, starttls);
			g_free(section);
			goto out;
		}
		s->batch_size = config_get_uint(config, section, "batch_size");
		s->idle = config_get_bool(config, section, "idle");
		s->idle_restart_s = seconds(config, section, "idle_restart");
		s->timeout_s = seconds(config, section, "timeout");
		s->backoff_min_s = seconds(config, section, "backoff_min");
		s->backoff_max_s = seconds(config, section, "backoff_max");
		s->max_message_size = (size_t)config_get_size(config, section, "max_message_size");
		s->parse_wait_s = seconds(config, section, "parse_wait");
		s->pass_max = config_get_uint(config, section, "pass_max");
		s->accept_jobs = config_get_uint(config, section, "accept_jobs");
		g_free(section);
		if (poll_settings_check(s, error_r) < 0)
			goto out;
	}
	if (poll_settings_check_set(list, error_r) < 0)
		goto out;
	*list_r = list;
	list = NULL;
	ret = 0;
out:
	if (list != NULL)
		g_ptr_array_unref(list);
	g_strfreev(names);
	return ret;
}

static int
poll_service_check(const struct config *config, char **error_r)
{
	GPtrArray *list = NULL;

	if (settings_from_config(config, &list, error_r) < 0)
		return -1;
	g_ptr_array_unref(list);
	return 0;
}

static int
poll_service_prepare(const struct config *config, void **state_r, char **error_r)
{
	struct poll_service *ps = g_new0(struct poll_service, 1);

	/* Always a state, even without sections: SIGHUP may add some. */
	if (settings_from_config(config, &ps->settings, error_r) < 0) {
		g_free(ps);
		return -1;
	}
	ps->db_path = g_strdup(config_store_target(config));
	*state_r = ps;
	return 0;
}

static int
poll_service_start(void *state, struct intake *intake, GMainContext *context, char **error_r)
{
	struct poll_service *ps = state;

	return poll_set_start(intake, ps->db_path, ps->settings, &ps->set, error_r);
}

static int
poll_service_reload(void *state, const struct config *config, char **error_r)
{
	struct poll_service *ps = state;
	GPtrArray *list = NULL;

	if (settings_from_config(config, &list, error_r) < 0)
		return -1;
	g_ptr_array_unref(ps->settings);
	ps->settings = list;
	return ps->set != NULL ? poll_set_reload(ps->set, list, error_r) : 0;
}

static void
poll_service_stop(void *state)
{
	poll_set_stop(((struct poll_service *)state)->set);
}

static bool
poll_service_busy(void *state)
{
	return poll_set_busy(((struct poll_service *)state)->set);
}

static unsigned
poll_service_stop_timeout_ms(const struct config *config)
{
	/* A poller stops within a second (transfers check for it), after
	 * the message it is handing to the store. */
	return 10000;
}

static void
poll_service_free(void **statep)
{
	struct poll_service *ps = *statep;

	if (ps == NULL)
		return;
	poll_set_free(&ps->set);
	if (ps->settings != NULL)
		g_ptr_array_unref(ps->settings);
	g_free(ps->db_path);
	g_free(ps);
	*statep = NULL;
}

const struct daemon_service_ops daemon_service_poll = {
    .name = "poll",
    .check = poll_service_check,
    .prepare = poll_service_prepare,
    .start = poll_service_start,
    .reload = poll_service_reload,
    .stop = poll_service_stop,
    .busy = poll_service_busy,
    .stop_timeout_ms = poll_service_stop_timeout_ms,
    .free = poll_service_free,
};
