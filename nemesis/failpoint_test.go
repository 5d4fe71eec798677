package nemesis

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/failpoint"
)

func TestParseFailpoint(t *testing.T) {
	for _, c := range []struct{ arg, name, term string }{
		{"raftBeforeSave:panic", "failpoint=raftBeforeSave:panic@any", "panic"},
		{"raftBeforeSave:2*panic@leader", "failpoint=raftBeforeSave:2*panic@leader", "2*panic"},
		{"beforeSendWatchResponse:sleep(1s)@follower", "failpoint=beforeSendWatchResponse:sleep(1s)@follower", `sleep("1s")`},
		{"defragOpenFileError:error", "failpoint=defragOpenFileError:error@any", `return("faultline: failpoint defragOpenFileError")`},
	} {
		f, err := ParseFailpoint(c.arg)
		if err != nil {
			t.Errorf("failpoint=%s: %v", c.arg, err)
			continue
		}
		term, _ := gofailTerm(f.Action, f.Point)
		if f.Name() != c.name || term != c.term {
			t.Errorf("failpoint=%s: name %q term %q, want %q and %q", c.arg, f.Name(), term, c.name, c.term)
		}
	}
	for arg, want := range map[string]string{
		"raftBeforeSave":               "want failpoint=NAME:ACTION",
		"raftBeforeSave:crash":         `action "crash"`,
		"raftBeforeSave:sleep(1)":      "a duration up to 1m",
		"raftBeforeSave:sleep(2h)":     "a duration up to 1m",
		"raftBeforeSave:panic@primary": "@primary: want @any, @leader or @follower",
		"raft-before:panic":            "want failpoint=NAME:ACTION",
		"raftBeforeSave:0*panic":       `action "0*panic"`,
	} {
		if _, err := Parse("failpoint=" + arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("failpoint=%s: %v, want an error saying %q", arg, err, want)
		}
	}
}

// A name the build does not declare, and error asked of a point that takes
// no value, are refused before the run starts.
func TestCheckFailpoints(t *testing.T) {
	points := []failpoint.Point{{Name: "raftBeforeSave", Type: "struct{}"}, {Name: "defragOpenFileError", Type: "string"}}
	for spec, want := range map[string]string{
		"failpoint=raftBeforeSave:panic":              "",
		"failpoint=defragOpenFileError:error":         "",
		"failpoint-random":                            "",
		"failpoint=raftBeforeSav:panic":               "etcd v3.6.16 declares no failpoint raftBeforeSav",
		"failpoint=raftBeforeSave:error+kill-random":  "raftBeforeSave takes no value",
		"kill-random,failpoint=raftBeforeSave:panic":  "",
		"failpoint=raftBeforeSave:sleep(1s)@follower": "",
	} {
		fs, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if !Failpoints(fs) {
			t.Errorf("%s: Failpoints says it arms none", spec)
		}
		err = CheckFailpoints(fs, points, "etcd v3.6.16")
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", spec, err, want)
		}
	}
	if fs, _ := Parse("kill-random"); Failpoints(fs) {
		t.Error("kill-random arms failpoints, says Failpoints")
	}
}

// fakeGofail is one member's gofail endpoint: a panic armed takes the
// member down, as the process would go; hits is what /count answers.
type fakeGofail struct {
	mu    sync.Mutex
	f     *fakeCluster
	name  string
	armed map[string]string
	hits  int
	// silent: a panic leaves nothing in the member's log, as an exit for
	// another reason would not.
	silent bool
}

func (g *fakeGofail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	name, count := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/count")
	switch {
	case r.Method == http.MethodGet && name == "":
		for _, n := range []string{"raftBeforeSave", "compactBeforeApply"} {
			w.Write([]byte(n + "=" + g.armed[n] + "\n"))
		}
	case r.Method == http.MethodGet && count:
		if g.armed[name] == "" {
			http.Error(w, "failpoint is disabled", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(strconv.Itoa(g.hits)))
	case r.Method == http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		g.armed[name] = string(b)
		if g.armed[name] == "panic" {
			g.f.mu.Lock()
			g.f.down[g.name] = true
			if !g.silent {
				g.f.logs[g.name] += "panic: failpoint panic: " + name + "\n"
			}
			g.f.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete:
		delete(g.armed, name)
		w.WriteHeader(http.StatusNoContent)
	}
}

// The window's effect says whether the failpoint fired: a panic by the
// member's exit (and it is restarted), a sleep by gofail's count, and a
// point that never ran says so.
func TestFailpointFired(t *testing.T) {
	for _, c := range []struct {
		spec      string
		hits      int
		want      string
		restarted bool
		silent    bool
	}{
		{"failpoint=raftBeforeSave:panic@leader", 0, "raftBeforeSave=panic fired: n1 exited", true, false},
		{"failpoint=raftBeforeSave:panic@leader", 0, "raftBeforeSave=panic: n1 exited 0.0s after it was armed, but its log does not show the failpoint's panic", true, true},
		{"failpoint=raftBeforeSave:sleep(1s)", 3, `raftBeforeSave=sleep("1s") fired 3 times`, false, false},
		{"failpoint=raftBeforeSave:sleep(1s)", 0, `raftBeforeSave=sleep("1s") never fired`, false, false},
		{"failpoint=compactBeforeApply:panic@follower", 0, "fired: n", true, false},
	} {
		f := newFake(3)
		gs := map[string]*fakeGofail{}
		for _, m := range f.members {
			g := &fakeGofail{f: f, name: m.Name, armed: map[string]string{}, hits: c.hits, silent: c.silent}
			srv := httptest.NewServer(g)
			defer srv.Close()
			m.FailpointURL = srv.URL
			gs[m.Name] = g
		}
		fs, err := Parse(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		fp := fs[0].(*Failpoint)
		hit, err := fp.Start(t.Context(), f, testRand)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		m := hit[0]
		if strings.Contains(c.spec, "panic") != (len(fp.Crashes()) == 1) {
			t.Errorf("%s: crashes expected of %v", c.spec, fp.Crashes())
		}
		if err := fp.Heal(t.Context(), f); err != nil {
			t.Fatalf("%s: heal: %v", c.spec, err)
		}
		if got := fp.Effects()[m.Name]; !strings.Contains(got, c.want) {
			t.Errorf("%s: effect %q, want it to say %q", c.spec, got, c.want)
		}
		if restarted := strings.Contains(strings.Join(f.log, ","), "start "+m.Name); restarted != c.restarted {
			t.Errorf("%s: restarted %v, want %v (%v)", c.spec, restarted, c.restarted, f.log)
		}
		if a := gs[m.Name].armed; !c.restarted && len(a) > 0 {
			t.Errorf("%s: still armed after heal: %v", c.spec, a)
		}
		if strings.Contains(c.spec, "@follower") && m == f.members[0] {
			t.Errorf("%s: armed on the leader", c.spec)
		}
	}
}

// failpoint-random draws only what the build has and can be reached: no
// snapshot point while a member would have to fall 15,000 entries behind,
// no follower point in a one-member cluster.
func TestFailpointRandomDraws(t *testing.T) {
	listed := map[string]string{"raftBeforeApplySnap": "", "raftBeforeFollowerSend": "", "raftBeforeSave": "", "notInTheCatalog": ""}
	draws := func(f *fakeCluster) map[string]bool {
		got := map[string]bool{}
		for range 200 {
			u, err := (&Failpoint{Role: roleAny}).choose(f, listed, testRand)
			if err != nil {
				t.Fatal(err)
			}
			got[u.point] = true
		}
		return got
	}
	f := newFake(3)
	f.lag = 15000
	if got := draws(f); !got["raftBeforeSave"] || !got["raftBeforeFollowerSend"] || got["raftBeforeApplySnap"] || got["notInTheCatalog"] {
		t.Errorf("lag 15000: drew %v, want raftBeforeSave and raftBeforeFollowerSend only", got)
	}
	f.lag = 150
	if got := draws(f); !got["raftBeforeApplySnap"] {
		t.Errorf("lag 150: drew %v, want raftBeforeApplySnap among them", got)
	}
	if got := draws(newFake(1)); got["raftBeforeFollowerSend"] || got["raftBeforeApplySnap"] {
		t.Errorf("one member: drew %v, want no follower point", got)
	}
	if _, err := (&Failpoint{Role: roleAny}).choose(f, map[string]string{"other": ""}, testRand); err == nil {
		t.Error("a build with none of the catalog's points: no error")
	}
}

// The snapshot cut isolates the member until the leader is more than the
// lag ahead, then lets it back; a window that ends first says how far it
// got, and the heal lets it back.
func TestSnapshotCut(t *testing.T) {
	f := newFake(3)
	f.lag = 100
	m := f.members[2]
	var s snapshotCut
	var said []string
	say := func(w string) { said = append(said, w) }
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			f.mu.Lock()
			cut := len(f.rules[m.Name]) == 2
			if cut {
				f.applied["n1"] = 1500
			}
			f.mu.Unlock()
			if cut {
				return
			}
		}
	}()
	s.run(t.Context(), f, m, say)
	if len(f.rules) != 0 || !strings.Contains(said[len(said)-1], "until the leader was 1500 entries ahead, then let back") {
		t.Errorf("after the cut: rules %v, said %q", f.rules, said)
	}

	f.applied["n1"] = 0
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	said = nil
	s.run(ctx, f, m, say)
	if !strings.Contains(said[len(said)-1], "cut off for the whole window: the leader got 0 of the 1124 entries ahead") {
		t.Errorf("a window too short: said %q", said)
	}
	if len(f.rules) == 0 {
		t.Error("the member was let back before the heal")
	}
	if err := s.Heal(t.Context(), f); err != nil || len(f.rules) != 0 {
		t.Errorf("heal: %v, rules left %v", err, f.rules)
	}
}
