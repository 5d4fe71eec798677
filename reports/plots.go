package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/faultline/faultline/history"
)

// Plot size in points; the page shows it at 900x350 CSS pixels (1pt = 4/3px).
const (
	plotW = 675
	plotH = 262.5
)

// maxOKPoints caps the ok points in the latency plot: a long run has
// hundreds of thousands of them, which would make the page megabytes of SVG
// and hide the rare fail and info points anyway. Those are always all drawn.
const maxOKPoints = 15000

var (
	okColor   = color.NRGBA{0x1f, 0x77, 0xb4, 0xff}
	failColor = color.NRGBA{0xd6, 0x27, 0x28, 0xff}
	infoColor = color.NRGBA{0xe6, 0x9f, 0x00, 0xff}
	bandColor = color.NRGBA{0x80, 0x80, 0x80, 0x30}
	inkColor  = color.NRGBA{0x33, 0x33, 0x33, 0xff}
	gridColor = color.NRGBA{0xdd, 0xdd, 0xdd, 0xff}
	// Translucent, so a point under a label still shows through a little.
	labelBackground = color.NRGBA{0xff, 0xff, 0xff, 0xd0}

	outcomeColor = map[history.Type]color.Color{history.OK: okColor, history.Fail: failColor, history.Info: infoColor}
	// Drawn in this order, so the rare outcomes end up on top of the ok cloud.
	outcomes = []history.Type{history.OK, history.Info, history.Fail}

	shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{},
		draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}}

	sans = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// legendItem is one entry of the HTML legend under a plot.
type legendItem struct {
	Icon template.HTML
	Text string
}

// plotted is one rendered plot and what the reader needs to read it.
type plotted struct {
	SVG    template.HTML
	Legend []legendItem
	Note   string
}

// timeline is what both plots share: the ops, the fault windows and where
// the x axis ends, in seconds.
type timeline struct {
	ops    []history.Op
	faults []history.Window
	end    float64
}

func newTimeline(ops []history.Op, faults []history.Window) timeline {
	var end int64
	for _, op := range ops {
		end = max(end, op.Invoke.Time)
		if !op.Pending() {
			end = max(end, op.Complete.Time)
		}
	}
	for _, w := range faults {
		end = max(end, w.Start, w.Stop)
	}
	return timeline{ops: ops, faults: faults, end: seconds(end)}
}

func seconds(ns int64) float64 { return float64(ns) / float64(time.Second) }

func latencyPlot(tl timeline) (plotted, error) {
	// Op names in a stable order, so each keeps its shape from run to run.
	var names []string
	seen := map[string]bool{}
	nOK := 0
	for _, op := range tl.ops {
		if !seen[op.F] {
			seen[op.F] = true
			names = append(names, op.F)
		}
		if op.Type() == history.OK {
			nOK++
		}
	}
	sort.Strings(names)
	shape := map[string]draw.GlyphDrawer{}
	for i, f := range names {
		shape[f] = shapes[i%len(shapes)]
	}
	stride := (nOK + maxOKPoints - 1) / maxOKPoints

	type group struct {
		t history.Type
		f string
	}
	pts := map[group]plotter.XYs{}
	pending := map[string]plotter.XYs{}
	minMs, maxMs := math.Inf(1), 0.0
	okSeen := 0
	for _, op := range tl.ops {
		x := seconds(op.Invoke.Time)
		if op.Pending() {
			pending[op.F] = append(pending[op.F], plotter.XY{X: x})
			continue
		}
		if op.Type() == history.OK {
			okSeen++
			if stride > 1 && okSeen%stride != 0 {
				continue
			}
		}
		// A log axis cannot show 0; a microsecond is below anything measurable here.
		ms := max(float64(op.Latency())/float64(time.Millisecond), 0.001)
		minMs, maxMs = min(minMs, ms), max(maxMs, ms)
		g := group{op.Type(), op.F}
		pts[g] = append(pts[g], plotter.XY{X: x, Y: ms})
	}
	if maxMs == 0 { // only pending ops
		minMs, maxMs = 1, 1
	}
	// A margin below the fastest op, and headroom above the slowest for the
	// fault labels and the row of never-completed ops: about a sixth of the
	// axis, which on a log axis is a factor.
	yMin := minMs / 1.5
	yMax := maxMs * math.Pow(maxMs/yMin, 0.2)

	p := newPlot("seconds since test start (operation invoked)", "latency (ms)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Add(&bands{ws: tl.faults, end: tl.end})
	p.Add(yGrid())
	for _, t := range outcomes {
		for _, f := range names {
			xys := pts[group{t, f}]
			if len(xys) == 0 {
				continue
			}
			s, err := plotter.NewScatter(xys)
			if err != nil {
				return plotted{}, fmt.Errorf("latency plot: %w", err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: outcomeColor[t], Radius: 1.8, Shape: shape[f]}
			p.Add(s)
		}
	}
	nPending := 0
	for _, f := range names {
		xys := pending[f]
		if len(xys) == 0 {
			continue
		}
		nPending += len(xys)
		for i := range xys {
			xys[i].Y = yMax
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return plotted{}, fmt.Errorf("latency plot: %w", err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: infoColor, Radius: 2.5, Shape: shape[f]}
		p.Add(s)
	}
	labels := &bands{ws: tl.faults, end: tl.end, labels: true}
	p.Add(labels)
	p.X.Min, p.X.Max = 0, tl.end
	p.Y.Min, p.Y.Max = yMin, yMax

	svg, err := render(p, "latency of every operation over time")
	if err != nil {
		return plotted{}, fmt.Errorf("latency plot: %w", err)
	}
	out := plotted{SVG: svg}
	circle := draw.CircleGlyph{}
	out.Legend = append(out.Legend,
		legendItem{glyphIcon(okColor, circle), "ok"},
		legendItem{glyphIcon(failColor, circle), "fail"},
		legendItem{glyphIcon(infoColor, circle), "info (outcome unknown)"})
	if nPending > 0 {
		out.Legend = append(out.Legend, legendItem{glyphIcon(infoColor, circle),
			fmt.Sprintf("info, never completed (%d): drawn on the top edge at invocation time", nPending)})
	}
	for _, f := range names {
		out.Legend = append(out.Legend, legendItem{glyphIcon(inkColor, shape[f]), f})
	}
	if len(tl.faults) > 0 {
		out.Legend = append(out.Legend, legendItem{bandIcon(), "fault window"})
	}
	if stride > 1 {
		out.Note = fmt.Sprintf("Showing every %d%s ok operation (%d of %d); every fail and info operation is shown.",
			stride, ordinalSuffix(stride), nOK/stride, nOK)
	}
	out.Note = strings.TrimSpace(out.Note + " " + labels.note())
	return out, nil
}

func throughputPlot(tl timeline) (plotted, error) {
	// 1 s buckets; the last one runs to the end of the test, and a sliver
	// shorter than a quarter second joins the bucket before it rather than
	// show a rate from a handful of ops.
	n := int(tl.end)
	if n == 0 || tl.end-float64(n) >= 0.25 {
		n++
	}
	counts := map[history.Type][]float64{}
	for _, t := range outcomes {
		counts[t] = make([]float64, n)
	}
	for _, op := range tl.ops {
		if op.Pending() {
			continue
		}
		if c, ok := counts[op.Type()]; ok {
			c[min(int(seconds(op.Complete.Time)), n-1)]++
		}
	}
	p := newPlot("seconds since test start (operation completed)", "operations per second")
	p.Add(&bands{ws: tl.faults, end: tl.end})
	p.Add(yGrid())
	peak := 0.0
	for _, t := range outcomes {
		xys := make(plotter.XYs, n)
		for i, c := range counts[t] {
			width := 1.0
			if i == n-1 && tl.end > float64(i) {
				width = tl.end - float64(i)
			}
			xys[i] = plotter.XY{X: float64(i) + width/2, Y: c / width}
			peak = max(peak, xys[i].Y)
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return plotted{}, fmt.Errorf("throughput plot: %w", err)
		}
		l.LineStyle = draw.LineStyle{Color: outcomeColor[t], Width: 1.3}
		p.Add(l)
	}
	labels := &bands{ws: tl.faults, end: tl.end, labels: true}
	p.Add(labels)
	p.X.Min, p.X.Max = 0, tl.end
	p.Y.Min, p.Y.Max = 0, max(1, peak*1.3)

	svg, err := render(p, "throughput over time")
	if err != nil {
		return plotted{}, fmt.Errorf("throughput plot: %w", err)
	}
	out := plotted{SVG: svg, Legend: []legendItem{
		{lineIcon(okColor), "ok"}, {lineIcon(failColor), "fail"}, {lineIcon(infoColor), "info"},
	}}
	if len(tl.faults) > 0 {
		out.Legend = append(out.Legend, legendItem{bandIcon(), "fault window"})
	}
	out.Note = strings.TrimSpace("Completions per 1 s bucket, by completion time; info operations that never completed are not counted. " + labels.note())
	return out, nil
}

func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, sty := range []*text.Style{&p.X.Label.TextStyle, &p.Y.Label.TextStyle} {
		sty.Font = font.From(sans, 11)
	}
	for _, sty := range []*text.Style{&p.X.Tick.Label, &p.Y.Tick.Label} {
		sty.Font = font.From(sans, 10)
	}
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Marker = linTicks{10}
	p.Y.Tick.Marker = linTicks{5}
	return p
}

func yGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = nil
	g.Horizontal.Color = gridColor
	g.Horizontal.Width = 0.5
	return g
}

// render draws p as SVG ready to sit inside HTML: without the XML prolog,
// and with an opening tag sized in CSS pixels that scales down with the page.
func render(p *plot.Plot, label string) (template.HTML, error) {
	c := vgsvg.New(plotW, plotH)
	p.Draw(draw.New(c))
	return svgFragment(c, label)
}

func svgFragment(c *vgsvg.Canvas, label string) (template.HTML, error) {
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	i := strings.Index(s, "<svg")
	j := strings.Index(s[max(i, 0):], ">")
	if i < 0 || j < 0 {
		return "", fmt.Errorf("gonum wrote no <svg> element")
	}
	w, h := c.Size()
	tag := fmt.Sprintf(`<svg viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`,
		w.Points(), h.Points(), w.Points()*4/3, h.Points()*4/3, template.HTMLEscapeString(label))
	return template.HTML(tag + s[i+j+1:]), nil
}

func glyphIcon(c color.Color, shape draw.GlyphDrawer) template.HTML {
	cv := vgsvg.New(9, 9)
	dc := draw.New(cv)
	dc.DrawGlyph(draw.GlyphStyle{Color: c, Radius: 3, Shape: shape}, vg.Point{X: 4.5, Y: 4.5})
	s, err := svgFragment(cv, "")
	if err != nil {
		return ""
	}
	return s
}

func lineIcon(c color.Color) template.HTML {
	r, g, b, _ := c.RGBA()
	return template.HTML(fmt.Sprintf(`<svg width="18" height="10"><line x1="1" y1="5" x2="17" y2="5" stroke="#%02x%02x%02x" stroke-width="2"/></svg>`,
		r>>8, g>>8, b>>8))
}

func bandIcon() template.HTML {
	return `<svg width="14" height="12"><rect width="14" height="12" fill="#808080" fill-opacity="0.19"/></svg>`
}

func ordinalSuffix(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return "th"
	case n%10 == 1:
		return "st"
	case n%10 == 2:
		return "nd"
	case n%10 == 3:
		return "rd"
	}
	return "th"
}

// bands shades the fault windows across the whole height of the data area,
// or, with labels set, names each at the top. The labels are a second
// plotter, added last, so that they stay readable over the points.
type bands struct {
	ws     []history.Window
	end    float64
	labels bool
	// unlabelled counts the windows whose label found no free row.
	unlabelled int
}

// labelRows is how many rows of fault labels a plot gives up to its top:
// a long run's hundred windows would otherwise stack over the data.
const labelRows = 3

func (b *bands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := text.Style{Color: inkColor, Font: font.From(sans, 8), Handler: plot.DefaultTextHandler}
	lineH := sty.FontExtents().Height + 2
	// Labels of windows too close together go on lower rows instead of
	// over each other; rowEnd is where the last label on each row ends.
	var rowEnd []vg.Length
	for _, w := range b.ws {
		stop := b.end
		if w.Stop >= 0 {
			stop = seconds(w.Stop)
		}
		x0 := max(trX(seconds(w.Start)), c.Min.X)
		x1 := min(trX(stop), c.Max.X)
		if x1 < x0 {
			continue
		}
		if !b.labels {
			// A zero-length window still deserves a visible line.
			x1 = max(x1, x0+1)
			c.FillPolygon(bandColor, rect(x0, c.Min.Y, x1, c.Max.Y))
			continue
		}

		label := w.Fault
		if len(w.Nodes) > 0 {
			label += " " + strings.Join(w.Nodes, ",")
		}
		width := sty.Width(label)
		x := max(c.Min.X, min(x0+2, c.Max.X-width))
		row := 0
		for row < len(rowEnd) && rowEnd[row] > x {
			row++
		}
		if row == labelRows {
			b.unlabelled++
			continue
		}
		if row == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[row] = x + width + 4
		// Start below the top edge, which belongs to the never-completed ops.
		y := c.Max.Y - 7 - lineH*vg.Length(row+1)
		c.FillPolygon(labelBackground, rect(x-1, y-1, x+width+1, y+lineH-2))
		c.FillText(sty, vg.Point{X: x, Y: y}, label)
	}
}

// note says how many windows went unlabelled, once the plot is drawn.
func (b *bands) note() string {
	if b.unlabelled == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d fault windows are shaded without a label, which had no room; the fault windows table lists each.", b.unlabelled, len(b.ws))
}

func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// linTicks puts about n labelled ticks at round numbers (1, 2 or 5 times a
// power of ten apart) with an unlabelled tick between each two.
type linTicks struct{ n int }

func (t linTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 4, 64)}}
	}
	span := hi - lo
	e := math.Floor(math.Log10(span / float64(t.n)))
	step := math.Pow(10, e)
	for _, m := range []float64{2, 5, 10} {
		c := m * math.Pow(10, e)
		if math.Abs(span/c-float64(t.n)) < math.Abs(span/step-float64(t.n)) {
			step = c
		}
	}
	prec := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for i := math.Ceil(lo / step * 2); i/2*step <= hi*(1+1e-9); i++ {
		v := i / 2 * step
		tk := plot.Tick{Value: v}
		if math.Mod(i, 2) == 0 {
			tk.Label = strconv.FormatFloat(v, 'f', prec, 64)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// logTicks labels a log axis at powers of ten when it spans many decades,
// and also at 2 and 5 times them, or at every tick, when it spans few, so
// the axis always has a few readable labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	e0, e1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	labelled := map[int]bool{1: true}
	switch decades := math.Log10(hi / lo); {
	case decades <= 1.2:
		for m := 2; m <= 9; m++ {
			labelled[m] = true
		}
	case decades <= 2.5:
		labelled[2], labelled[5] = true, true
	}
	var ticks []plot.Tick
	for e := e0; e <= e1; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if labelled[m] {
				t.Label = strconv.FormatFloat(v, 'f', max(0, -e), 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
