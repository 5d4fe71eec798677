package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// DefaultEtcdVersion is the etcd release built when none is asked for: the
// newest v3.6 patch release. compose/targets/etcd/go.mod pins it too, for
// editors and go vet; builds make their own module (buildEtcd).
const DefaultEtcdVersion = "v3.6.16"

// Target is what runs inside each member: a static linux binary, built on
// the host (or given prebuilt), placed in a FROM scratch image or run as
// local processes. It is a built-in (etcd, kvnode) or read from a target
// file (targetfile.go).
type Target struct {
	// Name names the target's image, cached binary and runs.
	Name string
	// Version is the release every member must report in its Maintenance
	// Status answer once ready (checkVersion), or empty for any.
	Version string
	// Binary is the file name of the server inside the image.
	Binary string
	// Inputs are the paths, relative to the repository root (or absolute),
	// whose content decides the image: when none of them changed, the
	// image is reused.
	Inputs []string
	// Flags are one member's server flags, one word each, every word a
	// text/template over MemberFlags.
	Flags []string
	// BugFlag is the server flag that takes --unsafe-bug's value, or empty
	// when the target has no bug switches.
	BugFlag string
	// Renamed are the flags this release knows by an older name: the name
	// newer releases (and --member-flag) use, to this release's.
	Renamed map[string]string
	// SnapshotCount and CatchUpEntries are the server's defaults for how
	// many entries it applies between snapshots and keeps after one (its
	// --snapshot-count and --snapshot-catchup-entries), or zero when not
	// known (SnapshotLag).
	SnapshotCount, CatchUpEntries uint64
	// Files are the member's files disk faults damage, by class (FileWAL,
	// FileSnap): filepath.Match patterns relative to its data directory.
	Files map[string][]string
	// build compiles (or copies) the static binary to out.
	build func(ctx context.Context, root, out string) error
	// failpoints, for a target that has a failpoint build (FailpointBuild),
	// returns that build and the source tree that declares its points.
	failpoints func(ctx context.Context, root string) (Target, string, error)
}

// The classes of a target's Files: its write-ahead log, and the snapshots
// (or database) the log starts after.
const (
	FileWAL  = "wal"
	FileSnap = "snap"
)

// MemberFlags are what a target's flag template may use for one member.
type MemberFlags struct {
	Name    string
	DataDir string
	// ListenClientURL and ListenPeerURL are where the server listens;
	// AdvertiseClientURL and AdvertisePeerURL where others reach it (a
	// local member's peer proxy stands between the two).
	ListenClientURL, AdvertiseClientURL string
	ListenPeerURL, AdvertisePeerURL     string
	// InitialCluster lists every member as name=peer-URL.
	InitialCluster string
	// ClusterState is "new" at boot and "existing" for a member that
	// rejoins.
	ClusterState string
	// Token is the run's ID, so that members of two runs never mix.
	Token string
}

// etcdFlags are the member flags of etcd, which kvnode shares.
var etcdFlags = []string{
	"--name", "{{.Name}}",
	"--data-dir", "{{.DataDir}}",
	"--listen-client-urls", "{{.ListenClientURL}}",
	"--advertise-client-urls", "{{.AdvertiseClientURL}}",
	"--listen-peer-urls", "{{.ListenPeerURL}}",
	"--initial-advertise-peer-urls", "{{.AdvertisePeerURL}}",
	"--initial-cluster", "{{.InitialCluster}}",
	"--initial-cluster-state", "{{.ClusterState}}",
	"--initial-cluster-token", "{{.Token}}",
}

// memberArgs fills t's flag template in for one member.
func (t Target) memberArgs(f MemberFlags) ([]string, error) {
	args := make([]string, 0, len(t.Flags))
	for _, w := range t.Flags {
		tmpl, err := template.New(t.Name).Option("missingkey=error").Parse(w)
		if err != nil {
			return nil, fmt.Errorf("the %s flag %q: %w", t.Name, w, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, f); err != nil {
			return nil, fmt.Errorf("the %s flag %q: %w", t.Name, w, err)
		}
		args = append(args, b.String())
	}
	return args, nil
}

// CheckMemberFlag says what is wrong with f as an extra server flag for
// every member (faultline run --member-flag), or nil: it must be one word,
// --flag or --flag=value, and not a flag the harness sets itself, which
// would fight the member's identity, addresses or bug switch.
func (t Target) CheckMemberFlag(f string) error {
	name, _, _ := strings.Cut(f, "=")
	if !strings.HasPrefix(name, "--") || len(name) == 2 {
		return fmt.Errorf("%q: want one word beginning with --, the flag and its value, such as --snapshot-count=100", f)
	}
	// Go's flag package, and so etcd's, reads -name as --name.
	same := func(flag string) bool {
		return strings.HasPrefix(flag, "-") && strings.TrimLeft(flag, "-") == name[2:]
	}
	if same(t.BugFlag) {
		return fmt.Errorf("%q: faultline sets %s itself; use --unsafe-bug NAME", f, t.BugFlag)
	}
	for _, w := range t.Flags {
		if set, _, _ := strings.Cut(w, "="); same(set) {
			return fmt.Errorf("%q: faultline sets %s itself for every member (their names, data directories, addresses and initial cluster)", f, set)
		}
	}
	return nil
}

var semver = regexp.MustCompile(`^v3\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

// Etcd is real etcd at version (e.g. v3.5.35, v3.6.16, v3.7.3), compiled
// from etcd's own modules imported as a library by compose/targets/etcd.
func Etcd(version string) (Target, error) {
	if version == "" {
		version = DefaultEtcdVersion
	}
	if !semver.MatchString(version) {
		return Target{}, fmt.Errorf("etcd version %q: want a release such as v3.5.35, %s or v3.7.3", version, DefaultEtcdVersion)
	}
	return Target{
		Name:    "etcd",
		Version: version,
		Binary:  "etcd",
		// target.go holds how etcd is built: a change there must not
		// reuse an image built the old way.
		Inputs: []string{"compose/targets/etcd", "compose/target.go"},
		Flags:  etcdFlags,
		// Not member/snap/db: bbolt checksums only its meta pages, and no
		// etcd release claims to notice a flipped bit in its data pages
		// unless asked to compare hashes with its peers.
		Files: map[string][]string{
			FileWAL:  {"member/wal/*.wal"},
			FileSnap: {"member/snap/*.snap"},
		},
		build: func(ctx context.Context, root, out string) error {
			return buildEtcd(ctx, filepath.Join(root, "compose/targets/etcd"), version, out)
		},
		Renamed:        etcdRenamed(version),
		SnapshotCount:  etcdSnapshotCount(version),
		CatchUpEntries: 5000,
		failpoints:     etcdFailpointBuild(version),
	}, nil
}

// etcdSnapshotCount is etcd's default --snapshot-count: 100,000 up to
// v3.5, 10,000 since v3.6.
func etcdSnapshotCount(version string) uint64 {
	if strings.HasPrefix(version, "v3.5.") || strings.HasPrefix(version, "v3.4.") {
		return 100000
	}
	return 10000
}

// etcdRenamed are the flags v3.5 has only under their experimental names,
// which v3.6 deprecated and v3.7 removed.
func etcdRenamed(version string) map[string]string {
	if !strings.HasPrefix(version, "v3.5.") {
		return nil
	}
	return map[string]string{
		"--snapshot-catchup-entries": "--experimental-snapshot-catchup-entries",
		"--compaction-batch-limit":   "--experimental-compaction-batch-limit",
	}
}

// rename gives the flags of args this release knows by another name that
// name, in both --flag=value and --flag value forms.
func (t Target) rename(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		name, value, inline := strings.Cut(a, "=")
		if to, ok := t.Renamed[name]; ok {
			name = to
		}
		if inline {
			name += "=" + value
		}
		out[i] = name
	}
	return out
}

// errWrongRelease marks a member that runs another release than its
// target claims.
var errWrongRelease = errors.New("a member runs another release than the one asked for")

// checkVersion returns an error naming the member and both versions when
// the release it reports running (Maintenance Status, e.g. "3.5.7") is
// not t's. A target that claims no version (kvnode) accepts any.
func (t Target) checkVersion(member, running string) error {
	if t.Version == "" || strings.TrimPrefix(t.Version, "v") == running {
		return nil
	}
	return fmt.Errorf("%w: %s reports %s %q, not %s", errWrongRelease, member, t.Name, running, t.Version)
}

// Kvnode is faultline's reference store, built from this repository.
func Kvnode() Target {
	return Target{
		Name:    "kvnode",
		Binary:  "kvnode",
		Inputs:  []string{"store", "cmd/kvnode", "go.mod", "go.sum"},
		Flags:   etcdFlags,
		BugFlag: "--unsafe-bug",
		Files:   kvnodeFiles,
		// cmd/kvnode's defaults.
		SnapshotCount: 100000, CatchUpEntries: 5000,
		build: repoPackage("./cmd/kvnode"),

		failpoints: kvnodeFailpointBuild,
	}
}

var kvnodeFiles = map[string][]string{
	FileWAL:  {"member/wal/wal.log"},
	FileSnap: {"member/snapshot.bin"},
}

// repoPackage builds the main package pkg of the repository at root.
func repoPackage(pkg string) func(ctx context.Context, root, out string) error {
	return func(ctx context.Context, root, out string) error {
		_, err := goCmd(ctx, root, "build", "-trimpath", "-o", out, pkg)
		return err
	}
}

// builtins are the targets --target names; their version argument is the
// --etcd-version flag, which only etcd reads. A new built-in is one
// constructor and one line here.
var builtins = map[string]func(version string) (Target, error){
	"etcd":   Etcd,
	"kvnode": func(string) (Target, error) { return Kvnode(), nil },
}

// filePrefix marks a --target that is the path of a target file.
const filePrefix = "file:"

// TargetUsage says what --target takes, for the help of every command
// that has one.
var TargetUsage = targetUsage()

func targetUsage() string {
	var names []string
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ") + ", or " + filePrefix + "PATH (a target file describing another store that speaks the etcd v3 API; see README.md, Targets)"
}

// ParseTarget returns the target a --target flag names: a built-in, or
// file:PATH for the target file at PATH. version applies to etcd only.
func ParseTarget(name, version string) (Target, error) {
	if path, ok := strings.CutPrefix(name, filePrefix); ok {
		return ReadTargetFile(path)
	}
	if mk, ok := builtins[name]; ok {
		return mk(version)
	}
	return Target{}, fmt.Errorf("unknown target %q: want %s", name, TargetUsage)
}

// buildEtcd compiles src/main.go in a module made afresh for version. It
// requires that release's server and pins every go.etcd.io module (api,
// client, pkg, raft, bbolt) at the version the release's own server go.mod
// names, so the binary is that release and not its server on a neighbour's
// libraries. A pin that the build did not keep fails it.
func buildEtcd(ctx context.Context, src, version, out string) error {
	return buildEtcdModule(ctx, src, version, out, nil)
}

// etcdPatch changes an etcd build's module in tmp (its go.mod written,
// not yet tidied) before it is built, e.g. to replace the server module by
// a rewritten copy of release's; it returns the modules it pinned, which
// the build must keep at their versions too.
type etcdPatch func(ctx context.Context, tmp string, release serverModule) ([]module, error)

// buildEtcdModule is buildEtcd, with patch (if not nil) applied to the
// module before it is tidied and built.
func buildEtcdModule(ctx context.Context, src, version, out string, patch etcdPatch) error {
	tmp, err := os.MkdirTemp("", "faultline-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	release, err := downloadEtcdServer(ctx, tmp, version)
	if err != nil {
		return err
	}
	pins, err := etcdRequirements(ctx, release.GoMod)
	if err != nil {
		return err
	}
	pins = append([]module{{Path: etcdServer, Version: version}}, pins...)
	main, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "main.go"), main, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), buildModule(pins), 0o644); err != nil {
		return err
	}
	if patch != nil {
		more, err := patch(ctx, tmp, release)
		if err != nil {
			return err
		}
		pins = append(pins, more...)
	}
	if _, err := goCmd(ctx, tmp, "mod", "tidy"); err != nil {
		return fmt.Errorf("etcd %s does not build: %w", version, err)
	}
	args := []string{"list", "-m", "-json"}
	for _, p := range pins {
		args = append(args, p.Path)
	}
	listed, err := goCmd(ctx, tmp, args...)
	if err != nil {
		return err
	}
	if err := unraised(version, pins, listed); err != nil {
		return err
	}
	_, err = goCmd(ctx, tmp, "build", "-trimpath", "-o", out, ".")
	return err
}

const etcdServer = "go.etcd.io/etcd/server/v3"

// serverModule is where go mod download put a release of etcd's server
// module: its source tree (read-only, in the module cache) and its go.mod.
type serverModule struct{ Dir, GoMod string }

// downloadEtcdServer fetches etcd's server module at version into the
// module cache (from the proxy, unless it is there already), running the
// go tool in dir.
func downloadEtcdServer(ctx context.Context, dir, version string) (serverModule, error) {
	var m serverModule
	dl, err := goCmd(ctx, dir, "mod", "download", "-json", etcdServer+"@"+version)
	if err != nil {
		return m, fmt.Errorf("etcd %s is not a release the Go module proxy knows: %w", version, err)
	}
	if err := json.Unmarshal(dl, &m); err != nil {
		return m, fmt.Errorf("reading go mod download's answer for etcd %s: %w", version, err)
	}
	return m, nil
}

// EtcdServerSource returns the directory of etcd's server module source at
// version (empty for DefaultEtcdVersion), the tree its failpoint markers
// are in. It is the module cache's copy: read it, never write to it.
func EtcdServerSource(ctx context.Context, version string) (string, error) {
	t, err := Etcd(version)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "faultline-etcd-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	m, err := downloadEtcdServer(ctx, tmp, t.Version)
	if err != nil {
		return "", err
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download named no source directory for etcd %s", t.Version)
	}
	return m.Dir, nil
}

// module is a module path and version, as go mod edit -json and go list
// -m -json print them.
type module struct{ Path, Version string }

// etcdRequirements reads the go.mod file at path and returns what it
// requires of etcd's own modules, those under go.etcd.io.
func etcdRequirements(ctx context.Context, path string) ([]module, error) {
	b, err := goCmd(ctx, filepath.Dir(path), "mod", "edit", "-json", filepath.Base(path))
	if err != nil {
		return nil, err
	}
	var mod struct{ Require []module }
	if err := json.Unmarshal(b, &mod); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var etcd []module
	for _, r := range mod.Require {
		if strings.HasPrefix(r.Path, "go.etcd.io/") {
			etcd = append(etcd, r)
		}
	}
	return etcd, nil
}

// buildModule is the go.mod of an etcd build: the module of
// compose/targets/etcd, requiring pins.
func buildModule(pins []module) []byte {
	var b bytes.Buffer
	b.WriteString("module github.com/faultline/faultline/compose/targets/etcd\n\ngo 1.26\n\nrequire (\n")
	for _, p := range pins {
		fmt.Fprintf(&b, "\t%s %s\n", p.Path, p.Version)
	}
	b.WriteString(")\n")
	return b.Bytes()
}

// unraised checks the versions go list -m -json printed (listed) against
// pins: minimal version selection raises a module when some other
// dependency asks for a newer one, and then the binary is not the release.
func unraised(release string, pins []module, listed []byte) error {
	got := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(listed))
	for {
		var m module
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("reading go list -m: %w", err)
		}
		got[m.Path] = m.Version
	}
	var errs []error
	for _, p := range pins {
		if got[p.Path] != p.Version {
			errs = append(errs, fmt.Errorf("etcd %s requires %s %s, but the build resolved it to %q", release, p.Path, p.Version, got[p.Path]))
		}
	}
	return errors.Join(errs...)
}

// goCmd runs the go tool for a static linux binary and returns its
// standard output; an error carries all it printed.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return runIn(ctx, dir, "go", args...)
}

// runIn runs the build tool name (the go tool, or one it built) in dir,
// with goCmd's environment, and returns its standard output; an error
// carries all it printed.
func runIn(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), dir, err, out, stderr.Bytes())
	}
	return out, nil
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
