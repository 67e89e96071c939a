package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/template"
)

// WriteJSON writes the report as indented JSON to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// WriteSVG writes the chart to path.
func (rep *Report) WriteSVG(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	if err := rep.SVG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	return nil
}

// Chart geometry: two panels side by side.
const (
	chartW, chartH         = 960, 400
	panelW, panelH         = 360, 260
	panelTop               = 70
	panelLeft0, panelLeft1 = 80, 560
)

type chartTick struct {
	Pos   float64
	Label string
}

type chartSeries struct {
	Name, Color, Dash string
	Points            string // SVG polyline points
	Dots              []chartDot
	LegendY           float64
}

type chartDot struct{ X, Y float64 }

type chartPanel struct {
	Left, Top, W, H float64
	Title, YLabel   string
	XTicks, YTicks  []chartTick
	Series          []chartSeries
}

type chartData struct {
	W, H   int
	Title  string
	Note   string
	Panels []chartPanel
}

// SVG writes the chart of burst time and origin bytes against N (plain
// HTTP, pkgtorrent and the bound) as an SVG image.
func (rep *Report) SVG(w io.Writer) error {
	var ns, httpT, p2pT, minT, httpC, p2pC, oneC []float64
	for _, b := range rep.Bursts {
		ns = append(ns, float64(b.N))
		httpT = append(httpT, b.HTTP.Seconds)
		p2pT = append(p2pT, b.P2P.Seconds)
		minT = append(minT, b.TMin)
		httpC = append(httpC, b.HTTP.OriginCopies)
		p2pC = append(p2pC, b.P2P.OriginCopies)
		oneC = append(oneC, 1)
	}
	c := rep.Config
	d := chartData{
		W: chartW, H: chartH,
		Title: fmt.Sprintf("Burst of N hosts fetching %.0f MiB in %d files; origin capped at %.0f MiB/s, client uploads at %.0f MiB/s",
			float64(c.Bytes)/(1<<20), c.Files, float64(c.OriginRate)/(1<<20), float64(c.UploadRate)/(1<<20)),
		Note: fmt.Sprintf("%d CPUs, load %.1f before / %.1f after, %s", rep.Machine.CPUs, rep.Machine.LoadBefore, rep.Machine.LoadAfter, rep.Machine.Start.Format("2006-01-02 15:04 MST")),
		Panels: []chartPanel{
			panel(panelLeft0, "Time until the last host is done", "seconds", ns, []namedSeries{
				{"plain HTTP", "#d62728", "", httpT},
				{"pkgtorrent", "#1f77b4", "", p2pT},
				{"bound T_min", "#555555", "6,4", minT},
			}),
			panel(panelLeft1, "Bytes the origin sent", "copies of the batch", ns, []namedSeries{
				{"plain HTTP", "#d62728", "", httpC},
				{"pkgtorrent", "#1f77b4", "", p2pC},
				{"bound (one copy)", "#555555", "6,4", oneC},
			}),
		},
	}
	if err := chartTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	return nil
}

type namedSeries struct {
	name, color, dash string
	ys                []float64
}

func panel(left float64, title, ylabel string, xs []float64, series []namedSeries) chartPanel {
	p := chartPanel{Left: left, Top: panelTop, W: panelW, H: panelH, Title: title, YLabel: ylabel}
	xmax := 1.0
	for _, x := range xs {
		xmax = max(xmax, x)
	}
	ymax := 0.0
	for _, s := range series {
		for _, y := range s.ys {
			ymax = max(ymax, y)
		}
	}
	step := niceStep(ymax / 5)
	ytop := step * math.Ceil(ymax/step)
	if ytop == 0 {
		ytop = 1
	}
	px := func(x float64) float64 { return p.Left + x/xmax*p.W }
	py := func(y float64) float64 { return p.Top + p.H - y/ytop*p.H }
	for _, x := range xs {
		p.XTicks = append(p.XTicks, chartTick{Pos: px(x), Label: strconv.Itoa(int(x))})
	}
	for y := 0.0; y <= ytop+step/2; y += step {
		p.YTicks = append(p.YTicks, chartTick{Pos: py(y), Label: strconv.FormatFloat(y, 'f', -1, 64)})
	}
	for i, s := range series {
		cs := chartSeries{Name: s.name, Color: s.color, Dash: s.dash, LegendY: p.Top + 14 + float64(i)*18}
		var pts []string
		for j, y := range s.ys {
			cs.Dots = append(cs.Dots, chartDot{X: px(xs[j]), Y: py(y)})
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(y)))
		}
		cs.Points = strings.Join(pts, " ")
		p.Series = append(p.Series, cs)
	}
	return p
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

var chartTemplate = template.Must(template.New("chart").Funcs(template.FuncMap{
	"add": func(a, b float64) float64 { return a + b },
}).Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{{.W}}" y="0" dx="-480" dy="22" text-anchor="middle" font-size="14" font-weight="bold">{{.Title}}</text>
<text x="{{.W}}" y="{{.H}}" dx="-10" dy="-8" text-anchor="end" fill="#777" font-size="10">{{.Note}}</text>
{{range .Panels}}{{$p := .}}<g>
<text x="{{add .Left 180}}" y="{{add .Top -14}}" text-anchor="middle" font-size="13">{{.Title}}</text>
<text transform="translate({{add .Left -48}},{{add .Top 130}}) rotate(-90)" text-anchor="middle">{{.YLabel}}</text>
<text x="{{add .Left 180}}" y="{{add .Top 298}}" text-anchor="middle">hosts (N)</text>
{{range .YTicks}}<line x1="{{$p.Left}}" x2="{{add $p.Left $p.W}}" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#e5e5e5"/>
<text x="{{add $p.Left -6}}" y="{{.Pos}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<line x1="{{.Pos}}" x2="{{.Pos}}" y1="{{add $p.Top $p.H}}" y2="{{add $p.Top (add $p.H 5)}}" stroke="#333"/>
<text x="{{.Pos}}" y="{{add $p.Top (add $p.H 18)}}" text-anchor="middle">{{.Label}}</text>
{{end}}<line x1="{{.Left}}" x2="{{add .Left .W}}" y1="{{add .Top .H}}" y2="{{add .Top .H}}" stroke="#333"/>
<line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{add .Top .H}}" stroke="#333"/>
{{range .Series}}<polyline points="{{.Points}}" fill="none" stroke="{{.Color}}" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>
{{$c := .Color}}{{range .Dots}}<circle cx="{{.X}}" cy="{{.Y}}" r="3" fill="{{$c}}"/>
{{end}}<line x1="{{add $p.Left 12}}" x2="{{add $p.Left 36}}" y1="{{.LegendY}}" y2="{{.LegendY}}" stroke="{{.Color}}" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>
<text x="{{add $p.Left 42}}" y="{{.LegendY}}" dy="4">{{.Name}}</text>
{{end}}</g>
{{end}}</svg>
`))

// Summary writes the report's main figures as text.
func (rep *Report) Summary(w io.Writer) error {
	var sb strings.Builder
	c := rep.Config
	fmt.Fprintf(&sb, "batch: %d files, %.1f MiB (median file %.0f KiB, largest %.1f MiB, padding %.1f%%)\n",
		c.Files, float64(c.Bytes)/(1<<20), float64(c.MedianFile)/1024, float64(c.LargestFile)/(1<<20), 100*float64(c.PadBytes)/float64(c.Bytes))
	fmt.Fprintf(&sb, "bursts (origin %.1f MiB/s, client upload %.1f MiB/s):\n", float64(c.OriginRate)/(1<<20), float64(c.UploadRate)/(1<<20))
	fmt.Fprintf(&sb, "  %4s %8s %8s %8s %7s %8s %8s %8s %8s %9s %9s\n", "N", "HTTP s", "p2p s", "T_min s", "p2p/Tm", "HTTP/p2p", "HTTP cp", "p2p cp", "wire", "CPU s/GiB", "get s/GiB")
	for _, b := range rep.Bursts {
		fmt.Fprintf(&sb, "  %4d %8.1f %8.1f %8.1f %7.2f %8.2f %8.2f %8.2f %8.3f %9.1f %9.1f\n", b.N, b.HTTP.Seconds, b.P2P.Seconds, b.TMin,
			b.P2P.RatioTMin, b.Speedup, b.HTTP.OriginCopies, b.P2P.OriginCopies, b.P2P.WireOverhead, b.P2P.CPUPerGiB, b.P2P.ClientCPUPerGiB)
	}
	s := rep.Stagger
	fmt.Fprintf(&sb, "staggered %d over %.0fs, origin uncapped: origin copies HTTP %.2f, pkgtorrent %.2f (wire %.3f); client time pkgtorrent/HTTP median %.2f, max %.2f\n",
		s.N, s.Window, s.HTTP.OriginCopies, s.P2P.OriginCopies, s.P2P.WireOverhead, s.RatioMedian, s.RatioMax)
	fmt.Fprintf(&sb, "single client: pkgtorrent %.2fs, curl %.2fs (ratio %.2f)\n", rep.Single.Seconds, rep.Single.CurlSeconds, rep.Single.Ratio)
	sv := rep.Service
	fmt.Fprintf(&sb, "service: new %d-file batch %.1f ms; cold hashing %.0f MB/s, sha1sum %.0f MB/s (ratio %.2f)\n",
		sv.Build500Files, sv.Build500*1000, sv.HashRate/1e6, sv.SHA1sumRate/1e6, sv.HashRatio)
	fmt.Fprintf(&sb, "agent peak RSS seeding %d files: max %.0f MiB, median %.0f MiB\n", rep.RSS.Files, float64(rep.RSS.Max)/(1<<20), float64(rep.RSS.Median)/(1<<20))
	if f := rep.Fleet; f != nil {
		fmt.Fprintf(&sb, "fleet of %d (sizes from %s): %d of %d packages updated, distinct %.1f MiB of %.1f MiB delivered (%.0f%%)\n",
			f.N, f.Source, f.Updated, f.Packages, float64(f.Distinct)/(1<<20), float64(f.Delivered)/(1<<20), 100*f.DistinctShare)
		for _, x := range []struct {
			name string
			r    FleetResult
		}{{"plain HTTP", f.HTTP}, {"pkgtorrent", f.CrossBatch}, {"one swarm per batch", f.PerBatch}} {
			fmt.Fprintf(&sb, "  %-20s last host %6.1fs, origin/distinct %5.2f, p2p share %4.0f%%", x.name, x.r.Seconds, x.r.OriginRatio, 100*x.r.P2PShare)
			if x.r.RatioHTTPMedian > 0 {
				fmt.Fprintf(&sb, ", host time / HTTP median %.2f, max %.2f", x.r.RatioHTTPMedian, x.r.RatioHTTPMax)
			}
			sb.WriteString("\n")
		}
	}
	fmt.Fprintf(&sb, "targets:\n")
	for _, t := range rep.Targets {
		op, mark := ">=", "MISSED"
		if t.Max {
			op = "<="
		}
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(&sb, "  %-48s %10.3f %s %-8g %s\n", t.Name, t.Value, op, t.Limit, mark)
	}
	fmt.Fprintf(&sb, "%.0fs, load %.1f before, %.1f after\n", rep.Seconds, rep.Machine.LoadBefore, rep.Machine.LoadAfter)
	_, err := io.WriteString(w, sb.String())
	return err
}
