package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/minikit/minikit/internal/paths"
)

// The test binary doubles as the registry helper process: run with
// helperEnv=serve it answers HTTP on $MINIKIT_DAEMON_TEST_LISTEN.
const helperEnv = "MINIKIT_DAEMON_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		addr := os.Getenv("MINIKIT_DAEMON_TEST_LISTEN")
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			fmt.Fprintln(w, "{}")
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// requireDaemonPrereqs skips (or, under CI=true, fails) when this machine
// cannot run the private buildkitd.
func requireDaemonPrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the test runs as uid "+fmt.Sprint(os.Geteuid())+")")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc on PATH (apt-get install runc)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, " and ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; not skipping because CI=true")
	}
	t.Skip(msg)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("GET /v2/: %s", resp.Status)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// TestEnsureIntegration starts a real buildkitd in a temporary home. The
// binary is found the normal way (next to the test binary, PATH, the home's
// bin directory, else built from the module proxy, which takes minutes);
// MINIKIT_BUILDKITD names one explicitly.
func TestEnsureIntegration(t *testing.T) {
	requireDaemonPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// A home deep enough that the socket must move to a short directory.
	home := paths.Home(filepath.Join(t.TempDir(), strings.Repeat("d", 40), strings.Repeat("e", 40)))
	if len(home.Socket()) <= maxSocketPath {
		t.Fatalf("home not deep enough: %d", len(home.Socket()))
	}
	t.Cleanup(func() {
		if err := Stop(context.Background(), home); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})

	regAddr := freeAddr(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	cfg := Config{
		Home:      home,
		Buildkitd: os.Getenv("MINIKIT_BUILDKITD"),
		Mirror:    regAddr,
		Registry: &Process{
			Name:  "registry",
			Args:  []string{exe, "-test.run=^$"},
			Env:   []string{helperEnv + "=serve", "MINIKIT_DAEMON_TEST_LISTEN=" + regAddr},
			Ready: httpReady(regAddr),
		},
		Log: &log,
	}

	// Three minikits at once: one starts the daemon, the others wait and
	// reuse it.
	start := time.Now()
	var wg sync.WaitGroup
	addrs := make([]string, 3)
	errs := make([]error, 3)
	for i := range addrs {
		wg.Go(func() {
			var l *Lease
			if l, errs[i] = Acquire(ctx, cfg); errs[i] == nil {
				addrs[i], errs[i] = l.Addr, l.Release()
			}
		})
	}
	wg.Wait()
	cold := time.Since(start)
	t.Logf("progress:\n%s", log.String())
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Ensure %d: %v", i, err)
		}
	}
	addr := addrs[0]
	if addrs[1] != addr || addrs[2] != addr {
		t.Errorf("concurrent Ensure gave %v", addrs)
	}
	if n := strings.Count(log.String(), "starting buildkitd"); n != 1 {
		t.Errorf("buildkitd started %d times by concurrent Ensure", n)
	}
	t.Logf("cold Ensure (3 concurrent): %s", cold)
	if want := "unix://" + SocketPath(home); addr != want {
		t.Errorf("addr = %q, want %q", addr, want)
	}
	if strings.HasPrefix(addr, "unix://"+string(home)) {
		t.Errorf("socket %q stayed in the too-deep home", addr)
	}
	if !strings.Contains(log.String(), "starting buildkitd") {
		t.Errorf("no start message in progress log")
	}

	st1, err := Status(ctx, home)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !st1.Running || !st1.Answering || st1.PID == 0 || st1.Addr != addr || st1.Mirror != regAddr {
		t.Errorf("Status after Ensure = %+v", st1)
	}
	if !st1.Registry.Running || st1.Registry.PID == 0 {
		t.Errorf("registry status = %+v", st1.Registry)
	}
	t.Logf("status: pid %d version %s binary %s", st1.PID, st1.Version, st1.Binary)
	checkPrivate(t, string(home), filepath.Dir(SocketPath(home)))
	t.Logf("buildkitd.log:\n%s", tailFile(st1.LogFile, 30))

	// Only the OCI worker: the containerd worker stays off.
	c, err := client.New(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWorkers(ctx)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Labels["org.mobyproject.buildkit.worker.executor"] != "oci" {
			t.Errorf("unexpected worker %s: %v", w.ID, w.Labels)
		}
	}

	// Reuse: same pid, fast.
	var times []time.Duration
	for range 10 {
		start := time.Now()
		l, err := Acquire(ctx, cfg)
		times = append(times, time.Since(start))
		if err != nil {
			t.Fatalf("second Ensure: %v", err)
		}
		addr2 := l.Addr
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if addr2 != addr {
			t.Errorf("second Ensure addr %q, want %q", addr2, addr)
		}
	}
	slices.Sort(times)
	t.Logf("reuse Ensure: median %s, max %s (10 calls)", times[len(times)/2], times[len(times)-1])
	st2, err := Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if st2.PID != st1.PID || st2.Registry.PID != st1.Registry.PID {
		t.Errorf("reuse started new processes: buildkitd %d -> %d, registry %d -> %d",
			st1.PID, st2.PID, st1.Registry.PID, st2.Registry.PID)
	}

	// A different configuration restarts buildkitd, not the registry.
	log.Reset()
	cfg.Mirror = "127.0.0.1:1"
	start = time.Now()
	if l, err := Acquire(ctx, cfg); err != nil {
		t.Fatalf("Ensure with new mirror: %v\n%s", err, log.String())
	} else if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart for a changed config: %s", time.Since(start))
	st3, err := Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if st3.PID == st1.PID || !st3.Answering || st3.Mirror != "127.0.0.1:1" {
		t.Errorf("after config change: %+v (old pid %d)", st3, st1.PID)
	}
	if st3.Registry.PID != st1.Registry.PID {
		t.Errorf("registry restarted though its command line did not change")
	}
	if !strings.Contains(log.String(), "restarting buildkitd") {
		t.Errorf("no restart message: %q", log.String())
	}

	// Stop ends both and cleans up.
	start = time.Now()
	if err := Stop(ctx, home); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop: %s", time.Since(start))
	st4, err := Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if st4.Running || st4.Registry.Running {
		t.Errorf("after Stop: %+v", st4)
	}
	for _, f := range []string{buildkitdProc(home).pidFile(), registryProc(home).pidFile(), SocketPath(home)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after Stop (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Dir(SocketPath(home))); !os.IsNotExist(err) {
		t.Errorf("short socket directory left after Stop (%v)", err)
	}
	if err := Stop(ctx, home); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestEnsureStartFailure: a buildkitd that dies, or never answers, gives an
// error carrying its log, and leaves nothing running.
func TestEnsureStartFailure(t *testing.T) {
	requireDaemonPrereqs(t)
	ctx := context.Background()
	dir := t.TempDir()
	versionCase := `if [ "$1" = --version ]; then echo "buildkitd github.com/moby/buildkit v0.1.0 x"; exit 0; fi`

	dies := filepath.Join(dir, "dies")
	writeExe(t, dies, versionCase+"\necho 'boom: cannot do the thing' >&2; exit 1")
	home := paths.Home(filepath.Join(dir, "home1"))
	var log bytes.Buffer
	_, err := Acquire(ctx, Config{Home: home, Buildkitd: dies, Log: &log})
	if err == nil || !strings.Contains(err.Error(), "boom: cannot do the thing") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("dying buildkitd: error %v", err)
	}
	t.Logf("dying buildkitd: %v", err)
	if !strings.Contains(log.String(), "warning:") || !strings.Contains(log.String(), "v0.1.0") {
		t.Errorf("no version warning in %q", log.String())
	}

	hangs := filepath.Join(dir, "hangs")
	writeExe(t, hangs, versionCase+"\necho 'listening, honest' >&2; exec sleep 60")
	home2 := paths.Home(filepath.Join(dir, "home2"))
	// Bounded well above StartTimeout: only StartTimeout can end it in time.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = Acquire(tctx, Config{Home: home2, Buildkitd: hangs, StartTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "no answer within") || !strings.Contains(err.Error(), "listening, honest") {
		t.Errorf("silent buildkitd: error %v", err)
	}
	t.Logf("silent buildkitd: %v", err)
	st, err := Status(ctx, home2)
	if err != nil || st.Running {
		t.Errorf("silent buildkitd left running: %+v, %v", st, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// BenchmarkEnsureReuse measures the fast path: Ensure with the daemon up.
func BenchmarkEnsureReuse(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("needs runc")
	}
	ctx := context.Background()
	home := paths.Home(b.TempDir())
	defer func() {
		if err := Stop(ctx, home); err != nil {
			b.Error(err)
		}
	}()
	cfg := Config{Home: home, Buildkitd: os.Getenv("MINIKIT_BUILDKITD"), Mirror: "127.0.0.1:5000"}
	l, err := Acquire(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	_ = l.Release()
	for b.Loop() {
		l, err := Acquire(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = l.Release()
	}
}

// checkPrivate walks dirs (a home used by the daemon, the socket's
// directory) and checks that everything in them is private to the user:
// directories 0700, files and sockets without group or other bits.
// buildkitd's root is checked, not its contents (buildkitd's own, and the
// images' file modes).
func checkPrivate(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %s: not private", p, fi.Mode())
			}
			if d.IsDir() && filepath.Base(p) == "root" && filepath.Base(filepath.Dir(p)) == "buildkitd" {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			t.Errorf("walk %s: %v", dir, err)
		}
	}
}

// TestBusyDaemonNotRestarted: a minikit that wants another configuration
// while another one holds a lease (builds in flight) does not restart the
// daemon under it: it says it waits, and fails after its bound, or
// restarts once the lease is released.
func TestBusyDaemonNotRestarted(t *testing.T) {
	requireDaemonPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	home := paths.Home(filepath.Join(t.TempDir(), "home"))
	t.Cleanup(func() {
		if err := Stop(context.Background(), home); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	cfg := Config{Home: home, Buildkitd: os.Getenv("MINIKIT_BUILDKITD"), Mirror: "127.0.0.1:1"}
	busy, err := Acquire(ctx, cfg) // the other minikit's builds
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Release()

	// The same configuration: shared.
	same, err := Acquire(ctx, cfg)
	if err != nil {
		t.Fatalf("Acquire, same configuration, daemon in use: %v", err)
	}
	if same.PID != busy.PID {
		t.Errorf("same configuration: pid %d, want %d", same.PID, busy.PID)
	}
	if err := same.Release(); err != nil {
		t.Fatal(err)
	}

	// Another configuration, with a short bound: refused, daemon untouched.
	var log syncBuffer
	other := cfg
	other.Mirror, other.Log, other.BusyTimeout = "127.0.0.1:2", &log, 300*time.Millisecond
	if l, err := Acquire(ctx, other); !errors.Is(err, ErrBusy) {
		l.Release()
		t.Fatalf("Acquire, another configuration, daemon in use: %v, want ErrBusy\n%s", err, log.String())
	} else {
		t.Logf("refused: %v", err)
	}
	if !strings.Contains(log.String(), "waiting for another minikit's builds") || strings.Count(log.String(), "\n") != 1 {
		t.Errorf("want one line saying what it waits for, got %q", log.String())
	}
	st, err := Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.PID != busy.PID || st.Mirror != cfg.Mirror || busy.Exited() {
		t.Errorf("the busy daemon was touched: %+v (was pid %d)", st, busy.PID)
	}

	// Another configuration, waiting: it restarts once the lease is gone.
	log.Reset()
	other.BusyTimeout = 0
	type result struct {
		l   *Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Acquire(ctx, other)
		done <- result{l, err}
	}()
	for !strings.Contains(log.String(), "waiting for another minikit's builds") {
		select {
		case r := <-done:
			r.l.Release()
			t.Fatalf("Acquire did not wait for the lease: %v\n%s", r.err, log.String())
		case <-ctx.Done():
			t.Fatalf("no waiting message: %q", log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if st, err := Status(ctx, home); err != nil || st.PID != busy.PID || busy.Exited() {
		t.Errorf("restarted while waiting: %+v, %v", st, err)
	}
	if err := busy.Release(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Acquire after the lease was released: %v\n%s", r.err, log.String())
	}
	defer r.l.Release()
	if r.l.PID == busy.PID || !busy.Exited() {
		t.Errorf("not restarted: pid %d, was %d", r.l.PID, busy.PID)
	}
	if st, err := Status(ctx, home); err != nil || st.Mirror != other.Mirror || st.PID != r.l.PID {
		t.Errorf("after the restart: %+v, %v", st, err)
	}
}

// TestRegistryExitsAtOnce: a registry helper that cannot bind its port
// (held here by a listener that never answers HTTP) is reported as soon as
// it exits, with its log and ErrAddrInUse, not after the start timeout,
// and buildkitd is not started with it as its mirror.
func TestRegistryExitsAtOnce(t *testing.T) {
	requireDaemonPrereqs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			t.Cleanup(func() { c.Close() })
		}
	}()
	addr := ln.Addr().String()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := paths.Home(filepath.Join(t.TempDir(), "home"))
	t.Cleanup(func() { _ = Stop(context.Background(), home) })
	// Far shorter than StartTimeout: waiting for it would fail otherwise.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = Acquire(ctx, Config{
		Home:      home,
		Buildkitd: os.Getenv("MINIKIT_BUILDKITD"),
		Mirror:    addr,
		Registry: &Process{
			Name:  "registry",
			Args:  []string{exe, "-test.run=^$"},
			Env:   []string{helperEnv + "=serve", "MINIKIT_DAEMON_TEST_LISTEN=" + addr},
			Addr:  addr,
			Ready: httpReady(addr),
		},
		StartTimeout: time.Hour,
	})
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrHelperExited) || !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("error %v, want ErrHelperExited and ErrAddrInUse", err)
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not carry the helper's log and the address: %v", err)
	}
	if st, err := Status(ctx, home); err != nil || st.Running || st.Registry.Running {
		t.Errorf("after the failure: %+v, %v", st, err)
	}
}
