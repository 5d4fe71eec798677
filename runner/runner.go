// Package runner runs one test: it boots the cluster, drives the workload
// while the nemesis injects faults, tears the cluster down, and checks
// and reports the history. A test is a value (Test), checked by its
// Validate; everything it does is written to its run directory.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/diskfs"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/workloads"
)

// DefaultCheckTimeout bounds the linearizability check when the config
// sets none; past it the verdict is unknown.
const DefaultCheckTimeout = 2 * time.Minute

// Test is one run: what to run, where its sources and results live, and
// where progress goes.
type Test struct {
	Config rundir.Config
	// Source is the faultline checkout that images are built from.
	Source string
	// Results is the results root; the run goes to Results/<name>/<time>.
	Results string
	// Progress receives the phase messages and the live status line.
	Progress io.Writer
	// Live redraws the status line in place (a terminal); otherwise it is
	// printed as a new line every few seconds.
	Live bool
}

// ErrSetup wraps everything that kept a test from running at all: no
// Docker engine, an image that did not build, a cluster that never became
// ready. Such a run has no verdict.
var ErrSetup = errors.New("could not run the test")

// Run runs the test and returns its results and run directory. An error
// wrapping ErrSetup means there is no verdict. An interrupted run (ctx
// cancelled) tears everything down and returns ctx's error; its history
// stays on disk for `faultline check`.
func Run(ctx context.Context, t Test) (*rundir.Results, string, error) {
	setup := func(err error) error { return fmt.Errorf("%w: %w", ErrSetup, err) }
	if err := t.Validate(); err != nil {
		return nil, "", setup(err)
	}
	if t.Config.Seed == 0 {
		// Every run has a seed, so that every run can be repeated; below
		// 2^53, so that JSON readers that hold numbers as floats (the
		// browser) show it exactly.
		t.Config.Seed = 1 + rand.Int64N(1<<53-1)
		if t.Config.Command != "" {
			t.Config.Command += " --seed " + strconv.FormatInt(t.Config.Seed, 10)
		}
	}
	cfg := t.Config
	target, err := compose.ParseTarget(cfg.Target, cfg.Version)
	if err != nil {
		return nil, "", setup(err)
	}
	sched, err := nemesisSchedule(cfg)
	if err != nil {
		return nil, "", setup(err)
	}
	took := timer{last: time.Now()}
	failpoints := nemesis.Failpoints(sched.Faults())
	if failpoints {
		if target, err = t.failpointBuild(ctx, target, sched); err != nil {
			return nil, "", setup(err)
		}
	}
	up, release, err := t.prepare(ctx, target, &cfg)
	if err != nil {
		return nil, "", setup(err)
	}
	defer release()
	took.phase(rundir.PhaseBuild)

	started := time.Now()
	dir, err := rundir.NewDir(t.Results, cfg.Name, started)
	if err != nil {
		return nil, "", setup(err)
	}
	hf, err := os.Create(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		return nil, dir, setup(err)
	}
	defer hf.Close()

	runID := compose.NewRunID()
	cfg.RunID = runID
	diskMode, err := diskfs.ParseMode(cfg.DiskMode)
	if err != nil {
		return nil, dir, setup(err)
	}
	cluster, err := t.boot(up, target, cfg, compose.Config{PeerProxy: needsPeerProxy(cfg), Disk: needsDisk(cfg), DiskMode: diskMode, Failpoints: failpoints})
	if err != nil {
		return nil, dir, setup(err)
	}
	took.phase(rundir.PhaseBoot)
	// Teardown must happen even when the user pressed Ctrl-C.
	down := sync.OnceFunc(func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := cluster.SaveLogs(dctx, filepath.Join(dir, rundir.LogsDir)); err != nil {
			t.say("warning: %v", err)
		}
		if err := cluster.Down(dctx); err != nil {
			t.say("warning: tearing down run %s: %v (faultline clean removes what is left)", runID, err)
		}
	})
	defer down()
	for _, m := range cluster.Members {
		cfg.Members = append(cfg.Members, rundir.Member{Name: m.Name, ClientURL: m.ClientURL})
	}

	res := &rundir.Results{Config: cfg, Started: started}
	// Until the check replaces it, results.json says the run is unfinished,
	// so that a killed harness leaves a directory faultline check accepts.
	pending := *res
	pending.Verdict = checker.Unknown
	pending.Problems = []string{unfinished + ": faultline check " + dir + " checks what was recorded"}
	if err := rundir.Write(dir, &pending); err != nil {
		return nil, dir, setup(err)
	}
	rec := history.NewRecorder(hf)
	lf, err := os.Create(filepath.Join(dir, rundir.CommitLogFile))
	if err != nil {
		return nil, dir, setup(err)
	}
	defer lf.Close()
	logRec := rec.Beside(lf)
	if err := t.drive(ctx, cluster, rec, logRec, sched); err != nil {
		return nil, dir, err
	}
	took.phase(rundir.PhaseTest)
	down()
	took.phase(rundir.PhaseTeardown)
	res.Phases = took.phases
	res.Duration = rundir.Duration(time.Since(started).Round(time.Millisecond))
	if err := rec.Err(); err != nil {
		return nil, dir, setup(err)
	}
	if err := hf.Close(); err != nil {
		return nil, dir, setup(fmt.Errorf("closing the history: %w", err))
	}
	if err := cmp.Or(logRec.Err(), lf.Close()); err != nil {
		// What was written stays usable: the recorder's log then ends
		// early, and the check counts only what it covered.
		t.say("warning: the commit log: %v", err)
	}

	t.say("checking %s", filepath.Join(dir, rundir.HistoryFile))
	if err := Check(ctx, dir, res); err != nil {
		return nil, dir, err
	}
	if err := reports.WriteIndexFile(t.Results); err != nil {
		t.say("warning: updating the run index: %v", err)
	}
	return res, dir, nil
}

// timer records a run's phases one after another.
type timer struct {
	last   time.Time
	phases []rundir.Phase
}

// phase ends the phase name, begun when the one before it ended (the
// first when the timer was made).
func (t *timer) phase(name string) {
	now := time.Now()
	t.phases = append(t.phases, rundir.Phase{Name: name, Took: rundir.Duration(now.Sub(t.last).Round(time.Millisecond))})
	t.last = now
}

// failpointBuild is target built with its failpoints, once the failpoints
// the schedule names are known to be in it.
func (t Test) failpointBuild(ctx context.Context, target compose.Target, sched nemesis.Schedule) (compose.Target, error) {
	name := strings.TrimSpace(target.Name + " " + target.Version)
	t.say("the nemesis arms failpoints: reading %s's", name)
	ft, points, err := compose.FailpointBuild(ctx, t.Source, target)
	if err != nil {
		return compose.Target{}, err
	}
	return ft, nemesis.CheckFailpoints(sched.Faults(), points, name)
}

// boot says what it starts, then starts cfg's cluster of target with up,
// a function prepare returned; cc holds what the caller adds to the
// cluster's config.
func (t Test) boot(up func(compose.Config) (*compose.Cluster, error), target compose.Target, cfg rundir.Config, cc compose.Config) (*compose.Cluster, error) {
	t.say("starting %d %s members as %s (run %s)", cfg.Nodes, target.Name, compose.Where(cfg.Runtime), cfg.RunID)
	cc.RunID, cc.Target, cc.Nodes = cfg.RunID, target, cfg.Nodes
	if cfg.UnsafeBug != "" {
		cc.Args = append(cc.Args, target.BugFlag+"="+cfg.UnsafeBug)
	}
	cc.Args = append(cc.Args, cfg.MemberFlags...)
	return up(cc)
}

// prepare builds what the runtime runs (an image, or a binary for local
// processes), records it in cfg, and returns how to start the cluster,
// and release, to be called once the cluster is down.
func (t Test) prepare(ctx context.Context, target compose.Target, cfg *rundir.Config) (up func(compose.Config) (*compose.Cluster, error), release func(), err error) {
	name := strings.TrimSpace(target.Name + " " + target.Version)
	if cfg.Runtime == compose.Local {
		t.say("building %s (reused when its inputs are unchanged)", name)
		bin, err := compose.Binary(ctx, t.Source, target)
		if err != nil {
			return nil, nil, err
		}
		cfg.Binary = bin
		return func(cc compose.Config) (*compose.Cluster, error) {
			cc.Binary = bin
			return compose.UpLocal(ctx, cc)
		}, func() {}, nil
	}
	docker, err := compose.NewDocker(ctx)
	if err != nil {
		return nil, nil, err
	}
	t.say("building the %s image (reused when its inputs are unchanged)", name)
	image, err := compose.Image(ctx, docker, t.Source, target)
	if err != nil {
		docker.Close()
		return nil, nil, err
	}
	cfg.ImageReference = image
	return func(cc compose.Config) (*compose.Cluster, error) {
		cc.Image = image
		return compose.Up(ctx, docker, cc)
	}, func() { docker.Close() }, nil
}

// drive runs the workload and the nemesis (on sched) for the time limit,
// then heals and waits for the cluster to come back. Meanwhile the
// recorder of the commit log records into logRec.
func (t Test) drive(ctx context.Context, cluster *compose.Cluster, rec, logRec *history.Recorder, sched nemesis.Schedule) error {
	cfg := t.Config
	ids := map[uint64]string{}
	for _, m := range cluster.Members {
		st, err := cluster.Status(ctx, m)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSetup, err)
		}
		ids[st.ID] = m.Name
	}
	clients, err := workerClients(cluster, cfg.Workers, cfg.ClientMode)
	defer closeAll(clients)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	// The watch workload's pinned watchers and the commit-log recorder get
	// their own clients, so that neither shares a stream with the workers.
	own, err := oneEach(cluster, cluster.Members)
	defer closeAll(own)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	pinned := map[string]*clientv3.Client{}
	for i, cli := range own {
		pinned[cluster.Members[i].Name] = cli
	}

	opts := workloads.Options{Keys: cfg.Keys, OpsPerKey: cfg.OpsPerKey, OpTimeout: time.Duration(cfg.OpTimeout), Rate: cfg.Rate, Members: ids,
		MemberClients: pinned, ReadConsistency: cfg.ReadConsistency, CompactInterval: time.Duration(cfg.CompactInterval), Seed: cfg.Seed}
	work, err := workloads.New(cfg.Workload, opts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	logMembers := cluster.Members[:min(commitLogRecorders, len(cluster.Members))]
	logClients, err := oneEach(cluster, logMembers)
	defer closeAll(logClients)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	// The recorder starts before the workload, so it sees from revision 1.
	commits := workloads.RecordCommits(ctx, logClients, compose.Names(logMembers), logRec, opts)
	defer commits.Stop()
	var nem *nemesis.Nemesis
	if len(sched.Steps) > 0 {
		nem = &nemesis.Nemesis{Schedule: sched, Cluster: cluster, Recorder: rec, Rand: rand.New(rand.NewPCG(uint64(cfg.Seed), 0))}
	}

	what := cfg.Nemesis
	if cfg.Schedule != nil {
		what = fmt.Sprintf("schedule %s (%s)", cfg.ScheduleFile, cfg.Nemesis)
	}
	t.say("running %s for %s with nemesis %s", cfg.Workload, time.Duration(cfg.TimeLimit), what)
	rctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.TimeLimit))
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { work.Run(rctx, clients, rec) })
	if nem != nil {
		wg.Go(func() { nem.Run(rctx) })
	}
	// The leader watch goes on through the final phase: a leader killed
	// near the end is replaced only then.
	leaderStop := make(chan struct{})
	var lw sync.WaitGroup
	lw.Go(func() { watchLeader(ctx, leaderStop, cluster, ids, rec) })
	defer func() {
		close(leaderStop)
		lw.Wait()
	}()
	stop := make(chan struct{})
	var sg sync.WaitGroup
	if t.Progress != nil {
		sg.Go(func() { t.status(stop, rec, work, nem) })
	}
	wg.Wait()
	close(stop)
	sg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}

	// The final phase: heal everything, every member running, one leader,
	// all members caught up.
	// Its outcome is in the history, where the recovery checker judges it.
	if took, err := nemesis.Settle(ctx, cluster, rec, time.Minute); err != nil {
		t.say("%v", err)
	} else if nem != nil {
		t.say("healed; the cluster settled in %.1fs", took.Seconds())
	}
	// The recorder reads everything once more and catches up with that
	// read, so that its log reaches the end of the run.
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	commits.Finish(fctx, 20*time.Second)
	fcancel()
	// While the cluster is still up, every member's keys, history included,
	// at one revision; the members-agree checker compares them.
	nemesis.Hashes(ctx, cluster, rec, 30*time.Second)
	return nil
}

// commitLogRecorders is how many members the recorder of the commit log
// follows: more than one, so that a member down while a compaction passes
// leaves no gap the other did not see.
const commitLogRecorders = 2

// oneEach gives each of ms a client that knows only that member.
func oneEach(c *compose.Cluster, ms []*compose.Member) ([]*clientv3.Client, error) {
	var out []*clientv3.Client
	for _, m := range ms {
		cli, err := c.Client(m)
		if err != nil {
			return out, err
		}
		out = append(out, cli)
	}
	return out, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// workerClients gives each worker its own client over every member,
// starting at a different member so that load spreads. In client mode
// "pinned" each worker's client knows only its one member, so a member
// cut off from the others keeps serving that worker's serializable reads.
func workerClients(c *compose.Cluster, workers int, mode string) ([]*clientv3.Client, error) {
	var out []*clientv3.Client
	for w := range workers {
		k := w % len(c.Members)
		if mode == "pinned" {
			cli, err := c.Client(c.Members[k])
			if err != nil {
				return out, err
			}
			out = append(out, cli)
			continue
		}
		cli, err := c.Client(slices.Concat(c.Members[k:], c.Members[:k])...)
		if err != nil {
			return out, err
		}
		out = append(out, cli)
	}
	return out, nil
}

// status prints elapsed time, throughput, errors and the nemesis state.
func (t Test) status(stop <-chan struct{}, rec *history.Recorder, w workloads.Workload, nem *nemesis.Nemesis) {
	every := time.Second
	if !t.Live {
		every = 10 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-stop:
			if t.Live {
				fmt.Fprintln(t.Progress)
			}
			return
		case <-tick.C:
		}
		c := w.Counts()
		ok, fail, info := c.OK.Load(), c.Fail.Load(), c.Info.Load()
		total := ok + fail + info
		line := fmt.Sprintf("[%5.1fs/%s] %5.0f ops/s  ok %d  fail %d  info %d",
			time.Duration(rec.Since()).Seconds(), time.Duration(t.Config.TimeLimit),
			float64(total-last)/every.Seconds(), ok, fail, info)
		last = total
		if nem != nil {
			line += fmt.Sprintf("  nemesis: %s (%d so far)", nem.State(), nem.Count())
		}
		if t.Live {
			fmt.Fprintf(t.Progress, "\r\x1b[K%s", line)
		} else {
			fmt.Fprintln(t.Progress, line)
		}
	}
}

func (t Test) say(format string, args ...any) {
	if t.Progress != nil {
		fmt.Fprintf(t.Progress, "faultline: "+format+"\n", args...)
	}
}
