// Package rundir owns the run directory: where a test's files go and the
// schema of results.json, the one summary that checkers write and reports
// read.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// File names inside a run directory.
const (
	HistoryFile = "history.jsonl"
	ResultsFile = "results.json"
	ReportFile  = "index.html"
	// TimelineFile is every operation per process over time, linked from
	// the report.
	TimelineFile = "timeline.html"
	LogsDir      = "logs"
	// CommitLogFile is the harness's recorder of the commit log: its
	// watches of the whole keyspace and its final read, as history events
	// on the history's clock. It is a file of its own so that no checker
	// or report takes the recorder for a workload.
	CommitLogFile = "commitlog.jsonl"
)

// Config is what ran: enough to describe the run and to rerun it. The
// runner validates it (runner.Test.Validate); rundir only keeps it.
type Config struct {
	Name      string `json:"name"`
	RunID     string `json:"run_id,omitempty"`
	Target    string `json:"target"`
	Version   string `json:"version,omitempty"`
	UnsafeBug string `json:"unsafe_bug,omitempty"`
	// MemberFlags are extra server flags every member gets, at boot and
	// whenever it starts again, e.g. --snapshot-count=100.
	MemberFlags     []string `json:"member_flags,omitempty"`
	Nodes           int      `json:"nodes"`
	Workload        string   `json:"workload"`
	Nemesis         string   `json:"nemesis"`
	Workers         int      `json:"workers"`
	Keys            int      `json:"keys"`
	OpsPerKey       int      `json:"ops_per_key"`
	Rate            float64  `json:"rate,omitempty"`
	TimeLimit       Duration `json:"time_limit"`
	OpTimeout       Duration `json:"op_timeout"`
	NemesisInterval Duration `json:"nemesis_interval"`
	NemesisDuration Duration `json:"nemesis_duration"`
	CheckTimeout    Duration `json:"check_timeout"`
	// CheckMemory bounds the check's heap, in GiB: a search that passes
	// it stops unknown, and a history that alone would is not read. 0:
	// half the machine's memory.
	CheckMemory float64 `json:"check_memory_gib,omitempty"`
	// NoResolve checks the kv and register writes of unknown outcome as
	// unknown, without resolving them from the commit log (to compare).
	NoResolve       bool     `json:"no_resolve,omitempty"`
	Command         string   `json:"command"`
	ReadConsistency string   `json:"read_consistency"`
	ClientMode      string   `json:"client_mode"`
	Members         []Member `json:"members,omitempty"`
	ImageReference  string   `json:"image,omitempty"`
	// Runtime is where the members ran: docker (also when empty, as in
	// runs from before there was a choice) or local.
	Runtime string `json:"runtime,omitempty"`
	// Binary is the server the local runtime ran.
	Binary string `json:"binary,omitempty"`

	// DiskMode is how the filesystem layer of a run with disk faults makes
	// directory changes durable: ext4 (runner's Validate sets it when it
	// is not given) or strict. Empty in a run without disk faults, and in
	// runs from before there was a choice, which were ext4.
	DiskMode string `json:"disk_mode,omitempty"`

	// CompactInterval is how often the kv workload compacts; 0 never.
	CompactInterval Duration `json:"compact_interval,omitempty"`

	// Seed decides the random choices of the nemesis schedule and of every
	// workload worker; the same seed makes them again. 0 until the runner
	// picks one for a run not given any.
	Seed int64 `json:"seed,omitempty"`

	// Schedule, when set, is what ran instead of Nemesis, NemesisInterval and
	// NemesisDuration: the --nemesis-schedule file ScheduleFile, defaults filled
	// in, read by runner's Validate (until then those three stay unset beside
	// ScheduleFile). It is itself a valid schedule file, so the run can be
	// repeated without the original. Nemesis then lists the schedule's faults,
	// for the run index and the checkers that ask what ran.
	ScheduleFile string    `json:"nemesis_schedule_file,omitempty"`
	Schedule     *Schedule `json:"nemesis_schedule,omitempty"`
}

// Schedule is a nemesis schedule: Steps in order, from the first again
// after the last while Repeat, each window spread by up to Jitter (a
// fraction) either way.
type Schedule struct {
	Repeat bool    `json:"repeat"`
	Jitter float64 `json:"jitter"`
	Steps  []Step  `json:"steps"`
}

// Step is one fault window: Quiet of quiet (in which the previous fault's
// time to recover is measured), then Fault (one --nemesis item, such as
// kill-leader, a+b or peer-latency=200ms) for For, then heal.
type Step struct {
	Fault string   `json:"fault"`
	Quiet Duration `json:"quiet"`
	For   Duration `json:"for"`
}

// Faults lists the faults of the steps, each once, in the order they
// first come: kill-leader,pause-random.
func (s Schedule) Faults() string {
	var out []string
	for _, st := range s.Steps {
		if !slices.Contains(out, st.Fault) {
			out = append(out, st.Fault)
		}
	}
	return strings.Join(out, ",")
}

// Member is one member of the cluster under test.
type Member struct {
	Name      string `json:"name"`
	ClientURL string `json:"client_url"`
}

// Results is results.json.
type Results struct {
	Config   Config           `json:"config"`
	Verdict  checker.Verdict  `json:"verdict"`
	Checks   []checker.Result `json:"checks"`
	Stats    checker.Stats    `json:"stats"`
	Faults   []history.Window `json:"faults"`
	Started  time.Time        `json:"started"`
	Duration Duration         `json:"duration"`
	// Phases is where a run's time went, in order: building what the
	// members run, booting them, the test (workload, final heal and
	// drain), tearing them down and checking; all but the test are the
	// overhead of one run.
	Phases []Phase `json:"phases,omitempty"`
	// Problems lists what went wrong around the test itself (a member that
	// did not come back, logs that could not be saved).
	Problems []string `json:"problems,omitempty"`
	// Unfinished is set when the history ends before the run did: the
	// harness was killed or interrupted before its final phase.
	Unfinished *Unfinished `json:"unfinished,omitempty"`
}

// Phase is one step of a run and how long it took.
type Phase struct {
	Name string   `json:"name"`
	Took Duration `json:"took"`
}

// The phases of a run, in order. A check of a stored run replaces its
// check phase.
const (
	PhaseBuild    = "build"
	PhaseBoot     = "boot"
	PhaseTest     = "test"
	PhaseTeardown = "teardown"
	PhaseCheck    = "check"
)

// Unfinished says how much of a run was recorded. Without the final phase
// no final heal happened and the cluster's recovery was not checked; the
// verdict is that of what was recorded.
type Unfinished struct {
	// Recorded is the time of the history's last event since the test
	// began, to compare with TimeLimit.
	Recorded  Duration `json:"recorded"`
	TimeLimit Duration `json:"time_limit"`
	// Summary says it in words, for the report and the command line.
	Summary string `json:"summary"`
}

// Write saves r as dir/results.json.
func Write(dir string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, ResultsFile), append(b, '\n'))
}

// Read loads dir/results.json.
func Read(dir string) (*Results, error) {
	b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ResultsFile), err)
	}
	return &r, nil
}

// writeFile replaces path atomically, so a crash never leaves half a file
// where a whole one was.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteFile is writeFile for other packages writing into a run directory.
func WriteFile(path string, data []byte) error { return writeFile(path, data) }

// NewDir creates root/name/<timestamp> and points root/latest at it. Two
// runs of one name started in the same second get <timestamp>-2 and so on:
// a run never writes into another's folder.
func NewDir(root, name string, now time.Time) (string, error) {
	base := filepath.Join(root, name, now.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return "", fmt.Errorf("creating run directory: %w", err)
	}
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("creating run directory: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Mkdir(filepath.Join(dir, LogsDir), 0o755); err != nil {
		return "", fmt.Errorf("creating run directory: %w", err)
	}
	if err := pointLatest(root, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func pointLatest(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	link := filepath.Join(root, "latest")
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		return fmt.Errorf("pointing %s at the new run: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("pointing %s at the new run: %w", link, err)
	}
	return nil
}

// Duration is a time.Duration that reads and writes as "1.5s".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration: want a string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
