// Package api is the pkgtorrent-service HTTP protocol: the paths of its
// endpoints and URLs to them, its JSON bodies (the torrent request, the
// error body, the stats), and a client for batch torrents. The service
// (package service) serves it; pkgtorrent-get, the benchmark and the tests
// speak it through this package.
//
// Every API path is under the reserved prefix /.pkgtorrent/v1/ of the
// service's file root:
//
//	GET|HEAD <prefix>webseed/<name>/<path>  webseed: files and zero padding
//	GET      <prefix>torrent/<digest>       a built batch torrent, 412 if unknown
//	POST     <prefix>torrent/<digest>       build: body TorrentRequest
//	GET      <prefix>infohash/<hex>         a built batch torrent by info hash, 404 if unknown
//	GET      <prefix>announce, scrape       embedded tracker
//	GET      <prefix>stats                  Stats as JSON
//	GET      <prefix>metrics                Prometheus metrics (text format)
//
// Errors are JSON objects ErrorBody, sent with Cache-Control: no-store.
package api

import (
	"encoding/hex"
	"strings"
)

// Prefix is the URL path prefix of the service API.
const Prefix = "/.pkgtorrent/v1/"

// The endpoints' paths under Prefix. A path ending in "/" is a subtree:
// the rest of the request path names what is asked for.
const (
	// TorrentPath + <batch digest>: GET a built batch torrent (412 if the
	// service does not know the digest), POST a TorrentRequest to build it.
	TorrentPath = "torrent/"
	// InfohashPath + <info hash in hex>: GET a batch torrent the service
	// built, by its info hash (404 if it does not know it). An agent asks
	// its service this before it serves another host's batch.
	InfohashPath = "infohash/"
	// WebseedPath + <torrent name>/<file path>: the BEP 19 webseed of the
	// service's torrents, files and zero padding.
	WebseedPath = "webseed/"
	// AnnouncePath and ScrapePath are the embedded tracker's.
	AnnouncePath = "announce"
	ScrapePath   = "scrape"
	// StatsPath serves Stats as JSON.
	StatsPath = "stats"
	// MetricsPath serves Prometheus metrics in the text format.
	MetricsPath = "metrics"
)

// Paths are all the endpoints' paths under Prefix.
var Paths = []string{TorrentPath, InfohashPath, WebseedPath, AnnouncePath, ScrapePath, StatsPath, MetricsPath}

// URL returns the URL of the endpoint path p (one of Paths, plus the rest
// of a subtree's path) of the service whose file root is at the base URL
// service (with or without a trailing slash).
func URL(service, p string) string {
	return strings.TrimSuffix(service, "/") + Prefix + p
}

// TorrentURL is where the service serves the torrent of the batch with
// this digest (GET; POST a TorrentRequest when the service answers 412).
func TorrentURL(service, digest string) string { return URL(service, TorrentPath+digest) }

// InfohashURL is where the service serves the batch torrent it built with
// info hash ih.
func InfohashURL(service string, ih [20]byte) string {
	return URL(service, InfohashPath+hex.EncodeToString(ih[:]))
}

// WebseedURL is the service's webseed base URL, as written into torrents.
func WebseedURL(service string) string { return URL(service, WebseedPath) }

// AnnounceURL is the announce URL of the service's embedded tracker.
func AnnounceURL(service string) string { return URL(service, AnnouncePath) }

// ScrapeURL is the scrape URL of the service's embedded tracker.
func ScrapeURL(service string) string { return URL(service, ScrapePath) }

// StatsURL is where the service serves its Stats.
func StatsURL(service string) string { return URL(service, StatsPath) }

// MetricsURL is where the service serves its Prometheus metrics.
func MetricsURL(service string) string { return URL(service, MetricsPath) }

// TorrentRequest is the body of a torrent POST: the batch's files, as
// repository-relative paths (in canonical order from this package's client).
type TorrentRequest struct {
	Files []string `json:"files"`
}

// ErrorBody is the body of every error answer of the API.
type ErrorBody struct {
	Error string `json:"error"`
}

// Stats are the service's counters since it started (StatsPath).
type Stats struct {
	// TorrentsBuilt counts torrents built (first builds and rebuilds).
	TorrentsBuilt int64 `json:"torrents_built"`
	// TorrentRequests counts GET and POST requests for torrents.
	TorrentRequests int64 `json:"torrent_requests"`
	// FileBytesSent counts file bytes sent to clients: origin egress, by
	// plain GET and webseed alike.
	FileBytesSent int64 `json:"file_bytes_sent"`
	// WebseedBytesSent counts the part of FileBytesSent sent through the
	// webseed path.
	WebseedBytesSent int64 `json:"webseed_bytes_sent"`
	// PadBytesSent counts zero padding bytes sent by the webseed.
	PadBytesSent int64 `json:"pad_bytes_sent"`
	// HashBytesRead counts file bytes read to compute piece hashes.
	HashBytesRead int64 `json:"hash_bytes_read"`
	// HashCacheHits counts files whose piece hashes came from the cache.
	HashCacheHits int64 `json:"hash_cache_hits"`
	// TorrentCacheHits counts torrent requests answered with an already
	// built, still fresh torrent.
	TorrentCacheHits int64 `json:"torrent_cache_hits"`
	// BuildsRunning is the number of torrent builds running now.
	BuildsRunning int64 `json:"builds_running"`
	// BuildsWaiting is the number of torrent builds waiting for a slot
	// (the service's MaxBuilds) now.
	BuildsWaiting int64 `json:"builds_waiting"`
	// BuildsAbandoned counts builds stopped, or never started, because
	// every client waiting for them had gone.
	BuildsAbandoned int64 `json:"builds_abandoned"`
	// HashCacheFiles is the number of files in the hash cache now.
	HashCacheFiles int64 `json:"hash_cache_files"`
	// HashCacheBytes is the memory of the hash cache now, as counted
	// against the service's HashCacheBytes.
	HashCacheBytes int64 `json:"hash_cache_bytes"`
	// HashCacheEvictions counts files dropped from the hash cache to stay
	// within the service's HashCacheBytes.
	HashCacheEvictions int64 `json:"hash_cache_evictions"`
}
