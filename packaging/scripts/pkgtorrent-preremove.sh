#!/bin/sh
# pkgtorrent: stop and disable the agent on removal (not on upgrade:
# deb passes "upgrade", rpm passes 1).
case "$1" in
upgrade | failed-upgrade | 1) ;;
*)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now pkgtorrent-agent.service || true
	fi
	;;
esac
