#!/usr/bin/env bash
# rabbitmqadmin v1 for the tests that drive Jackalope with it: the Python script Debian's
# rabbitmq-server package ships, taken out of the package without installing it (no Erlang,
# no RabbitMQ server), into the virtualenv's bin.
set -euo pipefail
target="${1:?usage: rabbitmqadmin.sh BIN_DIR}"
if command -v rabbitmqadmin >/dev/null 2>&1; then
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download rabbitmq-server >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$work" && apt-get download rabbitmq-server >/dev/null)
}
dpkg-deb -x "$work"/rabbitmq-server_*.deb "$work/root"
install -m 0755 "$work/root/usr/bin/rabbitmqadmin" "$target/rabbitmqadmin"
