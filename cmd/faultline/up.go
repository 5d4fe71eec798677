package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

const upUsage = `usage: faultline up [flags]

Boots a cluster of the target, prints its client endpoints and an etcdctl
command for them, and leaves it running until faultline down removes it
(Jepsen's --leave-db-running): to poke at a store by hand, or reproduce
what a report showed. No workload runs and no fault is injected. Local
members keep running after up exits; faultline clean keeps the cluster.
With --foreground, up stays until Ctrl-C and removes the cluster then.
`

const downUsage = `usage: faultline down [flags] [NAME...]

Removes clusters faultline up left running (by default the one named up):
their containers, network and volumes, or their processes and data.
`

// upState is what faultline up saves for faultline down, as
// <results>/up/<name>.json.
type upState struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Command string    `json:"command"`
	compose.Kept
}

// upStateFile is where up keeps the state of the cluster name.
func upStateFile(results, name string) string { return filepath.Join(results, "up", name+".json") }

func upCmd(ctx context.Context, args []string) (int, error) {
	t := runDefaults()
	fs := flag.NewFlagSet("faultline up", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), upUsage); fs.PrintDefaults() }
	clusterFlags(fs, &t.Config)
	name := fs.String("name", "up", "the cluster's name, which faultline down takes; several clusters need several names")
	fs.StringVar(&t.Results, "results", t.Results, "the state faultline down reads is kept in <results>/up/<name>.json")
	foreground := fs.Bool("foreground", false, "stay until Ctrl-C, then remove the cluster, instead of leaving it running")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if fs.NArg() > 0 {
		return exitError, fmt.Errorf("unexpected argument %q: faultline up takes only flags", fs.Arg(0))
	}
	if *name == "" || strings.ContainsAny(*name, `/\`) || strings.HasPrefix(*name, ".") {
		return exitError, fmt.Errorf("--name %q: want a plain name such as up or etcd5", *name)
	}
	state := upStateFile(t.Results, *name)
	if !*foreground {
		if _, err := os.Stat(state); err == nil {
			return exitError, fmt.Errorf("a cluster named %s is already up (%s): faultline down %s removes it, or give up another --name", *name, state, *name)
		}
	}
	src, err := findSource()
	if err != nil {
		return exitError, err
	}
	t.Source, t.Progress = src, os.Stderr
	t.Config.Nemesis = "none" // only the cluster: nothing to validate of faults
	cluster, release, err := runner.Up(ctx, t, !*foreground)
	if err != nil {
		return exitError, err
	}
	defer release()
	st := upState{Name: *name, Started: time.Now().UTC(), Command: strings.TrimSpace("faultline up " + strings.Join(args, " ")), Kept: cluster.Kept()}
	if *foreground {
		printUp(os.Stdout, st, "Ctrl-C removes it")
		<-ctx.Done()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := cluster.Down(dctx); err != nil {
			return exitError, fmt.Errorf("removing the cluster: %w (faultline clean %s removes what is left)", err, st.RunID)
		}
		fmt.Fprintf(os.Stderr, "faultline: cluster %s removed\n", *name)
		return exitValid, nil
	}
	if err := saveUpState(state, st); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		// Without its state nothing could take it down: do not leave it.
		return exitError, errors.Join(fmt.Errorf("saving the cluster's state: %w", err), cluster.Down(dctx))
	}
	printUp(os.Stdout, st, "faultline down"+nameArg(*name, t.Results)+" removes it")
	return exitValid, nil
}

// nameArg is what faultline down needs to be told to find the cluster name
// kept under results.
func nameArg(name, results string) string {
	s := ""
	if results != "results" {
		s += " --results " + results
	}
	if name != "up" {
		s += " " + name
	}
	return s
}

func saveUpState(path string, st upState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return rundir.WriteFile(path, append(b, '\n'))
}

// printUp says where the cluster answers: each member's client URL, and an
// etcdctl command to paste.
func printUp(w io.Writer, st upState, how string) {
	fmt.Fprintf(w, "cluster %s is up: %d %s members as %s (run %s); %s\n", st.Name, len(st.Members), st.Target, compose.Where(st.Runtime), st.RunID, how)
	for _, m := range st.Members {
		fmt.Fprintf(w, "  %s  %s\n", m.Name, m.ClientURL)
	}
	fmt.Fprintf(w, "etcdctl --endpoints=%s endpoint status -w table\n", st.Endpoints())
}

func downCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline down", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), downUsage); fs.PrintDefaults() }
	results := fs.String("results", "results", "where faultline up kept the clusters' state (<results>/up/<name>.json)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	names := fs.Args()
	if len(names) == 0 {
		names = []string{"up"}
	}
	var errs []error
	for _, name := range names {
		if err := downOne(ctx, *results, name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return exitError, errors.Join(errs...)
	}
	return exitValid, nil
}

func downOne(ctx context.Context, results, name string) error {
	path := upStateFile(results, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		have, _ := filepath.Glob(upStateFile(results, "*"))
		for i, h := range have {
			have[i] = strings.TrimSuffix(filepath.Base(h), ".json")
		}
		also := "none is"
		if len(have) > 0 {
			also = "these are: " + strings.Join(have, ", ")
		}
		return fmt.Errorf("no cluster named %s is up (no %s); %s", name, path, also)
	}
	if err != nil {
		return err
	}
	var st upState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: %w; remove it, and faultline clean removes what the cluster left", path, err)
	}
	n, err := compose.DownKept(ctx, st.Kept)
	if err != nil {
		return fmt.Errorf("removing cluster %s (run %s): %w", name, st.RunID, err)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	what := st.Dir
	if st.Runtime == compose.Docker {
		what = fmt.Sprintf("%d containers, %d networks, %d volumes", n.Containers, n.Networks, n.Volumes)
	}
	fmt.Fprintf(os.Stderr, "faultline: cluster %s removed (run %s: %s)\n", name, st.RunID, what)
	return nil
}
