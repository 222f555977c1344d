package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// skipOrFail skips the test for want of something on this machine, or
// fails it under CI, where everything is meant to be there.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: not skipping)", args...)
	}
	t.Skipf(format, args...)
}

// findBuildkitd returns the buildkitd to test with: $MINIKIT_BUILDKITD,
// else the one on PATH, else /tmp/bk/buildkitd.
func findBuildkitd() (string, error) {
	if p := os.Getenv("MINIKIT_BUILDKITD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MINIKIT_BUILDKITD: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/tmp/bk/buildkitd"); err == nil {
		return "/tmp/bk/buildkitd", nil
	}
	return "", errors.New("no buildkitd: set MINIKIT_BUILDKITD, put it on PATH or at /tmp/bk/buildkitd")
}

// lockedBuffer collects a process's output for the test's failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBuildkitd starts a private buildkitd (runc worker only, state in a
// temporary directory, no insecure entitlement granted, as a stock
// buildkitd) for the test and returns a client connected to it. extra
// are more buildkitd flags.
// TODO(lead): switch to the shared daemon package.
func startBuildkitd(t *testing.T, extra ...string) *client.Client {
	t.Helper()
	c, _ := startBuildkitdProcess(t, extra...)
	return c
}

// startBuildkitdProcess is startBuildkitd, also returning the daemon's
// process, for tests that kill it.
func startBuildkitdProcess(t *testing.T, extra ...string) (*client.Client, *os.Process) {
	t.Helper()
	bin, err := findBuildkitd()
	if err != nil {
		skipOrFail(t, "%v", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		skipOrFail(t, "no runc on PATH: buildkitd's OCI worker needs it")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root: this test runs a rootful buildkitd")
	}

	// A unix socket path must stay short; t.TempDir's can be long.
	parent := os.TempDir()
	if len(parent) > 40 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "mkbk")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bk.sock")
	config := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(config, nil, 0o644); err != nil { // not /etc/buildkit's
		t.Fatal(err)
	}
	var log lockedBuffer
	args := append([]string{
		"--config", config,
		"--root", filepath.Join(dir, "root"),
		"--addr", "unix://" + sock,
		"--otel-socket-path", filepath.Join(dir, "otel.sock"),
		"--containerd-worker=false",
		"--oci-worker=true",
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	var c *client.Client
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		unmountUnder(t, dir) // left by a daemon killed with containers running
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
		if t.Failed() {
			t.Logf("buildkitd log:\n%s", log.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err = client.New(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	for {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		ws, err := c.ListWorkers(wctx)
		wcancel()
		if err == nil && len(ws) > 0 {
			return c, cmd.Process
		}
		select {
		case <-exited:
			t.Fatalf("buildkitd exited early:\n%s", log.String())
		case <-ctx.Done():
			t.Fatalf("buildkitd did not answer in time (last error: %v):\n%s", err, log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if strings.Contains(log.String(), "level=fatal") {
			t.Fatalf("buildkitd failed:\n%s", log.String())
		}
	}
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	dt, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(dt), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mounts[i], err)
		}
	}
}
