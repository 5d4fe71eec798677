package reports

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// percentileMarks are the points of each operation's latency curve.
var percentileMarks = []float64{50, 75, 90, 95, 99, 99.9, 99.99}

// nines places percentile q on an axis where each nine gets the same room:
// p90 is 1, p99 is 2, p99.9 is 3.
func nines(q float64) float64 { return -math.Log10(1 - q/100) }

// percentileTicks labels the nines axis with the percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for _, q := range percentileMarks {
		if x := nines(q); x >= lo && x <= hi {
			ticks = append(ticks, plot.Tick{Value: x, Label: "p" + fmt.Sprint(q)})
		}
	}
	return ticks
}

// percentilePlot draws, per operation, latency against percentile from an
// HdrHistogram of its ok operations: the shape of the tail at a glance.
func percentilePlot(ops []history.Op) (plotted, error) {
	hists := map[string]*hdrhistogram.Histogram{}
	for _, op := range ops {
		if op.Type() != history.OK {
			continue
		}
		h, ok := hists[op.F]
		if !ok {
			h = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
			hists[op.F] = h
		}
		_ = h.RecordValue(max(1, op.Latency()/int64(time.Microsecond)))
	}
	names := make([]string, 0, len(hists))
	for f := range hists {
		names = append(names, f)
	}
	sort.Strings(names)

	p := newPlot("percentile", "latency (ms)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.X.Tick.Marker = percentileTicks{}
	p.Add(yGrid())
	var out plotted
	lo, hi := math.Inf(1), 0.0
	for i, f := range names {
		var xys plotter.XYs
		for _, q := range percentileMarks {
			ms := float64(hists[f].ValueAtQuantile(q)) / 1000
			xys = append(xys, plotter.XY{X: nines(q), Y: ms})
			lo, hi = min(lo, ms), max(hi, ms)
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return plotted{}, fmt.Errorf("percentile plot: %w", err)
		}
		c := seriesColors[i%len(seriesColors)]
		l.LineStyle = draw.LineStyle{Color: c, Width: 1.5}
		pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: 2.5, Shape: draw.CircleGlyph{}}
		p.Add(l, pts)
		out.Legend = append(out.Legend, legendItem{lineIcon(c), f})
	}
	if len(names) == 0 {
		return plotted{}, fmt.Errorf("percentile plot: no ok operations")
	}
	p.X.Min, p.X.Max = nines(percentileMarks[0])-0.1, nines(percentileMarks[len(percentileMarks)-1])+0.1
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	svg, err := render(p, "latency percentiles per operation")
	if err != nil {
		return plotted{}, fmt.Errorf("percentile plot: %w", err)
	}
	out.SVG = svg
	out.Note = "From an HdrHistogram of each operation's ok latencies; each nine of the percentile gets the same room."
	return out, nil
}

// namedDist is one line of a distribution plot.
type namedDist struct {
	Name string
	Dist checker.Distribution
}

// distMarks are where a checker.Distribution's points go on the nines
// axis; the maximum sits one step past p99.
var distMarks = []struct {
	x     float64
	label string
	of    func(checker.Distribution) float64
}{
	{nines(50), "p50", func(d checker.Distribution) float64 { return d.P50 }},
	{nines(90), "p90", func(d checker.Distribution) float64 { return d.P90 }},
	{nines(99), "p99", func(d checker.Distribution) float64 { return d.P99 }},
	{nines(99.9), "max", func(d checker.Distribution) float64 { return d.Max }},
}

type distTicks struct{}

func (distTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for _, m := range distMarks {
		ticks = append(ticks, plot.Tick{Value: m.x, Label: m.label})
	}
	return ticks
}

// distributionPlot draws each series' p50, p90, p99 and maximum as a line.
func distributionPlot(label, ylabel string, series []namedDist) (plotted, error) {
	p := newPlot("percentile", ylabel)
	p.X.Tick.Marker = distTicks{}
	p.Add(yGrid())
	var out plotted
	peak := 0.0
	for i, s := range series {
		var xys plotter.XYs
		for _, m := range distMarks {
			xys = append(xys, plotter.XY{X: m.x, Y: m.of(s.Dist)})
			peak = max(peak, m.of(s.Dist))
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return plotted{}, fmt.Errorf("%s plot: %w", label, err)
		}
		c := seriesColors[i%len(seriesColors)]
		l.LineStyle = draw.LineStyle{Color: c, Width: 1.5}
		pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: 2.5, Shape: draw.CircleGlyph{}}
		p.Add(l, pts)
		out.Legend = append(out.Legend, legendItem{lineIcon(c), s.Name})
	}
	p.X.Min, p.X.Max = distMarks[0].x-0.1, distMarks[len(distMarks)-1].x+0.1
	p.Y.Min, p.Y.Max = 0, max(1, peak*1.15)
	svg, err := render(p, label)
	if err != nil {
		return plotted{}, fmt.Errorf("%s plot: %w", label, err)
	}
	out.SVG = svg
	return out, nil
}

// windowPlots draws, per fault window, the time the cluster took to
// recover after the heal and the share of operations invoked inside the
// window that succeeded. Windows are labelled by number, as in the table.
func windowPlots(faults []history.Window, ops []history.Op) (recovery, avail plotted, err error) {
	var labels []string
	var rec, ok plotter.Values
	for i, w := range faults {
		labels = append(labels, fmt.Sprint(i+1))
		r := 0.0
		if w.Recovered >= 0 && w.Stop >= 0 {
			r = seconds(w.Recovered - w.Stop)
		}
		rec = append(rec, r)
		a, _ := splitAvailability(ops, []history.Window{w})
		ok = append(ok, max(0, a.Percent()))
	}
	bars := func(label, ylabel string, vs plotter.Values, top float64) (plotted, error) {
		p := newPlot("fault window (numbered as in the table)", ylabel)
		p.X.Tick.Marker = plot.DefaultTicks{}
		p.Add(yGrid())
		b, err := plotter.NewBarChart(vs, vg.Points(min(40, 400/float64(len(vs)))))
		if err != nil {
			return plotted{}, fmt.Errorf("%s plot: %w", label, err)
		}
		b.Color, b.LineStyle.Width = seriesColors[0], 0
		p.Add(b)
		p.NominalX(labels...)
		p.X.Min, p.X.Max = -0.6, float64(len(vs))-0.4
		p.Y.Min, p.Y.Max = 0, top
		svg, err := render(p, label)
		return plotted{SVG: svg}, err
	}
	peak := 1.0
	for _, r := range rec {
		peak = max(peak, r*1.2)
	}
	if recovery, err = bars("time to recover after each fault", "seconds from heal to whole", rec, peak); err != nil {
		return
	}
	recovery.Note = "Seconds from the heal until every member answered and agreed on one leader; 0 where no recovery was recorded (see the table)."
	avail, err = bars("operations ok during each fault", "% of operations ok", ok, 105)
	avail.Note = "Of the operations invoked inside each window, the share that succeeded."
	return
}
