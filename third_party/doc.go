// Package thirdparty holds no code. Its test checks the patched copy of
// github.com/anacrolix/torrent in torrent/ (see torrent/PKGTORRENT.md): the
// copy must be the published module, fetched from the module cache, plus
// torrent/pkgtorrent.diff, byte for byte.
package thirdparty
