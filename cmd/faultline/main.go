// Command faultline is the harness: it runs Jepsen-style tests against
// etcd-like stores in containers, checks the histories and writes reports.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of faultline run and faultline check.
const (
	exitValid   = 0
	exitInvalid = 1
	exitError   = 2 // could not run: bad flags, no Docker engine, build failed
	exitUnknown = 3
)

const usage = `faultline: Jepsen-style tests for etcd-like stores

usage:
  faultline run [flags]        run a test; see faultline run -h
  faultline check [--no-resolve] <run-dir>
                               re-check a stored history and rewrite its report
  faultline up [flags]         boot a cluster and leave it running; prints its endpoints and an etcdctl command
  faultline down [NAME]        remove a cluster faultline up left running
  faultline clean [--all]      remove what dead runs left behind (containers, networks, volumes); live runs stay
  faultline sweep [flags]      the same test at 3, 5, 7, 9 members: latency against cluster size
  faultline compare [flags]    linearizable and serializable reads side by side under a partition
  faultline nightly [flags]    the nightly gate: every scenario of ci/nightly.json; fails on any anomaly
  faultline merge DIR...       one nightly page from the results folders of its shards (nightly --shard i/n)
  faultline bench [flags]      put throughput and latency of kvnode and etcd side by side, with ratios
  faultline serve              a local web page listing every run under results/
  faultline export --format jepsen|porcupine <run-dir>
                               the history as Jepsen EDN or porcupine operations (register workload)
  faultline failpoints --target etcd [--etcd-version v3.6.x]
                               the gofail failpoints in that etcd release's source, with their files

exit codes: 0 valid, 1 invalid, 2 could not run, 3 unknown
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	var err error
	switch args[0] {
	case "run":
		code, err = runCmd(ctx, args[1:])
	case "check":
		code, err = checkCmd(ctx, args[1:])
	case "clean":
		code, err = cleanCmd(ctx, args[1:])
	case "serve":
		code, err = serveCmd(ctx, args[1:])
	case "sweep":
		code, err = sweepCmd(ctx, args[1:])
	case "bench":
		code, err = benchCmd(ctx, args[1:])
	case "nightly":
		code, err = nightlyCmd(ctx, args[1:])
	case "compare":
		code, err = compareCmd(ctx, args[1:])
	case "merge":
		code, err = mergeCmd(ctx, args[1:])
	case "export":
		code, err = exportCmd(ctx, args[1:])
	case "failpoints":
		code, err = failpointsCmd(ctx, args[1:])
	case "up":
		code, err = upCmd(ctx, args[1:])
	case "down":
		code, err = downCmd(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q: want run, check, up, down, sweep, compare, nightly, merge, bench, export, failpoints, clean or serve", args[0])
		code = exitError
	}
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintf(os.Stderr, "faultline: %v\n", err)
	}
	return code
}
