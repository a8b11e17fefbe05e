# src/util: logging and time; no project dependencies.
src_libsnapkeep_a_SOURCES += \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/sktime.c %reldir%/sktime.h
