# src/daemon: snapkeepd (wiring, configuration table, signals, privileges),
# its manual pages and the annotated sample configuration.
src_libsnapkeep_a_SOURCES += \
	%reldir%/config-table.h %reldir%/config-table.c \
	%reldir%/service.h %reldir%/service-smtp.c \
	%reldir%/service-poll.c %reldir%/service-web.c \
	%reldir%/service-maintenance.c \
	%reldir%/notify.h %reldir%/notify.c

sbin_PROGRAMS += snapkeepd
snapkeepd_SOURCES = %reldir%/main.c

man_MANS += man/snapkeepd.8 man/snapkeep.conf.5
EXTRA_DIST += man/snapkeepd.8 man/snapkeep.conf.5 contrib/snapkeep.conf.sample
