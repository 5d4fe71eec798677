package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/bench"
	"github.com/faultline/faultline/compose"
)

const benchUsage = `usage: faultline bench [flags]

Puts fixed-size values into a cluster of each target as fast as they are
acknowledged, in alternating rounds so that both see the same machine, and
prints throughput and latency per target, their medians over the rounds,
and the ratios of the first target to the second. With --disk it compares
one target on faultline's filesystem layer (the one disk faults need)
against the same target on the plain disk, and the ratios are layer/plain.
`

func benchCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	targets := fs.String("targets", "kvnode,etcd", "targets to compare, comma-separated: "+compose.TargetUsage)
	version := fs.String("etcd-version", compose.DefaultEtcdVersion, "etcd release")
	nodes := fs.Int("nodes", 3, "cluster members")
	load := bench.Load{}
	fs.IntVar(&load.Clients, "clients", 64, "concurrent writers")
	fs.IntVar(&load.Conns, "conns", 8, "connections the writers share")
	fs.IntVar(&load.ValueSize, "value-size", 256, "bytes per value")
	fs.IntVar(&load.Keys, "keys", 10000, "distinct keys written")
	fs.DurationVar(&load.Warmup, "warmup", 3*time.Second, "unmeasured time before each round")
	fs.DurationVar(&load.Duration, "duration", 10*time.Second, "measured time of each round")
	fs.DurationVar(&load.Timeout, "timeout", 5*time.Second, "timeout of one put")
	rounds := fs.Int("rounds", 5, "rounds per target; medians are reported")
	disk := fs.Bool("disk", false, "compare the one target on the filesystem layer of the disk faults with it on the plain disk")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	names := split(*targets)
	var problems []string
	if len(names) == 0 {
		problems = append(problems, "--targets: name at least one target")
	}
	if *nodes < 1 || *nodes > compose.MaxNodes {
		problems = append(problems, fmt.Sprintf("--nodes %d: want 1 to %d", *nodes, compose.MaxNodes))
	}
	if load.Clients < 1 || load.Conns < 1 || load.ValueSize < 0 || load.Keys < 1 || *rounds < 1 ||
		load.Duration <= 0 || load.Timeout <= 0 || load.Warmup < 0 {
		problems = append(problems, "--clients, --conns, --keys and --rounds want at least 1, --duration and --timeout a positive duration")
	}
	var ts []compose.Target
	for _, n := range names {
		v := ""
		if n == "etcd" {
			v = *version
		}
		t, err := compose.ParseTarget(n, v)
		if err != nil {
			problems = append(problems, "--targets: "+err.Error())
		}
		ts = append(ts, t)
	}
	// Each cluster to measure: a target, on the layer or not.
	type variant struct {
		target compose.Target
		disk   bool
	}
	var vs []variant
	for _, t := range ts {
		vs = append(vs, variant{target: t})
	}
	if *disk {
		if len(ts) != 1 {
			problems = append(problems, fmt.Sprintf("--disk compares one target with and without the filesystem layer: give --targets one target, not %d", len(ts)))
		} else if err := compose.DiskNeeds(compose.Docker); err != nil {
			problems = append(problems, "--disk: "+err.Error())
		}
		vs = []variant{{target: ts[0], disk: true}, {target: ts[0]}}
	}
	if len(problems) > 0 {
		return exitError, errors.New(strings.Join(problems, "\n  "))
	}
	labels := make([]string, len(vs))
	for i, v := range vs {
		labels[i] = label(v.target)
		if v.disk {
			labels[i] += " on diskfs"
		}
	}

	docker, err := compose.NewDocker(ctx)
	if err != nil {
		return exitError, err
	}
	defer docker.Close()
	wd, _ := os.Getwd()
	root, err := compose.FindRoot(wd)
	if err != nil {
		return exitError, err
	}
	// Every cluster runs for the whole benchmark; rounds alternate between
	// them, so a slow spell of the machine hits all targets alike.
	clusters := make([]*compose.Cluster, len(vs))
	defer func() {
		for _, c := range clusters {
			if c != nil {
				c.Down(context.WithoutCancel(ctx))
			}
		}
	}()
	for i, v := range vs {
		fmt.Fprintf(os.Stderr, "faultline: building and starting %d %s members\n", *nodes, labels[i])
		image, err := compose.Image(ctx, docker, root, v.target)
		if err != nil {
			return exitError, err
		}
		clusters[i], err = compose.Up(ctx, docker, compose.Config{RunID: "bench-" + compose.NewRunID(), Target: v.target, Image: image,
			Nodes: *nodes, Disk: v.disk})
		if err != nil {
			return exitError, err
		}
	}
	results := make([][]bench.Result, len(vs))
	for r := range *rounds {
		for i, c := range clusters {
			fmt.Fprintf(os.Stderr, "faultline: round %d of %d: %s\n", r+1, *rounds, labels[i])
			res, err := bench.Run(ctx, load, func() (*clientv3.Client, error) { return c.Client() })
			if err != nil {
				return exitError, fmt.Errorf("benchmarking %s: %w", labels[i], err)
			}
			results[i] = append(results[i], res)
		}
	}
	printBench(os.Stdout, labels, results, load, *nodes)
	return exitValid, nil
}

// printBench prints every round, the medians and the ratios of the first
// target to the second.
func printBench(w io.Writer, labels []string, results [][]bench.Result, l bench.Load, nodes int) {
	fmt.Fprintf(w, "puts of %d-byte values, %d clients over %d connections, %d members, %s per round\n\n",
		l.ValueSize, l.Clients, l.Conns, nodes, l.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\tputs/s\tp50\tp99\tmax\terrors\t")
	medians := make([]bench.Result, len(labels))
	for i, rs := range results {
		for r, res := range rs {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", labels[i], r+1, res.Throughput, ms(res.P50), ms(res.P99), ms(res.Max), res.Errors)
		}
		medians[i] = median(rs)
		m := medians[i]
		fmt.Fprintf(tw, "%s\tmedian\t%.0f\t%s\t%s\t\t\t\n", labels[i], m.Throughput, ms(m.P50), ms(m.P99))
	}
	tw.Flush()
	if len(labels) >= 2 {
		a, b := medians[0], medians[1]
		fmt.Fprintf(w, "\n%s / %s (medians): throughput %.2fx, p50 %.2fx, p99 %.2fx\n", labels[0], labels[1],
			a.Throughput/b.Throughput, float64(a.P50)/float64(b.P50), float64(a.P99)/float64(b.P99))
	}
}

// median takes each measure's median on its own: the rounds are noisy and
// the middle value of each is what a reader can trust.
func median(rs []bench.Result) bench.Result {
	mid := func(vs []float64) float64 {
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	var tp, p50, p99 []float64
	for _, r := range rs {
		tp, p50, p99 = append(tp, r.Throughput), append(p50, float64(r.P50)), append(p99, float64(r.P99))
	}
	return bench.Result{Throughput: mid(tp), P50: time.Duration(mid(p50)), P99: time.Duration(mid(p99))}
}

func label(t compose.Target) string { return strings.TrimSpace(t.Name + " " + t.Version) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
