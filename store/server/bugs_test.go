package server

import (
	"slices"
	"testing"
)

func TestBugsSetNames(t *testing.T) {
	if len(BugNames) != 11 {
		t.Fatalf("BugNames = %v, want the 11 bugs", BugNames)
	}
	for _, name := range BugNames {
		var b Bugs
		if err := b.Set(name); err != nil {
			t.Fatalf("Set(%q): %v", name, err)
		}
		if got := b.Names(); !slices.Equal(got, []string{name}) {
			t.Errorf("after Set(%q), Names() = %v", name, got)
		}
	}
	var all Bugs
	for _, name := range BugNames {
		all.Set(name)
	}
	if all != (Bugs{true, true, true, true, true, true, true, true, true, true, true}) {
		t.Errorf("every bug set gives %+v, want all on", all)
	}
	if err := new(Bugs).Set("no-such-bug"); err == nil {
		t.Error("Set of an unknown bug did not fail")
	}
}
