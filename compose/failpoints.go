package compose

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/faultline/faultline/failpoint"
)

// gofail is the failpoint tool a failpoint build of etcd rewrites the
// server with, and whose runtime it links: v0.2.0, as etcd's own tools
// pin on release-3.5, release-3.6 and main (older runtimes could block a
// DELETE behind a sleeping term).
const (
	gofailModule  = "go.etcd.io/gofail"
	gofailVersion = "v0.2.0"
)

// EtcdFailpoints is etcd at version built with its gofail failpoints
// compiled in: every marker of its server module's source (EtcdServerSource,
// failpoint.Scan), not only those in the directories etcd's own failpoint
// build enables. The failpoints are armed through the GOFAIL_FAILPOINTS
// and GOFAIL_HTTP environment variables; unarmed, the server behaves as
// the plain build.
func EtcdFailpoints(version string) (Target, error) {
	t, err := Etcd(version)
	if err != nil {
		return Target{}, err
	}
	t.Name = "etcd-failpoints"
	// How the build rewrites the source is in failpoints.go and in the
	// marker scanner: a change to either must not reuse a binary built
	// the old way.
	t.Inputs = append(t.Inputs, "compose/failpoints.go", "failpoint")
	v := t.Version
	t.build = func(ctx context.Context, root, out string) error {
		return buildEtcdModule(ctx, filepath.Join(root, "compose/targets/etcd"), v, out, enableFailpoints)
	}
	return t, nil
}

// FailpointBuild returns t built with its failpoints compiled in, and the
// points it declares, read from the source it is built from (for kvnode,
// the checkout at root). Only etcd and kvnode have failpoints.
func FailpointBuild(ctx context.Context, root string, t Target) (Target, []failpoint.Point, error) {
	if t.failpoints == nil {
		return Target{}, nil, fmt.Errorf("target %s has no failpoint build: only etcd and kvnode have gofail failpoints", t.Name)
	}
	ft, src, err := t.failpoints(ctx, root)
	if err != nil {
		return Target{}, nil, err
	}
	points, err := failpoint.Scan(src)
	if err != nil {
		return Target{}, nil, fmt.Errorf("reading %s's failpoints: %w", t.Name, err)
	}
	return ft, points, nil
}

// etcdFailpointBuild is the failpoints of Etcd(version): its failpoint
// build, and its server module's source.
func etcdFailpointBuild(version string) func(context.Context, string) (Target, string, error) {
	return func(ctx context.Context, _ string) (Target, string, error) {
		t, err := EtcdFailpoints(version)
		if err != nil {
			return Target{}, "", err
		}
		src, err := EtcdServerSource(ctx, t.Version)
		return t, src, err
	}
}

// kvnodeFailpointBuild is the failpoints of Kvnode().
func kvnodeFailpointBuild(_ context.Context, root string) (Target, string, error) {
	return KvnodeFailpoints(), filepath.Join(root, KvnodeFailpointDir), nil
}

// KvnodeFailpointDir is where, in the checkout, kvnode's failpoints are
// declared: the store, and not the marker scanner's own test fixtures.
const KvnodeFailpointDir = "store"

// FailpointBinary returns the path of etcd at version with its failpoints
// compiled in, for this machine, building it only when the cache has no
// binary of the same inputs (Binary).
func FailpointBinary(ctx context.Context, root, version string) (string, error) {
	t, err := EtcdFailpoints(version)
	if err != nil {
		return "", err
	}
	return Binary(ctx, root, t)
}

// serverCopy is where, inside the build's module, enableFailpoints puts
// the rewritten server: the module's go.mod replaces the release by it.
const serverCopy = "server"

// enableFailpoints is the etcdPatch of a failpoint build: it copies the
// release's server module into tmp, runs gofail enable on every directory
// of it that declares a failpoint, and makes the build use that copy and
// link gofail's runtime, which the rewritten code imports.
func enableFailpoints(ctx context.Context, tmp string, release serverModule) ([]module, error) {
	dst := filepath.Join(tmp, serverCopy)
	if err := copyTree(release.Dir, dst); err != nil {
		return nil, fmt.Errorf("copying etcd's server module: %w", err)
	}
	points, err := failpoint.Scan(dst)
	if err != nil {
		return nil, fmt.Errorf("reading etcd's failpoints: %w", err)
	}
	dirs, err := failpointDirs(points)
	if err != nil {
		return nil, err
	}
	gofailPin := module{Path: gofailModule, Version: gofailVersion}
	if _, err := goCmd(ctx, tmp, "mod", "edit",
		"-require="+gofailModule+"@"+gofailVersion,
		"-replace="+etcdServer+"=./"+serverCopy); err != nil {
		return nil, err
	}
	if err := gofailEnable(ctx, tmp, dst, dirs); err != nil {
		return nil, err
	}
	return []module{gofailPin}, nil
}

// gofailEnable rewrites the markers of dirs (relative to src) into gofail's
// code, with the gofail tool built in the module at mod, which it makes
// require gofail's runtime.
func gofailEnable(ctx context.Context, mod, src string, dirs []string) error {
	// go get records gofail's checksums, so that its command builds
	// before tidy has seen the rewritten imports.
	if _, err := goCmd(ctx, mod, "get", gofailModule+"@"+gofailVersion); err != nil {
		return fmt.Errorf("gofail %s is not on the Go module proxy: %w", gofailVersion, err)
	}
	tool := filepath.Join(mod, "bin", "gofail")
	if _, err := goCmd(ctx, mod, "build", "-o", tool, gofailModule); err != nil {
		return err
	}
	if _, err := runIn(ctx, src, tool, append([]string{"enable"}, dirs...)...); err != nil {
		return fmt.Errorf("gofail enable: %w", err)
	}
	return nil
}

// KvnodeFailpoints is kvnode built with its gofail failpoints compiled in:
// every marker under store/, which carry the names of etcd's points that
// mean the same. Armed through GOFAIL_FAILPOINTS and GOFAIL_HTTP as etcd's;
// unarmed, the server behaves as the plain build.
func KvnodeFailpoints() Target {
	t := Kvnode()
	t.Name = "kvnode-failpoints"
	t.Inputs = append(t.Inputs, "compose/failpoints.go", "failpoint")
	t.build = buildKvnodeFailpoints
	return t
}

// buildKvnodeFailpoints copies what kvnode is built from out of the
// checkout at root (its Inputs: the module files, store/, cmd/kvnode),
// rewrites the copy's markers and builds it.
func buildKvnodeFailpoints(ctx context.Context, root, out string) error {
	tmp, err := os.MkdirTemp("", "faultline-kvnode-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, in := range Kvnode().Inputs {
		if err := copyTree(filepath.Join(root, in), filepath.Join(tmp, in)); err != nil {
			return fmt.Errorf("copying kvnode's %s: %w", in, err)
		}
	}
	store := filepath.Join(tmp, KvnodeFailpointDir)
	points, err := failpoint.Scan(store)
	if err != nil {
		return fmt.Errorf("reading kvnode's failpoints: %w", err)
	}
	dirs, err := failpointDirs(points)
	if err != nil {
		return err
	}
	if err := gofailEnable(ctx, tmp, store, dirs); err != nil {
		return err
	}
	// Not tidied: the copy holds kvnode's packages, not the tests that
	// import the rest of the checkout; gofail's runtime is required already.
	_, err = goCmd(ctx, tmp, "build", "-mod=mod", "-trimpath", "-o", out, "./cmd/kvnode")
	return err
}

// failpointDirs returns the directories (slash paths relative to the
// scanned root) that hold points, sorted, for gofail enable, which reads
// the files of each directory it is given but not of its subdirectories.
// A name declared twice would make the binary panic at init: an error.
func failpointDirs(points []failpoint.Point) ([]string, error) {
	seen := map[string]string{}
	set := map[string]bool{}
	for _, p := range points {
		if f, ok := seen[p.Name]; ok {
			return nil, fmt.Errorf("failpoint %s is declared twice, in %s and %s: gofail would register it twice", p.Name, f, p.File)
		}
		seen[p.Name] = p.File
		set[path.Dir(p.File)] = true
	}
	var dirs []string
	for d := range set {
		dirs = append(dirs, "./"+d)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// copyTree copies the regular files under src to dst, writable (the module
// cache's are not), keeping the layout: gofail names a generated file's
// package after its directory.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}
