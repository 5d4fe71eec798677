package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// Operation names that stand for reads and writes: the register's, then
// the kv workload's single-key ones; the first a run has is used.
var (
	readOps  = []string{"read", "kv-get", "kv-get-serializable"}
	writeOps = []string{"write", "kv-put"}
)

var seriesColors = []color.Color{
	color.NRGBA{0x1f, 0x77, 0xb4, 0xff}, color.NRGBA{0xd6, 0x27, 0x28, 0xff},
	color.NRGBA{0x2c, 0xa0, 0x2c, 0xff}, color.NRGBA{0x94, 0x67, 0xbd, 0xff},
	color.NRGBA{0xff, 0x7f, 0x0e, 0xff}, color.NRGBA{0x8c, 0x56, 0x4b, 0xff},
	color.NRGBA{0xe3, 0x77, 0xc2, 0xff}, color.NRGBA{0x17, 0xbe, 0xcf, 0xff},
}

type sweepRow struct {
	Link, Name, Series                   string
	Nodes                                int
	Verdict                              string
	Throughput                           float64
	ReadP50, ReadP99, WriteP50, WriteP99 float64
}

type batchPage struct {
	Batch
	When    string
	Verdict string
	Passed  int
	Rows    []sweepRow
	Plots   []titledPlot
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
	for _, p := range s.Runs {
		r, err := rundir.Read(filepath.Join(dir, p))
		if err != nil {
			return fmt.Errorf("sweep run %s: %w", p, err)
		}
		row := sweepRow{Link: filepath.ToSlash(p) + "/" + rundir.ReportFile, Name: r.Config.Name, Series: seriesKey(r.Config),
			Nodes: r.Config.Nodes, Verdict: verdictClass(r.Verdict)}
		if all, ok := opStats(r.Stats, []string{checker.All}); ok {
			row.Throughput = all.Throughput
		}
		if rd, ok := opStats(r.Stats, readOps); ok {
			row.ReadP50, row.ReadP99 = rd.Latency.P50, rd.Latency.P99
		}
		if wr, ok := opStats(r.Stats, writeOps); ok {
			row.WriteP50, row.WriteP99 = wr.Latency.P50, wr.Latency.P99
		}
		pg.Rows = append(pg.Rows, row)
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
	if s.Kind != KindSweep {
		return writePage(dir, "batch.html.tmpl", pg)
	}
	sort.SliceStable(pg.Rows, func(i, j int) bool {
		if pg.Rows[i].Series != pg.Rows[j].Series {
			return pg.Rows[i].Series < pg.Rows[j].Series
		}
		return pg.Rows[i].Nodes < pg.Rows[j].Nodes
	})
	for _, spec := range []struct {
		title, ylabel string
		lines         []func(sweepRow) float64
	}{
		{"Read latency", "read latency (ms)", []func(sweepRow) float64{
			func(r sweepRow) float64 { return r.ReadP50 }, func(r sweepRow) float64 { return r.ReadP99 }}},
		{"Write latency", "write latency (ms)", []func(sweepRow) float64{
			func(r sweepRow) float64 { return r.WriteP50 }, func(r sweepRow) float64 { return r.WriteP99 }}},
		{"Throughput", "ok operations per second", []func(sweepRow) float64{
			func(r sweepRow) float64 { return r.Throughput }}},
	} {
		p, err := sizePlot(pg.Rows, spec.title, spec.ylabel, spec.lines)
		if err != nil {
			return err
		}
		pg.Plots = append(pg.Plots, titledPlot{Title: spec.title, plotted: p})
	}
	return writePage(dir, "batch.html.tmpl", pg)
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

// sizePlot draws one line per series against cluster size: the first value
// function solid (p50), a second one dashed (p99).
func sizePlot(rows []sweepRow, title, ylabel string, values []func(sweepRow) float64) (plotted, error) {
	p := newPlot("cluster members", ylabel)
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
	peak, minN, maxN := 0.0, 9, 1
	for i, s := range series {
		c := seriesColors[i%len(seriesColors)]
		for j, v := range values {
			var xys plotter.XYs
			for _, r := range bySeries[s] {
				xys = append(xys, plotter.XY{X: float64(r.Nodes), Y: v(r)})
				peak = max(peak, v(r))
				minN, maxN = min(minN, r.Nodes), max(maxN, r.Nodes)
			}
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return plotted{}, fmt.Errorf("%s plot: %w", title, err)
			}
			l.LineStyle = draw.LineStyle{Color: c, Width: 1.5}
			if j == 1 {
				l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: 2.5, Shape: draw.CircleGlyph{}}
			p.Add(l, pts)
		}
		out.Legend = append(out.Legend, legendItem{lineIcon(c), s})
	}
	p.X.Min, p.X.Max = float64(minN)-0.5, float64(maxN)+0.5
	p.X.Tick.Marker = linTicks{maxN - minN + 1}
	p.Y.Min, p.Y.Max = 0, max(1, peak*1.15)
	svg, err := render(p, strings.ToLower(title)+" against cluster size")
	if err != nil {
		return plotted{}, fmt.Errorf("%s plot: %w", title, err)
	}
	out.SVG = svg
	if len(values) > 1 {
		out.Note = "Solid: median (p50). Dashed: p99. Ok operations only."
	}
	return out, nil
}

// batchLinks lets the run index link batches: the folders under root that
// hold a batch.json, relative to root.
func batchLinks(root string) []indexLink {
	matches, _ := filepath.Glob(filepath.Join(root, "*", "*", BatchFile))
	var out []indexLink
	for _, m := range matches {
		s, err := ReadBatch(filepath.Dir(m))
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(root, filepath.Dir(m))
		out = append(out, indexLink{Href: template.URL(filepath.ToSlash(rel) + "/" + rundir.ReportFile),
			Title: s.Title, Started: s.Started, Runs: len(s.Runs) + len(s.Failed)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out
}
