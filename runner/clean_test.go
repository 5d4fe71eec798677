package runner

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
)

// workloadStarted tells, once the first status line shows the workload
// running, which run it is.
type workloadStarted struct {
	mu    sync.Mutex
	text  strings.Builder
	runID chan string
}

var runIDLine = regexp.MustCompile(`\(run ([0-9a-f]+)\)`)

func (w *workloadStarted) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text.Write(p)
	if m := runIDLine.FindStringSubmatch(w.text.String()); m != nil && strings.Contains(w.text.String(), "ops/s") {
		select {
		case w.runID <- m[1]:
		default:
		}
	}
	return len(p), nil
}

func (w *workloadStarted) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text.String()
}

// TestCleanDuringRun cleans while a kvnode run is under way: the run must
// keep its containers and end valid, and its own teardown must still
// remove them.
func TestCleanDuringRun(t *testing.T) {
	docker := dockerOrSkip(t)
	test := shortTest(t, "kvnode", 15*time.Second)
	progress := &workloadStarted{runID: make(chan string, 1)}
	test.Progress, test.Live = progress, true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	type result struct {
		verdict checker.Verdict
		checks  []checker.Result
		err     error
	}
	done := make(chan result, 1)
	go func() {
		res, _, err := Run(ctx, test)
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{verdict: res.Verdict, checks: res.Checks}
	}()

	var runID string
	select {
	case runID = <-progress.runID:
	case r := <-done:
		t.Fatalf("the run ended (%v, %v) before its workload was seen running:\n%s", r.verdict, r.err, progress)
	}
	// Only this run: the engine may hold other people's.
	swept, err := compose.CleanStale(ctx, docker, false, runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || !swept[0].Kept || swept[0].Removed != (compose.Removed{}) || !strings.Contains(swept[0].Why, "still running") {
		t.Errorf("clean during the run: %+v, want run %s kept, its harness still running", swept, runID)
	}
	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", compose.LabelRun+"="+runID)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("the run ended while clean ran: the containers counted may have been its teardown's")
	default:
	}
	if len(ctrs.Items) != 3 {
		t.Errorf("run %s has %d containers after clean, want its 3 members", runID, len(ctrs.Items))
	}

	r := <-done
	if r.err != nil || r.verdict != checker.Valid {
		t.Fatalf("run after a clean: verdict %s, %v: %+v\n%s", r.verdict, r.err, r.checks, progress)
	}
	if left, err := compose.CleanCount(ctx, docker, runID); err != nil || left != (compose.Removed{}) {
		t.Errorf("the run's teardown left %+v behind (%v)", left, err)
	}
}
