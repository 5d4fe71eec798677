package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/rundir"
)

// scheduleFile is a --nemesis-schedule file as written. Pointers tell a
// field left out (the default) from one set to false or 0; steps are
// decoded one by one so that an error can name its step.
type scheduleFile struct {
	Repeat *bool             `json:"repeat"`
	Jitter *float64          `json:"jitter"`
	Steps  []json.RawMessage `json:"steps"`
}

// stepFile is one step as written; durations stay strings until each can
// be reported with its step and field.
type stepFile struct {
	Fault string `json:"fault"`
	Quiet string `json:"quiet"`
	For   string `json:"for"`
}

// ReadSchedule reads a --nemesis-schedule file, a JSON object:
//
//	{"repeat": true, "jitter": 0.2, "steps": [
//	  {"fault": "partition-leader", "quiet": "10s", "for": "5s"},
//	  {"fault": "kill-random+pause-leader", "quiet": "5s", "for": "8s"}]}
//
// Each step waits quiet, injects fault (one --nemesis item: a name, a+b,
// or a name=setting) for for, then heals. repeat (default true) starts
// over after the last step; jitter (default 0.2) spreads every window by
// up to that fraction either way. Every step must fit a cluster of nodes
// members. Errors name the file, the step (from 1) and the field.
func ReadSchedule(path string, nodes int) (*rundir.Schedule, error) {
	s, err := readSchedule(path, nodes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func readSchedule(path string, nodes int) (*rundir.Schedule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is already named once.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading the schedule: %w", err)
	}
	var f scheduleFile
	if err := strictDecode(b, &f); err != nil {
		return nil, fmt.Errorf(`%w; want {"repeat": true, "jitter": 0.2, "steps": [...]}`, err)
	}
	s := &rundir.Schedule{Repeat: true, Jitter: nemesis.DefaultJitter}
	if f.Repeat != nil {
		s.Repeat = *f.Repeat
	}
	if f.Jitter != nil {
		s.Jitter = *f.Jitter
	}
	for i, raw := range f.Steps {
		var st stepFile
		if err := strictDecode(raw, &st); err != nil {
			return nil, fmt.Errorf(`step %d: %w; want {"fault": "kill-leader", "quiet": "10s", "for": "5s"}`, i+1, err)
		}
		quiet, err := stepDuration(st.Quiet)
		if err != nil {
			return nil, fmt.Errorf("step %d: quiet %w", i+1, err)
		}
		length, err := stepDuration(st.For)
		if err != nil {
			return nil, fmt.Errorf("step %d: for %w", i+1, err)
		}
		s.Steps = append(s.Steps, rundir.Step{Fault: st.Fault, Quiet: rundir.Duration(quiet), For: rundir.Duration(length)})
	}
	if _, err := schedule(*s, nodes); err != nil {
		return nil, err
	}
	return s, nil
}

// strictDecode decodes one JSON value that may hold only v's fields.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err == io.EOF {
		return errors.New("empty")
	} else if err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

func stepDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("missing: want a Go duration such as 10s or 1m30s")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a Go duration such as 10s or 1m30s", s)
	}
	return d, nil
}

// schedule checks a recorded schedule and makes its faults; every step
// must fit a cluster of nodes members.
func schedule(s rundir.Schedule, nodes int) (nemesis.Schedule, error) {
	if s.Jitter < 0 || s.Jitter >= 1 {
		return nemesis.Schedule{}, fmt.Errorf("jitter %g: want a fraction from 0 (none) up to but not including 1, e.g. 0.2", s.Jitter)
	}
	if len(s.Steps) == 0 {
		return nemesis.Schedule{}, errors.New(`steps: none given; want at least one, e.g. {"fault": "kill-leader", "quiet": "10s", "for": "5s"}`)
	}
	out := nemesis.Schedule{Repeat: s.Repeat, Jitter: s.Jitter}
	for i, st := range s.Steps {
		f, err := stepFault(st.Fault, nodes)
		if err != nil {
			return nemesis.Schedule{}, fmt.Errorf("step %d: fault %w", i+1, err)
		}
		if st.Quiet <= 0 {
			return nemesis.Schedule{}, fmt.Errorf("step %d: quiet %s: want a positive duration such as 10s", i+1, time.Duration(st.Quiet))
		}
		if st.For <= 0 {
			return nemesis.Schedule{}, fmt.Errorf("step %d: for %s: want a positive duration such as 5s", i+1, time.Duration(st.For))
		}
		out.Steps = append(out.Steps, nemesis.Step{Fault: f, Quiet: time.Duration(st.Quiet), For: time.Duration(st.For)})
	}
	return out, nil
}

// stepFault parses the fault of one step: exactly one fault window.
func stepFault(spec string, nodes int) (nemesis.Fault, error) {
	switch {
	case strings.TrimSpace(spec) == "":
		return nil, errors.New("missing: want one --nemesis item, such as kill-leader, partition-leader+pause-random or peer-latency=200ms")
	case strings.Contains(spec, ","):
		return nil, fmt.Errorf("%q: a step is one fault window; give each of these faults a step of its own (or join them with + to strike together)", spec)
	case strings.TrimSpace(spec) == "none":
		return nil, errors.New(`"none": a step injects a fault; for a longer quiet, lengthen the next step's quiet`)
	}
	faults, err := nemesis.Parse(spec)
	if u, ok := errors.AsType[*nemesis.UnknownError](err); ok {
		// Parse's own advice is about --nemesis lists, which a step is not.
		return nil, fmt.Errorf("%q: unknown nemesis %q; want one of %s, or several joined by + to strike at once",
			spec, u.Name, strings.Join(nemesis.Names(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	if err := nemesis.Fits(faults, nodes); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	return faults[0], nil
}

// nemesisSchedule is the schedule a config asks for: its recorded
// schedule, or the --nemesis faults taking turns.
func nemesisSchedule(cfg rundir.Config) (nemesis.Schedule, error) {
	if cfg.Schedule != nil {
		return schedule(*cfg.Schedule, cfg.Nodes)
	}
	faults, err := nemesis.Parse(cfg.Nemesis)
	if err != nil {
		return nemesis.Schedule{}, err
	}
	return nemesis.Turns(faults, time.Duration(cfg.NemesisInterval), time.Duration(cfg.NemesisDuration)), nil
}

// needsPeerProxy says whether any fault the config asks for needs the
// members started behind the agent's peer proxy.
func needsPeerProxy(cfg rundir.Config) bool { return asks(cfg, nemesis.NeedsPeerProxy) }

// needsDisk says whether any fault the config asks for needs the members'
// data served through the filesystem layer.
func needsDisk(cfg rundir.Config) bool { return asks(cfg, nemesis.NeedsDisk) }

// asks says whether the faults of the config's schedule, or its --nemesis,
// have what needs looks for.
func asks(cfg rundir.Config, needs func(spec string) bool) bool {
	if cfg.Schedule != nil {
		return slices.ContainsFunc(cfg.Schedule.Steps, func(s rundir.Step) bool { return needs(s.Fault) })
	}
	return needs(cfg.Nemesis)
}
