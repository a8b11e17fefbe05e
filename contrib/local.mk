# contrib: running snapkeep for real.  What make install puts beside the
# programs (man pages, schema and web assets come from their folders'
# fragments), and the tests that install it, run it under systemd's rules
# and exercise the recipes with real Postfix, sqlite3 and monitoring files.
#
#   $(sysconfdir)/snapkeep/snapkeep.conf.sample   the annotated sample; an
#       admin's snapkeep.conf beside it is never written
#   $(prefix)/lib/systemd/system/snapkeepd.service   generated from
#       snapkeepd.service.in with the configured sbindir and sysconfdir
#       (systemd reads /usr/lib and /usr/local/lib; override with
#       make install systemdsystemunitdir=/lib/systemd/system)
#   $(prefix)/lib/sysusers.d/snapkeep.conf      the snapkeep system user
#   $(localstatedir)/lib/snapkeep                the state directory (empty)
#   $(docdir)/examples/{postfix,maildir,alerting}   the recipes

snapkeepconfdir = $(sysconfdir)/snapkeep
snapkeepconf_DATA = contrib/snapkeep.conf.sample

systemdsystemunitdir = $(prefix)/lib/systemd/system
systemdsystemunit_DATA = contrib/systemd/snapkeepd.service
sysusersdir = $(prefix)/lib/sysusers.d
dist_sysusers_DATA = contrib/systemd/sysusers.d/snapkeep.conf
EXTRA_DIST += contrib/systemd/snapkeepd.service.in
CLEANFILES += contrib/systemd/snapkeepd.service

contrib/systemd/snapkeepd.service: $(top_srcdir)/contrib/systemd/snapkeepd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  $(top_srcdir)/contrib/systemd/snapkeepd.service.in > $@.tmp && mv $@.tmp $@

install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(localstatedir)/lib/snapkeep'

skexamplesdir = $(docdir)/examples
skpostfixpipedir = $(skexamplesdir)/postfix/pipe
dist_skpostfixpipe_DATA = \
	contrib/postfix/pipe/main.cf contrib/postfix/pipe/master.cf contrib/postfix/pipe/transport
skpostfixrelaydir = $(skexamplesdir)/postfix/relay
dist_skpostfixrelay_DATA = contrib/postfix/relay/main.cf contrib/postfix/relay/transport
skmaildirdir = $(skexamplesdir)/maildir
dist_skmaildir_DATA = \
	contrib/maildir/main.cf contrib/maildir/master.cf contrib/maildir/transport \
	contrib/maildir/snapkeep-mailbox contrib/maildir/snapkeep.conf
skmaildirunitdir = $(skmaildirdir)/snapkeepd.service.d
dist_skmaildirunit_DATA = contrib/maildir/snapkeepd.service.d/maildir.conf
skalertingdir = $(skexamplesdir)/alerting
dist_skalerting_DATA = \
	contrib/alerting/nagios.cfg contrib/alerting/icinga2.conf contrib/alerting/snapkeep.rules.yml
dist_skalerting_SCRIPTS = contrib/alerting/low-toner-report

# Tests: make install into a DESTDIR and the installed daemon run in place;
# readiness over $NOTIFY_SOCKET; the unit through systemd-analyze; the
# Postfix, Maildir and alerting recipes with real servers (root, loopback).
TESTS += \
	tests/integ/install-daemon.py \
	tests/integ/systemd-notify.py \
	tests/integ/systemd-unit.py \
	tests/integ/recipe-postfix.py \
	tests/integ/recipe-maildir.py \
	tests/integ/recipe-alerting.py
EXTRA_DIST += \
	tests/integ/recipe-lib.py \
	tests/integ/install-daemon.py \
	tests/integ/systemd-notify.py \
	tests/integ/systemd-unit.py \
	tests/integ/recipe-postfix.py \
	tests/integ/recipe-maildir.py \
	tests/integ/recipe-alerting.py
