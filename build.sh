#!/bin/sh
# build.sh: set up a fresh Debian 12 machine, build snapkeep, and either run
# the demo (daemon + simulator + web view on a local SQLite file) or the
# whole test suite.
#
#   ./build.sh run      install what is missing, build, run the demo
#   ./build.sh test     install what is missing, build, run every test
#
# Environment: BUILD_DIR (default ./_build), CONFIGURE_FLAGS (extra flags),
# SK_SKIP_APT=1 to skip package installation.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
mode=${1:-run}
build=${BUILD_DIR:-$top/_build}

# Build dependencies and the real clients/servers the tests talk to.
PACKAGES="build-essential autoconf automake pkg-config
  libglib2.0-dev libgmime-3.0-dev libxml2-dev libsqlite3-dev sqlite3 libpq-dev libzstd-dev
  libjson-glib-dev libcurl4-gnutls-dev libgnutls28-dev libmicrohttpd-dev libcrypt-dev
  python3 python3-aiosmtpd python3-prometheus-client swaks libnet-ssleay-perl curl gnutls-bin openssl
  dovecot-imapd dovecot-pop3d chromium valgrind clang libclang-rt-14-dev
  libxml2-utils ca-certificates
  postfix systemd python3-yaml util-linux
  postgresql-15 postgresql-client-15 python3-psycopg2"

need_install() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || return 0
	done
	return 1
}

if [ "${SK_SKIP_APT:-0}" != 1 ] && need_install; then
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update
	# Postfix (the recipe tests start their own instances) installs without
	# configuring the system's mail: no questions, no /etc/postfix/main.cf.
	echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $PACKAGES
fi

[ -x configure ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	# shellcheck disable=SC2086
	"$top/configure" ${CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)"

case "$mode" in
run)
	exec "$top/contrib/demo.sh" "$build"
	;;
test)
	make -j"$(nproc)" check
	;;
*)
	echo "usage: $0 run|test" >&2
	exit 2
	;;
esac
