# src/mime: raw message -> Device.xml part and header hints (GMime).
src_libsnapkeep_a_SOURCES += %reldir%/mime.h
