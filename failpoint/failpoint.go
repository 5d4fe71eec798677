// Package failpoint finds the gofail failpoints a Go source tree declares:
// the `// gofail: var NAME TYPE` comments that `gofail enable` turns into
// code. It reads the markers the way gofail v0.2.0 does, so the list is
// what a failpoint build of that tree can register, no more.
package failpoint

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Point is one failpoint marker.
type Point struct {
	// Name is what GOFAIL_FAILPOINTS and the GOFAIL_HTTP endpoint call it;
	// names are global to a process.
	Name string
	// Type is the type of the value a term may inject: struct{} for a
	// plain hook, string (or another Go type) for a point whose body uses
	// the value, e.g. to fail with it.
	Type string
	// File is the file, as a slash path relative to the scanned root, and
	// Line the marker's line in it (1-based).
	File string
	Line int
}

// prefix starts a marker: gofail looks for exactly this at the start of a
// line, after indentation. `//gofail:` or `// gofail-go:` are plain
// comments.
const prefix = "// gofail:"

// Parse returns the failpoints of one Go file's source, with File unset.
//
// As in gofail, a marker is a line that, trimmed, starts with prefix and
// is followed by exactly the three fields `var NAME TYPE`; a marker whose
// rest holds a colon is a label (`// gofail: LABEL:`), not a failpoint.
// The comment lines directly after a marker are its body, even when one of
// them looks like a marker itself. Any other text after the prefix is an
// error, as gofail enable refuses the file.
func Parse(r io.Reader) ([]Point, error) {
	var points []Point
	inBody := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if inBody && strings.HasPrefix(line, "//") {
			continue
		}
		inBody = false
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok || strings.Contains(rest, ":") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 3 || f[0] != "var" {
			return nil, fmt.Errorf("line %d: malformed gofail marker %q: want // gofail: var NAME TYPE", n, line)
		}
		points = append(points, Point{Name: f[1], Type: f[2], Line: n})
		inBody = true
	}
	return points, sc.Err()
}

// Scan returns the failpoints of every .go file under root, at any depth,
// sorted by name, then file and line. A name declared twice is listed
// twice: gofail would panic at init if both were enabled in one binary.
func Scan(root string) ([]Point, error) {
	var points []Point
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".go" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		ps, err := Parse(f)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, p := range ps {
			p.File = rel
			points = append(points, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(points, func(i, j int) bool {
		a, b := points[i], points[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return points, nil
}
