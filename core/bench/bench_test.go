package bench

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the whole benchmark at a small size (3 hosts, 3 MiB) on
// the real binaries and checks that it completes with sane figures and
// writes valid JSON and SVG. It asserts no speed: timing targets are for
// the full run, on a quiet machine.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := t.TempDir()
	// The agents run as an unprivileged user (we are root in CI): they
	// must reach the binaries and the work directory below the test's.
	os.Chmod(filepath.Dir(bin), 0o755)
	os.Chmod(bin, 0o755)
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	if err := BuildBinaries(ctx, bin, flags...); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		N: 3, Ns: []int{2}, Files: 40, Bytes: 2 << 20,
		OriginRate: 4 << 20, UploadRate: 2 << 20,
		StaggerWindow: time.Second, Reps: 1,
		WorkDir: t.TempDir(), BinDir: bin, Log: testWriter{t},
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	jsonPath, svgPath := filepath.Join(out, "bench.json"), filepath.Join(out, "bench.svg")
	if err := rep.WriteJSON(jsonPath); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteSVG(svgPath); err != nil {
		t.Fatal(err)
	}
	if err := rep.Summary(testWriter{t}); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("bench.json: %v", err)
	}
	if len(got.Bursts) != 2 || got.Bursts[0].N != 2 || got.Bursts[1].N != 3 {
		t.Fatalf("bursts %+v, want N=2 and N=3", got.Bursts)
	}
	for _, br := range got.Bursts {
		if br.P2P.OriginBytes <= 0 || br.HTTP.OriginBytes < int64(br.N)*got.Config.Bytes {
			t.Errorf("burst %d: origin bytes pkgtorrent %d, HTTP %d", br.N, br.P2P.OriginBytes, br.HTTP.OriginBytes)
		}
		// The share itself is timing: a tiny batch on a loaded machine may
		// come from the mirror before the hosts trade.
		if br.P2P.P2PShare < 0 || br.P2P.Seconds <= 0 || br.TMin <= 0 || br.P2P.WireOverhead < 1 || br.P2P.CPUPerGiB <= 0 || br.P2P.ClientCPUPerGiB <= 0 {
			t.Errorf("burst %d: p2p share %.3f, %.2fs, T_min %.2fs, wire %.3f, CPU %.1f s/GiB (clients %.1f)", br.N, br.P2P.P2PShare, br.P2P.Seconds, br.TMin, br.P2P.WireOverhead, br.P2P.CPUPerGiB, br.P2P.ClientCPUPerGiB)
		}
	}
	if s := got.Stagger; len(s.P2P.ClientSeconds) != 3 || s.P2P.OriginBytes <= 0 || s.RatioMedian <= 0 {
		t.Errorf("staggered: %+v", s)
	}
	if s := got.Single; s.Seconds <= 0 || s.CurlSeconds <= 0 || s.AgentPeakRSS <= 0 {
		t.Errorf("single client: %+v", s)
	}
	if s := got.Service; s.Build500 <= 0 || s.HashRate <= 0 || s.SHA1sumRate <= 0 || s.Build500Files != 40 {
		t.Errorf("service: %+v", s)
	}
	if got.RSS.Max <= 0 || got.RSS.Files != 40 || len(got.Targets) < 8 {
		t.Errorf("RSS %+v, %d targets", got.RSS, len(got.Targets))
	}
	if f := got.Fleet; f == nil || f.N != 3 || f.Distinct <= 0 || f.Delivered < f.Distinct ||
		f.HTTP.OriginBytes < f.Delivered || f.CrossBatch.OriginBytes <= 0 || f.PerBatch.OriginBytes <= 0 ||
		len(f.CrossBatch.ClientSeconds) != 3 || f.CrossBatch.RatioHTTPMedian <= 0 {
		t.Errorf("fleet: %+v", f)
	}

	f, err := os.Open(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var root string
	var lines int
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("bench.svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				lines++
			}
		}
	}
	if root != "svg" || lines != 6 {
		t.Errorf("bench.svg: root <%s>, %d lines, want <svg> and 6 (3 per panel)", root, lines)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
