# src/devxml: Device.xml -> struct snapshot (libxml2).
src_libsnapkeep_a_SOURCES += \
	%reldir%/snapshot.h %reldir%/devxml.h
