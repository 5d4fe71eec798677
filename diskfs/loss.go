package diskfs

import (
	"fmt"
	"sort"
	"strings"
)

// maxPaths bounds Loss.Paths: a report names a few examples, not every file.
const maxPaths = 10

// Loss is what a power loss dropped (or, from Unsynced, would drop).
type Loss struct {
	Bytes   int64    // unsynced bytes dropped: overwritten ranges plus growth beyond the durable size
	Files   int      // files whose content changed
	Entries int      // namespace operations undone
	Paths   []string // some of the paths affected, sorted, at most maxPaths

	more bool // Paths was cut short
}

// lossBuilder gathers paths without duplicates and caps them when done.
type lossBuilder struct {
	Loss
	paths map[string]bool
}

func (b *lossBuilder) path(p string) {
	if b.paths == nil {
		b.paths = map[string]bool{}
	}
	if p == "" {
		p = "."
	}
	b.paths[p] = true
}

func (b *lossBuilder) done() Loss {
	l := b.Loss
	l.Paths = nil
	for p := range b.paths {
		l.Paths = append(l.Paths, p)
	}
	sort.Strings(l.Paths)
	if len(l.Paths) > maxPaths {
		l.Paths, l.more = l.Paths[:maxPaths], true
	}
	return l
}

// Zero reports whether nothing was (or would be) dropped.
func (l Loss) Zero() bool { return l.Bytes == 0 && l.Files == 0 && l.Entries == 0 }

// String reads like "dropped 12.4 KiB unsynced in 2 files (member/wal/0001.wal, …), undid 1
// directory change".
func (l Loss) String() string {
	if l.Zero() {
		return "nothing unsynced"
	}
	var parts []string
	if l.Files > 0 || l.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("dropped %s unsynced in %s", sizeString(l.Bytes), plural(l.Files, "file")))
	}
	if l.Entries > 0 {
		parts = append(parts, fmt.Sprintf("undid %s", plural(l.Entries, "directory change")))
	}
	if len(l.Paths) > 0 {
		names := strings.Join(l.Paths, ", ")
		if l.more {
			names += ", …"
		}
		parts[0] += " (" + names + ")"
	}
	return strings.Join(parts, ", ")
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
