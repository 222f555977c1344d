package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
)

// daemonHome is a private daemon's environment of its own for a test: a
// new home sharing the stand-ins (and minikit's buildkitd build, if any)
// of home, a free registry port, scripts/setup's bin on PATH. It stops
// the daemon when the test ends.
type daemonHome struct {
	home paths.Home
	reg  string // the registry's host:port
	env  []string
}

func newDaemonHome(t *testing.T, shared paths.Home) daemonHome {
	t.Helper()
	h := daemonHome{
		home: paths.Home(filepath.Join(t.TempDir(), "home")),
		reg:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	if err := os.Mkdir(string(h.home), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Base(shared.StandIns()), filepath.Base(shared.Bin())} {
		if _, err := os.Stat(filepath.Join(string(shared), d)); err == nil {
			if err := os.Symlink(filepath.Join(string(shared), d), filepath.Join(string(h.home), d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.env = []string{"MINIKIT_HOME=" + string(h.home), "MINIKIT_REGISTRY=" + h.reg, "BUILDKIT_HOST="}
	if bin, err := filepath.Abs("../../bin"); err == nil { // scripts/setup's buildkitd
		h.env = append(h.env, "PATH="+os.Getenv("PATH")+string(os.PathListSeparator)+bin)
	}
	t.Cleanup(func() {
		if code, _, stderr := minikitEnv(t, context.Background(), h.env, "daemon", "stop"); code != 0 {
			t.Errorf("daemon stop: exit %d\n%s", code, stderr)
		}
	})
	return h
}

// TestDaemonForeignRegistry: with another HTTP server on the stand-in
// registry's port, minikit does not use it as its docker.io mirror: solve
// and daemon start exit 3 naming the port and MINIKIT_REGISTRY, without
// waiting for the registry's start timeout; status says what is there.
func TestDaemonForeignRegistry(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	// Looks like a registry, and serves anything asked for.
	serveForeign(t, h.reg, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		fmt.Fprintln(w, "{}")
	})

	// Well below the registry's 60 s start timeout: waiting for it fails.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"solve", "--progress", "quiet", "hello-c.gcc-static.scratch"},
		{"daemon", "start"},
	} {
		code, stdout, stderr := minikitEnv(t, ctx, h.env, args...)
		if ctx.Err() != nil {
			t.Fatalf("minikit %v still waiting after the test's bound", args)
		}
		if code != 3 || !bytes.Contains(stderr, []byte(h.reg)) || !bytes.Contains(stderr, []byte("MINIKIT_REGISTRY")) {
			t.Errorf("minikit %v: exit %d, want 3 naming %s and MINIKIT_REGISTRY\n%s\n%s", args, code, h.reg, stdout, stderr)
		}
	}
	st, err := daemon.Status(ctx, h.home)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running {
		t.Errorf("buildkitd started with a foreign mirror: %+v", st)
	}
	code, stdout, stderr := minikitEnv(t, ctx, h.env, "daemon", "status")
	t.Logf("status:\n%s", stdout)
	if code != 0 || !strings.Contains(string(stdout), "held by another server") || strings.Contains(string(stdout), "(stand-ins)") {
		t.Errorf("daemon status: exit %d, want the registry's port said held by another server\n%s\n%s", code, stdout, stderr)
	}
}

// TestDaemonRegistryPortNotHTTP: a listener that is not an HTTP server on
// the registry's port makes the registry exit as it starts: reported at
// once, with the registry's log, naming the port.
func TestDaemonRegistryPortNotHTTP(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ln, err := net.Listen("tcp", h.reg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	code, stdout, stderr := minikitEnv(t, ctx, h.env, "daemon", "start")
	if ctx.Err() != nil {
		t.Fatal("minikit daemon start still waiting after the test's bound")
	}
	t.Logf("stderr:\n%s", stderr)
	if code != 3 || !bytes.Contains(stderr, []byte(h.reg)) || !bytes.Contains(stderr, []byte("MINIKIT_REGISTRY")) ||
		!bytes.Contains(stderr, []byte("address already in use")) {
		t.Errorf("exit %d, want 3 naming %s and MINIKIT_REGISTRY, with the registry's log\n%s\n%s", code, h.reg, stdout, stderr)
	}
}

// TestDaemonStatusConsistent: when the stand-in registry has died and
// another server holds its port, status says so in every line: buildkitd's
// mirror is not called stand-ins beside a registry that does not run.
func TestDaemonStatusConsistent(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if code, _, stderr := minikitEnv(t, ctx, h.env, "daemon", "start"); code != 0 {
		t.Fatalf("daemon start: exit %d\n%s", code, stderr)
	}
	code, stdout, _ := minikitEnv(t, ctx, h.env, "daemon", "status")
	if code != 0 || !strings.Contains(string(stdout), "mirrored by "+h.reg+" (stand-ins)") {
		t.Fatalf("status of a running daemon: exit %d\n%s", code, stdout)
	}
	st, err := daemon.Status(ctx, h.home)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Registry.Running {
		t.Fatalf("registry not running: %+v", st.Registry)
	}
	kill(t, st.Registry.PID)

	// Nothing on the port.
	code, stdout, _ = minikitEnv(t, ctx, h.env, "daemon", "status")
	t.Logf("status, registry killed:\n%s", stdout)
	if code != 0 || strings.Contains(string(stdout), "(stand-ins)") || !strings.Contains(string(stdout), "no stand-in registry answers") {
		t.Errorf("status with the registry killed: exit %d\n%s", code, stdout)
	}
	// Another server on it.
	serveForeign(t, h.reg, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "{}")
	})
	code, stdout, _ = minikitEnv(t, ctx, h.env, "daemon", "status")
	t.Logf("status, port taken:\n%s", stdout)
	if code != 0 || strings.Contains(string(stdout), "(stand-ins)") || strings.Count(string(stdout), "another server") != 2 {
		t.Errorf("status with a foreign server on the port: exit %d\n%s", code, stdout)
	}
}

// kill sends SIGKILL to pid and waits until it is gone (or a zombie).
func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
	for range 500 {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if s := string(data); strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d survived SIGKILL", pid)
}

// TestDaemonTwoBinaries: two minikit binaries (another copy, with its own
// copy of buildkitd beside it) sharing a home reuse one daemon and one
// registry, however often they alternate.
func TestDaemonTwoBinaries(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bk, err := filepath.Abs("../../bin/buildkitd") // scripts/setup's
	if err != nil || !isExec(bk) {
		if bk, err = exec.LookPath("buildkitd"); err != nil {
			msg := "needs a buildkitd binary to copy (scripts/setup puts one in bin/)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	otherDir := t.TempDir()
	other := filepath.Join(otherDir, "minikit")
	copyFile(t, minikitBin, other)
	copyFile(t, bk, filepath.Join(otherDir, "buildkitd"))

	var pids [2]int
	for i, bin := range []string{minikitBin, other, minikitBin, other} {
		cmd := exec.CommandContext(ctx, bin, "daemon", "start")
		cmd.Env = append(os.Environ(), h.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s daemon start: %v\n%s", bin, err, out)
		}
		st, err := daemon.Status(ctx, h.home)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running || !st.Registry.Running {
			t.Fatalf("after %s daemon start: %+v", bin, st)
		}
		if i == 0 {
			pids = [2]int{st.PID, st.Registry.PID}
			continue
		}
		if st.PID != pids[0] || st.Registry.PID != pids[1] {
			t.Errorf("%s restarted them: buildkitd %d -> %d, registry %d -> %d\n%s", bin, pids[0], st.PID, pids[1], st.Registry.PID, out)
		}
		if bytes.Contains(out, []byte("restarting")) {
			t.Errorf("%s says it restarts:\n%s", bin, out)
		}
	}
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// pullRecipe's base (golang:1.26-bookworm) is the largest stand-in: its
// pull lasts long enough to be interrupted.
const pullRecipe = "hello-go.golang.scratch"

// TestDaemonKilledDuringPull: buildkitd killed (SIGKILL) while it pulls a
// stand-in base leaves a partial download; the next solve of the same
// recipe starts a clean daemon and succeeds. Then the home, as the daemon
// used it, is checked private.
func TestDaemonKilledDuringPull(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if code, _, stderr := minikitEnv(t, ctx, h.env, "daemon", "start"); code != 0 {
		t.Fatalf("daemon start: exit %d\n%s", code, stderr)
	}
	st, err := daemon.Status(ctx, h.home)
	if err != nil || !st.Running {
		t.Fatalf("status: %+v, %v", st, err)
	}

	solve := exec.CommandContext(ctx, minikitBin, "solve", "--progress", "plain", "--format", "json", pullRecipe)
	solve.Env = append(os.Environ(), h.env...)
	var out, errb bytes.Buffer
	solve.Stdout, solve.Stderr = &out, &errb
	if err := solve.Start(); err != nil {
		t.Fatal(err)
	}
	ingest := filepath.Join(h.home.Buildkitd(), "root", "runc-overlayfs", "content", "ingest")
	partial, err := waitPartialDownload(ctx, ingest, 1<<20)
	if err != nil {
		_ = solve.Process.Kill()
		_ = solve.Wait()
		t.Fatalf("no partial download seen in %s: %v\n%s", ingest, err, tail(errb.Bytes(), 3000))
	}
	kill(t, st.PID)
	t.Logf("killed buildkitd (pid %d) with %s partly downloaded", st.PID, partial)
	_ = solve.Wait()
	t.Logf("the interrupted solve: %v\n%s", solve.ProcessState, tail(errb.Bytes(), 1500))
	if entries, err := os.ReadDir(ingest); err != nil || len(entries) == 0 {
		t.Fatalf("no partial download left after the kill (%v): nothing tested", err)
	}
	if st, err := daemon.Status(ctx, h.home); err != nil || st.Running || st.PID == 0 {
		t.Errorf("status after the kill: %+v, %v; want not running, with the recorded pid", st, err)
	}

	code, stdout, stderr := minikitEnv(t, ctx, h.env, "solve", "--progress", "plain", "--format", "json", pullRecipe)
	if code != 0 {
		t.Fatalf("solve after the kill: exit %d\n%s\n%s", code, stdout, tail(stderr, 4000))
	}
	rows := parseRows(t, stdout)
	if len(rows) != 1 || rows[0].Status != "ok" {
		t.Fatalf("solve after the kill: %+v", rows)
	}
	checkHomePrivate(t, h.home)
}

// waitPartialDownload polls buildkitd's ingest directory until a download
// holds at least min bytes, and returns its name.
func waitPartialDownload(ctx context.Context, ingest string, min int64) (string, error) {
	for {
		entries, _ := os.ReadDir(ingest)
		for _, e := range entries {
			if fi, err := os.Stat(filepath.Join(ingest, e.Name(), "data")); err == nil && fi.Size() >= min {
				return fmt.Sprintf("%s (%d bytes)", e.Name(), fi.Size()), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// checkHomePrivate walks a home the daemon used: directories must be 0700,
// the daemon's and registry's files and every socket private to the user,
// and no file writable by others. Symbolic links (shared stand-ins) are not
// followed; buildkitd's root is checked, not its contents (buildkitd's
// own, holding the images' file modes).
func checkHomePrivate(t *testing.T, home paths.Home) {
	t.Helper()
	state := []string{home.Buildkitd(), home.Registry()}
	err := filepath.WalkDir(string(home), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		inState := false
		for _, s := range state {
			inState = inState || strings.HasPrefix(p, s+"/")
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
		case d.IsDir(), fi.Mode()&fs.ModeSocket != 0, inState:
			if perm&0o077 != 0 {
				t.Errorf("%s is %s: not private", p, fi.Mode())
			}
		case perm&0o022 != 0:
			t.Errorf("%s is %s: writable by others", p, fi.Mode())
		}
		if d.IsDir() && p == filepath.Join(home.Buildkitd(), "root") {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("walk %s: %v", home, err)
	}
}

// serveForeign runs an HTTP server that is not minikit's registry on addr
// until the test ends.
func serveForeign(t *testing.T, addr string, h http.HandlerFunc) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}
