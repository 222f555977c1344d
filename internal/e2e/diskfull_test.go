package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOutputDirFull exports two images into a directory on a file system
// too small for one of them (a 128 KiB tmpfs): the small image's tarball is
// written, the large one's recipe fails with the file system's error, and
// no temporary or partial file is left in the directory.
func TestOutputDirFull(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := t.TempDir()
	if err := syscall.Mount("tmpfs", out, "tmpfs", 0, "size=128k,mode=0700"); err != nil {
		t.Fatalf("mount a 128 KiB tmpfs on %s: %v", out, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(out, 0); err != nil {
			t.Errorf("unmount %s: %v", out, err)
		}
	})
	// The layers are compressed in the tarball: hello-c.gcc.scratch holds
	// the dynamic C binary alone (a few kB);
	// hello-c.gcc-static.scratch a static one, hundreds of kB even
	// compressed, which does not fit. One at a time, in that order, so
	// that the large one's temporary file does not fill the disk while
	// the small one is written.
	const small, large = "hello-c.gcc.scratch", "hello-c.gcc-static.scratch"
	code, stdout, stderr := minikit(t, ctx, "solve", "--format", "json", "--progress", "quiet", "--parallel", "1", "--output", "docker="+out, small, large)
	if code != 1 {
		t.Fatalf("solve into a full directory: exit %d, want 1 (one recipe failed)\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	var doc struct {
		Recipes []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"recipes"`
	}
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, stdout)
	}
	status := map[string]string{}
	for _, r := range doc.Recipes {
		status[r.Name] = r.Status
		t.Logf("%s: %s %s", r.Name, r.Status, r.Error)
		if r.Name == large && !strings.Contains(r.Error, "no space left on device") {
			t.Errorf("%s failed with %q; want the file system's error (ENOSPC)", large, r.Error)
		}
	}
	if status[small] != "ok" || status[large] != "failed" {
		t.Errorf("outcomes %v; want %s ok and %s failed", status, small, large)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != small+".docker.tar" {
		t.Errorf("output directory holds %q; want only %s.docker.tar (no temporary or partial file)", names, small)
	}
	if fi, err := os.Stat(filepath.Join(out, small+".docker.tar")); err == nil && fi.Size() == 0 {
		t.Errorf("%s.docker.tar is empty", small)
	}
}
