package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEtcdVersion is the etcd release built when none is asked for. It
// is the version pinned in compose/targets/etcd/go.mod.
const DefaultEtcdVersion = "v3.5.17"

// Target is what runs inside each member: a static binary, built on the
// host from Go sources, placed in a FROM scratch image.
type Target struct {
	// Name is "etcd" or "kvnode".
	Name string
	// Version is the release of the target (etcd), or empty.
	Version string
	// Binary is the file name of the server inside the image.
	Binary string
	// Inputs are the paths, relative to the repository root, whose content
	// decides the image: when none of them changed, the image is reused.
	Inputs []string
	// build compiles the static binary to out.
	build func(ctx context.Context, root, out string) error
}

var semver = regexp.MustCompile(`^v3\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

// Etcd is real etcd at version (e.g. v3.5.17, v3.6.6), compiled from etcd's
// own module imported as a library by compose/targets/etcd.
func Etcd(version string) (Target, error) {
	if version == "" {
		version = DefaultEtcdVersion
	}
	if !semver.MatchString(version) {
		return Target{}, fmt.Errorf("etcd version %q: want a release such as %s or v3.6.6", version, DefaultEtcdVersion)
	}
	return Target{
		Name:    "etcd",
		Version: version,
		Binary:  "etcd",
		Inputs:  []string{"compose/targets/etcd"},
		build: func(ctx context.Context, root, out string) error {
			return buildEtcd(ctx, filepath.Join(root, "compose/targets/etcd"), version, out)
		},
	}, nil
}

// Kvnode is faultline's reference store, built from this repository.
func Kvnode() Target {
	return Target{
		Name:   "kvnode",
		Binary: "kvnode",
		Inputs: []string{"store", "cmd/kvnode", "go.mod", "go.sum"},
		build: func(ctx context.Context, root, out string) error {
			return goCmd(ctx, root, "build", "-trimpath", "-o", out, "./cmd/kvnode")
		},
	}
}

// ParseTarget returns the target a --target flag names; version applies to
// etcd only.
func ParseTarget(name, version string) (Target, error) {
	switch name {
	case "etcd":
		return Etcd(version)
	case "kvnode":
		return Kvnode(), nil
	}
	return Target{}, fmt.Errorf("unknown target %q: want etcd or kvnode", name)
}

// buildEtcd compiles the pinned module, or, for another version, a copy of
// it with the etcd requirement moved to that version.
func buildEtcd(ctx context.Context, src, version, out string) error {
	dir := src
	if version != DefaultEtcdVersion {
		tmp, err := os.MkdirTemp("", "faultline-etcd-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		for _, f := range []string{"main.go", "go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
				return err
			}
		}
		if err := goCmd(ctx, tmp, "get", "go.etcd.io/etcd/server/v3@"+version); err != nil {
			return fmt.Errorf("etcd %s is not a release the Go module proxy knows, or does not build: %w", version, err)
		}
		if err := goCmd(ctx, tmp, "mod", "tidy"); err != nil {
			return err
		}
		dir = tmp
	}
	return goCmd(ctx, dir, "build", "-trimpath", "-o", out, ".")
}

// goCmd runs the go tool for a static linux binary.
func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

// FindRoot returns the faultline repository root: the nearest directory at
// or above dir whose go.mod declares the faultline module. Images are built
// from the sources there.
func FindRoot(dir string) (string, error) {
	start := dir
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/faultline/faultline\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no faultline checkout at or above %s: run faultline from inside its repository, where it builds the member images", start)
		}
		dir = parent
	}
}
