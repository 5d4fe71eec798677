package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// targetFile is a target file: a JSON description of a store that speaks
// the etcd v3 API, for --target file:PATH. README.md (Targets) shows one.
type targetFile struct {
	// Name names the target's image, cached binary and runs.
	Name string `json:"name"`
	// Binary is a prebuilt static linux server, relative to the file.
	Binary string `json:"binary"`
	// Package is the Go main package to build instead: one of this
	// repository (./cmd/kvnode, built in its root), or of a module at a
	// version (example.com/store/cmd/server@v1.2.0), built in a fresh
	// module that requires it.
	Package string `json:"package"`
	// Inputs key the cache of a repository package: paths relative to the
	// repository root, whose change rebuilds it.
	Inputs []string `json:"inputs"`
	// Flags are one member's server flags, one word each, every word a
	// text/template over MemberFlags, such as "--name={{.Name}}".
	Flags []string `json:"flags"`
	// Version, when set, is the release every member must report.
	Version string `json:"version"`
	// BugFlag is the server flag that takes --unsafe-bug's value.
	BugFlag string `json:"bug_flag"`
	// Files are the files disk faults damage, by class ("wal", "snap"):
	// patterns relative to the data directory, such as member/wal/*.wal.
	Files map[string][]string `json:"files"`
}

const targetFields = "name, binary or package, inputs, flags, version, bug_flag and files"

var targetName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ReadTargetFile reads the target file at path. Every error names the
// file, what is wrong and what to write instead.
func ReadTargetFile(path string) (Target, error) {
	if path == "" {
		return Target{}, errors.New("file: want the path of a target file, such as file:ci/targets/kvnode.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Target{}, fmt.Errorf("reading the target file: %w (give the path of a JSON target file, such as ci/targets/kvnode.json)", err)
	}
	t, err := parseTargetFile(path, b)
	if err != nil {
		return Target{}, fmt.Errorf("target file %s: %w", path, err)
	}
	return t, nil
}

// parseTargetFile makes the target that b, the content of the file at
// path, describes.
func parseTargetFile(file string, b []byte) (Target, error) {
	var f targetFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return Target{}, fmt.Errorf("unknown field %s: the fields are %s", field, targetFields)
		}
		return Target{}, fmt.Errorf("%w: want one JSON object with the fields %s", err, targetFields)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Target{}, errors.New("more after the JSON object: want one object only")
	}
	if !targetName.MatchString(f.Name) {
		return Target{}, fmt.Errorf("name %q: want a short lowercase name such as mystore (letters, digits, '.', '_' and '-'): it names the image and the runs", f.Name)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return Target{}, err
	}
	t := Target{
		Name:    f.Name,
		Version: f.Version,
		Binary:  f.Name,
		// The file itself keys the cache too: a module's version, or how
		// a binary is made, is in it.
		Inputs:  []string{abs},
		Flags:   f.Flags,
		BugFlag: f.BugFlag,
		Files:   f.Files,
	}
	if t.build, err = f.builder(filepath.Dir(abs), &t.Inputs); err != nil {
		return Target{}, err
	}
	if len(f.Flags) == 0 {
		return Target{}, errors.New(`flags: want the server's flags for one member, one word each, such as ["--name", "{{.Name}}", "--data-dir", "{{.DataDir}}"]`)
	}
	if _, err := t.memberArgs(MemberFlags{}); err != nil {
		return Target{}, fmt.Errorf("flags: %w: a word may use {{.Name}}, {{.DataDir}}, {{.ListenClientURL}}, {{.AdvertiseClientURL}}, {{.ListenPeerURL}}, {{.AdvertisePeerURL}}, {{.InitialCluster}}, {{.ClusterState}} and {{.Token}}", err)
	}
	if f.BugFlag != "" && !strings.HasPrefix(f.BugFlag, "-") {
		return Target{}, fmt.Errorf("bug_flag %q: want the server's flag that takes a bug's name, such as --unsafe-bug", f.BugFlag)
	}
	for class, globs := range f.Files {
		if class != FileWAL && class != FileSnap {
			return Target{}, fmt.Errorf("files: class %q: want %q (the write-ahead log) or %q (snapshots or the database)", class, FileWAL, FileSnap)
		}
		for _, g := range globs {
			if _, err := filepath.Match(g, ""); err != nil || filepath.IsAbs(g) || strings.HasPrefix(path.Clean(g), "..") {
				return Target{}, fmt.Errorf("files: %s: %q: want a pattern relative to the data directory, such as member/wal/*.wal", class, g)
			}
		}
	}
	return t, nil
}

// builder returns how f's binary is made, and adds what keys its cache to
// inputs; dir is the file's folder.
func (f targetFile) builder(dir string, inputs *[]string) (func(ctx context.Context, root, out string) error, error) {
	switch {
	case (f.Binary == "") == (f.Package == ""):
		return nil, errors.New(`want either "binary", the path of a prebuilt static linux server, or "package", a Go main package to build (./cmd/kvnode, or example.com/store/cmd/server@v1.2.0)`)
	case f.Binary != "":
		if len(f.Inputs) > 0 {
			return nil, errors.New("inputs: a prebuilt binary keys the cache itself; leave inputs out")
		}
		bin := f.Binary
		if !filepath.IsAbs(bin) {
			bin = filepath.Join(dir, bin)
		}
		if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("binary %s: want an existing file (a relative path is relative to the target file)", bin)
		}
		*inputs = append(*inputs, bin)
		return func(_ context.Context, _, out string) error { return copyFile(bin, out) }, nil
	case strings.HasPrefix(f.Package, "./"):
		if strings.HasPrefix(path.Clean(f.Package), "..") {
			return nil, fmt.Errorf("package %q: want a package inside the repository, such as ./cmd/kvnode", f.Package)
		}
		if len(f.Inputs) == 0 {
			return nil, errors.New(`inputs: want the paths, relative to the repository root, whose change must rebuild the package, such as ["store", "cmd/kvnode", "go.mod", "go.sum"]`)
		}
		for _, in := range f.Inputs {
			if filepath.IsAbs(in) || strings.HasPrefix(path.Clean(in), "..") {
				return nil, fmt.Errorf("inputs: %q: want a path inside the repository, relative to its root, such as store", in)
			}
		}
		*inputs = append(*inputs, f.Inputs...)
		return repoPackage(f.Package), nil
	default:
		pkg, version, ok := strings.Cut(f.Package, "@")
		if !ok || pkg == "" || version == "" {
			return nil, fmt.Errorf("package %q: want a package of this repository such as ./cmd/kvnode, or a module's package at a version such as example.com/store/cmd/server@v1.2.0", f.Package)
		}
		if len(f.Inputs) > 0 {
			return nil, errors.New("inputs: a module's package is keyed by its version; leave inputs out")
		}
		return func(ctx context.Context, _, out string) error { return buildModulePackage(ctx, pkg, version, out) }, nil
	}
}

// buildModulePackage builds the main package pkg at version in a module
// made afresh that requires it, so that the build takes the module's own
// requirements and nothing of this repository.
func buildModulePackage(ctx context.Context, pkg, version, out string) error {
	tmp, err := os.MkdirTemp("", "faultline-target-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := goCmd(ctx, tmp, "mod", "init", "faultline.local/target"); err != nil {
		return err
	}
	if _, err := goCmd(ctx, tmp, "get", pkg+"@"+version); err != nil {
		return fmt.Errorf("%s@%s is not a package the Go module proxy knows: %w", pkg, version, err)
	}
	_, err = goCmd(ctx, tmp, "build", "-trimpath", "-o", out, pkg)
	return err
}

// copyFile copies the prebuilt binary src to out, executable.
func copyFile(src, out string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o755)
}
