package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// BatchFile marks a folder as a batch and lists its runs.
const BatchFile = "batch.json"

// Kinds of batch.
const (
	// KindSweep runs one workload at several cluster sizes, per target,
	// read mode and nemesis; its page plots against cluster size.
	KindSweep = "sweep"
	// KindNightly runs the nightly gate's matrix of scenarios.
	KindNightly = "nightly"
)

// Batch is a set of runs made by one command, with one page over them all.
type Batch struct {
	Kind    string    `json:"kind"`
	Title   string    `json:"title"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	// Runs are run directories relative to the batch's folder.
	Runs []string `json:"runs"`
	// Failed names the runs that could not run at all, with the reason.
	Failed []string `json:"failed,omitempty"`
	// Shard is "i/n" when the batch ran only every n-th run of its
	// matrix, starting at the i-th: a merge needs all n to cover it.
	Shard string `json:"shard,omitempty"`
}

// Operation names that stand for reads and writes in the sweep's plots:
// the register's, then the kv workload's single-key ones, then the
// kubernetes and lease workloads'; the first a run has ok ones of is used.
var (
	readOps      = []string{"read", "kv-get", "kv-get-serializable"}
	writeOps     = []string{"write", "kv-put"}
	plotReadOps  = append(slices.Clone(readOps), checker.K8sGet, checker.K8sRead, checker.LeaseRead)
	plotWriteOps = append(slices.Clone(writeOps), checker.K8sUpdate, checker.LeasePut)
)

var seriesColors = []color.Color{
	color.NRGBA{0x1f, 0x77, 0xb4, 0xff}, color.NRGBA{0xd6, 0x27, 0x28, 0xff},
	color.NRGBA{0x2c, 0xa0, 0x2c, 0xff}, color.NRGBA{0x94, 0x67, 0xbd, 0xff},
	color.NRGBA{0xff, 0x7f, 0x0e, 0xff}, color.NRGBA{0x8c, 0x56, 0x4b, 0xff},
	color.NRGBA{0xe3, 0x77, 0xc2, 0xff}, color.NRGBA{0x17, 0xbe, 0xcf, 0xff},
}

type sweepRow struct {
	Link, Name, Series string
	Nodes              int
	Verdict            string
	Throughput         float64
	// Measured: the run has statistics to take a throughput from.
	Measured bool
	// Ops are the latencies of every operation the run's workload made.
	Ops []opLatency
	// Read and Write are the plotted ones; nil when the run had none ok.
	Read, Write *opLatency
	// History is a gate's scenario on each of the last nights, oldest
	// first, this one last.
	History []nightCell
}

// opLatency is one operation's latency as a table shows it: a run that
// had none of it ok has no latency, which the table says as "—", never
// as a zero.
type opLatency struct {
	F        string
	OK       bool
	P50, P99 float64
}

// Text is "p50 / p99" in milliseconds, or "—" when there is no latency.
func (o opLatency) Text() string {
	if !o.OK {
		return "—"
	}
	return fmt.Sprintf("%.2f / %.2f", o.P50, o.P99)
}

// opLatencies lists the latency of every operation of st but the "all"
// row, in st's order (by name).
func opLatencies(st checker.Stats) []opLatency {
	var out []opLatency
	for _, o := range st.Ops {
		if o.F != checker.All {
			out = append(out, opLatency{F: o.F, OK: o.OK > 0, P50: o.Latency.P50, P99: o.Latency.P99})
		}
	}
	return out
}

// firstOK is the first of names that ops has ok operations of, or nil.
func firstOK(ops []opLatency, names []string) *opLatency {
	for _, n := range names {
		for i := range ops {
			if ops[i].F == n && ops[i].OK {
				return &ops[i]
			}
		}
	}
	return nil
}

type batchPage struct {
	Batch
	When    string
	Verdict string
	Passed  int
	Rows    []sweepRow
	Plots   []titledPlot
	// Spent says where the runs' time went, overhead against testing.
	Spent string
	// Nights head a gate's history columns.
	Nights []nightHead
}

type titledPlot struct {
	Title string
	plotted
}

// seriesKey names the line a run belongs to: everything that varies in a
// sweep except the cluster size.
func seriesKey(c rundir.Config) string {
	s := c.Target
	if c.Version != "" {
		s += " " + c.Version
	}
	if c.ReadConsistency != "" {
		s += ", " + c.ReadConsistency + " reads"
	}
	return s + ", nemesis " + c.Nemesis
}

func opStats(st checker.Stats, names []string) (checker.OpStats, bool) {
	for _, n := range names {
		for _, o := range st.Ops {
			if o.F == n {
				return o, true
			}
		}
	}
	return checker.OpStats{}, false
}

// WriteBatch saves dir/batch.json and renders dir/index.html: every run
// with its verdict and, for a sweep, latency and throughput against cluster
// size, one line per series.
func WriteBatch(dir string, s Batch) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := rundir.WriteFile(filepath.Join(dir, BatchFile), append(b, '\n')); err != nil {
		return err
	}
	when := s.Started.UTC().Format("2006-01-02 15:04:05 MST")
	if s.Kind == KindCompare {
		cp := comparePage{Batch: s, When: when}
		for _, p := range s.Runs {
			col, err := compareColumn(dir, p)
			if err != nil {
				return fmt.Errorf("comparison run %s: %w", p, err)
			}
			cp.Columns = append(cp.Columns, col)
		}
		return writePage(dir, "compare.html.tmpl", cp)
	}
	pg := batchPage{Batch: s, When: when}
	var verdicts []checker.Verdict
	var phases []rundir.Phase
	for _, p := range s.Runs {
		r, err := rundir.Read(filepath.Join(dir, p))
		if err != nil {
			return fmt.Errorf("sweep run %s: %w", p, err)
		}
		row := sweepRow{Link: filepath.ToSlash(p) + "/" + rundir.ReportFile, Name: r.Config.Name, Series: seriesKey(r.Config),
			Nodes: r.Config.Nodes, Verdict: verdictClass(r.Verdict)}
		if all, ok := opStats(r.Stats, []string{checker.All}); ok {
			row.Throughput, row.Measured = all.Throughput, true
		}
		row.Ops = opLatencies(r.Stats)
		row.Read, row.Write = firstOK(row.Ops, plotReadOps), firstOK(row.Ops, plotWriteOps)
		pg.Rows = append(pg.Rows, row)
		phases = append(phases, r.Phases...)
		verdicts = append(verdicts, r.Verdict)
		if r.Verdict == checker.Valid {
			pg.Passed++
		}
	}
	if len(s.Failed) > 0 {
		// A run that could not run proves nothing.
		verdicts = append(verdicts, checker.Unknown)
	}
	pg.Verdict = verdictClass(checker.Worst(verdicts...))
	pg.Spent = spentText(phases)
	if s.Kind == KindNightly {
		if err := writeGate(dir, s, &pg); err != nil {
			return err
		}
	}
	if s.Kind != KindSweep {
		return writePage(dir, "batch.html.tmpl", pg)
	}
	sort.SliceStable(pg.Rows, func(i, j int) bool {
		if pg.Rows[i].Series != pg.Rows[j].Series {
			return pg.Rows[i].Series < pg.Rows[j].Series
		}
		return pg.Rows[i].Nodes < pg.Rows[j].Nodes
	})
	// lat draws quantile q of the run's read or write latency.
	lat := func(o func(sweepRow) *opLatency, q func(opLatency) float64) sizeValue {
		return func(r sweepRow) (float64, bool) {
			if l := o(r); l != nil {
				return q(*l), true
			}
			return 0, false
		}
	}
	p50 := func(l opLatency) float64 { return l.P50 }
	p99 := func(l opLatency) float64 { return l.P99 }
	read := func(r sweepRow) *opLatency { return r.Read }
	write := func(r sweepRow) *opLatency { return r.Write }
	for _, spec := range []struct {
		title, ylabel string
		lines         []sizeValue
	}{
		{"Read latency", "read latency (ms)", []sizeValue{lat(read, p50), lat(read, p99)}},
		{"Write latency", "write latency (ms)", []sizeValue{lat(write, p50), lat(write, p99)}},
		{"Throughput", "ok operations per second", []sizeValue{
			func(r sweepRow) (float64, bool) { return r.Throughput, r.Measured }}},
	} {
		p, ok, err := linesPlot(pg.Rows, sizeAxis, spec.title, spec.ylabel, spec.lines)
		if err != nil {
			return err
		}
		if ok {
			pg.Plots = append(pg.Plots, titledPlot{Title: spec.title + " " + sizeAxis.against, plotted: p})
		}
	}
	return writePage(dir, "batch.html.tmpl", pg)
}

// spentText sums phases by name, in the order they first come, and says
// how much of it was overhead: every phase but the test itself. It is
// empty when no run recorded its phases.
func spentText(phases []rundir.Phase) string {
	var names []string
	sum := map[string]time.Duration{}
	var total time.Duration
	for _, p := range phases {
		if _, ok := sum[p.Name]; !ok {
			names = append(names, p.Name)
		}
		sum[p.Name] += time.Duration(p.Took)
		total += time.Duration(p.Took)
	}
	if total <= 0 {
		return ""
	}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %s", n, sum[n].Round(time.Second)))
	}
	over := total - sum[rundir.PhaseTest]
	return fmt.Sprintf("%s; overhead (all but the test) %s, %.0f%% of %s", strings.Join(parts, ", "),
		over.Round(time.Second), 100*over.Seconds()/total.Seconds(), total.Round(time.Second))
}

// ReadBatch reads the batch.json of the batch folder dir.
func ReadBatch(dir string) (Batch, error) {
	var s Batch
	b, err := os.ReadFile(filepath.Join(dir, BatchFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, BatchFile), err)
	}
	return s, nil
}

func writePage(dir, tmpl string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, tmpl, data); err != nil {
		return err
	}
	return rundir.WriteFile(filepath.Join(dir, rundir.ReportFile), buf.Bytes())
}

// sizeValue is what a sweep plot draws of a run, and false when the run
// has no such value (no ok reads, say): such a run is left out of the
// line, not drawn at zero.
type sizeValue func(sweepRow) (float64, bool)

// xAxis says where linesPlot draws a run along x.
type xAxis struct {
	label, against string
	at             func(sweepRow) int
	// ticks labels the axis from its lowest to its highest value.
	ticks func(lo, hi int) plot.Ticker
}

// sizeAxis is a sweep's: the cluster size.
var sizeAxis = xAxis{label: "cluster members", against: "against cluster size",
	at: func(r sweepRow) int { return r.Nodes }, ticks: func(lo, hi int) plot.Ticker { return linTicks{hi - lo + 1} }}

// linesPlot draws one line per series along x: the first value function
// solid (p50), a second one dashed (p99). It says false when no run has a
// value to draw.
func linesPlot(rows []sweepRow, x xAxis, title, ylabel string, values []sizeValue) (plotted, bool, error) {
	p := newPlot(x.label, ylabel)
	p.Add(yGrid())
	var series []string
	bySeries := map[string][]sweepRow{}
	for _, r := range rows {
		if _, ok := bySeries[r.Series]; !ok {
			series = append(series, r.Series)
		}
		bySeries[r.Series] = append(bySeries[r.Series], r)
	}
	var out plotted
	peak, minN, maxN := 0.0, math.MaxInt, math.MinInt
	drawn := false
	for i, s := range series {
		c := seriesColors[i%len(seriesColors)]
		has := false
		for j, v := range values {
			var xys plotter.XYs
			for _, r := range bySeries[s] {
				y, ok := v(r)
				if !ok {
					continue
				}
				at := x.at(r)
				xys = append(xys, plotter.XY{X: float64(at), Y: y})
				peak = max(peak, y)
				minN, maxN = min(minN, at), max(maxN, at)
			}
			if len(xys) == 0 {
				continue
			}
			has = true
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return plotted{}, false, fmt.Errorf("%s plot: %w", title, err)
			}
			l.LineStyle = draw.LineStyle{Color: c, Width: 1.5}
			if j == 1 {
				l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: 2.5, Shape: draw.CircleGlyph{}}
			p.Add(l, pts)
		}
		if has {
			drawn = true
			out.Legend = append(out.Legend, legendItem{lineIcon(c), s})
		}
	}
	if !drawn {
		return plotted{}, false, nil
	}
	p.X.Min, p.X.Max = float64(minN)-0.5, float64(maxN)+0.5
	p.X.Tick.Marker = x.ticks(minN, maxN)
	p.Y.Min, p.Y.Max = 0, max(1, peak*1.15)
	svg, err := render(p, strings.ToLower(title)+" "+x.against)
	if err != nil {
		return plotted{}, false, fmt.Errorf("%s plot: %w", title, err)
	}
	out.SVG = svg
	if len(values) > 1 {
		out.Note = "Solid: median (p50). Dashed: p99. Ok operations only; a run with none is left out."
	}
	return out, true, nil
}

// batchLinks lets the run index link batches: the folders under root that
// hold a batch.json, relative to root, newest first; a gate with its
// verdict.
func batchLinks(root string) []indexLink {
	matches, _ := filepath.Glob(filepath.Join(root, "*", "*", BatchFile))
	var out []indexLink
	for _, m := range matches {
		s, err := ReadBatch(filepath.Dir(m))
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(root, filepath.Dir(m))
		l := indexLink{Href: template.URL(filepath.ToSlash(rel) + "/" + rundir.ReportFile),
			Title: s.Title, Started: s.Started, Runs: len(s.Runs) + len(s.Failed)}
		if g, ok, err := readGate(filepath.Dir(m)); err == nil && ok {
			l.Verdict = verdictClass(g.Verdict)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out
}
