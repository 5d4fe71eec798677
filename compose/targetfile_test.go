package compose

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTargetFile(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "mystore")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const flags = `"flags": ["--name={{.Name}}", "--dir", "{{.DataDir}}"]`
	for _, tc := range []struct {
		name, text string
		// wantErr is empty for a good file; else what its error must say.
		wantErr []string
		// wantInputs are the inputs beyond the file itself.
		wantInputs []string
	}{
		{name: "binary", text: `{"name": "mystore", "binary": "bin/mystore", ` + flags + `}`, wantInputs: []string{bin}},
		{name: "absolute binary", text: `{"name": "mystore", "binary": "` + bin + `", ` + flags + `}`, wantInputs: []string{bin}},
		{name: "repo package", text: `{"name": "kv2", "package": "./cmd/kvnode", "inputs": ["store", "go.mod"], "version": "3.6.0", "bug_flag": "--unsafe-bug", ` + flags + `}`,
			wantInputs: []string{"store", "go.mod"}},
		{name: "module package", text: `{"name": "etcd-mod", "package": "go.etcd.io/etcd/server/v3@v3.6.16", ` + flags + `}`},
		{name: "unknown field", text: `{"name": "x", "binary": "bin/mystore", "flagz": [], ` + flags + `}`,
			wantErr: []string{`unknown field "flagz"`, "the fields are name, binary or package"}},
		{name: "not JSON", text: `name: x`, wantErr: []string{"want one JSON object"}},
		{name: "wrong type", text: `{"name": 7}`, wantErr: []string{"name", "want one JSON object"}},
		{name: "two objects", text: `{"name": "x", "binary": "bin/mystore", ` + flags + `} {}`, wantErr: []string{"want one object only"}},
		{name: "no name", text: `{"binary": "bin/mystore", ` + flags + `}`, wantErr: []string{`name ""`, "such as mystore"}},
		{name: "bad name", text: `{"name": "My Store", "binary": "bin/mystore", ` + flags + `}`, wantErr: []string{`name "My Store"`}},
		{name: "neither", text: `{"name": "x", ` + flags + `}`, wantErr: []string{`want either "binary"`, `"package"`}},
		{name: "both", text: `{"name": "x", "binary": "bin/mystore", "package": "./cmd/kvnode", "inputs": ["store"], ` + flags + `}`,
			wantErr: []string{`want either "binary"`}},
		{name: "missing binary", text: `{"name": "x", "binary": "bin/nostore", ` + flags + `}`,
			wantErr: []string{filepath.Join(dir, "bin", "nostore"), "relative to the target file"}},
		{name: "binary with inputs", text: `{"name": "x", "binary": "bin/mystore", "inputs": ["store"], ` + flags + `}`,
			wantErr: []string{"inputs: a prebuilt binary keys the cache itself"}},
		{name: "package without inputs", text: `{"name": "x", "package": "./cmd/kvnode", ` + flags + `}`,
			wantErr: []string{"inputs: want the paths, relative to the repository root"}},
		{name: "package outside", text: `{"name": "x", "package": "./../other", "inputs": ["store"], ` + flags + `}`,
			wantErr: []string{`package "./../other": want a package inside the repository`}},
		{name: "input outside", text: `{"name": "x", "package": "./cmd/kvnode", "inputs": ["../store"], ` + flags + `}`,
			wantErr: []string{`inputs: "../store": want a path inside the repository`}},
		{name: "package without version", text: `{"name": "x", "package": "example.com/store/cmd/server", ` + flags + `}`,
			wantErr: []string{`package "example.com/store/cmd/server"`, "@v1.2.0"}},
		{name: "module with inputs", text: `{"name": "x", "package": "example.com/s@v1.0.0", "inputs": ["store"], ` + flags + `}`,
			wantErr: []string{"keyed by its version"}},
		{name: "no flags", text: `{"name": "x", "binary": "bin/mystore"}`, wantErr: []string{"flags: want the server's flags"}},
		{name: "unknown flag field", text: `{"name": "x", "binary": "bin/mystore", "flags": ["--name={{.Nmae}}"]}`,
			wantErr: []string{"flags:", "Nmae", "{{.InitialCluster}}"}},
		{name: "bad template", text: `{"name": "x", "binary": "bin/mystore", "flags": ["--name={{.Name"]}`,
			wantErr: []string{"flags:", "--name={{.Name"}},
		{name: "unknown file class", text: `{"name": "x", "binary": "bin/mystore", "files": {"db": ["member/db"]}, ` + flags + `}`,
			wantErr: []string{`class "db"`, `"wal"`, `"snap"`}},
		{name: "file pattern outside the data dir", text: `{"name": "x", "binary": "bin/mystore", "files": {"wal": ["../wal/*"]}, ` + flags + `}`,
			wantErr: []string{`"../wal/*"`, "relative to the data directory"}},
		{name: "bad bug flag", text: `{"name": "x", "binary": "bin/mystore", "bug_flag": "unsafe-bug", ` + flags + `}`,
			wantErr: []string{`bug_flag "unsafe-bug"`, "such as --unsafe-bug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ParseTarget(filePrefix+path, "v3.5.7")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				for _, want := range append([]string{path}, tc.wantErr...) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]string{path}, tc.wantInputs...); !slices.Equal(got.Inputs, want) {
				t.Errorf("inputs %q, want %q", got.Inputs, want)
			}
			if got.Binary != got.Name || got.build == nil {
				t.Errorf("binary %q for name %q, build set %v", got.Binary, got.Name, got.build != nil)
			}
			args, err := got.memberArgs(MemberFlags{Name: "n2", DataDir: "/data"})
			if err != nil || !slices.Equal(args, []string{"--name=n2", "--dir", "/data"}) {
				t.Errorf("member args %q, %v", args, err)
			}
		})
	}
}

func TestTargetFileMissing(t *testing.T) {
	for _, name := range []string{filePrefix, filePrefix + "no/such.json"} {
		_, err := ParseTarget(name, "")
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(name, filePrefix)) || !strings.Contains(err.Error(), "target file") {
			t.Errorf("%s: error %v, want one naming the target file", name, err)
		}
	}
}

// TestKvnodeTargetFile keeps ci/targets/kvnode.json describing kvnode as
// the built-in does: the same name, flags and bug switch, keyed by the
// same inputs and the file.
func TestKvnodeTargetFile(t *testing.T) {
	path := filepath.Join("..", "ci", "targets", "kvnode.json")
	got, err := ParseTarget(filePrefix+path, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Kvnode()
	abs, _ := filepath.Abs(path)
	if got.Name != want.Name || got.Version != want.Version || got.Binary != want.Binary || got.BugFlag != want.BugFlag ||
		!slices.Equal(got.Flags, want.Flags) || !slices.Equal(got.Inputs, append([]string{abs}, want.Inputs...)) ||
		!maps.EqualFunc(got.Files, want.Files, slices.Equal) {
		t.Errorf("the file describes %+v, the built-in is %+v", got, want)
	}
}
