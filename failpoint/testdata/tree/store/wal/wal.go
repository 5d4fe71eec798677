package wal

func sync() {
	// gofail: var walBeforeSync struct{}
	fsync()
	//   gofail: var indentedAfterSlashes struct{}
	// gofail:   var   walAfterSync   struct{}
	_ = 0
}
