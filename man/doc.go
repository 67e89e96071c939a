// Package man holds pkgtorrent's manual pages, in roff with the man macros:
// pkgtorrent-get(1), pkgtorrent.conf(5), pkgtorrent-service(8) and
// pkgtorrent-service.conf(5). It has no Go API; its test lints the pages and
// checks that they document every command-line flag of both commands.
package man
