#!/bin/sh
# pkgtorrent-service: stop and disable the service on removal (not on upgrade).
case "$1" in
upgrade | failed-upgrade | 1) ;;
*)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now pkgtorrent-service.service || true
	fi
	;;
esac
