package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOutputDirStaleTemps: a solve into an output directory removes the
// temporary tarballs a SIGKILLed export left there (their writer is gone),
// keeps a live writer's, and writes its own tarball.
func TestOutputDirStaleTemps(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	const recipe = "hello-c.gcc-static.scratch"
	stale := filepath.Join(out, fmt.Sprintf(".%s.oci.tar.%d.123.tmp", recipe, dead.Process.Pid))
	live := filepath.Join(out, fmt.Sprintf(".other.oci.tar.%d.456.tmp", os.Getpid())) // this test is alive
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, []byte("partial tarball"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := minikit(t, ctx, "solve", "--format", "json", "--output", "oci="+out, recipe)
	if code != 0 {
		t.Fatalf("solve exited %d\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary tarball %s: %v; want it removed", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temporary tarball: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, recipe+".oci.tar")); err != nil {
		t.Errorf("the tarball: %v", err)
	}
}
