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
and the ratios of the first target to the second.
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
	if len(problems) > 0 {
		return exitError, errors.New(strings.Join(problems, "\n  "))
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
	clusters := make([]*compose.Cluster, len(ts))
	defer func() {
		for _, c := range clusters {
			if c != nil {
				c.Down(context.WithoutCancel(ctx))
			}
		}
	}()
	for i, t := range ts {
		fmt.Fprintf(os.Stderr, "faultline: building and starting %d %s members\n", *nodes, t.Name)
		image, err := compose.Image(ctx, docker, root, t)
		if err != nil {
			return exitError, err
		}
		clusters[i], err = compose.Up(ctx, docker, compose.Config{RunID: "bench-" + compose.NewRunID(), Target: t, Image: image, Nodes: *nodes})
		if err != nil {
			return exitError, err
		}
	}
	results := make([][]bench.Result, len(ts))
	for r := range *rounds {
		for i, c := range clusters {
			fmt.Fprintf(os.Stderr, "faultline: round %d of %d: %s\n", r+1, *rounds, ts[i].Name)
			res, err := bench.Run(ctx, load, func() (*clientv3.Client, error) { return c.Client() })
			if err != nil {
				return exitError, fmt.Errorf("benchmarking %s: %w", ts[i].Name, err)
			}
			results[i] = append(results[i], res)
		}
	}
	printBench(os.Stdout, ts, results, load, *nodes)
	return exitValid, nil
}

// printBench prints every round, the medians and the ratios of the first
// target to the second.
func printBench(w io.Writer, ts []compose.Target, results [][]bench.Result, l bench.Load, nodes int) {
	fmt.Fprintf(w, "puts of %d-byte values, %d clients over %d connections, %d members, %s per round\n\n",
		l.ValueSize, l.Clients, l.Conns, nodes, l.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\tputs/s\tp50\tp99\tmax\terrors\t")
	medians := make([]bench.Result, len(ts))
	for i, rs := range results {
		for r, res := range rs {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", label(ts[i]), r+1, res.Throughput, ms(res.P50), ms(res.P99), ms(res.Max), res.Errors)
		}
		medians[i] = median(rs)
		m := medians[i]
		fmt.Fprintf(tw, "%s\tmedian\t%.0f\t%s\t%s\t\t\t\n", label(ts[i]), m.Throughput, ms(m.P50), ms(m.P99))
	}
	tw.Flush()
	if len(ts) >= 2 {
		a, b := medians[0], medians[1]
		fmt.Fprintf(w, "\n%s / %s (medians): throughput %.2fx, p50 %.2fx, p99 %.2fx\n", label(ts[0]), label(ts[1]),
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
