package reports

import (
	"bytes"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// Entry is one run in the index of a results folder.
type Entry struct {
	// Path is the run directory relative to the results root, with
	// forward slashes, as a link wants it.
	Path     string
	Started  time.Time
	Config   rundir.Config
	Verdict  checker.Verdict
	Duration rundir.Duration
}

// Index lists every run under root (any folder holding a results.json),
// newest first. A results.json that does not parse is skipped: one broken
// run must not hide the others.
func Index(root string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// results/latest points at a run that is listed anyway.
			return nil
		}
		if d.IsDir() || d.Name() != rundir.ResultsFile {
			return nil
		}
		dir := filepath.Dir(p)
		r, err := rundir.Read(dir)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, dir)
		out = append(out, Entry{Path: filepath.ToSlash(rel), Started: r.Started, Config: r.Config, Verdict: r.Verdict, Duration: r.Duration})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}

type indexRow struct {
	Entry
	Report, When, Verdict, Took string
}

// indexLink is a page that spans runs: a sweep, a comparison or a nightly gate.
type indexLink struct {
	Href    template.URL
	Title   string
	Started time.Time
	Runs    int
	// Verdict is a nightly gate's, its worst run's; empty for other pages.
	Verdict string
}

func (l indexLink) When() string { return l.Started.UTC().Format("2006-01-02 15:04:05") }

type indexPage struct {
	Runs  []indexRow
	Pages []indexLink
}

// WriteIndex renders the index of everything under root: pages that span
// runs (sweeps, comparisons, nightly gates), then every run, newest first. Links are
// relative to root, so the page works served or opened from disk.
func WriteIndex(w io.Writer, root string) error {
	entries, err := Index(root)
	if err != nil {
		return err
	}
	rows := make([]indexRow, len(entries))
	for i, e := range entries {
		rows[i] = indexRow{Entry: e, Report: e.Path + "/" + rundir.ReportFile,
			When: e.Started.UTC().Format("2006-01-02 15:04:05"), Verdict: verdictClass(e.Verdict),
			Took: durationText(e.Duration)}
		if strings.Contains(e.Config.Workload, ",") {
			rows[i].Config.Workload = strings.ReplaceAll(e.Config.Workload, ",", ", ")
		}
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "index.html.tmpl", indexPage{Runs: rows, Pages: batchLinks(root)}); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// WriteIndexFile writes root/index.html listing everything under root.
func WriteIndexFile(root string) error {
	var buf bytes.Buffer
	if err := WriteIndex(&buf, root); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	return rundir.WriteFile(filepath.Join(root, "index.html"), buf.Bytes())
}
