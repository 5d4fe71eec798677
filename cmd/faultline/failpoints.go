package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/faultline/faultline/compose"
)

const failpointsUsage = `usage: faultline failpoints --target etcd|kvnode [--etcd-version v3.6.x]

Lists the gofail failpoints declared in the source of a target's release:
one per line, sorted by name, with the value type a term may inject
(struct{} or string) and the file and line of the marker. For etcd the file
is relative to its server module (go.etcd.io/etcd/server/v3), whose source
comes from the Go module cache, or the module proxy when it is not there
yet; for kvnode it is relative to this checkout. kvnode's points carry the
names of etcd's that mean the same (raftBeforeSave, raftAfterSaveSnap, …).
`

func failpointsCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline failpoints", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), failpointsUsage); fs.PrintDefaults() }
	target := fs.String("target", "etcd", "the store whose failpoints to list: etcd or kvnode")
	version := fs.String("etcd-version", compose.DefaultEtcdVersion, "etcd release (v3.5.x, v3.6.x, v3.7.x)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	switch {
	case fs.NArg() > 0:
		return exitError, fmt.Errorf("unexpected argument %q: give the release with --etcd-version", fs.Arg(0))
	}
	t, err := compose.ParseTarget(*target, *version)
	if err != nil {
		return exitError, err
	}
	var root, prefix string
	if t.Name == "kvnode" {
		if root, err = findSource(); err != nil {
			return exitError, err
		}
		prefix = compose.KvnodeFailpointDir
	}
	of := strings.TrimSpace(t.Name + " " + t.Version)
	_, points, err := compose.FailpointBuild(ctx, root, t)
	if err != nil {
		return exitError, err
	}
	if len(points) == 0 {
		return exitError, errors.New(of + " declares no gofail failpoints: its source has no // gofail: var markers")
	}
	bw := bufio.NewWriter(os.Stdout)
	tw := tabwriter.NewWriter(bw, 0, 8, 2, ' ', 0)
	for _, p := range points {
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\n", p.Name, p.Type, path.Join(prefix, p.File), p.Line)
	}
	if err := tw.Flush(); err != nil {
		return exitError, err
	}
	return 0, bw.Flush()
}
