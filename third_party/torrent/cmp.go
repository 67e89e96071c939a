package torrent
