package main

import (
	"context"
	"strings"
	"testing"

	"github.com/faultline/faultline/failpoint"
)

// Bad input to faultline failpoints is an error that names the problem,
// with exit code 2, before anything is downloaded.
func TestFailpointsCmdBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "foo"}, `unknown target "foo"`},
		{[]string{"--target", "file:../../ci/targets/kvnode.json"}, "only etcd and kvnode have gofail failpoints"},
		{[]string{"--etcd-version", "3.6"}, `etcd version "3.6"`},
		{[]string{"v3.6.16"}, `unexpected argument "v3.6.16"`},
	} {
		code, err := failpointsCmd(context.Background(), tc.args)
		if code != exitError || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("failpoints %v: exit %d, error %v; want exit %d and an error saying %q", tc.args, code, err, exitError, tc.want)
		}
	}
}

// kvnode declares its failpoints under the names of etcd's that mean the
// same, so that one failpoint fault can name either target's.
func TestKvnodeFailpoints(t *testing.T) {
	points, err := failpoint.Scan("../../store")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range points {
		if have[p.Name] {
			t.Errorf("kvnode declares %s twice", p.Name)
		}
		have[p.Name] = true
	}
	for _, name := range []string{"raftBeforeSave", "raftAfterSave", "raftBeforeLeaderSend", "raftBeforeFollowerSend",
		"raftBeforeSaveSnap", "raftAfterSaveSnap", "raftBeforeApplySnap", "raftAfterApplySnap",
		"raftBeforeWALRelease", "raftAfterWALRelease", "compactBeforeApply", "compactAfterApply"} {
		if !have[name] {
			t.Errorf("kvnode has no failpoint %s", name)
		}
	}
}
