package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
)

// signalRecipe is built cold, without the shared Go build cache, so that
// its RUN step (go build) is still running when the signal arrives.
const signalRecipe = "hello-go.golang-alpine.scratch"

// Plain progress lines: a RUN step starting ("#7 [golang:1.26-alpine3.22]
// RUN go build hello.go"), a recipe's export starting (exportStep,
// builders_test.go) and a layer being downloaded ("#3 sha256:4be6...
// 24.12MB / 82.02MB 0.3s").
var (
	runStep     = regexp.MustCompile(`^#\d+ \[[^\]]+\] RUN `)
	downloading = regexp.MustCompile(`^#\d+ sha256:[0-9a-f]{64} \S+ / \S+`)
)

// TestSignalExitCodes: SIGINT while a build's go build runs in a
// container, and SIGTERM as its image is exported to an OCI tarball, make
// minikit stop the build and exit 130 and 143, with the recipe canceled
// and no temporary file in the output directory; buildkitd then holds no
// container.
func TestSignalExitCodes(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	out := t.TempDir()
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
		at   *regexp.Regexp // the progress line the signal follows
	}{{syscall.SIGINT, "SIGINT", 130, runStep}, {syscall.SIGTERM, "SIGTERM", 143, exportStep}} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatched(t, ctx, h.env, tc.at, "solve", "--progress", "plain", "--format", "json",
				"--compiler-cache=false", "--output", "oci="+out, signalRecipe)
			line := w.waitMatch(t, 15*time.Minute)
			if err := w.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s sent at %q", tc.name, line)
			code, stdout, stderr := w.wait(t)
			if code != tc.code || !strings.Contains(stderr, "minikit solve: stopped by "+tc.name) {
				t.Errorf("%s: exit %d, want %d, saying it stopped\n%s", tc.name, code, tc.code, tail([]byte(stderr), 3000))
			}
			rows := parseRows(t, stdout)
			switch {
			case len(rows) != 1:
				t.Errorf("%s: rows %+v, want the recipe's", tc.name, rows)
			case rows[0].Status == "ok" && tc.at == exportStep:
				t.Logf("%s: the export was done before the signal arrived", tc.name)
			case rows[0].Status != "canceled":
				t.Errorf("%s: the recipe ended %s, want canceled: %s", tc.name, rows[0].Status, rows[0].Error)
			}
			if left := tempFiles(t, out); len(left) > 0 {
				t.Errorf("%s: temporary files left in the output directory: %q", tc.name, left)
			}
			// buildkitd tears a canceled step's container down on its
			// own, just after the build's status stream (which minikit
			// waits for) ends: give it a bounded while.
			if left := waitContainersGone(t, h.home, 10*time.Second); len(left) > 0 {
				t.Errorf("%s: buildkitd still holds containers or their mounts after minikit exited: %q", tc.name, left)
			}
		})
	}
}

// TestSignalDaemonKilled: the private buildkitd killed (SIGKILL) while a
// cold solve pulls its bases makes minikit say so in one line naming the
// daemon's pid and address, mark every unfinished recipe with that cause
// and exit 3.
func TestSignalDaemonKilled(t *testing.T) {
	shared := requireBuildEnv(t)
	h := newDaemonHome(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := startWatched(t, ctx, h.env, downloading, "solve", "--progress", "plain", "--format", "json",
		"hello-c.gcc-static.scratch", signalRecipe)
	w.waitMatch(t, 10*time.Minute)
	st, err := daemon.Status(ctx, h.home)
	if err != nil || !st.Running {
		t.Fatalf("daemon status during the solve: %+v, %v", st, err)
	}
	kill(t, st.PID)
	t.Cleanup(func() { unmountLeftovers(t, h.home) })
	code, stdout, stderr := w.wait(t)
	t.Logf("killed buildkitd (pid %d) during a pull:\n%s", st.PID, tail([]byte(stderr), 2000))
	if code != 3 {
		t.Errorf("exit %d, want 3 (environment error)", code)
	}
	pid := fmt.Sprintf("pid %d", st.PID)
	var said []string
	for l := range strings.Lines(stderr) {
		if strings.Contains(l, pid) {
			said = append(said, l)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "died") || !strings.Contains(said[0], st.Addr) {
		t.Errorf("lines naming the daemon's pid: %q; want one, saying it died, at %s", said, st.Addr)
	}
	unfinished := 0
	for _, r := range parseRows(t, stdout) {
		if r.Status == "ok" {
			continue
		}
		unfinished++
		if !strings.HasPrefix(r.Error, "not finished: ") || !strings.Contains(r.Error, pid) {
			t.Errorf("%s (%s): error %q, want it marked not finished by the daemon's death", r.Name, r.Status, r.Error)
		}
	}
	if unfinished == 0 {
		t.Errorf("every recipe done although the daemon was killed during a pull: nothing tested\n%s", stdout)
	}
}

// watched is a minikit run whose stderr is watched for a line.
type watched struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	match  chan string   // the first matching line
	exited chan struct{} // closed when the process is gone and its output read
	code   int

	mu     sync.Mutex
	stderr bytes.Buffer
}

// startWatched starts minikit with env, sending the first stderr line
// matching re on w.match.
func startWatched(t *testing.T, ctx context.Context, env []string, re *regexp.Regexp, args ...string) *watched {
	t.Helper()
	w := &watched{match: make(chan string, 1), exited: make(chan struct{})}
	w.cmd = exec.CommandContext(ctx, minikitBin, args...)
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout = &w.stdout
	pr, pw := io.Pipe()
	w.cmd.Stderr = pw
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started minikit %v", args)
	var read sync.WaitGroup
	read.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			w.mu.Lock()
			w.stderr.Write(sc.Bytes())
			w.stderr.WriteByte('\n')
			w.mu.Unlock()
			if !sent && re.Match(sc.Bytes()) {
				w.match <- sc.Text()
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	})
	go func() {
		err := w.cmd.Wait()
		pw.Close()
		read.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			w.code = ee.ExitCode() // -1 if a signal ended it: minikit must exit
		case err != nil:
			w.code = -1
		}
		close(w.exited)
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.exited
	})
	return w
}

// waitMatch returns the first matching line, failing the test if minikit
// exits first or none comes within timeout.
func (w *watched) waitMatch(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l := <-w.match:
		return l
	case <-w.exited:
		t.Fatalf("minikit exited %d before the line awaited\n%s", w.code, tail(w.stderrBytes(), 3000))
	case <-time.After(timeout):
		t.Fatalf("no line awaited after %s\n%s", timeout, tail(w.stderrBytes(), 3000))
	}
	return ""
}

// wait waits for minikit to exit, at most 5 minutes, and returns its exit
// code and output.
func (w *watched) wait(t *testing.T) (code int, stdout []byte, stderr string) {
	t.Helper()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Minute):
		t.Fatalf("minikit still running 5 minutes after the signal\n%s", tail(w.stderrBytes(), 3000))
	}
	return w.code, w.stdout.Bytes(), string(w.stderrBytes())
}

func (w *watched) stderrBytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.stderr.Bytes())
}

// tempFiles lists the files under dir whose names end in ".tmp".
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(d.Name(), ".tmp") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unmountLeftovers unmounts what a killed buildkitd left mounted from its
// state outside it (containerd's temporary mounts of a layer being
// unpacked, in $TMPDIR), so that the test leaves no mount behind.
func unmountLeftovers(t *testing.T, home paths.Home) {
	t.Helper()
	root := filepath.Join(home.Buildkitd(), "root") + "/"
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(mounts)) {
		// Fields: id, parent, dev, root (the source within its file
		// system), mount point, ...
		f := strings.Fields(l)
		if len(f) < 5 || !strings.HasPrefix(f[3], root) || strings.HasPrefix(f[4], root) {
			continue
		}
		t.Logf("the killed buildkitd left %s mounted on %s: unmounting it", f[3], f[4])
		if err := syscall.Unmount(f[4], syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", f[4], err)
			continue
		}
		_ = os.Remove(f[4])
	}
}

// waitContainersGone polls containers until there are none, for up to
// timeout, and returns what is left.
func waitContainersGone(t *testing.T, home paths.Home, timeout time.Duration) []string {
	t.Helper()
	exited := time.Now()
	for {
		left := containers(t, home)
		if len(left) == 0 {
			t.Logf("no container left %s after minikit exited", time.Since(exited).Round(time.Millisecond))
			return nil
		}
		if time.Since(exited) > timeout {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// containers lists what the private buildkitd of home holds for running
// containers: their state directories in its executors' roots, and
// mounts under its state.
func containers(t *testing.T, home paths.Home) []string {
	t.Helper()
	root := filepath.Join(home.Buildkitd(), "root")
	executors, err := filepath.Glob(filepath.Join(root, "*", "executor"))
	if err != nil {
		t.Fatal(err)
	}
	if len(executors) == 0 {
		t.Fatalf("no executor directory under %s: where does buildkitd run containers?", root)
	}
	var out []string
	for _, dir := range executors {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(mounts)) {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			out = append(out, "mount "+f[4])
		}
	}
	return out
}
