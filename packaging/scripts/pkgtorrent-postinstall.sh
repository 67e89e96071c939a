#!/bin/sh
# pkgtorrent: the agent's system user and cache directory; start the agent
# when systemd runs.
set -e
if ! getent passwd pkgtorrent >/dev/null; then
	useradd --system --user-group --home-dir /var/cache/pkgtorrent --no-create-home \
		--shell /usr/sbin/nologin --comment "pkgtorrent agent" pkgtorrent
fi
install -d -m 0755 -o pkgtorrent -g pkgtorrent /var/cache/pkgtorrent
# Data left by an agent that ran as root there becomes the agent user's.
chown -R pkgtorrent:pkgtorrent /var/cache/pkgtorrent
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl enable pkgtorrent-agent.service || true
	systemctl restart pkgtorrent-agent.service || true
fi
