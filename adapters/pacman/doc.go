// Package pacman holds the pacman adapter of pkgtorrent and its end-to-end
// tests with a real pacman 6.
//
// The adapter itself is not Go code: pacman reaches pkgtorrent through its
// XferCommand,
//
//	XferCommand = /usr/bin/pkgtorrent-get %u %o
//
// (one package per process; repository databases and signatures go over
// plain HTTP, see pkgtorrent-get's http-only setting), and through the
// batch script pkgtorrent-pacman in this directory, which fetches a whole
// transaction as one torrent into pacman's CacheDir before running pacman.
// The tests build a small repository with repo-add, serve it with
// pkgtorrent-service, and install from it into private pacman roots.
package pacman
