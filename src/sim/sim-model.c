/* sim-model.c: the simulator's knowledge of printers: the built-in model
 * catalogue (FutureSmart and legacy, mono and colour, printers and MFPs),
 * the sites a fleet spreads over (locale, time zone, paper region), and the
 * event table with localized descriptions (en, de, fr, ja, ko).
 *
 * Product and supply numbers are those of real HP models of each generation;
 * yields are nominal page yields.  Static data only; no input is read here. */
#include "config.h"

#include "sim/sim.h"

#include <string.h>

struct supply_def {
	const char *label, *color, *type, *product, *legacy_id, *description;
	int64_t yield;
};

struct model_def {
	const char *product_number, *name;
	enum snapshot_dialect dialect;
	bool color, mfp, fax, a3, iprefix;
	const char *serial_prefix, *firmware, *firmware_date;
	double ppd_min, ppd_max;
	struct supply_def supplies[SIM_SUPPLY_MAX];
};

/* clang-format off */
#define K_(p, y) { "K", "black", "tonerCartridge", p, "blackToner", "Black Cartridge", y }
#define C_(p, y) { "C", "cyan", "tonerCartridge", p, "cyanToner", "Cyan Cartridge", y }
#define M_(p, y) { "M", "magenta", "tonerCartridge", p, "magentaToner", "Magenta Cartridge", y }
#define Y_(p, y) { "Y", "yellow", "tonerCartridge", p, "yellowToner", "Yellow Cartridge", y }
#define KIT_(p, y) { NULL, NULL, "maintenanceKit", p, "maintenanceKit", "Maintenance Kit", y }
#define DRUM_(p, y) { NULL, NULL, "imageDrum", p, "imagingDrum", "Imaging Drum", y }

static const struct model_def model_defs[] = {
	/* FutureSmart */
	{ "J8J70A", "HP LaserJet Enterprise MFP M631", SNAPSHOT_DIALECT_FUTURESMART,
	  false, true, true, false, false, "PHB", "2506116_048763", "2025-02-11", 250, 1400,
	  { K_("CF237A", 11000), KIT_("J8J87A", 225000) } },
	{ "K0Q14A", "HP LaserJet Enterprise M607", SNAPSHOT_DIALECT_FUTURESMART,
	  false, false, false, false, false, "PHB", "2506116_048763", "2025-02-11", 200, 1200,
	  { K_("CF237A", 11000), KIT_("J8J87A", 225000) } },
	{ "7ZU86A", "HP Color LaserJet Enterprise MFP M578", SNAPSHOT_DIALECT_FUTURESMART,
	  true, true, false, false, false, "CNBX", "2302243_045526", "2023-06-01", 80, 600,
	  { K_("W2120A", 5500), C_("W2121A", 4500), M_("W2123A", 4500), Y_("W2122A", 4500),
	    KIT_("3WT90A", 150000) } },
	{ "J7Z99A", "HP Color LaserJet Enterprise M652", SNAPSHOT_DIALECT_FUTURESMART,
	  true, false, false, false, false, "JPBC", "2412187_762645", "2024-12-18", 100, 700,
	  { K_("CF450A", 12500), C_("CF451A", 10500), M_("CF453A", 10500), Y_("CF452A", 10500),
	    KIT_("P1B92A", 150000) } },
	{ "1PV64A", "HP LaserJet Enterprise MFP M528", SNAPSHOT_DIALECT_FUTURESMART,
	  false, true, true, false, false, "PHB", "2412187_762645", "2024-12-18", 100, 800,
	  { K_("CF289A", 5000), KIT_("L0H24A", 225000) } },
	{ "CF367A", "HP LaserJet Enterprise flow MFP M830", SNAPSHOT_DIALECT_FUTURESMART,
	  false, true, true, true, false, "CNCK", "2302243_045526", "2023-06-01", 500, 3000,
	  { K_("CF325X", 34500), KIT_("C2H57A", 200000) } },
	{ "A2W75A", "HP Color LaserJet Enterprise flow MFP M880", SNAPSHOT_DIALECT_FUTURESMART,
	  true, true, false, true, false, "CNCK", "2506116_048763", "2025-02-11", 300, 2000,
	  { K_("CF310A", 29000), C_("CF311A", 31500), M_("CF313A", 31500), Y_("CF312A", 31500),
	    DRUM_("CF358A", 150000), KIT_("C1N58A", 200000) } },
	{ "CD646A", "HP Color LaserJet CM4540 MFP", SNAPSHOT_DIALECT_FUTURESMART,
	  true, true, true, false, false, "CNBXD", "2309025_441427", "2019-08-14", 100, 900,
	  { K_("CE260A", 8500), C_("CE261A", 11000), M_("CE263A", 11000), Y_("CE262A", 11000),
	    KIT_("CE246A", 150000) } },
	/* Legacy EWS */
	{ "Q3713A", "HP Color LaserJet 5550", SNAPSHOT_DIALECT_LEGACY,
	  true, false, false, true, false, "JPRC", "07.094.2", "2008-09-26", 80, 500,
	  { K_("C9730A", 13000), C_("C9731A", 12000), M_("C9733A", 12000), Y_("C9732A", 12000) } },
	{ "Q5401A", "HP LaserJet 4250n", SNAPSHOT_DIALECT_LEGACY,
	  false, false, false, false, false, "CNRX", "08.170.2", "2009-03-11", 150, 1000,
	  { K_("Q5942A", 10000), KIT_("Q5421A", 225000) } },
	{ "CB503A", "HP Color LaserJet CP4005n", SNAPSHOT_DIALECT_LEGACY,
	  true, false, false, false, false, "JPRS", "46.230.6", "2010-05-20", 80, 600,
	  { K_("CB400A", 7500), C_("CB401A", 7500), M_("CB403A", 7500), Y_("CB402A", 7500) } },
	{ "Q7829A", "HP LaserJet M5035 MFP", SNAPSHOT_DIALECT_LEGACY,
	  false, true, true, true, false, "SG73CB", "48.281.7", "2011-06-08", 300, 1800,
	  { K_("Q7570A", 15000), KIT_("Q7833A", 225000) } },
	{ "Q3939A", "HP Color LaserJet CM6040 MFP", SNAPSHOT_DIALECT_LEGACY,
	  true, true, true, true, true, "JPBC", "51.200.8", "2011-11-02", 300, 1600,
	  { K_("CB390A", 19500), C_("CB381A", 21000), M_("CB383A", 21000), Y_("CB382A", 21000) } },
	{ "Q7492A", "HP Color LaserJet 4700n", SNAPSHOT_DIALECT_LEGACY,
	  true, false, false, false, true, "JPDC", "46.290.1", "2009-01-19", 100, 800,
	  { K_("Q5950A", 11000), C_("Q5951A", 10000), M_("Q5953A", 10000), Y_("Q5952A", 10000),
	    KIT_("Q7502A", 150000) } },
};

static const struct sim_site sites[] = {
	{ "en-US", "America/New_York", -300, true, "10.20" },
	{ "en-US", "America/Chicago", -360, true, "10.21" },
	{ "en-US", "America/Denver", -420, true, "10.22" },
	{ "en-US", "America/Los_Angeles", -480, true, "10.23" },
	{ "en-GB", "Europe/London", 0, false, "10.40" },
	{ "de-DE", "Europe/Berlin", 60, false, "10.41" },
	{ "fr-FR", "Europe/Paris", 60, false, "10.42" },
	{ "ja-JP", "Asia/Tokyo", 540, false, "10.60" },
	{ "ko-KR", "Asia/Seoul", 540, false, "10.61" },
	{ "en-IN", "Asia/Kolkata", 330, false, "10.62" },
	{ "en-AU", "Australia/Adelaide", 570, false, "10.63" },
};

/* clang-format on */

unsigned
sim_site_count(void)
{
	return G_N_ELEMENTS(sites);
}

const struct sim_site *
sim_site_get(unsigned i)
{
	return &sites[i % G_N_ELEMENTS(sites)];
}

/* clang-format off */
static const struct sim_event_kind event_kinds[SIM_EV_COUNT] = {
	[SIM_EV_JAM_TRAY2] = { "13.B2.D1", "cELJamTray2", 0,
		{ "Jam in tray 2", "Papierstau in Fach 2", "Bourrage dans le bac 2",
		  "トレイ2で紙詰まり", "용지함 2 용지 걸림" } },
	[SIM_EV_JAM_TRAY3] = { "13.B3.D1", "cELJamTray3", 0,
		{ "Jam in tray 3", "Papierstau in Fach 3", "Bourrage dans le bac 3",
		  "トレイ3で紙詰まり", "용지함 3 용지 걸림" } },
	[SIM_EV_JAM_FUSER] = { "13.A3.D3", "cELJamFuser", 0,
		{ "Jam in fuser area", "Papierstau in der Fixiereinheit",
		  "Bourrage dans la zone de l'unité de fusion", "定着部で紙詰まり",
		  "퓨저 영역 용지 걸림" } },
	[SIM_EV_JAM_OUTPUT] = { "13.E1.D3", "cELJamOutputBin", 0,
		{ "Jam in output bin", "Papierstau im Ausgabefach", "Bourrage dans le bac de sortie",
		  "排紙ビンで紙詰まり", "출력 용지함 용지 걸림" } },
	[SIM_EV_JAM_DUPLEX] = { "13.D3.DB", "cELJamDuplexer", 0,
		{ "Jam in duplexer", "Papierstau in der Duplexeinheit",
		  "Bourrage dans l'unité recto verso", "両面印刷ユニットで紙詰まり",
		  "양면 인쇄 장치 용지 걸림" } },
	[SIM_EV_ADF_MISPICK] = { "31.13.02", "cELAdfMispick", 0,
		{ "Document feeder mispick", "Fehleinzug im Vorlageneinzug",
		  "Erreur d'entraînement du chargeur de documents", "原稿フィーダーの給紙ミス",
		  "문서 공급기 급지 오류" } },
	[SIM_EV_FW_ERROR] = { "49.38.07", "cELFirmwareError", 0,
		{ "Firmware error, restart", "Firmwarefehler, Neustart",
		  "Erreur de micrologiciel, redémarrage", "ファームウェアエラー、再起動",
		  "펌웨어 오류, 다시 시작" } },
	[SIM_EV_FUSER_ERROR] = { "50.7F.00", "cELFuserError", 0,
		{ "Fuser error", "Fehler der Fixiereinheit", "Erreur de l'unité de fusion",
		  "定着器エラー", "퓨저 오류" } },
	[SIM_EV_SCANNER_ERROR] = { "30.01.41", "cELScannerError", 0,
		{ "Scanner error", "Scannerfehler", "Erreur du scanner", "スキャナーエラー",
		  "스캐너 오류" } },
	[SIM_EV_WASTE_FULL] = { "17.00.00", "cELWasteTonerFull", 0,
		{ "Toner collection unit full", "Tonerauffangbehälter voll",
		  "Unité de récupération du toner pleine", "トナー回収ユニットがいっぱい",
		  "토너 수집 장치 가득 참" } },
	[SIM_EV_SIZE_MISMATCH] = { "41.03.A2", "cELUnexpectedSizeTray2", 0,
		{ "Unexpected paper size in tray 2", "Unerwartetes Papierformat in Fach 2",
		  "Format de papier inattendu dans le bac 2", "トレイ2の用紙サイズが不一致",
		  "용지함 2 예상치 않은 용지 크기" } },
	[SIM_EV_LDAP] = { "44.A0.4B", "cELLDAPInvalidCredentials", 1,
		{ "LDAP credentials invalid", "LDAP-Anmeldedaten ungültig",
		  "Identifiants LDAP non valides", "LDAP資格情報が無効",
		  "LDAP 자격 증명이 잘못됨" } },
	[SIM_EV_EMAIL_FAIL] = { "44.03.0D", "cELEmailSendFailed", 1,
		{ "Unable to send email: SMTP server not reachable",
		  "E-Mail kann nicht gesendet werden: SMTP-Server nicht erreichbar",
		  "Impossible d'envoyer le courrier : serveur SMTP inaccessible",
		  "電子メールを送信できません: SMTPサーバーに接続できません",
		  "이메일을 보낼 수 없음: SMTP 서버에 연결할 수 없음" } },
	[SIM_EV_USED_SUPPLY] = { "10.00.33", "cELUsedSupplyInUse", 1,
		{ "Used supply in use", "Gebrauchtes Verbrauchsmaterial in Verwendung",
		  "Consommable usagé en cours d'utilisation", "使用済みサプライを使用中",
		  "사용된 소모품 사용 중" } },
	[SIM_EV_SUPPLY_LOW] = { "10.00.60", "cELSupplyLow", 1,
		{ "%s low", "%s niedrig", "%s bas", "%s残量少", "%s 부족" } },
	[SIM_EV_SUPPLY_OUT] = { "10.00.70", "cELSupplyVeryLow", 0,
		{ "%s very low", "%s sehr niedrig", "%s très bas", "%s残量極少", "%s 매우 부족" } },
	[SIM_EV_SUPPLY_REPLACED] = { "10.00.00", "cELSupplyReplaced", 1,
		{ "%s replaced", "%s ersetzt", "%s remplacé", "%s交換済み", "%s 교체됨" } },
};

/* clang-format on */

const struct sim_event_kind *
sim_event_kind(unsigned code)
{
	if (code >= SIM_EV_COUNT)
		code = SIM_EV_FW_ERROR;
	return &event_kinds[code];
}

void
sim_event_code_string(const struct sim_event *ev, char buf[16])
{
	const struct sim_event_kind *kind = sim_event_kind(ev->code);
	if (ev->supply >= 0 && (ev->code == SIM_EV_SUPPLY_LOW || ev->code == SIM_EV_SUPPLY_OUT ||
				ev->code == SIM_EV_SUPPLY_REPLACED)) {
		const char *tail = ev->code == SIM_EV_SUPPLY_LOW   ? "60"
				   : ev->code == SIM_EV_SUPPLY_OUT ? "70"
								   : "00";
		g_snprintf(buf, 16, "10.%02X.%s", (unsigned)ev->supply, tail);
		return;
	}
	g_strlcpy(buf, kind->code, 16);
}

const char *
sim_event_id(const struct sim_event *ev)
{
	return sim_event_kind(ev->code)->id;
}

static unsigned
locale_index(const char *locale)
{
	if (g_str_has_prefix(locale, "de"))
		return 1;
	if (g_str_has_prefix(locale, "fr"))
		return 2;
	if (g_str_has_prefix(locale, "ja"))
		return 3;
	if (g_str_has_prefix(locale, "ko"))
		return 4;
	return 0;
}

const char *
sim_event_description(const struct sim_device *dev, const struct sim_event *ev, bool force_korean)
{
	/* Supply events carry the supply's name; they are formatted into a
	 * small per-thread cache so callers get a stable const string. */
	static GPrivate cache = G_PRIVATE_INIT(g_free);
	const struct sim_event_kind *kind = sim_event_kind(ev->code);
	unsigned li = force_korean ? 4 : locale_index(dev->site->locale);
	const char *text = kind->text[li];

	if (strstr(text, "%s") == NULL)
		return text;
	const char *what = "Supply";
	if (ev->supply >= 0 && (unsigned)ev->supply < dev->n_supplies)
		what = dev->supplies[ev->supply].m->description;
	const char *pos = strstr(text, "%s");
	char *s = g_strdup_printf("%.*s%s%s", (int)(pos - text), text, what, pos + 2);
	g_private_replace(&cache, s);
	return s;
}

/* ---- the catalogue ---------------------------------------------------- */

static struct sim_supply_model *
supply_model_new(const struct supply_def *d)
{
	struct sim_supply_model *m = g_new0(struct sim_supply_model, 1);
	m->label = g_strdup(d->label);
	m->color = g_strdup(d->color);
	m->type = g_strdup(d->type);
	m->product = g_strdup(d->product);
	m->legacy_id = g_strdup(d->legacy_id);
	m->description = g_strdup(d->description);
	m->yield = d->yield;
	return m;
}

void
sim_supply_model_free(gpointer p)
{
	struct sim_supply_model *m = p;
	if (m == NULL)
		return;
	g_free(m->label);
	g_free(m->color);
	g_free(m->type);
	g_free(m->product);
	g_free(m->legacy_id);
	g_free(m->description);
	g_free(m);
}

static struct sim_model *
model_new(const struct model_def *d)
{
	struct sim_model *m = g_new0(struct sim_model, 1);
	m->product_number = g_strdup(d->product_number);
	m->name = g_strdup(d->name);
	m->dialect = d->dialect;
	m->color = d->color;
	m->mfp = d->mfp;
	m->fax = d->fax;
	m->a3 = d->a3;
	m->legacy_iprefix = d->iprefix;
	m->serial_prefix = g_strdup(d->serial_prefix);
	m->firmware = g_strdup(d->firmware);
	m->firmware_date = g_strdup(d->firmware_date);
	m->ppd_min = d->ppd_min;
	m->ppd_max = d->ppd_max;
	m->supplies = g_ptr_array_new_with_free_func(sim_supply_model_free);
	for (unsigned i = 0; i < SIM_SUPPLY_MAX && d->supplies[i].type != NULL; i++)
		g_ptr_array_add(m->supplies, supply_model_new(&d->supplies[i]));
	return m;
}

void
sim_model_free(struct sim_model **model)
{
	struct sim_model *m;
	if (model == NULL || *model == NULL)
		return;
	m = *model;
	g_free(m->product_number);
	g_free(m->name);
	g_free(m->serial_prefix);
	g_free(m->firmware);
	g_free(m->firmware_date);
	if (m->supplies != NULL)
		g_ptr_array_unref(m->supplies);
	if (m->media != NULL)
		g_ptr_array_unref(m->media);
	sim_template_free(&m->tmpl);
	g_free(m);
	*model = NULL;
}

const GPtrArray *
sim_model_catalogue(void)
{
	static gsize once = 0;
	static GPtrArray *catalogue;

	if (g_once_init_enter(&once)) {
		GPtrArray *a = g_ptr_array_new();
		for (unsigned i = 0; i < G_N_ELEMENTS(model_defs); i++)
			g_ptr_array_add(a, model_new(&model_defs[i]));
		catalogue = a;
		g_once_init_leave(&once, 1);
	}
	return catalogue;
}
