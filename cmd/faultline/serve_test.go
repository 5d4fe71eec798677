package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
)

// chromium finds Debian's headless browser, or skips: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping: needs chromium (apt-get install chromium)")
	return ""
}

// TestServeInBrowser loads the run index in a real browser, follows every
// link it shows, and takes a screenshot.
func TestServeInBrowser(t *testing.T) {
	browser := chromium(t)
	root := t.TempDir()
	for i, v := range []checker.Verdict{checker.Valid, checker.Invalid} {
		started := time.Date(2026, 11, 23, 10, i, 0, 0, time.UTC)
		dir, err := rundir.NewDir(root, "etcd-register-kill-leader", started)
		if err != nil {
			t.Fatal(err)
		}
		r := &rundir.Results{Config: rundir.Config{Name: "etcd-register-kill-leader", Target: "etcd", Nodes: 3,
			Workload: "register", Nemesis: "kill-leader"}, Verdict: v, Started: started}
		if err := rundir.Write(dir, r); err != nil {
			t.Fatal(err)
		}
		if err := reports.Write(dir, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(indexHandler(root))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	headless := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir()}
	dom, err := exec.CommandContext(ctx, browser, append(headless, "--dump-dom", srv.URL+"/")...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	links := regexp.MustCompile(`<a href="([^"]+)"`).FindAllStringSubmatch(string(dom), -1)
	if len(links) != 2 {
		t.Fatalf("the page as the browser built it has %d run links, want 2:\n%s", len(links), dom)
	}
	for _, l := range links {
		res, err := http.Get(srv.URL + "/" + l[1])
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("link %s: %s %s", l[1], res.Status, res.Header.Get("Content-Type"))
		}
	}

	shot := filepath.Join(t.TempDir(), "index.png")
	cmd := exec.CommandContext(ctx, browser, append(headless, "--screenshot="+shot, "--window-size=1200,800", srv.URL+"/")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, err %v", shot, len(b), err)
	}
}
