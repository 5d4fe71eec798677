package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// GateFile is a nightly gate's summary of itself, beside its batch.json:
// small, so that a later gate can show this night's verdicts and latency
// without reading every run of every night.
const GateFile = "gate.json"

// Nights is how many nights, this one included, a gate's page shows the
// history of.
const Nights = 14

// Gate is the summary of one nightly gate.
type Gate struct {
	Started time.Time       `json:"started"`
	Verdict checker.Verdict `json:"verdict"`
	// Shard is "i/n" for one shard's part of a gate; only whole gates (a
	// nightly without --shard, or a merge) make a night of the history.
	Shard     string    `json:"shard,omitempty"`
	Scenarios []GateRun `json:"scenarios"`
}

// GateRun is one scenario's run in a gate.
type GateRun struct {
	// Name is the run's test name (kvnode-3n-register-kill-leader), the
	// same every night: the key of the scenario's history.
	Name     string `json:"name"`
	Target   string `json:"target"` // with the version, "etcd v3.6.16"
	Nodes    int    `json:"nodes"`
	Workload string `json:"workload"`
	Nemesis  string `json:"nemesis"`
	// Run is the run's folder relative to the gate's.
	Run     string          `json:"run"`
	Verdict checker.Verdict `json:"verdict"`
	// P99 is the p99 latency in milliseconds of all its ok operations;
	// absent when none was ok.
	P99 *float64 `json:"p99_ms,omitempty"`
}

// group is the scenario a run is of, whatever the target and size: its
// workload under its nemesis. The trend plots draw one per group.
func (g GateRun) group() string { return g.Workload + " under " + g.Nemesis }

// series is the line a run's trend is on within its group.
func (g GateRun) series() string { return fmt.Sprintf("%s, %d members", g.Target, g.Nodes) }

// gateOf summarises the gate batch b of folder dir from its runs' results.
// A run that could not run has no results, and is not in it: its night
// shows no cell for it.
func gateOf(dir string, b Batch) (Gate, error) {
	g := Gate{Started: b.Started, Shard: b.Shard}
	var verdicts []checker.Verdict
	for _, rel := range b.Runs {
		r, err := rundir.Read(filepath.Join(dir, rel))
		if err != nil {
			return Gate{}, fmt.Errorf("gate run %s: %w", rel, err)
		}
		c := r.Config
		run := GateRun{Name: c.Name, Target: strings.TrimSpace(c.Target + " " + c.Version), Nodes: c.Nodes, Workload: c.Workload,
			Nemesis: c.Nemesis, Run: filepath.ToSlash(rel), Verdict: r.Verdict}
		if all, ok := opStats(r.Stats, []string{checker.All}); ok && all.OK > 0 {
			p99 := all.Latency.P99
			run.P99 = &p99
		}
		g.Scenarios = append(g.Scenarios, run)
		verdicts = append(verdicts, r.Verdict)
	}
	if len(b.Failed) > 0 {
		verdicts = append(verdicts, checker.Unknown)
	}
	g.Verdict = checker.Worst(verdicts...)
	return g, nil
}

// writeGate saves the gate's summary beside its batch and adds the
// history of the nights before it to its page.
func writeGate(dir string, b Batch, pg *batchPage) error {
	g, err := gateOf(dir, b)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := rundir.WriteFile(filepath.Join(dir, GateFile), append(out, '\n')); err != nil {
		return err
	}
	if b.Shard != "" {
		// A shard is part of a night, not one: its merge has the history.
		return nil
	}
	return addHistory(pg, pastNights(dir, g))
}

// readGate reads the summary of the gate in folder dir: its gate.json, or,
// for a gate from before summaries were kept, one made from its batch and
// runs. ok is false when dir holds no nightly gate.
func readGate(dir string) (g Gate, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, GateFile))
	if err == nil {
		if err := json.Unmarshal(b, &g); err != nil {
			return Gate{}, false, fmt.Errorf("%s: %w", filepath.Join(dir, GateFile), err)
		}
		return g, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Gate{}, false, err
	}
	batch, err := ReadBatch(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && batch.Kind != KindNightly {
		return Gate{}, false, nil
	}
	if err != nil {
		return Gate{}, false, err
	}
	g, err = gateOf(dir, batch)
	return g, err == nil, err
}

// night is one gate of a history, and its folder relative to the folder
// that holds the gates.
type night struct {
	Gate
	folder string
}

// pastNights is the whole gates in the folders beside dir (results/nightly/*)
// that started before g, oldest first, then g itself (in dir): the last
// Nights of them. A folder whose gate does not read is left out: one
// broken night must not hide the others.
func pastNights(dir string, g Gate) []night {
	parent := filepath.Dir(dir)
	ents, _ := os.ReadDir(parent)
	var out []night
	for _, e := range ents {
		if !e.IsDir() || e.Name() == filepath.Base(dir) {
			continue
		}
		o, ok, err := readGate(filepath.Join(parent, e.Name()))
		if err != nil || !ok || o.Shard != "" || !o.Started.Before(g.Started) {
			continue
		}
		out = append(out, night{o, e.Name()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	out = append(out, night{g, filepath.Base(dir)})
	return out[max(0, len(out)-Nights):]
}

// nightCell is one scenario's verdict on one night, as the gate's table
// shows it: a coloured cell linking to that night's run.
type nightCell struct {
	Href, Verdict, Title string
}

// nightHead heads a night's column.
type nightHead struct {
	Label, Title string
}

// nightLabel is how a night is named under its column and on the plots'
// x axis.
func nightLabel(t time.Time) string { return t.UTC().Format("01-02") }

// addHistory fills in the gate page's history: per row the scenario's
// verdict each night, and the p99 trend per scenario group.
func addHistory(pg *batchPage, nights []night) error {
	for _, n := range nights {
		pg.Nights = append(pg.Nights, nightHead{Label: nightLabel(n.Started), Title: n.Started.UTC().Format("2006-01-02 15:04 MST") + ": " + verdictClass(n.Verdict)})
	}
	for i := range pg.Rows {
		row := &pg.Rows[i]
		for k, n := range nights {
			cell := nightCell{Verdict: "none", Title: pg.Nights[k].Label + ": not run"}
			for _, s := range n.Scenarios {
				if s.Name != row.Name {
					continue
				}
				cell.Verdict = verdictClass(s.Verdict)
				cell.Title = pg.Nights[k].Label + ": " + cell.Verdict
				// From this gate's page (results/nightly/<night>/index.html)
				// to the night's run.
				cell.Href = path.Join("..", n.folder, s.Run, rundir.ReportFile)
				if k == len(nights)-1 {
					cell.Href = path.Join(s.Run, rundir.ReportFile)
				}
			}
			row.History = append(row.History, cell)
		}
	}
	var groups []string
	rows := map[string][]sweepRow{}
	for k, n := range nights {
		for _, s := range n.Scenarios {
			if s.P99 == nil {
				continue
			}
			g := s.group()
			if _, ok := rows[g]; !ok {
				groups = append(groups, g)
			}
			rows[g] = append(rows[g], sweepRow{Series: s.series(), Nodes: k, Read: &opLatency{F: checker.All, OK: true, P99: *s.P99}})
		}
	}
	sort.Strings(groups)
	labels := make([]string, len(nights))
	for k, n := range nights {
		labels[k] = nightLabel(n.Started)
	}
	axis := xAxis{label: "night (UTC)", against: "over the last nights",
		at:    func(r sweepRow) int { return r.Nodes },
		ticks: func(lo, hi int) plot.Ticker { return nightTicks(labels) }}
	p99 := func(r sweepRow) (float64, bool) { return r.Read.P99, true }
	for _, g := range groups {
		p, ok, err := linesPlot(rows[g], axis, "p99 latency, "+g, "p99 latency of ok operations (ms)", []sizeValue{p99})
		if err != nil {
			return err
		}
		if ok {
			pg.Plots = append(pg.Plots, titledPlot{Title: "p99 latency over the nights: " + g, plotted: p})
		}
	}
	return nil
}

// nightTicks labels each night's position on the x axis with its date.
type nightTicks []string

func (t nightTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for i, l := range t {
		if float64(i) >= lo && float64(i) <= hi {
			out = append(out, plot.Tick{Value: float64(i), Label: l})
		}
	}
	return out
}
