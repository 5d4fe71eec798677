package diskfs

import (
	"fmt"
	"sort"
	"strings"
)

// maxPaths bounds each list of paths in a Loss: a report names a few examples, not every file.
const maxPaths = 10

// Loss is what a power loss dropped (or, from Unsynced, would drop). Written data and sizes are
// told apart: a preallocated file going back to its durable size loses nothing anyone wrote.
type Loss struct {
	// Bytes is the written data dropped: bytes written since the last sync (over durable
	// content or beyond the durable size) and not cut off again by a truncate. Zeroes that
	// ftruncate or fallocate added are not data anyone wrote and do not count.
	Bytes   int64
	Files   int // files that lost written data
	Resized int // other files a loss changes: a truncate or fallocate not made durable is undone
	Entries int // namespace operations undone

	// Some of the paths of the files that lost data, of the resized files and of the undone
	// namespace operations: sorted, at most maxPaths each, then "…" if there were more.
	FilePaths, ResizedPaths, EntryPaths []string
}

// pathSet gathers paths without duplicates.
type pathSet map[string]bool

func (s *pathSet) add(p string) {
	if *s == nil {
		*s = pathSet{}
	}
	if p == "" {
		p = "."
	}
	(*s)[p] = true
}

// list returns the paths sorted and cut to maxPaths.
func (s pathSet) list() []string {
	var l []string
	for p := range s {
		l = append(l, p)
	}
	sort.Strings(l)
	if len(l) > maxPaths {
		l = append(l[:maxPaths], "…")
	}
	return l
}

// lossBuilder gathers a Loss.
type lossBuilder struct {
	Loss
	files, resized, entries pathSet
}

func (b *lossBuilder) done() Loss {
	l := b.Loss
	l.FilePaths, l.ResizedPaths, l.EntryPaths = b.files.list(), b.resized.list(), b.entries.list()
	return l
}

// Zero reports whether nothing was (or would be) dropped.
func (l Loss) Zero() bool { return l.Bytes == 0 && l.Files == 0 && l.Resized == 0 && l.Entries == 0 }

// String reads like "dropped 12.4 KiB unsynced in 2 files (member/wal/0001.wal, …); 1 file's
// unsynced size change undone (member/wal/0.tmp); undid 1 directory change (member/wal/0.tmp)".
func (l Loss) String() string {
	if l.Zero() {
		return "nothing unsynced"
	}
	var parts []string
	add := func(s string, paths []string) {
		if len(paths) > 0 {
			s += " (" + strings.Join(paths, ", ") + ")"
		}
		parts = append(parts, s)
	}
	if l.Files > 0 || l.Bytes > 0 {
		add(fmt.Sprintf("dropped %s unsynced in %s", sizeString(l.Bytes), plural(l.Files, "file")), l.FilePaths)
	}
	if l.Resized == 1 {
		add("1 file's unsynced size change undone", l.ResizedPaths)
	} else if l.Resized > 1 {
		add(fmt.Sprintf("%d files' unsynced size changes undone", l.Resized), l.ResizedPaths)
	}
	if l.Entries > 0 {
		add("undid "+plural(l.Entries, "directory change"), l.EntryPaths)
	}
	return strings.Join(parts, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sizeString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
