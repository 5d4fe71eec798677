package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

func TestZZSample(t *testing.T) {
	dir := os.Getenv("SAMPLE_DIR")
	if dir == "" {
		t.Skip()
	}
	os.MkdirAll(filepath.Join(dir, rundir.LogsDir), 0o755)
	for _, n := range []string{"n1.log", "n2.log", "n3.log"} {
		os.WriteFile(filepath.Join(dir, rundir.LogsDir, n), []byte("log line\n"), 0o644)
	}
	ev := sampleHistory()
	if err := Write(dir, sampleResults(t, ev, checker.Invalid), ev); err != nil {
		t.Fatal(err)
	}
}
