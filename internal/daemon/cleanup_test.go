package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	data := []byte(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
48 22 0:39 / /tmp/h/with\040space/root/runc-overlayfs/executor/x/rootfs rw,relatime - overlay overlay rw,lowerdir=/a
49 48 0:40 / /tmp/back\134slash\011tab rw - tmpfs tmpfs rw
bad line
`)
	got := parseMountinfo(data)
	want := []string{"/", "/tmp/h/with space/root/runc-overlayfs/executor/x/rootfs", "/tmp/back\\slash\ttab"}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountinfo = %q, want %q", got, want)
	}
	if got := unescapeMountinfo(`a\04`); got != `a\04` {
		t.Errorf("truncated escape: %q", got)
	}
}

func mount(t *testing.T, target string) {
	t.Helper()
	if err := os.MkdirAll(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", target, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(target, syscall.MNT_DETACH) })
}

// TestCleanStale: what a killed buildkitd leaves under its root (mounts in
// its executor, nested and stacked, a build container's bundle, partial
// downloads) is unmounted and removed before the next start; what is beside
// the root is not touched.
func TestCleanStale(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount; not skipping because CI=true")
		}
		t.Skip("needs root to mount")
	}
	base := filepath.Join(t.TempDir(), "a home with spaces")
	root := filepath.Join(base, "buildkitd", "root")
	worker := filepath.Join(root, "runc-overlayfs")
	bundle := filepath.Join(worker, "executor", "ctr1")
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(worker, "executor", "hosts.ctr1")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	mount(t, rootfs)
	mount(t, filepath.Join(rootfs, "nested", "deeper"))
	mount(t, filepath.Join(worker, "cachemounts", "buildkit1"))
	mount(t, filepath.Join(worker, "cachemounts", "buildkit1")) // stacked
	// containerd's temporary mount while it unpacks a layer, in
	// buildkitd's TMPDIR (tmpDir).
	tmp, err := tmpDir(root)
	if err != nil {
		t.Fatal(err)
	}
	mount(t, filepath.Join(tmp, "containerd-mount123"))
	// Beside the root, sharing its name as a prefix: not below it.
	sibling := root + "2"
	mount(t, sibling)
	ingest := filepath.Join(worker, "content", "ingest", "abc")
	if err := os.MkdirAll(ingest, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ingest, "data"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(worker, "content", "blobs", "sha256", "done")
	if err := os.MkdirAll(filepath.Dir(blob), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if before, err := mountsBelow(root); err != nil || len(before) != 5 {
		t.Fatalf("mounts below the root before: %q, %v", before, err)
	}

	// A buildkitd running on the root holds its lock: nothing is done.
	lf, err := os.OpenFile(filepath.Join(root, "buildkitd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := cleanStale(context.Background(), root); !errors.Is(err, ErrRootInUse) {
		t.Errorf("cleanStale with the root locked: %v, want ErrRootInUse", err)
	}
	if left, _ := mountsBelow(root); len(left) != 5 {
		t.Errorf("cleanStale with the root locked unmounted something: %q left", left)
	}
	lf.Close()

	if err := cleanStale(context.Background(), root); err != nil {
		t.Fatalf("cleanStale: %v", err)
	}
	if left, err := mountsBelow(root); err != nil || len(left) != 0 {
		t.Errorf("mounts left below the root: %q, %v", left, err)
	}
	if m, _ := mountsBelow(filepath.Dir(sibling)); !slices.Contains(m, sibling) {
		t.Errorf("the mount beside the root was unmounted (mounts: %q)", m)
	}
	for _, p := range []string{bundle, hosts, tmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s left: %v", p, err)
		}
	}
	if entries, err := os.ReadDir(filepath.Dir(ingest)); err != nil || len(entries) != 0 {
		t.Errorf("partial downloads left: %v, %v", entries, err)
	}
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("a complete blob was removed: %v", err)
	}
	// Nothing to do is not an error, and neither is a missing root.
	if err := cleanStale(context.Background(), root); err != nil {
		t.Errorf("second cleanStale: %v", err)
	}
	if err := cleanStale(context.Background(), filepath.Join(base, "none")); err != nil {
		t.Errorf("cleanStale of a missing root: %v", err)
	}
}
