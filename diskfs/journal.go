package diskfs

import (
	"os"
	"path/filepath"
	"strings"
)

// entryKind says how to undo a namespace operation.
type entryKind int

const (
	entryCreate entryKind = iota // a file, symlink or hard link appeared at path: unlink it
	entryMkdir                   // a directory appeared at path: rmdir it
	entryRemove                  // path was unlinked or rmdir'ed and parked as staged: put it back
	entryRename                  // path moved to to, replacing what is parked as staged (if any)
)

// entry is one namespace operation not yet committed, with what undoing it needs. Paths are
// relative to the backing directory and valid in the state right after the operation, so
// undoing the journal newest first always finds them.
type entry struct {
	kind   entryKind
	path   string
	to     string   // entryRename only
	staged string   // name under the staging directory, or ""
	dirs   []uint64 // inode numbers of the directories whose entries changed
}

// undo reverts e in the backing directory root, with its parked objects in stage.
func (e entry) undo(root, stage string) error {
	abs := func(p string) string { return filepath.Join(root, p) }
	switch e.kind {
	case entryCreate, entryMkdir:
		return os.Remove(abs(e.path))
	case entryRemove:
		return os.Rename(filepath.Join(stage, e.staged), abs(e.path))
	default:
		if err := os.Rename(abs(e.to), abs(e.path)); err != nil {
			return err
		}
		if e.staged != "" {
			return os.Rename(filepath.Join(stage, e.staged), abs(e.to))
		}
		return nil
	}
}

// commit forgets how to undo e: what it parked can never come back now.
func (e entry) commit(stage string) error {
	if e.staged == "" {
		return nil
	}
	return os.Remove(filepath.Join(stage, e.staged))
}

// touches reports whether e involves path p, an ancestor of p or something below p. Only the
// newest entry touching p may be dropped when p goes away again.
func (e entry) touches(p string) bool {
	related := func(q string) bool { return q != "" && (q == p || under(q, p) || under(p, q)) }
	return related(e.path) || related(e.to)
}

// touchesDir reports whether e changed the entries of the directory with inode number ino.
func (e entry) touchesDir(ino uint64) bool {
	for _, d := range e.dirs {
		if d == ino {
			return true
		}
	}
	return false
}

// under reports whether p lies strictly below dir.
func under(p, dir string) bool {
	return dir == "" && p != "" || strings.HasPrefix(p, dir+"/")
}

// parent is the relative path of p's directory ("" for the root).
func parent(p string) string {
	d := filepath.Dir(p)
	if d == "." {
		return ""
	}
	return d
}
