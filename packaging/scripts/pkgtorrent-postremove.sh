#!/bin/sh
# pkgtorrent: on purge, drop the agent's cache (the user stays, as system
# users do).
if [ "$1" = purge ]; then
	rm -rf /var/cache/pkgtorrent
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
