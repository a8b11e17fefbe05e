# src/intake: the one funnel, and snapkeep-parse, its worker process.
src_libsnapkeep_a_SOURCES += \
	%reldir%/intake.h %reldir%/intake.c \
	%reldir%/parse.c \
	%reldir%/worker.h %reldir%/worker.c

pkglibexec_PROGRAMS += snapkeep-parse
snapkeep_parse_SOURCES = %reldir%/worker-main.c
