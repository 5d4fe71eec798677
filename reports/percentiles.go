package reports

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"

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
