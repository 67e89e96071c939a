package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// The agent's metrics: each scrape reads one Status, so the metrics and
// `pkgtorrent-get status` always agree.
var (
	descFromPeers = prometheus.NewDesc("pkgtorrent_agent_bytes_from_peers_total",
		"Useful payload bytes received from BitTorrent peers.", nil, nil)
	descFromWeb = prometheus.NewDesc("pkgtorrent_agent_bytes_from_webseeds_total",
		"Useful payload bytes received from webseeds (the service and mirrors).", nil, nil)
	descUploaded = prometheus.NewDesc("pkgtorrent_agent_bytes_uploaded_total",
		"Payload bytes uploaded to peers.", nil, nil)
	descTorrents = prometheus.NewDesc("pkgtorrent_agent_torrents",
		"Batch torrents the agent holds.", nil, nil)
	descSeeding = prometheus.NewDesc("pkgtorrent_agent_torrents_seeding",
		"Batch torrents the agent holds complete and seeds.", nil, nil)
	descPeers = prometheus.NewDesc("pkgtorrent_agent_peers",
		"Connected peers, over all torrents.", nil, nil)
)

type collector struct{ a *Agent }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFromPeers, descFromWeb, descUploaded, descTorrents, descSeeding, descPeers} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.status()
	ch <- prometheus.MustNewConstMetric(descFromPeers, prometheus.CounterValue, float64(s.FromPeers))
	ch <- prometheus.MustNewConstMetric(descFromWeb, prometheus.CounterValue, float64(s.FromWeb))
	ch <- prometheus.MustNewConstMetric(descUploaded, prometheus.CounterValue, float64(s.Uploaded))
	ch <- prometheus.MustNewConstMetric(descTorrents, prometheus.GaugeValue, float64(s.Torrents))
	ch <- prometheus.MustNewConstMetric(descSeeding, prometheus.GaugeValue, float64(s.Seeding))
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(s.Peers))
}

func (a *Agent) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{a},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsText returns the agent's metrics in the Prometheus text format.
func (a *Agent) metricsText() (string, error) {
	mfs, err := a.reg.Gather()
	if err != nil {
		return "", fmt.Errorf("gathering metrics: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", fmt.Errorf("encoding metrics: %w", err)
		}
	}
	return buf.String(), nil
}

// serveMetrics serves GET /metrics on addr until the agent stops.
func (a *Agent) serveMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			a.log.Warn("metrics listener failed", "err", err)
		}
	}()
	return ln, nil
}
