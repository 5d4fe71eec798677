// Package diskfs is a FUSE filesystem that sits between a store member and its data directory so
// that a nemesis can simulate a power loss: every write not yet made durable by fsync or fdatasync
// is forgotten, and every directory change (create, mkdir, rename, unlink, rmdir, link, symlink)
// not yet made durable is undone. It can also slow the disk down or make it fail on demand.
//
// The backing directory always holds the current state, so reads pass straight through and a
// crash of the daemon itself leaves what a process crash leaves. The layer keeps undo information
// instead: for each file changed since its last sync, its size at that sync and the old bytes of
// every range overwritten since (the first old value wins; runs of old zeroes are kept as a length
// only); and one ordered journal of namespace operations, where a removed or replaced entry is
// parked in a hidden staging directory, <backing>/.diskfs, so it can be put back. Syncing a file
// drops its undo information; committing a prefix of the journal drops what that prefix parked.
// A power loss writes the old bytes back, truncates each file to its durable size and undoes the
// uncommitted journal suffix newest first. Which syncs commit the journal is the Mode: Strict
// follows POSIX (fsync of a directory commits through the last change to that directory), Ext4
// follows what ext4 and xfs do in practice (any sync commits everything, and so does a timer).
// Like the kernel's writeback, a file dirty for long enough (Options.Writeback) has its undo
// information dropped as if it had been fsynced, but the journal is not committed: its data
// survives a loss, a name nobody made durable does not.
//
// The model (disk.go, undo.go, journal.go) knows nothing of FUSE; fuse_linux.go and
// mount_linux.go are a thin go-fuse adapter over it.
package diskfs
