//go:build !linux

package wal

import "os"

// fdatasync is fsync where the system has no cheaper data-only sync.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate grows f to size new; without fallocate the new space is sparse.
func preallocate(f *os.File, _, new int64) error { return f.Truncate(new) }
