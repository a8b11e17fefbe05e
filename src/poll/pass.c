/* pass.c: what every pass does between fetching and acting: hand messages
 * to the funnel a few at a time (accept_jobs in flight, so the store can
 * commit them together), then decide each message's fate from the funnel's
 * answer and, within parse_wait, from its parse outcome.
 *
 * Invariants:
 *  1. An item's fate is DONE or FAILED only when intake_accept returned 0
 *     for it (its bytes are committed) -- or it is too large to take and
 *     goes to failed_to.  Only such items are moved, flagged or deleted.
 *  2. At most accept_jobs raw messages of a pass are held at once (plus
 *     the one being fetched): memory is bounded by the settings, not by
 *     the mailbox. */
#include "config.h"

#include "poll/poll-private.h"

#include <string.h>

#include "intake/intake.h"
#include "util/log.h"

struct accept_job {
	struct poll_pass *pass;
	struct poll_item *item;
	GBytes *raw;
	char *source;
	char *name;
};

static void
accept_run(gpointer data, gpointer user_data)
{
	struct accept_job *job = data;
	struct poll_pass *pass = job->pass;
	struct store_arrival arrival = {
	    .source = job->source,
	    .source_name = job->name,
	    .peer = pass->settings->key,
	};
	struct store_receipt receipt;
	char *error = NULL;
	int r = intake_accept(pass->intake, &arrival, job->raw, &receipt, &error);

	g_mutex_lock(&pass->lock);
	if (r == 0) {
		job->item->receipt = receipt;
		job->item->accept_result = 0;
		pass->stats.bytes += g_bytes_get_size(job->raw);
	} else {
		job->item->accept_result = -1;
		if (pass->accept_error == NULL)
			pass->accept_error = g_strdup(error);
	}
	pass->inflight--;
	g_cond_broadcast(&pass->cond);
	g_mutex_unlock(&pass->lock);
	if (r < 0)
		log_warnx("poll: event=accept-failed name=%s mailbox=%s message=%s error=\"%s\"",
			  pass->settings->name, pass->settings->key, job->name, error);
	g_free(error);
	g_bytes_unref(job->raw);
	g_free(job->source);
	g_free(job->name);
	g_free(job);
	(void)user_data;
}

void
poll_pass_init(struct poll_pass *pass, const struct poll_settings *settings, struct intake *intake,
	       struct store *store, int64_t mailbox_id, volatile gint *stop)
{
	memset(pass, 0, sizeof(*pass));
	pass->settings = settings;
	pass->intake = intake;
	pass->store = store;
	pass->mailbox_id = mailbox_id;
	pass->stop = stop;
	g_mutex_init(&pass->lock);
	g_cond_init(&pass->cond);
}

void
poll_pass_deinit(struct poll_pass *pass)
{
	poll_pass_wait(pass);
	if (pass->pool != NULL)
		g_thread_pool_free(pass->pool, FALSE, TRUE);
	pass->pool = NULL;
	g_free(pass->accept_error);
	pass->accept_error = NULL;
	g_free(pass->imap_mailbox_wire);
	pass->imap_mailbox_wire = NULL;
	g_mutex_clear(&pass->lock);
	g_cond_clear(&pass->cond);
}

bool
poll_pass_stopping(const struct poll_pass *pass)
{
	return pass->stop != NULL && g_atomic_int_get(pass->stop) != 0;
}

void
poll_pass_accept(struct poll_pass *pass, struct poll_item *item, GBytes *raw, const char *source,
		 const char *name)
{
	struct accept_job *job = g_new0(struct accept_job, 1);

	if (pass->pool == NULL)
		pass->pool = g_thread_pool_new(accept_run, NULL, (gint)pass->settings->accept_jobs,
					       FALSE, NULL);
	job->pass = pass;
	job->item = item;
	job->raw = raw;
	job->source = g_strdup(source);
	job->name = g_strdup(name);
	g_mutex_lock(&pass->lock);
	while (pass->inflight >= pass->settings->accept_jobs)
		g_cond_wait(&pass->cond, &pass->lock);
	pass->inflight++;
	g_mutex_unlock(&pass->lock);
	g_thread_pool_push(pass->pool, job, NULL);
}

void
poll_pass_wait(struct poll_pass *pass)
{
	g_mutex_lock(&pass->lock);
	while (pass->inflight > 0)
		g_cond_wait(&pass->cond, &pass->lock);
	g_mutex_unlock(&pass->lock);
}

static bool
outcome_failed(enum store_outcome outcome)
{
	return outcome == STORE_OUTCOME_NOT_SNAPSHOT || outcome == STORE_OUTCOME_FAILED;
}

void
poll_pass_classify(struct poll_pass *pass, struct poll_item *items, size_t count,
		   bool have_failed_to)
{
	gint64 deadline =
	    g_get_monotonic_time() + (gint64)pass->settings->parse_wait_s * G_USEC_PER_SEC;
	bool wait = have_failed_to && pass->settings->parse_wait_s > 0;
	char *error = NULL;

	poll_pass_wait(pass);
	for (size_t i = 0; i < count; i++) {
		struct poll_item *it = &items[i];
		if (it->accept_result != 0) {
			it->fate =
			    it->too_large && have_failed_to ? POLL_FATE_FAILED : POLL_FATE_NONE;
			continue;
		}
		it->fate = POLL_FATE_DONE;
		if (!wait)
			continue;
		/* The parse workers record the outcome soon after the commit;
		 * a message still pending at the deadline counts as done (it is
		 * stored either way). */
		for (;;) {
			enum store_outcome outcome;
			if (poll_state_outcome(pass->store, it->receipt.message_id, &outcome,
					       &error) < 0) {
				log_warnx("poll: event=outcome-unknown name=%s error=\"%s\"",
					  pass->settings->name, error);
				g_clear_pointer(&error, g_free);
				break;
			}
			if (outcome != STORE_OUTCOME_PENDING) {
				if (outcome_failed(outcome))
					it->fate = POLL_FATE_FAILED;
				break;
			}
			if (g_get_monotonic_time() >= deadline || poll_pass_stopping(pass))
				break;
			g_usleep(20000);
		}
	}
	for (size_t i = 0; i < count; i++) {
		struct poll_item *it = &items[i];
		if (it->accept_result == 0) {
			if (it->receipt.duplicate)
				pass->stats.duplicates++;
			else
				pass->stats.taken++;
		}
		if (it->fate == POLL_FATE_FAILED)
			pass->stats.failed++;
		else if (it->fate == POLL_FATE_NONE)
			pass->stats.skipped++;
	}
}

void
poll_pass_report(struct poll_pass *pass)
{
	if (pass->progress != NULL)
		pass->progress(pass->progress_ctx, &pass->stats, pass->total);
}

void
poll_item_clear(struct poll_item *item)
{
	g_free(item->key);
	memset(item, 0, sizeof(*item));
}
