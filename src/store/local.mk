# src/store: SQLite store, schema migrations, raw archive.
src_libsnapkeep_a_SOURCES += %reldir%/store.h
