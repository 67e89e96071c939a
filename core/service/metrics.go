package service

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsNamespace prefixes every metric name of the service.
const metricsNamespace = "pkgtorrent_service"

// metrics are the service's Prometheus metrics, in a registry of its own
// (several services may run in one process), served at api.MetricsPath.
// The counters that Stats also reports are read from the same atomics.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	buildSeconds prometheus.Histogram
	byKind       map[string]http.Handler
	http.Handler
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "requests_total",
		Help: "HTTP requests answered, by handler and status code.",
	}, []string{"handler", "code"})
	m.buildSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "torrent_build_seconds",
		Help:    "Time to build one batch torrent (hashing included).",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 262 s
	})
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	m.reg.MustRegister(
		m.requests, m.buildSeconds,
		gauge("builds_running", "Torrent builds running now.", s.buildsRunning.Load),
		gauge("builds_waiting", "Torrent builds waiting for a build slot now.", s.buildsWaiting.Load),
		counter("builds_abandoned_total", "Torrent builds stopped or never started because every client waiting for them had gone.", s.buildsAbandoned.Load),
		gauge("hash_cache_files", "Files in the piece hash cache.", func() int64 { return int64(s.hashes.Len()) }),
		gauge("hash_cache_bytes", "Memory of the piece hash cache, as counted against its bound.", s.hashes.Bytes),
		counter("hash_cache_evictions_total", "Files dropped from the piece hash cache to stay within its bound.", s.hashes.Evictions.Load),
		counter("torrents_built_total", "Batch torrents built (first builds and rebuilds).", s.torrentsBuilt.Load),
		counter("torrent_requests_total", "GET and POST requests for batch torrents.", s.torrentRequests.Load),
		counter("torrent_cache_hits_total", "Torrent requests answered with an already built torrent.", s.torrentCacheHits.Load),
		counter("hash_cache_hits_total", "Files whose piece hashes came from the hash cache.", s.hashes.Hits.Load),
		counter("hash_bytes_read_total", "File bytes read to compute piece hashes.", s.hashes.BytesRead.Load),
		counter("file_bytes_sent_total", "File bytes sent to clients (origin egress), plain and webseed requests together.", s.fileBytesSent.Load),
		counter("webseed_bytes_sent_total", "File bytes sent through the webseed path (part of file_bytes_sent_total).", s.webseedBytesSent.Load),
		counter("pad_bytes_sent_total", "Zero padding bytes sent by the webseed.", s.padBytesSent.Load),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.Handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	for _, e := range routes {
		m.requests.WithLabelValues(e.kind, "200") // show the series before the first request
	}
	return m
}

// instrument counts the requests h answers, by kind and status code.
func (m *metrics) instrument(h http.Handler) http.Handler {
	m.byKind = map[string]http.Handler{}
	for _, e := range routes {
		m.byKind[e.kind] = promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(prometheus.Labels{"handler": e.kind}), h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.byKind[requestKind(r.URL.Path)].ServeHTTP(w, r)
	})
}

// requestKind names the handler a request path goes to: the kind of its
// route.
func requestKind(p string) string {
	e, _ := route(p)
	return e.kind
}
