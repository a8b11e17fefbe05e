# src/cli: snapkeep, the command line.
src_libsnapkeep_a_SOURCES += \
	%reldir%/cli.h %reldir%/output.c %reldir%/import.c %reldir%/query.c %reldir%/reparse.c \
	%reldir%/check.c %reldir%/prune.c %reldir%/verify.c %reldir%/backup.c %reldir%/stats.c \
	%reldir%/migrate.c

bin_PROGRAMS += snapkeep
snapkeep_SOURCES = %reldir%/main.c
man_MANS += man/snapkeep.1
EXTRA_DIST += man/snapkeep.1

# snapkeep migrate: a SQLite store copied into PostgreSQL and verified, on a
# PostgreSQL 15 the test starts itself (Debian package postgresql-15).
TESTS += tests/integ/store-migrate.py
EXTRA_DIST += tests/integ/store-migrate.py
