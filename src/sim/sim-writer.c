/* sim-writer.c: a device's state as Device.xml, in the dialect of its model:
 * FutureSmart (root dev:DeviceService, dd:/log:/ct:/cons:/dusi: prefixes)
 * or legacy XDM (root xdm:Device, xdm:/dd:/count:/bsi: prefixes), laid out
 * like the captured documents in FORMAT.md: counters per media size as
 * CounterGroups of FixedPointNumbers, event logs newest first up to their
 * capacity, supplies with level, state, serial and install date.
 *
 * All text goes through libxml2's xmlTextWriter, which escapes it; job names
 * deliberately contain markup characters and non-ASCII text.  Sizes: about
 * 250 KB FutureSmart, 0.5 MB legacy (its job log), 2-3 MB with
 * detailed error information.  Output is a pure function of the device
 * state, the snapshot time and the options. */
#include "config.h"

#include "sim/sim.h"

#include <libxml/xmlwriter.h>
#include <string.h>

#define NS_DD "http://www.hp.com/schemas/imaging/con/dictionaries/1.0/"

struct w {
	xmlTextWriterPtr w;
	int err;
};

static void
w_raw(struct w *w, const char *s)
{
	if (xmlTextWriterWriteRaw(w->w, BAD_CAST s) < 0)
		w->err = 1;
}

static void
w_start(struct w *w, const char *prefix, const char *name)
{
	if (xmlTextWriterStartElementNS(w->w, BAD_CAST prefix, BAD_CAST name, NULL) < 0)
		w->err = 1;
}

static void
w_end(struct w *w)
{
	if (xmlTextWriterEndElement(w->w) < 0)
		w->err = 1;
}

static void
w_attr(struct w *w, const char *name, const char *value)
{
	if (xmlTextWriterWriteAttribute(w->w, BAD_CAST name, BAD_CAST value) < 0)
		w->err = 1;
}

static void
w_el(struct w *w, const char *prefix, const char *name, const char *text)
{
	if (xmlTextWriterWriteElementNS(w->w, BAD_CAST prefix, BAD_CAST name, NULL,
					BAD_CAST(text != NULL ? text : "")) < 0)
		w->err = 1;
}

static void
w_int(struct w *w, const char *prefix, const char *name, int64_t v)
{
	char buf[32];
	g_snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT, v);
	w_el(w, prefix, name, buf);
}

/* A FutureSmart counter; exp10 > 0 writes v as (v x 10^exp10) x 10^-exp10,
 * the same value with a non-zero exponent, as some firmware does. */
static void
fs_counter(struct w *w, const char *name, int64_t v, int exp10)
{
	int64_t sig = v;
	for (int i = 0; i < exp10; i++)
		sig *= 10;
	w_start(w, "ct", "Counter");
	w_el(w, "dd", "CounterName", name);
	w_start(w, "dd", "FixedPointNumber");
	w_int(w, "dd", "Significand", sig);
	w_int(w, "dd", "Exponent", -exp10);
	w_end(w);
	w_end(w);
}

static char *
local_date(const struct sim_device *dev, int64_t t)
{
	int off = sim_device_offset_min(dev, t);
	GDateTime *dt = g_date_time_new_from_unix_utc(t + (int64_t)off * 60);
	if (dt == NULL)
		return g_strdup("1970-01-01");
	char *s = g_date_time_format(dt, "%Y-%m-%d");
	g_date_time_unref(dt);
	return s;
}

static const char *
marker_color(const char *color)
{
	if (color == NULL)
		return NULL;
	if (strcmp(color, "black") == 0)
		return "Black";
	if (strcmp(color, "cyan") == 0)
		return "Cyan";
	if (strcmp(color, "magenta") == 0)
		return "Magenta";
	if (strcmp(color, "yellow") == 0)
		return "Yellow";
	return color;
}

/* "Detailed error information": a stack and register dump per error event,
 * reproducible from the device seed and the event's sequence number. */
static void
write_detail(struct w *w, const struct sim_device *dev, const struct sim_event *ev,
	     const char *prefix)
{
	static const char *const funcs[] = {
	    "PrintEngine::FeedSheet", "PrintEngine::Registration",
	    "Fuser::TempControl",     "PaperPath::SensorPoll",
	    "Formatter::JobPipe",     "Scheduler::Dispatch",
	    "ImageProc::Rasterize",   "Duplexer::Reverse",
	    "TrayManager::Lift",      "NetStack::SmtpSend",
	    "Storage::Flush",	      "Calibration::Density",
	};
	guint32 seed[3] = {dev->seed, (guint32)ev->seq, (guint32)(ev->seq >> 32)};
	GRand *r = g_rand_new_with_seed_array(seed, 3);
	char buf[160];

	w_start(w, prefix, "DetailedInformation");
	w_raw(w, "\n");
	for (unsigned i = 0; i < 96; i++) {
		g_snprintf(buf, sizeof(buf), "#%02u 0x%08x in %s() at engine/%s.c:%u", i,
			   g_rand_int(r), funcs[g_rand_int_range(r, 0, G_N_ELEMENTS(funcs))],
			   funcs[g_rand_int_range(r, 0, G_N_ELEMENTS(funcs))],
			   (unsigned)g_rand_int_range(r, 10, 4000));
		w_el(w, prefix, "Frame", buf);
		w_raw(w, "\n");
	}
	for (unsigned i = 0; i < 24; i++) {
		g_snprintf(buf, sizeof(buf), "R%02u=0x%08x R%02u=0x%08x", 2 * i, g_rand_int(r),
			   2 * i + 1, g_rand_int(r));
		w_el(w, prefix, "Registers", buf);
		w_raw(w, "\n");
	}
	w_end(w);
	g_rand_free(r);
}

/* ---- FutureSmart -------------------------------------------------------- */

static void
fs_entry(struct w *w, const struct sim_device *dev, const struct sim_event *ev,
	 const struct sim_doc_options *o)
{
	char code[16];
	char *ts = sim_device_format_time(dev, ev->t_ms + o->clock_skew * 1000);

	sim_event_code_string(ev, code);
	w_start(w, "log", "Entry");
	w_int(w, "dd", "SequenceNumber", ev->seq);
	w_el(w, "dd", "EventCode", code);
	w_el(w, "dd", "TimeStamp", ts);
	w_el(w, "dd", "Description", sim_event_description(dev, ev, o->force_korean));
	w_el(w, "log", "EventId", sim_event_id(ev));
	w_raw(w, "\n");
	fs_counter(w, "TotalImpressions", ev->pages, 0);
	w_raw(w, "\n");
	w_start(w, "log", "Payload");
	struct {
		const char *key;
		char value[32];
	} kv[4];
	unsigned n = 0;
	kv[n].key = "FirmwareVersion";
	g_strlcpy(kv[n++].value, dev->model->firmware, sizeof(kv[0].value));
	if (ev->log == 0) {
		kv[n].key = "BootCycle";
		g_snprintf(kv[n++].value, sizeof(kv[0].value), "%08u", ev->boot);
		kv[n].key = "PrintCount";
		g_snprintf(kv[n++].value, sizeof(kv[0].value), "%" G_GINT64_FORMAT, ev->pages);
	}
	if (dev->model->mfp && ev->log == 0) {
		kv[n].key = "ScanCount";
		g_snprintf(kv[n++].value, sizeof(kv[0].value), "%" G_GINT64_FORMAT, ev->scans);
	}
	for (unsigned i = 0; i < n; i++) {
		w_start(w, "log", "KeyValuePair");
		w_el(w, "log", "Key", kv[i].key);
		w_el(w, "log", "ValueString", kv[i].value);
		w_end(w);
	}
	w_end(w);
	if (o->detailed_errors && ev->log == 0) {
		w_raw(w, "\n");
		write_detail(w, dev, ev, "log");
	}
	w_end(w);
	w_raw(w, "\n");
	g_free(ts);
}

static void
fs_logs(struct w *w, const struct sim_device *dev, const struct sim_doc_options *o)
{
	static const char *const types[2] = {"error", "info"};
	w_start(w, "log", "Logs");
	w_raw(w, "\n");
	for (unsigned l = 0; l < 2; l++) {
		const struct sim_ring *ring = &dev->logs[l];
		w_start(w, "log", "Log");
		w_el(w, "log", "Type", types[l]);
		w_int(w, "log", "Capacity", ring->cap);
		w_start(w, "log", "Entries");
		w_raw(w, "\n");
		for (unsigned i = 0; i < sim_ring_len(ring); i++)
			fs_entry(w, dev, sim_ring_get(ring, i), o);
		w_end(w);
		w_end(w);
		w_raw(w, "\n");
	}
	w_end(w);
}

static void
fs_usage(struct w *w, const struct sim_device *dev)
{
	int exp10 = dev->seed % 5 == 0 ? 1 : 0; /* some firmware writes exponent -1 */

	w_start(w, "dusi", "DeviceUsageService");
	w_start(w, "dusi", "PrinterSubunit");
	w_raw(w, "\n");
	w_start(w, "ct", "CounterGroup");
	w_el(w, "dd", "CounterGroupName", "ImpressionsByMediaSizeID");
	w_raw(w, "\n");
	for (unsigned i = 0; i < dev->n_media; i++) {
		int64_t total = dev->mono[i] + dev->color[i];
		if (total == 0)
			continue;
		w_start(w, "ct", "CounterGroup");
		w_el(w, "dd", "MediaSizeID", dev->media_name[i]);
		w_raw(w, "\n");
		if (dev->model->color && dev->color[i] > 0) {
			fs_counter(w, "ColorImpressions", dev->color[i], 0);
			w_raw(w, "\n");
		}
		if (dev->mono[i] > 0) {
			fs_counter(w, "MonochromeImpressions", dev->mono[i], 0);
			w_raw(w, "\n");
		}
		if (dev->blank[i] > 0) {
			fs_counter(w, "BlankSides", dev->blank[i], 0);
			w_raw(w, "\n");
		}
		fs_counter(w, "TotalImpressions", total, 0);
		w_raw(w, "\n");
		w_end(w);
		w_raw(w, "\n");
	}
	w_end(w);
	w_raw(w, "\n");
	w_start(w, "ct", "CounterGroup");
	w_el(w, "dd", "CounterGroupName", "Sheets");
	w_raw(w, "\n");
	if (dev->simplex > 0) {
		fs_counter(w, "SimplexSheets", dev->simplex, exp10);
		w_raw(w, "\n");
	}
	if (dev->duplex > 0) {
		fs_counter(w, "DuplexSheets", dev->duplex, exp10);
		w_raw(w, "\n");
	}
	if (dev->jams > 0) {
		fs_counter(w, "JamEvents", dev->jams, 0);
		w_raw(w, "\n");
	}
	w_end(w);
	w_end(w);
	w_raw(w, "\n");
	if (dev->model->mfp) {
		w_start(w, "dusi", "ScannerEngineSubunit");
		if (dev->adf > 0)
			fs_counter(w, "AdfImages", dev->adf, 0);
		if (dev->flatbed > 0)
			fs_counter(w, "FlatbedImages", dev->flatbed, 0);
		w_end(w);
		w_raw(w, "\n");
		w_start(w, "dusi", "CopyApplicationSubunit");
		if (dev->copies > 0)
			fs_counter(w, "TotalImpressions", dev->copies, 0);
		w_end(w);
		w_raw(w, "\n");
		if (dev->model->fax) {
			w_start(w, "dusi", "FaxApplicationSubunit");
			if (dev->faxes > 0)
				fs_counter(w, "TotalImpressions", dev->faxes, 0);
			w_end(w);
			w_raw(w, "\n");
		}
	}
	w_end(w);
}

static void
fs_consumables(struct w *w, const struct sim_device *dev)
{
	w_start(w, "cons", "Consumables");
	w_raw(w, "\n");
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		const struct sim_supply *s = &dev->supplies[i];
		char *date = local_date(dev, s->installed);
		w_start(w, "cons", "ConsumableInfo");
		w_raw(w, "\n");
		if (s->m->label != NULL) {
			w_el(w, "dd", "ConsumableLabelCode", s->m->label);
			w_el(w, "dd", "MarkerColor", marker_color(s->m->color));
			w_raw(w, "\n");
		}
		w_el(w, "dd", "ConsumableTypeEnum", s->m->type);
		w_el(w, "dd", "ProductNumber", s->m->product);
		w_raw(w, "\n");
		if (s->serial[0] != '\0') {
			w_el(w, "dd", "SerialNumber", s->serial);
			w_raw(w, "\n");
		}
		w_start(w, "dd", "ConsumableLifeState");
		w_el(w, "dd", "ConsumableState", sim_supply_state_name(s->state));
		w_el(w, "dd", "Brand", s->clone ? "clone" : "HP");
		w_end(w);
		w_raw(w, "\n");
		w_int(w, "dd", "ConsumablePercentageLevelRemaining", sim_supply_level(s));
		w_raw(w, "\n");
		w_int(w, "dd", "ConsumableLowThreshold", s->low_threshold);
		w_raw(w, "\n");
		w_start(w, "dd", "Installation");
		w_el(w, "dd", "Date", date);
		w_end(w);
		w_raw(w, "\n");
		w_int(w, "dd", "TotalImpressions", s->pages);
		w_end(w);
		w_raw(w, "\n");
		g_free(date);
	}
	w_end(w);
}

static void
write_futuresmart(struct w *w, const struct sim_device *dev, int64_t taken_ms,
		  const struct sim_doc_options *o)
{
	const struct sim_model *m = dev->model;
	char *ts = sim_device_format_time(dev, taken_ms + o->clock_skew * 1000);

	w_start(w, "dev", "DeviceService");
	w_attr(w, "xmlns:dev", "http://www.hp.com/schemas/imaging/con/ledm/devicesvc/2011/01/12");
	w_attr(w, "xmlns:config",
	       "http://www.hp.com/schemas/imaging/con/ledm/sysconfig/2009/04/01");
	w_attr(w, "xmlns:print", "http://www.hp.com/schemas/imaging/con/ledm/printsvc/2009/04/01");
	w_attr(w, "xmlns:dusi", "http://www.hp.com/schemas/imaging/con/ledm/usage/2008/09/18");
	w_attr(w, "xmlns:log", "http://www.hp.com/schemas/imaging/con/ledm/eventlog/2011/03/04");
	w_attr(w, "xmlns:ct", "http://www.hp.com/schemas/imaging/con/counter/2006/01/13");
	w_attr(w, "xmlns:cons",
	       "http://www.hp.com/schemas/imaging/con/ledm/consumables/2009/02/19");
	w_attr(w, "xmlns:dd", NS_DD);
	w_raw(w, "\n");
	w_start(w, "dev", "TicketMetaData");
	w_el(w, "dd", "TimeStamp", ts);
	w_end(w);
	w_raw(w, "\n");
	w_start(w, "config", "SystemConfigurationService");
	w_start(w, "config", "DeviceIdentification");
	w_raw(w, "\n");
	w_el(w, "dd", "MakeAndModel", m->name);
	w_el(w, "dd", "Description", m->name);
	w_raw(w, "\n");
	w_el(w, "dd", "ProductNumber", m->product_number);
	w_el(w, "dd", "SerialNumber", dev->serial);
	w_raw(w, "\n");
	w_el(w, "dd", "DeviceID", dev->uuid);
	w_start(w, "dd", "Version");
	w_el(w, "dd", "Revision", m->firmware);
	w_el(w, "dd", "Date", m->firmware_date);
	w_end(w);
	w_raw(w, "\n");
	w_end(w);
	w_start(w, "config", "DeviceInformation");
	w_el(w, "dd", "ServiceID", "23101");
	w_raw(w, "\n");
	w_el(w, "dd", "HostName", dev->hostname);
	w_el(w, "dd", "IPAddress", dev->ip);
	w_el(w, "dd", "HardwareAddress", dev->mac);
	w_raw(w, "\n");
	w_el(w, "dd", "Locale", dev->site->locale);
	w_end(w);
	w_raw(w, "\n");
	fs_logs(w, dev, o);
	w_end(w);
	w_start(w, "print", "PrintService");
	w_end(w);
	w_raw(w, "\n");
	fs_usage(w, dev);
	fs_consumables(w, dev);
	w_end(w);
	w_raw(w, "\n");
	g_free(ts);
}

/* ---- legacy ------------------------------------------------------------- */

static char *
legacy_id(const struct sim_device *dev, const char *id)
{
	if (!dev->model->legacy_iprefix)
		return g_strdup(id);
	return g_strdup_printf("i%c%s", g_ascii_toupper(id[0]), id + 1);
}

static void
legacy_value(struct w *w, const char *name, int64_t v, const char *mode, const char *scale)
{
	w_start(w, "dd", name);
	w_int(w, "dd", "ValueFloat", v);
	if (scale != NULL)
		w_el(w, "dd", "CounterScale", scale);
	if (mode != NULL)
		w_el(w, "dd", "ChromaticMode", mode);
	w_end(w);
	w_raw(w, "\n");
}

static const char *const job_words_en[] = {
    "Quarterly report", "Invoice",
    "Meeting notes",	"Boarding pass",
    "Purchase order",	"Angebot <Entwurf> & Notizen",
    "Contract_final",	"Slides",
    "Timesheet",	"Label sheet",
    "Budget \"2025\"",	"Résumé",
    "Shipping list",	"Memo",
    "Floor plan",	"Payroll",
    "Release notes",	"Survey results",
    "Agenda",		"Brochure",
};
static const char *const job_words_ko[] = {
    "회의록",	 "견적서",	"주간 보고서", "출장 신청서", "계약서 <최종>",
    "발표 자료", "급여 명세서", "거래 명세서", "업무 일지",   "안내문",
};
static const char *const job_suffix[] = {"",	   " (2)",  " v2",    " - copy",  " final",
					 " draft", " 2025", " rev B", " & annex", " [scan]"};
static const char *const job_ext[] = {".pdf", ".docx", ".xlsx", ".pptx", ".txt"};
static const char *const job_apps[] = {
    "Microsoft Word", "Microsoft Excel", "Adobe Acrobat", "Microsoft PowerPoint",
    "Google Chrome",  "Notepad",	 "SAP GUI",	  "Outlook",
};
static const char *const paper_types[] = {"plain",	"plain", "plain", "recycled",
					  "letterhead", "plain", "bond",  "light"};
static const char *const users_en[] = {"jsmith",  "mgarcia", "lchen",	"apatel",
				       "okeller", "rdubois", "tnguyen", "bwilson"};
static const char *const users_ko[] = {"kim.jiwoo", "lee.minho", "park.soyeon", "choi.hyun"};

static void
legacy_jobs(struct w *w, const struct sim_device *dev, bool korean)
{
	char name[160];
	w_start(w, "xdm", "Log");
	w_attr(w, "idRef", "colorUsageJobLog");
	w_raw(w, "\n");
	for (unsigned i = 0; i < sim_ring_len(&dev->jobs); i++) {
		const struct sim_job *job = sim_ring_get(&dev->jobs, i);
		const char *word;
		const char *user;
		if (korean && job->name % 3 != 0) {
			word = job_words_ko[job->name % G_N_ELEMENTS(job_words_ko)];
			user = users_ko[job->user % G_N_ELEMENTS(users_ko)];
		} else {
			word = job_words_en[job->name % G_N_ELEMENTS(job_words_en)];
			user = users_en[job->user % G_N_ELEMENTS(users_en)];
		}
		g_snprintf(name, sizeof(name), "%s%s%s", word,
			   job_suffix[(job->name / 20) % G_N_ELEMENTS(job_suffix)],
			   job_ext[(job->name / 200) % G_N_ELEMENTS(job_ext)]);
		char *ts = sim_device_format_time(dev, job->t * 1000);
		w_start(w, "dd", "JobEntry");
		w_int(w, "dd", "JobID", job->id);
		w_el(w, "dd", "JobName", name);
		w_el(w, "dd", "UserName", user);
		w_el(w, "dd", "ApplicationName", job_apps[job->app % G_N_ELEMENTS(job_apps)]);
		w_raw(w, "\n");
		w_el(w, "dd", "TimeStamp", ts);
		w_el(w, "dd", "MediaSizeName",
		     job->media < dev->n_media ? dev->media_name[job->media]
					       : "na_letter_8.5x11in");
		w_int(w, "dd", "ColorPages", job->color);
		w_int(w, "dd", "MonochromePages", job->mono);
		w_el(w, "dd", "Duplex", job->duplex ? "true" : "false");
		w_int(w, "dd", "Copies", 1 + (job->name % 7 == 0 ? job->user % 3 : 0));
		w_el(w, "dd", "PaperType", paper_types[job->app % G_N_ELEMENTS(paper_types)]);
		w_end(w);
		w_raw(w, "\n");
		g_free(ts);
	}
	w_end(w);
	w_raw(w, "\n");
}

static void
write_legacy(struct w *w, const struct sim_device *dev, int64_t taken_ms,
	     const struct sim_doc_options *o)
{
	const struct sim_model *m = dev->model;
	char *ts = sim_device_format_time(dev, taken_ms + o->clock_skew * 1000);
	char *sys = legacy_id(dev, "system");
	char code[16], buf[96];
	bool korean = o->force_korean || g_str_has_prefix(dev->site->locale, "ko");

	w_start(w, "xdm", "Device");
	w_attr(w, "xmlns:xdm", "http://www.hp.com/schemas/imaging/con/xdm/1.1/");
	w_attr(w, "xmlns:dd", NS_DD);
	w_attr(w, "xmlns:count", "http://www.hp.com/schemas/imaging/con/counter/2006/01/13");
	w_attr(w, "xmlns:bsi", "http://www.hp.com/schemas/imaging/con/bsi/2003/08/21");
	w_raw(w, "\n");
	w_el(w, "dd", "TimeStamp", ts);
	w_raw(w, "\n");

	w_start(w, "xdm", "Information");
	w_start(w, "xdm", "Component");
	w_attr(w, "id", sys);
	w_attr(w, "componentType", "system");
	w_raw(w, "\n");
	w_el(w, "dd", "MakeAndModel", m->name);
	w_el(w, "dd", "ProductNumber", m->product_number);
	w_el(w, "dd", "SerialNumber", dev->serial);
	w_raw(w, "\n");
	w_start(w, "dd", "Version");
	w_el(w, "dd", "Revision", m->firmware);
	w_el(w, "dd", "Date", m->firmware_date);
	w_end(w);
	w_raw(w, "\n");
	w_el(w, "dd", "HostName", dev->hostname);
	w_end(w);
	w_start(w, "xdm", "ComponentGroup");
	w_raw(w, "\n");
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		const struct sim_supply *s = &dev->supplies[i];
		char *id = legacy_id(dev, s->m->legacy_id);
		char *cap = g_strdup_printf("%sSysCapacity", id);
		char *date = local_date(dev, s->installed);
		w_start(w, "xdm", "Component");
		w_attr(w, "id", id);
		w_attr(w, "componentType", "consumable");
		w_el(w, "dd", "Description", s->m->description);
		w_el(w, "dd", "ProductNumber", s->m->product);
		if (s->serial[0] != '\0')
			w_el(w, "dd", "SerialNumber", s->serial);
		w_start(w, "dd", "Installation");
		w_el(w, "dd", "Date", date);
		w_end(w);
		w_start(w, "dd", "Capacity");
		w_attr(w, "id", cap);
		w_el(w, "dd", "MaxCapacity", "100");
		w_end(w);
		w_end(w);
		w_raw(w, "\n");
		g_free(id);
		g_free(cap);
		g_free(date);
	}
	w_end(w);
	w_end(w);
	w_raw(w, "\n");

	w_start(w, "xdm", "Status");
	w_start(w, "xdm", "StatusGroup");
	w_raw(w, "\n");
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		char *id = legacy_id(dev, dev->supplies[i].m->legacy_id);
		g_snprintf(buf, sizeof(buf), "%sSysCapacity", id);
		w_start(w, "xdm", "StatusCollection");
		w_attr(w, "idRef", buf);
		w_int(w, "dd", "Level", sim_supply_level(&dev->supplies[i]));
		w_end(w);
		w_raw(w, "\n");
		g_free(id);
	}
	w_end(w);
	w_end(w);
	w_raw(w, "\n");

	w_start(w, "xdm", "Data");
	w_start(w, "xdm", "DataItem");
	w_attr(w, "idRef", sys);
	w_raw(w, "\n");
	legacy_value(w, "TotalImpressions", sim_device_total_impressions(dev), NULL, "normalized");
	if (m->color)
		legacy_value(w, "TotalImpressions", sim_device_color_impressions(dev), "color",
			     NULL);
	legacy_value(w, "TotalImpressions", sim_device_mono_impressions(dev), "monochrome", NULL);
	if (dev->duplex > 0)
		legacy_value(w, "DuplexSheets", dev->duplex, NULL, NULL);
	if (dev->simplex > 0)
		legacy_value(w, "SimplexSheets", dev->simplex, NULL, NULL);
	if (dev->jams > 0)
		legacy_value(w, "JamEvents", dev->jams, NULL, NULL);
	if (m->mfp) {
		if (dev->adf > 0)
			legacy_value(w, "AdfImages", dev->adf, NULL, NULL);
		if (dev->flatbed > 0)
			legacy_value(w, "FlatbedImages", dev->flatbed, NULL, NULL);
	}
	w_end(w);
	w_raw(w, "\n");
	/* Usage by media size, as the legacy usage page shows it. */
	w_start(w, "xdm", "DataItem");
	w_attr(w, "idRef", "mediaUsage");
	w_raw(w, "\n");
	for (unsigned i = 0; i < dev->n_media; i++) {
		if (dev->mono[i] + dev->color[i] == 0)
			continue;
		w_start(w, "dd", "MediaSizeUsage");
		w_el(w, "dd", "MediaSizeName", dev->media_name[i]);
		w_int(w, "dd", "Impressions", dev->mono[i] + dev->color[i]);
		if (m->color)
			w_int(w, "dd", "ColorImpressions", dev->color[i]);
		w_end(w);
		w_raw(w, "\n");
	}
	w_end(w);
	w_end(w);
	w_raw(w, "\n");

	w_start(w, "xdm", "Logs");
	w_start(w, "xdm", "Log");
	w_attr(w, "idRef", sys);
	w_raw(w, "\n");
	const struct sim_ring *ring = &dev->logs[0];
	for (unsigned i = 0; i < sim_ring_len(ring); i++) {
		const struct sim_event *ev = sim_ring_get(ring, i);
		char *ets = sim_device_format_time(dev, ev->t_ms + o->clock_skew * 1000);
		sim_event_code_string(ev, code);
		w_start(w, "dd", "Event");
		w_int(w, "dd", "SequenceNumber", ev->seq);
		w_el(w, "dd", "EventCode", code);
		w_el(w, "dd", "Description", sim_event_description(dev, ev, o->force_korean));
		w_el(w, "dd", "TimeStamp", ets);
		w_start(w, "count", "Counter");
		w_int(w, "dd", "ValueFloat", ev->pages);
		w_end(w);
		if (o->detailed_errors) {
			w_raw(w, "\n");
			write_detail(w, dev, ev, "dd");
		}
		w_end(w);
		w_raw(w, "\n");
		g_free(ets);
	}
	w_end(w);
	w_raw(w, "\n");
	legacy_jobs(w, dev, korean);
	w_end(w);
	w_raw(w, "\n");

	w_start(w, "bsi", "BSIService");
	g_snprintf(buf, sizeof(buf), "http://%s/hp/device/this.LCDispatcher", dev->ip);
	w_el(w, "bsi", "LocationURI", buf);
	w_end(w);
	w_raw(w, "\n");
	w_end(w);
	w_raw(w, "\n");
	g_free(sys);
	g_free(ts);
}

GBytes *
sim_device_write_xml(const struct sim_device *dev, int64_t taken_ms,
		     const struct sim_doc_options *options)
{
	struct sim_doc_options defaults = {0};
	const struct sim_doc_options *o = options != NULL ? options : &defaults;
	xmlBufferPtr buf;
	struct w w = {NULL, 0};
	GBytes *out = NULL;

	if (dev->model->tmpl != NULL)
		return sim_template_write(dev, taken_ms, o);

	buf = xmlBufferCreateSize(dev->model->dialect == SNAPSHOT_DIALECT_LEGACY ? 700000 : 300000);
	if (buf == NULL)
		return NULL;
	w.w = xmlNewTextWriterMemory(buf, 0);
	if (w.w == NULL) {
		xmlBufferFree(buf);
		return NULL;
	}
	if (xmlTextWriterStartDocument(w.w, "1.0", "UTF-8", NULL) < 0)
		w.err = 1;
	if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY) {
		write_legacy(&w, dev, taken_ms, o);
	} else {
		if (xmlTextWriterWriteComment(w.w,
					      BAD_CAST " THIS DATA SUBJECT TO DISCLAIMER(S) "
						       "INCLUDED WITH THE PRODUCT OF ORIGIN. ") < 0)
			w.err = 1;
		w_raw(&w, "\n");
		write_futuresmart(&w, dev, taken_ms, o);
	}
	if (xmlTextWriterEndDocument(w.w) < 0)
		w.err = 1;
	xmlFreeTextWriter(w.w);
	if (!w.err) {
		/* Drop the writer's final newline after our own. */
		size_t len = (size_t)xmlBufferLength(buf);
		const char *content = (const char *)xmlBufferContent(buf);
		while (len > 1 && content[len - 1] == '\n' && content[len - 2] == '\n')
			len--;
		out = g_bytes_new(content, len);
	}
	xmlBufferFree(buf);
	return out;
}
