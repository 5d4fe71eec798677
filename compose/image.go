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
	"path/filepath"
	"runtime"
	"sort"

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
	buildCtx, err := imageContext(t.Binary, bin)
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

// inputsHash digests every file under t.Inputs, plus what else decides the
// binary: the target's version and the Go toolchain.
func inputsHash(root string, t Target) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s %s/%s\n", t.Name, t.Version, runtime.Version(), "linux", runtime.GOARCH)
	var files []string
	for _, in := range t.Inputs {
		err := filepath.WalkDir(filepath.Join(root, in), func(p string, d fs.DirEntry, err error) error {
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

// imageContext is a docker build context holding one static binary and a
// Dockerfile that puts it in an empty image.
func imageContext(name, bin string) (io.Reader, error) {
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {name, 0o755, b}} {
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
