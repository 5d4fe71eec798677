package failpoint

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Scan finds the markers gofail enable would turn into failpoints, at any
// depth and in test files too, and nothing that gofail leaves a comment:
// labels, body lines, other spellings, markers after code, non-Go files.
func TestScan(t *testing.T) {
	got, err := Scan("testdata/tree")
	if err != nil {
		t.Fatal(err)
	}
	want := []Point{
		{"defragdbFail", "string", "raft.go", 14},
		{"raftAfterSave", "struct{}", "raft.go", 6},
		{"raftBeforeSave", "struct{}", "raft.go", 4},
		{"raftBeforeSave", "struct{}", "store/wal/wal_test.go", 5},
		{"walAfterSync", "struct{}", "store/wal/wal.go", 7},
		{"walBeforeSync", "struct{}", "store/wal/wal.go", 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan found\n%s\nwant\n%s", show(got), show(want))
	}
}

// A marker gofail enable would refuse is an error naming its file and
// line, not a point skipped in silence.
func TestScanMalformed(t *testing.T) {
	_, err := Scan("testdata/bad")
	if err == nil || !strings.Contains(err.Error(), "bad.go: line 4: malformed gofail marker") {
		t.Fatalf("Scan of a malformed marker: %v, want an error naming bad.go line 4", err)
	}
	for _, src := range []string{
		"// gofail: var a\n",
		"// gofail: var a b c\n",
		"// gofail: let a struct{}\n",
		"// gofail:\n",
	} {
		if _, err := Parse(strings.NewReader(src)); err == nil {
			t.Errorf("Parse(%q) accepted it; gofail refuses it", src)
		}
	}
}

// The body ends at the first line that is not a comment: a marker after
// that is a point again, and a marker on the last line counts.
func TestParseBodyEnds(t *testing.T) {
	src := "// gofail: var a string\n// return a\n\n// gofail: var b struct{}"
	got, err := Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Point{{Name: "a", Type: "string", Line: 1}, {Name: "b", Type: "struct{}", Line: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse found\n%s\nwant\n%s", show(got), show(want))
	}
}

func show(ps []Point) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%s %s %s:%d\n", p.Name, p.Type, p.File, p.Line)
	}
	return b.String()
}
