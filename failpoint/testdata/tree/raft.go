package tree

func save() error {
	// gofail: var raftBeforeSave struct{}
	write()
	// gofail: var raftAfterSave struct{}

	return nil
}

func fail() error {
	// A point with a body: the body uses the injected string, and a
	// comment line in it that looks like a marker is body, not a point.
	// gofail: var defragdbFail string
	// return errors.New(defragdbFail)
	// gofail: var notAPoint struct{}
	return nil
}

func loop() {
	// A label is not a failpoint.
	// gofail: labelDropHeartbeat:
	for {
		// gofail-go: var raftDropHeartbeat struct{}
		//gofail: var noSpace struct{}
		work() // gofail: var trailing struct{}
	}
}
