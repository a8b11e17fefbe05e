/* sim-fleet.c: the fleet of virtual printers and how they live.
 *
 * A device prints in hourly steps following its pattern (pages per working
 * day, an office-hours profile in its local time, weekends, daily noise),
 * splits pages over media sizes, colour and duplex with error diffusion so
 * the counter invariants of sim.h hold exactly, drains its supplies by their
 * yields, and logs jams, errors and info events at realistic rates.  New
 * devices are given a past: counters from years of use, half-used supplies
 * and full event logs, so the first snapshot already looks like a printer in
 * service.
 *
 * Determinism: all randomness comes from the device's own GRand, seeded from
 * (fleet seed, device index); nothing reads the wall clock.  Cost: a few
 * random draws per device-hour; a device-year is ~9000 steps. */
#include "config.h"

#include "sim/sim.h"

#include <math.h>
#include <string.h>

#define HOUR 3600
#define DAY 86400

/* Share of a working day's pages printed in each local hour. */
static const double hour_profile_raw[24] = {
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 2.5, 9,	 11,  11,  10,
    6,	 9,   10,  10,	8,   5,	  2.5, 1.2, 0.8, 0.6, 0.4, 0.3,
};

static double
hour_share(unsigned hour)
{
	static double sum = 0;
	if (sum == 0) {
		double s = 0;
		for (unsigned i = 0; i < 24; i++)
			s += hour_profile_raw[i];
		sum = s;
	}
	return hour_profile_raw[hour % 24] / sum;
}

/* ---- small helpers ------------------------------------------------------ */

/* Randomized rounding: floor(x + U[0,1)), the right mean with one draw. */
static int64_t
rround(GRand *r, double x)
{
	if (x <= 0)
		return 0;
	return (int64_t)floor(x + g_rand_double(r));
}

static double
rrange(GRand *r, double lo, double hi)
{
	return g_rand_double_range(r, lo, hi);
}

/* Log-uniform between lo and hi. */
static double
rlog(GRand *r, double lo, double hi)
{
	return exp(rrange(r, log(lo), log(hi)));
}

static void
ring_init(struct sim_ring *ring, size_t elem_size, unsigned cap)
{
	ring->elem_size = elem_size;
	ring->cap = cap > 0 ? cap : 1;
	ring->len = 0;
	ring->head = 0;
	ring->v = g_malloc0_n(ring->cap, elem_size);
}

static void
ring_push(struct sim_ring *ring, const void *elem)
{
	memcpy((char *)ring->v + (size_t)ring->head * ring->elem_size, elem, ring->elem_size);
	ring->head = (ring->head + 1) % ring->cap;
	if (ring->len < ring->cap)
		ring->len++;
}

unsigned
sim_ring_len(const struct sim_ring *ring)
{
	return ring->len;
}

const void *
sim_ring_get(const struct sim_ring *ring, unsigned i)
{
	if (i >= ring->len)
		return NULL;
	unsigned idx = (ring->head + ring->cap - 1 - i) % ring->cap;
	return (const char *)ring->v + (size_t)idx * ring->elem_size;
}

int
sim_device_offset_min(const struct sim_device *dev, int64_t t)
{
	gint interval = g_time_zone_find_interval(dev->tz, G_TIME_TYPE_UNIVERSAL, t);
	if (interval < 0)
		return 0;
	return (int)(g_time_zone_get_offset(dev->tz, interval) / 60);
}

char *
sim_device_format_time(const struct sim_device *dev, int64_t t_ms)
{
	int64_t t = t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000);
	int ms = (int)(t_ms - t * 1000);
	int off = sim_device_offset_min(dev, t);
	GDateTime *dt = g_date_time_new_from_unix_utc(t + (int64_t)off * 60);
	if (dt == NULL)
		return g_strdup("1970-01-01T00:00:00.000Z");
	int aoff = off < 0 ? -off : off;
	char *s = g_strdup_printf("%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d",
				  g_date_time_get_year(dt), g_date_time_get_month(dt),
				  g_date_time_get_day_of_month(dt), g_date_time_get_hour(dt),
				  g_date_time_get_minute(dt), g_date_time_get_second(dt), ms,
				  off < 0 ? '-' : '+', aoff / 60, aoff % 60);
	g_date_time_unref(dt);
	return s;
}

/* ---- counters ----------------------------------------------------------- */

int64_t
sim_device_mono_impressions(const struct sim_device *dev)
{
	int64_t s = 0;
	for (unsigned i = 0; i < dev->n_media; i++)
		s += dev->mono[i];
	return s;
}

int64_t
sim_device_color_impressions(const struct sim_device *dev)
{
	int64_t s = 0;
	for (unsigned i = 0; i < dev->n_media; i++)
		s += dev->color[i];
	return s;
}

int64_t
sim_device_total_impressions(const struct sim_device *dev)
{
	return sim_device_mono_impressions(dev) + sim_device_color_impressions(dev);
}

int
sim_supply_level(const struct sim_supply *supply)
{
	if (supply->capacity <= 0 || supply->remaining <= 0)
		return 0;
	double pct = 100.0 * supply->remaining / supply->capacity;
	int level = (int)ceil(pct);
	return level > 100 ? 100 : level;
}

const char *
sim_supply_state_name(enum sim_supply_state state)
{
	switch (state) {
	case SIM_SUPPLY_LOW:
		return "low";
	case SIM_SUPPLY_OUT:
		return "out";
	case SIM_SUPPLY_OK:
	default:
		return "ok";
	}
}

/* ---- events ------------------------------------------------------------- */

struct pending_event {
	int64_t t_ms;
	int64_t pages;
	uint16_t code;
	int8_t supply;
};

#define STEP_EVENTS_MAX 64

struct step {
	struct pending_event ev[STEP_EVENTS_MAX];
	unsigned n;
};

static void
step_add(struct step *st, int64_t t_ms, int64_t pages, unsigned code, int supply)
{
	if (st->n >= STEP_EVENTS_MAX)
		return;
	st->ev[st->n].t_ms = t_ms;
	st->ev[st->n].pages = pages;
	st->ev[st->n].code = (uint16_t)code;
	st->ev[st->n].supply = (int8_t)supply;
	st->n++;
}

static gint
pending_cmp(gconstpointer a, gconstpointer b)
{
	const struct pending_event *x = a, *y = b;
	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	return 0;
}

static void
log_event(struct sim_device *dev, const struct pending_event *p)
{
	struct sim_event ev = {0};
	const struct sim_event_kind *kind = sim_event_kind(p->code);

	ev.seq = dev->next_seq++;
	ev.t_ms = p->t_ms;
	ev.pages = p->pages;
	ev.scans = dev->adf + dev->flatbed;
	ev.boot = dev->boot;
	ev.code = p->code;
	ev.log = dev->model->dialect == SNAPSHOT_DIALECT_LEGACY ? 0 : kind->log;
	ev.supply = p->supply;
	ring_push(&dev->logs[ev.log], &ev);
	if (p->code == SIM_EV_FW_ERROR)
		dev->boot++;
}

static void
step_flush(struct sim_device *dev, struct step *st)
{
	if (st->n == 0)
		return;
	qsort(st->ev, st->n, sizeof(st->ev[0]), (int (*)(const void *, const void *))pending_cmp);
	/* Page counts must not run backwards with time inside a step. */
	for (unsigned i = 1; i < st->n; i++)
		if (st->ev[i].pages < st->ev[i - 1].pages)
			st->ev[i].pages = st->ev[i - 1].pages;
	for (unsigned i = 0; i < st->n; i++)
		log_event(dev, &st->ev[i]);
	st->n = 0;
}

/* A time inside [t0, t1) in milliseconds. */
static int64_t
rand_time_ms(GRand *r, int64_t t0, int64_t t1)
{
	int64_t span = (t1 - t0) * 1000;
	if (span <= 0)
		return t0 * 1000 + g_rand_int_range(r, 0, 1000);
	return t0 * 1000 + (int64_t)(g_rand_double(r) * (double)span);
}

static unsigned
pick_jam(struct sim_device *dev)
{
	double u = g_rand_double(dev->rand);
	if (u < 0.40)
		return SIM_EV_JAM_TRAY2;
	if (u < 0.60)
		return SIM_EV_JAM_FUSER;
	if (u < 0.75)
		return SIM_EV_JAM_OUTPUT;
	if (u < 0.90)
		return dev->duplex_share > 0.05 ? SIM_EV_JAM_DUPLEX : SIM_EV_JAM_TRAY2;
	return SIM_EV_JAM_TRAY3;
}

/* ---- supplies ----------------------------------------------------------- */

static void
supply_new_serial(struct sim_device *dev, struct sim_supply *s)
{
	if (strcmp(s->m->type, "maintenanceKit") == 0) {
		s->serial[0] = '\0';
		return;
	}
	g_snprintf(s->serial, sizeof(s->serial), "CAT%08u",
		   (unsigned)g_rand_int_range(dev->rand, 10000000, 99999999));
}

static void
supply_install(struct sim_device *dev, struct sim_supply *s, int64_t when, double fill)
{
	supply_new_serial(dev, s);
	s->capacity = (double)s->m->yield * rrange(dev->rand, 0.95, 1.05);
	s->remaining = s->capacity * fill;
	s->installed = when;
	s->pages = 0;
	s->state = SIM_SUPPLY_OK;
	s->out_since = 0;
	s->replace_at = 0;
	s->low_threshold = strcmp(s->m->type, "maintenanceKit") == 0 ? 5 : 10;
	s->clone = g_rand_double(dev->rand) < 0.03;
}

/* Drains `pages` of use over [t0, t1), logging low/out events. */
static void
supply_use(struct sim_device *dev, unsigned idx, double use, int64_t printed, int64_t t0,
	   int64_t t1, int64_t pages_at, struct step *st)
{
	struct sim_supply *s = &dev->supplies[idx];
	if (use <= 0 && printed <= 0)
		return;
	s->pages += printed;
	if (s->state == SIM_SUPPLY_OUT)
		return;
	s->remaining -= use;
	if (s->remaining <= 0) {
		s->remaining = 0;
		s->state = SIM_SUPPLY_OUT;
		s->out_since = t1;
		step_add(st, rand_time_ms(dev->rand, t0, t1), pages_at, SIM_EV_SUPPLY_OUT,
			 (int)idx);
		/* Replaced within hours to days. */
		if (s->replace_at == 0 || s->replace_at > t1 + 5 * DAY)
			s->replace_at = t1 + (int64_t)rrange(dev->rand, 0.1, 3.0) * DAY;
	} else if (s->state == SIM_SUPPLY_OK && sim_supply_level(s) <= s->low_threshold) {
		s->state = SIM_SUPPLY_LOW;
		step_add(st, rand_time_ms(dev->rand, t0, t1), pages_at, SIM_EV_SUPPLY_LOW,
			 (int)idx);
		/* Some sites replace at "low", most run to "out". */
		if (g_rand_double(dev->rand) < 0.3)
			s->replace_at = t1 + (int64_t)(rrange(dev->rand, 1, 10) * DAY);
	}
}

static void
supplies_replace_due(struct sim_device *dev, int64_t t0, int64_t t1, struct step *st)
{
	int64_t pages = sim_device_total_impressions(dev);
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		struct sim_supply *s = &dev->supplies[i];
		if (s->replace_at == 0 || s->replace_at >= t1)
			continue;
		int64_t when = s->replace_at > t0 ? s->replace_at : t0;
		supply_install(dev, s, when, rrange(dev->rand, 0.97, 1.0));
		s->replacements++;
		step_add(st, when * 1000 + g_rand_int_range(dev->rand, 0, 1000), pages,
			 SIM_EV_SUPPLY_REPLACED, (int)i);
		if (s->clone)
			step_add(st, when * 1000 + 1000 + g_rand_int_range(dev->rand, 0, 1000),
				 pages, SIM_EV_USED_SUPPLY, (int)i);
	}
}

/* ---- printing ----------------------------------------------------------- */

/* Splits x over n parts by weights with error diffusion (carry keeps the
 * fractions between calls).  The parts add up to exactly x. */
static void
split_exact(int64_t x, unsigned n, const double *w, double *carry, int64_t *out)
{
	int64_t rest = x;
	for (unsigned i = 1; i < n; i++) {
		double v = (double)x * w[i] + carry[i];
		int64_t k = (int64_t)floor(v);
		if (k < 0)
			k = 0;
		if (k > rest)
			k = rest;
		carry[i] = v - (double)k;
		out[i] = k;
		rest -= k;
	}
	out[0] = rest;
}

static void
record_jobs(struct sim_device *dev, int64_t pages, int64_t color, const int64_t *per_media,
	    int64_t t0, int64_t t1)
{
	if (dev->model->dialect != SNAPSHOT_DIALECT_LEGACY || pages <= 0)
		return;
	int64_t njobs = rround(dev->rand, (double)pages / 6.0);
	if (njobs < 1)
		njobs = 1;
	if (njobs > 8)
		njobs = 8;
	int64_t times[8];
	for (int64_t j = 0; j < njobs; j++)
		times[j] = t0 + (int64_t)(g_rand_double(dev->rand) * (double)(t1 - t0));
	for (int64_t a = 1; a < njobs; a++)
		for (int64_t b = a; b > 0 && times[b] < times[b - 1]; b--) {
			int64_t tmp = times[b];
			times[b] = times[b - 1];
			times[b - 1] = tmp;
		}
	int64_t left = pages, left_c = color;
	unsigned media = 0;
	for (unsigned i = 1; i < dev->n_media; i++)
		if (per_media[i] > per_media[media])
			media = i;
	for (int64_t j = 0; j < njobs; j++) {
		struct sim_job job = {0};
		int64_t p = j == njobs - 1 ? left : left / (njobs - j);
		int64_t c = j == njobs - 1 ? left_c : (left_c * p) / (left > 0 ? left : 1);
		if (c > p)
			c = p;
		left -= p;
		left_c -= c;
		job.t = times[j];
		job.id = dev->next_job++;
		job.color = (uint32_t)c;
		job.mono = (uint32_t)(p - c);
		job.name = (uint16_t)g_rand_int_range(dev->rand, 0, 1000);
		job.user = (uint16_t)g_rand_int_range(dev->rand, 0, 40);
		job.app = (uint16_t)g_rand_int_range(dev->rand, 0, 8);
		job.media = (uint8_t)media;
		job.duplex = g_rand_double(dev->rand) < dev->duplex_share;
		ring_push(&dev->jobs, &job);
	}
}

/* Prints `n` pages over [t0, t1). */
static void
apply_pages(struct sim_device *dev, int64_t n, int64_t t0, int64_t t1, struct step *st)
{
	int64_t per_media[SIM_MEDIA_MAX] = {0};
	int64_t before = sim_device_total_impressions(dev);
	int64_t color_total = 0;

	if (n <= 0)
		return;
	split_exact(n, dev->n_media, dev->media_weight, dev->carry_media, per_media);
	for (unsigned i = 0; i < dev->n_media; i++) {
		int64_t c = 0;
		if (dev->model->color && per_media[i] > 0) {
			double v = (double)per_media[i] * dev->color_share + dev->carry_color[i];
			c = (int64_t)floor(v);
			if (c > per_media[i])
				c = per_media[i];
			if (c < 0)
				c = 0;
			dev->carry_color[i] = v - (double)c;
		}
		dev->color[i] += c;
		dev->mono[i] += per_media[i] - c;
		color_total += c;
	}
	/* Sheets: every duplex sheet is two impressions. */
	double dv = (double)n * dev->duplex_share / 2.0 + dev->carry_duplex;
	int64_t d = (int64_t)floor(dv);
	if (2 * d > n)
		d = n / 2;
	dev->carry_duplex = dv - (double)d;
	dev->duplex += d;
	dev->simplex += n - 2 * d;
	dev->blank[0] += rround(dev->rand, (double)d * 0.04);

	if (dev->model->mfp) {
		double sv = (double)n * dev->scan_share + dev->carry_scan;
		int64_t scans = (int64_t)floor(sv);
		dev->carry_scan = sv - (double)scans;
		int64_t flat = rround(dev->rand, (double)scans * 0.12);
		if (flat > scans)
			flat = scans;
		dev->adf += scans - flat;
		dev->flatbed += flat;
		int64_t copies = rround(dev->rand, (double)n * dev->copy_share);
		dev->copies += copies;
		if (dev->model->fax)
			dev->faxes += rround(dev->rand, (double)n * dev->fax_share);
		int64_t mispicks = rround(dev->rand, (double)(scans - flat) / 6000.0);
		for (int64_t j = 0; j < mispicks; j++)
			step_add(st, rand_time_ms(dev->rand, t0, t1), before + n / 2,
				 SIM_EV_ADF_MISPICK, -1);
	}

	/* Jams at the page they happened on. */
	int64_t jams = rround(dev->rand, (double)n * dev->jam_per_page);
	for (int64_t j = 0; j < jams; j++) {
		double f = g_rand_double(dev->rand);
		int64_t t_ms = t0 * 1000 + (int64_t)(f * (double)(t1 - t0) * 1000);
		step_add(st, t_ms, before + (int64_t)(f * (double)n), pick_jam(dev), -1);
	}
	dev->jams += jams;

	/* Supplies: black and kits with every page, colours with colour pages. */
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		const struct sim_supply_model *m = dev->supplies[i].m;
		double use;
		if (m->color != NULL && strcmp(m->color, "black") != 0)
			use = (double)color_total * rrange(dev->rand, 0.9, 1.1);
		else
			use = (double)n * (m->color != NULL ? rrange(dev->rand, 0.9, 1.1) : 1.0);
		supply_use(dev, i, use, n, t0, t1, before + n, st);
	}
	record_jobs(dev, n, color_total, per_media, t0, t1);
}

/* Non-page events over [t0, t1). */
static void
time_events(struct sim_device *dev, int64_t t0, int64_t t1, int64_t pages, struct step *st)
{
	double days = (double)(t1 - t0) / DAY;
	struct {
		unsigned code;
		double per_day;
	} rates[] = {
	    {SIM_EV_FW_ERROR, 0.015},
	    {SIM_EV_FUSER_ERROR, 0.002},
	    {SIM_EV_SCANNER_ERROR, dev->model->mfp ? 0.004 : 0},
	    {SIM_EV_WASTE_FULL, dev->model->color ? 0.004 : 0},
	    {SIM_EV_SIZE_MISMATCH, 0.02},
	    {SIM_EV_LDAP, dev->ldap_per_day},
	    {SIM_EV_EMAIL_FAIL, dev->email_per_day},
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(rates); i++) {
		int64_t k = rround(dev->rand, rates[i].per_day * days);
		for (int64_t j = 0; j < k; j++)
			step_add(st, rand_time_ms(dev->rand, t0, t1), pages, rates[i].code, -1);
	}
	dev->boot += (uint32_t)rround(dev->rand, 0.15 * days);
}

static double
rate_per_hour(struct sim_device *dev, int64_t t)
{
	int off = sim_device_offset_min(dev, t);
	int64_t local = t + (int64_t)off * 60;
	int64_t day = local >= 0 ? local / DAY : (local - DAY + 1) / DAY;
	unsigned hour = (unsigned)((local - day * DAY) / HOUR);
	unsigned wday = (unsigned)(((day % 7) + 7 + 4) % 7); /* 0 = Sunday; 1970-01-01 Thu */
	if (day != dev->day_noise_day) {
		dev->day_noise_day = day;
		dev->day_noise = rrange(dev->rand, 0.55, 1.45);
	}
	double f = (wday == 0 || wday == 6) ? dev->weekend : 1.0;
	return dev->ppd * hour_share(hour) * f * dev->day_noise;
}

/* One step [dev->now, t1) inside one hour.  With target >= 0, stops when the
 * total reaches target: returns the time it did (dev->now is then that), or
 * -1 when the step completed. */
static int64_t
step_once(struct sim_device *dev, int64_t t1, int64_t target)
{
	struct step st;
	int64_t t0 = dev->now;
	int64_t result = -1;
	st.n = 0;

	double rate = rate_per_hour(dev, t0);
	double x = rate * (double)(t1 - t0) / HOUR * rrange(dev->rand, 0.7, 1.3) + dev->carry_pages;
	int64_t n = (int64_t)floor(x);
	dev->carry_pages = x - (double)n;
	int64_t total = sim_device_total_impressions(dev);

	supplies_replace_due(dev, t0, t1, &st);
	if (target >= 0 && n > 0 && total + n >= target) {
		int64_t k = target - total;
		int64_t tc = t0 + (int64_t)((double)(t1 - t0) * (double)k / (double)n);
		if (tc <= t0)
			tc = t0 + 1;
		if (tc > t1)
			tc = t1;
		apply_pages(dev, k, t0, tc, &st);
		time_events(dev, t0, tc, total, &st);
		dev->carry_pages = 0;
		t1 = tc;
		result = tc;
	} else {
		apply_pages(dev, n, t0, t1, &st);
		time_events(dev, t0, t1, total, &st);
	}
	step_flush(dev, &st);
	dev->now = t1;
	return result;
}

static int64_t
advance_to(struct sim_device *dev, int64_t until, int64_t target)
{
	while (dev->now < until) {
		int64_t next_hour = (dev->now / HOUR + 1) * HOUR;
		int64_t t1 = next_hour < until ? next_hour : until;
		int64_t hit = step_once(dev, t1, target);
		if (hit >= 0)
			return hit;
	}
	return -1;
}

void
sim_device_advance(struct sim_device *dev, int64_t until)
{
	advance_to(dev, until, -1);
}

void
sim_device_print(struct sim_device *dev, int64_t pages, int64_t until)
{
	struct step st;
	st.n = 0;
	if (until <= dev->now)
		until = dev->now + 1;
	apply_pages(dev, pages, dev->now, until, &st);
	step_flush(dev, &st);
	dev->now = until;
}

int64_t
sim_device_next_due(struct sim_device *dev, int64_t horizon)
{
	if (dev->sched.unit != SIM_SCHED_PAGES) {
		int64_t t =
		    sim_schedule_time_k(&dev->sched, dev->tz, dev->sched_anchor, dev->sched_k);
		return t >= 0 && t <= horizon ? t : -1;
	}
	int64_t target = sim_schedule_pages_k(&dev->sched, dev->sched_anchor, dev->sched_k);
	if (sim_device_total_impressions(dev) >= target)
		return dev->now;
	return advance_to(dev, horizon, target);
}

void
sim_device_snapshot_taken(struct sim_device *dev)
{
	dev->snapshots++;
	dev->sched_k++;
	if (dev->sched.unit == SIM_SCHED_PAGES) {
		/* The counter can jump (a reset, a burst): the next target is the
		 * first one above the current count. */
		int64_t total = sim_device_total_impressions(dev);
		while (sim_schedule_pages_k(&dev->sched, dev->sched_anchor, dev->sched_k) <=
			   total &&
		       dev->sched_k < G_MAXUINT - 1)
			dev->sched_k++;
	}
}

void
sim_device_counter_reset(struct sim_device *dev, int64_t when)
{
	if (when > dev->now)
		sim_device_advance(dev, when);
	memset(dev->mono, 0, sizeof(dev->mono));
	memset(dev->color, 0, sizeof(dev->color));
	memset(dev->blank, 0, sizeof(dev->blank));
	dev->simplex = dev->duplex = dev->jams = 0;
	dev->adf = dev->flatbed = dev->copies = dev->faxes = 0;
	for (unsigned i = 0; i < 2; i++) {
		dev->logs[i].len = 0;
		dev->logs[i].head = 0;
	}
	dev->jobs.len = 0;
	dev->jobs.head = 0;
	dev->next_seq = 1;
	dev->last_sent_seq = 0;
	dev->boot = 1;
	dev->formatter_resets++;
	if (dev->sched.unit == SIM_SCHED_PAGES) {
		dev->sched_anchor = 0;
		dev->sched_k = 1;
	}
}

/* ---- creation ----------------------------------------------------------- */

struct media_def {
	const char *name;
	double letter_w, a4_w;
	bool a3_only, asia;
};

static const struct media_def media_defs[] = {
    {"na_letter_8.5x11in", 0.80, 0.02, false, false},
    {"iso_a4_210x297mm", 0.02, 0.85, false, false},
    {"na_legal_8.5x14in", 0.10, 0, false, false},
    {"na_ledger_11x17in", 0.05, 0, true, false},
    {"iso_a3_297x420mm", 0, 0.07, true, false},
    {"na_executive_7.25x10.5in", 0.02, 0, false, false},
    {"iso_a5_148x210mm", 0, 0.03, false, false},
    {"jis_b5_182x257mm", 0, 0.03, false, true},
    {"na_number-10_4.125x9.5in", 0.015, 0, false, false},
    {"iso_dl_110x220mm", 0, 0.015, false, false},
};

static void
device_media(struct sim_device *dev)
{
	const struct sim_model *m = dev->model;
	double sum = 0;
	dev->n_media = 0;
	if (m->media != NULL && m->media->len > 0) {
		for (unsigned i = 0; i < m->media->len && dev->n_media < SIM_MEDIA_MAX; i++) {
			g_strlcpy(dev->media_name[dev->n_media], g_ptr_array_index(m->media, i),
				  sizeof(dev->media_name[0]));
			dev->media_weight[dev->n_media] =
			    (i == 0 ? 0.8 : 0.2 / (double)m->media->len) *
			    rrange(dev->rand, 0.7, 1.3);
			dev->n_media++;
		}
	} else {
		bool asia = g_str_has_prefix(dev->site->locale, "ja") ||
			    g_str_has_prefix(dev->site->locale, "ko");
		for (unsigned i = 0; i < G_N_ELEMENTS(media_defs) && dev->n_media < SIM_MEDIA_MAX;
		     i++) {
			const struct media_def *d = &media_defs[i];
			double w = dev->site->letter ? d->letter_w : d->a4_w;
			if (d->a3_only && !m->a3)
				w = 0;
			if (d->asia && !asia)
				w = 0;
			/* Small sizes appear on some devices only. */
			if (w > 0 && w < 0.05 && g_rand_double(dev->rand) < 0.4)
				w = 0;
			if (w <= 0)
				continue;
			g_strlcpy(dev->media_name[dev->n_media], d->name,
				  sizeof(dev->media_name[0]));
			dev->media_weight[dev->n_media] = w * rrange(dev->rand, 0.7, 1.3);
			dev->n_media++;
		}
	}
	for (unsigned i = 0; i < dev->n_media; i++)
		sum += dev->media_weight[i];
	for (unsigned i = 0; i < dev->n_media; i++)
		dev->media_weight[i] /= sum;
}

static const char *const hp_ouis[] = {"3c:d9:2b", "a0:d3:c1", "10:1f:74", "b0:5a:da",
				      "00:17:a4", "9c:8e:99", "fc:15:b4"};

static void
device_identity(struct sim_device *dev, const char *from_domain)
{
	static const char alnum[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
	const struct sim_model *m = dev->model;
	size_t plen = strlen(m->serial_prefix);
	guint8 mac[3];

	g_strlcpy(dev->serial, m->serial_prefix, sizeof(dev->serial));
	for (size_t i = plen; i < 10 && i < sizeof(dev->serial) - 1; i++) {
		dev->serial[i] = alnum[g_rand_int_range(dev->rand, 0, (gint32)sizeof(alnum) - 1)];
		dev->serial[i + 1] = '\0';
	}
	for (unsigned i = 0; i < 3; i++)
		mac[i] = (guint8)g_rand_int_range(dev->rand, 0, 256);
	g_snprintf(dev->mac, sizeof(dev->mac), "%s:%02x:%02x:%02x",
		   hp_ouis[g_rand_int_range(dev->rand, 0, G_N_ELEMENTS(hp_ouis))], mac[0], mac[1],
		   mac[2]);
	g_snprintf(dev->hostname, sizeof(dev->hostname), "NPI%02X%02X%02X", mac[0], mac[1], mac[2]);
	g_snprintf(dev->ip, sizeof(dev->ip), "%s.%u.%u", dev->site->net,
		   (unsigned)g_rand_int_range(dev->rand, 0, 256),
		   (unsigned)g_rand_int_range(dev->rand, 2, 255));
	guint32 u[4];
	for (unsigned i = 0; i < 4; i++)
		u[i] = g_rand_int(dev->rand);
	g_snprintf(dev->uuid, sizeof(dev->uuid), "%08x-%04x-4%03x-%04x-%04x%08x", u[0], u[1] >> 16,
		   u[1] & 0xfff, (u[2] >> 16 & 0x3fff) | 0x8000, u[2] & 0xffff, u[3]);
	char *lower = g_ascii_strdown(dev->hostname, -1);
	g_snprintf(dev->from, sizeof(dev->from), "%s-%s@%s", m->mfp ? "mfp" : "prn", lower,
		   from_domain != NULL ? from_domain : "fleet.example");
	g_free(lower);
}

static unsigned
pick_history_event(struct sim_device *dev, unsigned log)
{
	double u = g_rand_double(dev->rand);
	if (log == 0) {
		if (u < 0.70)
			return pick_jam(dev);
		if (u < 0.80)
			return SIM_EV_FW_ERROR;
		if (u < 0.86)
			return dev->model->mfp ? SIM_EV_ADF_MISPICK : SIM_EV_SIZE_MISMATCH;
		if (u < 0.92)
			return SIM_EV_SIZE_MISMATCH;
		if (u < 0.95)
			return SIM_EV_SUPPLY_OUT;
		if (u < 0.97 && dev->model->color)
			return SIM_EV_WASTE_FULL;
		return SIM_EV_FUSER_ERROR;
	}
	if (u < 0.45)
		return SIM_EV_LDAP;
	if (u < 0.65)
		return SIM_EV_EMAIL_FAIL;
	if (u < 0.85)
		return SIM_EV_SUPPLY_LOW;
	if (u < 0.97)
		return SIM_EV_SUPPLY_REPLACED;
	return SIM_EV_USED_SUPPLY;
}

/* Full logs from the device's past: entries back from t_now, spaced so the
 * log spans weeks to months, page counts falling with the usage pattern. */
static void
device_history(struct sim_device *dev, int64_t t_now, int64_t installed, unsigned capacity)
{
	struct pending_event *all;
	unsigned nlogs = dev->model->dialect == SNAPSHOT_DIALECT_LEGACY ? 1 : 2;
	unsigned n = 0, max = capacity * 2;
	int64_t total = sim_device_total_impressions(dev);
	double ppd_avg = dev->ppd * (5.0 + 2.0 * dev->weekend) / 7.0;

	all = g_new0(struct pending_event, max);
	for (unsigned lg = 0; lg < 2; lg++) {
		/* Legacy: one log holding both kinds. */
		double per_day =
		    lg == 0 ? ppd_avg * dev->jam_per_page + 0.4 : rrange(dev->rand, 0.4, 3.0);
		int64_t t = t_now;
		unsigned want = nlogs == 1 ? capacity / 2 : capacity;
		for (unsigned i = 0; i < want && n < max; i++) {
			t -= (int64_t)(-log(1.0 - g_rand_double(dev->rand)) * DAY / per_day) + 1;
			if (t <= installed)
				break;
			struct pending_event *p = &all[n++];
			p->t_ms = t * 1000 + g_rand_int_range(dev->rand, 0, 1000);
			p->pages = total - (int64_t)((double)(t_now - t) / DAY * ppd_avg);
			if (p->pages < 0)
				p->pages = 0;
			p->code = (uint16_t)pick_history_event(dev, lg);
			p->supply = -1;
			if (p->code == SIM_EV_SUPPLY_LOW || p->code == SIM_EV_SUPPLY_OUT ||
			    p->code == SIM_EV_SUPPLY_REPLACED || p->code == SIM_EV_USED_SUPPLY)
				p->supply =
				    (int8_t)g_rand_int_range(dev->rand, 0, (gint32)dev->n_supplies);
		}
	}
	qsort(all, n, sizeof(all[0]), (int (*)(const void *, const void *))pending_cmp);
	for (unsigned i = 1; i < n; i++)
		if (all[i].pages < all[i - 1].pages)
			all[i].pages = all[i - 1].pages;
	/* Sequence numbers continue a longer history than the logs hold. */
	dev->next_seq = 1 + (int64_t)((double)(t_now - installed) / DAY * 0.8);
	uint32_t boot_now = dev->boot;
	for (unsigned i = 0; i < n; i++) {
		dev->boot = boot_now - (uint32_t)((n - i) / 20);
		log_event(dev, &all[i]);
	}
	dev->boot = boot_now;
	g_free(all);

	if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY) {
		/* The job log: the last jobs before now. */
		unsigned jobs = dev->jobs.cap;
		int64_t t =
		    t_now - (int64_t)((double)jobs * 6.0 / (ppd_avg > 1 ? ppd_avg : 1) * DAY);
		if (t < installed)
			t = installed;
		int64_t span = t_now - t;
		for (unsigned j = 0; j < jobs; j++) {
			struct sim_job job = {0};
			job.t = t + span * j / jobs;
			job.id = dev->next_job++;
			uint32_t p = (uint32_t)g_rand_int_range(dev->rand, 1, 12);
			job.color = dev->model->color
					? (uint32_t)rround(dev->rand, p * dev->color_share)
					: 0;
			if (job.color > p)
				job.color = p;
			job.mono = p - job.color;
			job.name = (uint16_t)g_rand_int_range(dev->rand, 0, 1000);
			job.user = (uint16_t)g_rand_int_range(dev->rand, 0, 40);
			job.app = (uint16_t)g_rand_int_range(dev->rand, 0, 8);
			job.media = 0;
			job.duplex = g_rand_double(dev->rand) < dev->duplex_share;
			ring_push(&dev->jobs, &job);
		}
	}
}

static void
device_past(struct sim_device *dev, int64_t t0, const struct sim_fleet_settings *settings)
{
	double age_days = rlog(dev->rand, 300, 2600);
	int64_t installed = t0 - (int64_t)(age_days * DAY);
	double ppd_avg = dev->ppd * (5.0 + 2.0 * dev->weekend) / 7.0;
	int64_t pages = (int64_t)(age_days * ppd_avg * rrange(dev->rand, 0.8, 1.2));
	struct step st;
	st.n = 0;

	/* Counters from the past, without events (the logs are filled below). */
	double saved_jam = dev->jam_per_page;
	dev->jam_per_page = 0;
	int64_t saved_seq = dev->next_seq;
	apply_pages(dev, pages, installed, t0, &st);
	dev->jam_per_page = saved_jam;
	st.n = 0;
	dev->next_seq = saved_seq;
	dev->jams = (int64_t)((double)pages * dev->jam_per_page);
	dev->boot = 20 + (uint32_t)(age_days * 0.3);
	dev->jobs.len = dev->jobs.head = 0;
	dev->next_job = (uint32_t)(pages / 6) + 1;

	/* Supplies half used, installed when their use began. */
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		struct sim_supply *s = &dev->supplies[i];
		double fill = rrange(dev->rand, 0.12, 0.95);
		supply_install(dev, s, installed, fill);
		double used = s->capacity - s->remaining;
		bool colour = s->m->color != NULL && strcmp(s->m->color, "black") != 0;
		double per_day = ppd_avg * (colour ? dev->color_share : 1.0);
		double days = per_day > 0 ? used / per_day : age_days;
		if (days > age_days)
			days = age_days;
		s->installed = t0 - (int64_t)(days * DAY);
		s->pages = (int64_t)(days * ppd_avg);
		if (sim_supply_level(s) <= s->low_threshold)
			s->state = SIM_SUPPLY_LOW;
	}
	device_history(dev, t0, installed, settings->log_capacity);
}

static struct sim_schedule
pick_schedule(struct sim_device *dev)
{
	struct sim_schedule s;
	double u = g_rand_double(dev->rand);
	if (u < 0.30) {
		static const unsigned days[] = {1, 1, 2, 3, 7};
		s.unit = SIM_SCHED_DAYS;
		s.every = days[g_rand_int_range(dev->rand, 0, G_N_ELEMENTS(days))];
	} else if (u < 0.60) {
		s.unit = SIM_SCHED_WEEKS;
		s.every = (unsigned)g_rand_int_range(dev->rand, 1, 3);
	} else if (u < 0.75) {
		s.unit = SIM_SCHED_MONTHS;
		s.every = 1;
	} else {
		static const unsigned pages[] = {500, 1000, 2000, 5000, 10000};
		s.unit = SIM_SCHED_PAGES;
		s.every = pages[g_rand_int_range(dev->rand, 0, G_N_ELEMENTS(pages))];
	}
	return s;
}

static struct sim_device *
device_new(const struct sim_fleet_settings *settings, GPtrArray *models, unsigned index)
{
	struct sim_device *dev = g_new0(struct sim_device, 1);
	guint32 seed[3] = {settings->seed, index, 0x5eed5eedu};

	dev->index = index;
	dev->rand = g_rand_new_with_seed_array(seed, 3);
	dev->seed = g_rand_int(dev->rand);
	dev->model = g_ptr_array_index(models, g_rand_int_range(dev->rand, 0, (gint32)models->len));
	dev->site =
	    sim_site_get((unsigned)g_rand_int_range(dev->rand, 0, (gint32)sim_site_count()));
	dev->tz = g_time_zone_new_identifier(dev->site->tz_id);
	if (dev->tz == NULL)
		dev->tz = g_time_zone_new_offset(dev->site->fallback_offset_min * 60);
	device_identity(dev, settings->from_domain);

	const struct sim_model *m = dev->model;
	dev->ppd = rlog(dev->rand, m->ppd_min, m->ppd_max);
	dev->weekend = rrange(dev->rand, 0.02, 0.2);
	dev->color_share = m->color ? rrange(dev->rand, 0.15, 0.6) : 0;
	dev->duplex_share = rrange(dev->rand, 0.05, 0.6);
	dev->scan_share = m->mfp ? rrange(dev->rand, 0.05, 0.5) : 0;
	dev->copy_share = m->mfp ? rrange(dev->rand, 0.05, 0.2) : 0;
	dev->fax_share = m->fax ? rrange(dev->rand, 0.0, 0.03) : 0;
	dev->jam_per_page = 1.0 / rlog(dev->rand, 1500, 12000);
	dev->ldap_per_day = g_rand_double(dev->rand) < 0.3 ? rrange(dev->rand, 0.2, 2.0) : 0.02;
	dev->email_per_day = g_rand_double(dev->rand) < 0.2 ? rrange(dev->rand, 0.1, 0.8) : 0.01;
	dev->day_noise = 1.0;
	dev->day_noise_day = G_MININT64;
	device_media(dev);

	dev->n_supplies = m->supplies->len < SIM_SUPPLY_MAX ? m->supplies->len : SIM_SUPPLY_MAX;
	for (unsigned i = 0; i < dev->n_supplies; i++)
		dev->supplies[i].m = g_ptr_array_index(m->supplies, i);

	ring_init(&dev->logs[0], sizeof(struct sim_event), settings->log_capacity);
	ring_init(&dev->logs[1], sizeof(struct sim_event), settings->log_capacity);
	ring_init(&dev->jobs, sizeof(struct sim_job),
		  m->dialect == SNAPSHOT_DIALECT_LEGACY ? settings->job_log_capacity : 1);
	dev->next_seq = 1;
	dev->now = settings->start;

	device_past(dev, settings->start, settings);

	dev->sched = settings->schedule != NULL ? *settings->schedule : pick_schedule(dev);
	if (dev->sched.unit == SIM_SCHED_PAGES) {
		/* Part of an interval already printed since the last send. */
		dev->sched_anchor = sim_device_total_impressions(dev) -
				    (int64_t)(g_rand_double(dev->rand) * dev->sched.every);
		dev->sched_k = 1;
	} else {
		/* Enabled some time within the last interval: the first send
		 * falls somewhere in the first interval. */
		int64_t one =
		    sim_schedule_time_k(&dev->sched, dev->tz, settings->start, 1) - settings->start;
		dev->sched_anchor =
		    settings->start - (int64_t)(g_rand_double(dev->rand) * (double)one);
		dev->sched_k = 1;
	}
	dev->last_sent_seq = 0;
	return dev;
}

static void
device_free(gpointer p)
{
	struct sim_device *dev = p;
	if (dev == NULL)
		return;
	g_rand_free(dev->rand);
	g_time_zone_unref(dev->tz);
	g_free(dev->logs[0].v);
	g_free(dev->logs[1].v);
	g_free(dev->jobs.v);
	g_free(dev);
}

void
sim_fleet_settings_default(struct sim_fleet_settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	settings->seed = 1;
	settings->devices = 10;
	settings->start = 1735689600; /* 2025-01-01T00:00:00Z */
	settings->log_capacity = SIM_LOG_CAPACITY_DEFAULT;
	settings->job_log_capacity = SIM_JOB_LOG_CAPACITY_DEFAULT;
	settings->from_domain = "fleet.example";
}

struct sim_fleet *
sim_fleet_new(const struct sim_fleet_settings *settings)
{
	struct sim_fleet *fleet = g_new0(struct sim_fleet, 1);
	GPtrArray *models = g_ptr_array_new();
	const GPtrArray *source =
	    settings->models != NULL ? settings->models : sim_model_catalogue();

	fleet->settings = *settings;
	for (unsigned i = 0; i < source->len; i++) {
		struct sim_model *m = g_ptr_array_index(source, i);
		if (settings->dialect != NULL) {
			bool legacy = m->dialect == SNAPSHOT_DIALECT_LEGACY;
			if (legacy != (g_ascii_strcasecmp(settings->dialect, "legacy") == 0))
				continue;
		}
		g_ptr_array_add(models, m);
	}
	if (models->len == 0)
		for (unsigned i = 0; i < source->len; i++)
			g_ptr_array_add(models, g_ptr_array_index(source, i));

	fleet->devices = g_ptr_array_new_with_free_func(device_free);
	for (unsigned i = 0; i < settings->devices; i++)
		g_ptr_array_add(fleet->devices, device_new(settings, models, i));
	g_ptr_array_unref(models);
	return fleet;
}

void
sim_fleet_free(struct sim_fleet **fleet)
{
	if (fleet == NULL || *fleet == NULL)
		return;
	g_ptr_array_unref((*fleet)->devices);
	g_free(*fleet);
	*fleet = NULL;
}
