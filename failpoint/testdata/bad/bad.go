package bad

func f() {
	// gofail: var missingType
}
