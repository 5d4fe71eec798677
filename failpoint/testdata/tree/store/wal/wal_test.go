package wal

// gofail enable reads test files too.
func helper() {
	// gofail: var raftBeforeSave struct{}
}
