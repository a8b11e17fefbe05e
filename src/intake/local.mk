# src/intake: the one funnel and the parse worker.
src_libsnapkeep_a_SOURCES += %reldir%/intake.h
