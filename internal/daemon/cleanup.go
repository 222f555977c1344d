package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// ErrRootInUse: a buildkitd that minikit does not track runs on the private
// daemon's state directory.
var ErrRootInUse = errors.New("another buildkitd runs on minikit's buildkitd state")

// cleanStale repairs what a buildkitd that was killed (SIGKILL, OOM, a
// crash) leaves under its state directory root, before another one starts
// there. It
//   - ends the build containers it left running (runc delete --force of
//     every container whose bundle is under root),
//   - unmounts every mount below root (the containers' overlay root file
//     systems, cache mounts), deepest first,
//   - removes the containers' bundle directories and hosts files, and
//   - drops partial downloads (content/ingest): resuming them is not worth
//     the risk of a registry that serves ranges differently, or of a torn
//     write, poisoning every later pull of that blob.
//
// It refuses (ErrRootInUse) when a buildkitd holds root's lock, and removes
// nothing while anything is still mounted below root.
func cleanStale(ctx context.Context, root string) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("clean up after the previous buildkitd: %w", err)
	}
	// buildkitd holds an exclusive flock on this file while it runs.
	lockPath := filepath.Join(real, "buildkitd.lock")
	lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("clean up after the previous buildkitd: %w", err)
	}
	defer lf.Close()
	if ok, err := flockTry(lf, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("clean up after the previous buildkitd: lock %s: %w", lockPath, err)
	} else if !ok {
		return fmt.Errorf("%w: a process holds %s (see `fuser %s`); stop it, or give minikit another MINIKIT_HOME", ErrRootInUse, lockPath, lockPath)
	}

	bundles, _ := filepath.Glob(filepath.Join(real, "*", "executor", "*", "config.json"))
	for i, b := range bundles {
		bundles[i] = filepath.Dir(b)
	}
	var errs []error
	if err := endContainers(ctx, bundles); err != nil {
		errs = append(errs, err)
	}
	if err := unmountBelow(real); err != nil {
		// Removing directories with file systems still mounted in them
		// would delete the cache's snapshots through the mounts.
		return errors.Join(append(errs, err)...)
	}
	// The bundles, and the hosts files made for containers with extra
	// hosts (buildkitd removes only its shared hosts and resolv.conf).
	hosts, _ := filepath.Glob(filepath.Join(real, "*", "executor", "hosts.*"))
	for _, b := range append(bundles, hosts...) {
		if err := os.RemoveAll(b); err != nil {
			errs = append(errs, fmt.Errorf("remove stale build container: %w", err))
		}
	}
	// buildkitd's temporary directory (TMPDIR, see tmpDir): containerd
	// unpacks layers through mounts made there, now unmounted.
	if err := os.RemoveAll(filepath.Join(real, tmpDirName)); err != nil {
		errs = append(errs, fmt.Errorf("remove buildkitd's temporary files: %w", err))
	}
	ingests, _ := filepath.Glob(filepath.Join(real, "*", "content", "ingest"))
	for _, dir := range ingests {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove partial downloads: %w", err))
			continue
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("remove partial download: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// tmpDirName is buildkitd's TMPDIR, under its root: containerd makes
// temporary mounts there while it unpacks layers, and a killed daemon
// leaves them behind; under the root, cleanStale finds and removes them.
const tmpDirName = "tmp"

// tmpDir returns the TMPDIR for the buildkitd whose root is root, created
// private to its user.
func tmpDir(root string) (string, error) {
	dir := filepath.Join(root, tmpDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("buildkitd's temporary directory: %w", err)
	}
	return dir, nil
}

// endContainers kills and deletes the runc containers whose bundles are
// given, if runc still knows them with that bundle (runc's container ids
// are global on the machine: another buildkitd's are left alone).
func endContainers(ctx context.Context, bundles []string) error {
	if len(bundles) == 0 {
		return nil
	}
	runc := ""
	for _, name := range []string{"buildkit-runc", "runc"} { // as buildkitd looks for it
		if p, err := exec.LookPath(name); err == nil {
			runc = p
			break
		}
	}
	if runc == "" {
		return nil // buildkitd cannot have run containers without it
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for _, b := range bundles {
		id := filepath.Base(b)
		out, err := exec.CommandContext(ctx, runc, "state", id).Output()
		if err != nil {
			continue // gone
		}
		var st struct{ Bundle string }
		if json.Unmarshal(out, &st) != nil || filepath.Clean(st.Bundle) != b {
			continue
		}
		if out, err := exec.CommandContext(ctx, runc, "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("end stale build container %s: runc delete: %w: %s", id, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// unmountBelow unmounts every mount point strictly below dir (a path
// without symbolic links), deepest first, and checks that none is left.
func unmountBelow(dir string) error {
	for range 3 { // a second pass for mounts that propagated back meanwhile
		points, err := mountsBelow(dir)
		if err != nil || len(points) == 0 {
			return err
		}
		for _, p := range points {
			err := syscall.Unmount(p, 0)
			if errors.Is(err, syscall.EBUSY) {
				err = syscall.Unmount(p, syscall.MNT_DETACH)
			}
			if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("unmount %s (left by the previous buildkitd): %w", p, err)
			}
		}
	}
	points, err := mountsBelow(dir)
	if err == nil && len(points) > 0 {
		err = fmt.Errorf("still mounted after unmounting: %s", strings.Join(points, ", "))
	}
	return err
}

// mountsBelow lists the mount points strictly below dir in this process's
// mount namespace, deepest first (a mount point stacked several times is
// listed as often, the latest first).
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var points []string
	for _, p := range parseMountinfo(data) {
		if strings.HasPrefix(p, prefix) {
			points = append(points, p)
		}
	}
	slices.Reverse(points) // latest first
	slices.SortStableFunc(points, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return points, nil
}

// parseMountinfo returns the mount points of /proc/<pid>/mountinfo text, in
// mount order: field 5 of each line, with the kernel's octal escapes
// (\040 for a space, \011, \012, \134) decoded.
func parseMountinfo(data []byte) []string {
	var points []string
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		points = append(points, unescapeMountinfo(f[4]))
	}
	return points
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
