// Package e2e holds end-to-end tests: they build the minikit binary and
// run it against a real buildkitd (minikit's private daemon, started on
// demand) with the offline stand-in base images.
//
// They need root, runc and built stand-ins (scripts/setup provides all
// three). Outside CI they skip, saying what is missing; with CI=true a
// missing piece is a failure.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
)

// minikitBin is the minikit binary built for these tests.
var minikitBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minikit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	minikitBin = filepath.Join(dir, "minikit")
	build := exec.Command("go", "build", "-o", minikitBin, "github.com/minikit/minikit/cmd/minikit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build minikit:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireBuildEnv skips (or, in CI, fails) when the machine cannot run
// the private daemon with stand-ins, and returns minikit's home.
func requireBuildEnv(t *testing.T) paths.Home {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the private buildkitd runs as root)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc (apt-get install runc)")
	}
	home, err := paths.Default()
	if err != nil {
		t.Fatal(err)
	}
	if !connect.HaveStandIns(home) {
		missing = append(missing, fmt.Sprintf("stand-in images in %s (minikit standins build, or scripts/setup)", home.StandIns()))
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("end-to-end test needs %v", missing)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return home
}

// minikit runs the binary and returns its exit code and output.
func minikit(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr []byte) {
	t.Helper()
	return minikitEnv(t, ctx, nil, args...)
}

// minikitEnv runs the binary with extra environment variables.
func minikitEnv(t *testing.T, ctx context.Context, env []string, args ...string) (code int, stdout, stderr []byte) {
	t.Helper()
	cmd := exec.CommandContext(ctx, minikitBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	if len(env) > 0 {
		t.Logf("%v minikit %v: %s", env, args, time.Since(start).Round(time.Millisecond))
	} else {
		t.Logf("minikit %v: %s", args, time.Since(start).Round(time.Millisecond))
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.Bytes(), errb.Bytes()
	case err != nil:
		t.Fatalf("minikit %v: %v", args, err)
	}
	return 0, out.Bytes(), errb.Bytes()
}
