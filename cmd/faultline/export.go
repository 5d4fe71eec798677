package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/faultline/faultline/export"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

const exportUsage = `usage: faultline export --format jepsen|porcupine [--out FILE] <run-dir>

Writes a run's history in another checker's format, for the register
workload: jepsen is Jepsen's EDN history (one operation map per line, values
as jepsen.independent [key value] tuples) for Knossos; porcupine is
a JSON array of porcupine operations (ClientId, Input, Call, Output,
Return). Written to standard output unless --out is given.
`

func exportCmd(_ context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline export", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), exportUsage); fs.PrintDefaults() }
	format := fs.String("format", "", "jepsen or porcupine")
	out := fs.String("out", "", "write to this file instead of standard output")
	// Flags may come before or after the run directory.
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitError, err
		}
		if fs.NArg() == 0 {
			break
		}
		dirs, args = append(dirs, fs.Arg(0)), fs.Args()[1:]
	}
	write, ok := export.Formats[*format]
	switch {
	case *format == "":
		return exitError, fmt.Errorf("give --format: one of %s", export.FormatNames())
	case !ok:
		return exitError, fmt.Errorf("unknown format %q: want one of %s", *format, export.FormatNames())
	case len(dirs) != 1:
		return exitError, errors.New("give one run directory, e.g. faultline export --format jepsen results/latest")
	}
	path := filepath.Join(dirs[0], rundir.HistoryFile)
	if _, err := os.Stat(path); err != nil {
		return exitError, fmt.Errorf("%s is not a run directory: it has no %s (give the folder of one run, such as results/latest)", dirs[0], rundir.HistoryFile)
	}
	events, err := history.ReadFile(path)
	if err != nil {
		return exitError, fmt.Errorf("reading the history: %w", err)
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return exitError, err
		}
		w = f
	}
	bw := bufio.NewWriter(w)
	err = write(bw, events)
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out)
		}
	}
	if err != nil {
		return exitError, fmt.Errorf("exporting %s as %s: %w", dirs[0], *format, err)
	}
	return 0, nil
}
