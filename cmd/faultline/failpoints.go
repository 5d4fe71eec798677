package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/failpoint"
)

const failpointsUsage = `usage: faultline failpoints --target etcd [--etcd-version v3.6.x]

Lists the gofail failpoints declared in the source of a target's release:
one per line, sorted by name, with the value type a term may inject
(struct{} or string) and the file and line of the marker, relative to etcd's
server module (go.etcd.io/etcd/server/v3). The source comes from the Go
module cache, or the module proxy when it is not there yet. Only etcd has
failpoints today.
`

func failpointsCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline failpoints", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), failpointsUsage); fs.PrintDefaults() }
	target := fs.String("target", "etcd", "the store whose failpoints to list: etcd")
	version := fs.String("etcd-version", compose.DefaultEtcdVersion, "etcd release (v3.5.x, v3.6.x, v3.7.x)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	switch {
	case fs.NArg() > 0:
		return exitError, fmt.Errorf("unexpected argument %q: give the release with --etcd-version", fs.Arg(0))
	}
	if *target != "etcd" {
		if _, err := compose.ParseTarget(*target, *version); err != nil {
			return exitError, err
		}
		return exitError, fmt.Errorf("no failpoints for --target %s: only etcd has gofail failpoints (kvnode has none yet)", *target)
	}
	dir, err := compose.EtcdServerSource(ctx, *version)
	if err != nil {
		return exitError, err
	}
	points, err := failpoint.Scan(dir)
	if err != nil {
		return exitError, fmt.Errorf("reading etcd %s's failpoints: %w", *version, err)
	}
	if len(points) == 0 {
		return exitError, errors.New("etcd " + *version + " declares no gofail failpoints: its server module has no // gofail: var markers")
	}
	bw := bufio.NewWriter(os.Stdout)
	tw := tabwriter.NewWriter(bw, 0, 8, 2, ' ', 0)
	for _, p := range points {
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\n", p.Name, p.Type, p.File, p.Line)
	}
	if err := tw.Flush(); err != nil {
		return exitError, err
	}
	return 0, bw.Flush()
}
