package main

import (
	"context"
	"strings"
	"testing"
)

// Bad input to faultline failpoints is an error that names the problem,
// with exit code 2, before anything is downloaded.
func TestFailpointsCmdBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "foo"}, `unknown target "foo"`},
		{[]string{"--target", "kvnode"}, "only etcd has gofail failpoints"},
		{[]string{"--etcd-version", "3.6"}, `etcd version "3.6"`},
		{[]string{"v3.6.16"}, `unexpected argument "v3.6.16"`},
	} {
		code, err := failpointsCmd(context.Background(), tc.args)
		if code != exitError || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("failpoints %v: exit %d, error %v; want exit %d and an error saying %q", tc.args, code, err, exitError, tc.want)
		}
	}
}
