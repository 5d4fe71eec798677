package compose

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// imageRepo prefixes every image faultline builds.
const imageRepo = "faultline/"

// Image returns the reference of t's image, building it only when no image
// with the same inputs exists: the tag is a hash of the inputs, so a
// second run reuses the first run's image.
func Image(ctx context.Context, cli *client.Client, root string, t Target) (string, error) {
	sum, err := inputsHash(root, t)
	if err != nil {
		return "", fmt.Errorf("hashing the %s image's inputs: %w", t.Name, err)
	}
	ref := imageRepo + t.Name + ":" + sum[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("looking for image %s: %w", ref, err)
	}

	tmp, err := os.MkdirTemp("", "faultline-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, t.Binary)
	if err := t.build(ctx, root, bin); err != nil {
		return "", fmt.Errorf("building %s: %w", t.Name, err)
	}
	agent := filepath.Join(tmp, agentBinary)
	if err := buildAgent(ctx, root, agent); err != nil {
		return "", err
	}
	buildCtx, err := imageContext(t.Binary, bin, agent)
	if err != nil {
		return "", err
	}
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{ref},
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{LabelImage: t.Name},
	})
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", ref, err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return "", fmt.Errorf("building image %s: %w", ref, err)
	}
	return ref, nil
}

// Binary returns the path of t's server built for this machine, for the
// local runtime: like Image, it is built only when no binary of the same
// inputs is in the user's cache folder yet.
func Binary(ctx context.Context, root string, t Target) (string, error) {
	sum, err := inputsHash(root, t)
	if err != nil {
		return "", fmt.Errorf("hashing the %s binary's inputs: %w", t.Name, err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for the %s binary: %w", t.Name, err)
	}
	dir := filepath.Join(cache, "faultline", "bin")
	bin := filepath.Join(dir, t.Name+"-"+sum[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built under another name and renamed, so that a build cut short
	// never leaves a binary that looks finished.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	if err := t.build(ctx, root, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s: %w", t.Name, err)
	}
	return bin, os.Rename(tmp, bin)
}

// inputsHash digests every file under t.Inputs, plus what else decides the
// binary: the target's version and the Go toolchain; and what decides the
// agent: its sources and the modules it is built from.
func inputsHash(root string, t Target) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s %s/%s\n", t.Name, t.Version, runtime.Version(), "linux", runtime.GOARCH)
	mods, dirs, err := agentDeps(root)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "agent modules: %s\n", mods)
	var files []string
	for _, in := range slices.Concat(t.Inputs, dirs) {
		if !filepath.IsAbs(in) {
			in = filepath.Join(root, in)
		}
		err := filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// imageContext is a docker build context holding the target's static
// binary, the agent, and a Dockerfile that puts both in an empty image.
func imageContext(name, bin, agent string) (io.Reader, error) {
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nCOPY %s %s\nENTRYPOINT [\"/%s\"]\n",
		name, name, agentBinary, AgentPath, name)
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	a, err := os.ReadFile(agent)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {name, 0o755, b}, {agentBinary, 0o755, a}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// readBuildOutput drains the engine's build stream, which reports a failed
// build as a message in the stream rather than as an HTTP error.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return fmt.Errorf("%s", msg.Error)
		}
	}
}

// The agent (cmd/agent) goes into every member image, whatever the target:
// the nemesis runs it with docker exec for faults made from inside the
// member's network namespace.
const (
	// AgentPath is where the agent lives in a member's image.
	AgentPath   = "/faultline-agent"
	agentBinary = "faultline-agent"
	agentSource = "cmd/agent"
)

func buildAgent(ctx context.Context, root, out string) error {
	if _, err := goCmd(ctx, root, "build", "-trimpath", "-o", out, "./"+agentSource); err != nil {
		return fmt.Errorf("building the agent: %w", err)
	}
	return nil
}

// agentDeps lists what the agent is built from: the modules (path@version)
// outside this repository, so that its image is rebuilt when one of them
// moves but not when the main module gains a dependency the agent does not
// use; and the folders of this repository's packages it imports (its own
// and compose/proxy), relative to root.
func agentDeps(root string) (mods string, dirs []string, err error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		"{{with .Module}}{{if .Main}}dir={{$.Dir}}{{else}}{{.Path}}@{{.Version}}{{end}}{{end}}", "./"+agentSource)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("listing the agent's dependencies: %w", err)
	}
	var ms []string
	for _, l := range strings.Fields(string(out)) {
		if d, ok := strings.CutPrefix(l, "dir="); ok {
			rel, err := filepath.Rel(root, d)
			if err != nil {
				return "", nil, err
			}
			dirs = append(dirs, rel)
		} else if !slices.Contains(ms, l) {
			ms = append(ms, l)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, " "), dirs, nil
}
