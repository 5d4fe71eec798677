package compose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/damage"
	"github.com/faultline/faultline/diskfs"
)

// A local member's disk is a diskfs layer the harness serves itself, over
// <run dir>/<member>.disk, mounted on the member's data directory. It
// stays mounted across the member's restarts, so what the member left
// unsynced before one restart can still be lost by a power loss after it.

func (r *local) backing(m *Member) string { return filepath.Join(r.dir, m.Name+".disk") }

// mountDisk puts m's filesystem layer on its data directory; r.mu is held
// or the cluster not yet shared.
func (r *local) mountDisk(m *Member) error {
	for _, d := range []string{r.backing(m), r.dataDir(m)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	fs, err := diskfs.Mount(r.backing(m), r.dataDir(m), diskfs.Options{Name: "faultline-" + m.Name, Mode: r.diskMode})
	if err != nil {
		return fmt.Errorf("mounting %s's filesystem layer: %w", m.Name, err)
	}
	r.disks[m.Name] = fs
	return nil
}

// unmountDisk takes m's layer away, if it has one; r.mu is held.
func (r *local) unmountDisk(m *Member) error {
	fs := r.disks[m.Name]
	if fs == nil {
		return nil
	}
	delete(r.disks, m.Name)
	return fs.Unmount()
}

func (r *local) disk(m *Member) (*diskfs.FS, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.disks[m.Name]
	if fs == nil {
		return nil, ErrNoDisks
	}
	return fs, nil
}

func (r *local) PowerLoss(ctx context.Context, m *Member) (string, error) {
	fs, err := r.disk(m)
	if err != nil {
		return "", err
	}
	if err := r.kill(ctx, m); err != nil {
		return "", err
	}
	loss, err := fs.PowerLoss()
	if err != nil {
		return "", err
	}
	return loss.String(), nil
}

func (r *local) Damage(ctx context.Context, m *Member, how Damage, class string, seed uint64) (string, error) {
	globs, err := r.target.globs(class)
	if err != nil {
		return "", err
	}
	if err := r.kill(ctx, m); err != nil {
		return "", err
	}
	return damage.Apply(r.dataDir(m), string(how), globs, seed)
}

func (r *local) SlowDisk(_ context.Context, m *Member, d time.Duration) error {
	fs, err := r.disk(m)
	if err != nil {
		return err
	}
	fs.SetDelay(d)
	return nil
}

func (r *local) FailDisk(_ context.Context, m *Member, how string) error {
	fs, err := r.disk(m)
	if err != nil {
		return err
	}
	op, errno, err := diskfs.ParseFailure(how)
	if err != nil {
		return err
	}
	fs.SetError(op, errno)
	return nil
}

func (r *local) HealDisk(_ context.Context, m *Member) error {
	fs, err := r.disk(m)
	if err != nil {
		return err
	}
	fs.Heal()
	return nil
}

// detachUnder detaches every mount under dir: the layers of a harness that
// died before its teardown are left mounted, their server gone, and
// nothing under them can be removed until they are.
func detachUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options...
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		if mp := unescapeMount(fs[4]); strings.HasPrefix(mp, dir+string(filepath.Separator)) {
			errs = append(errs, diskfs.Detach(mp))
		}
	}
	return errors.Join(append(errs, sc.Err())...)
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
