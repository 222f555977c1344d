package daemon

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"

	"github.com/minikit/minikit/internal/paths"
)

func TestRenderConfig(t *testing.T) {
	base := bkConfig{
		Root:        "/state/buildkitd/root",
		Socket:      "/state/buildkitd/buildkitd.sock",
		TraceSocket: "/state/buildkitd/otel-grpc.sock",
	}
	t.Run("no mirror", func(t *testing.T) {
		text := base.render()
		if strings.Contains(text, "[registry") {
			t.Errorf("registry stanza without a mirror:\n%s", text)
		}
		c := loadConfig(t, text)
		if len(c.Registries) != 0 {
			t.Errorf("registries = %v, want none", c.Registries)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		cfg := base
		cfg.Mirror = "127.0.0.1:5000"
		text := cfg.render()
		c := loadConfig(t, text)
		for _, host := range []string{"docker.io", "gcr.io"} {
			hub, ok := c.Registries[host]
			if !ok || len(hub.Mirrors) != 1 || hub.Mirrors[0] != "127.0.0.1:5000" {
				t.Errorf("%s registry = %+v, want mirror 127.0.0.1:5000\n%s", host, hub, text)
			}
		}
		m, ok := c.Registries["127.0.0.1:5000"]
		if !ok || m.PlainHTTP == nil || !*m.PlainHTTP {
			t.Errorf("mirror registry = %+v, want http = true\n%s", m, text)
		}
	})
	t.Run("common", func(t *testing.T) {
		c := loadConfig(t, base.render())
		if c.Root != base.Root {
			t.Errorf("root = %q, want %q", c.Root, base.Root)
		}
		if len(c.GRPC.Address) != 1 || c.GRPC.Address[0] != "unix://"+base.Socket {
			t.Errorf("grpc address = %v", c.GRPC.Address)
		}
		if c.OTEL.SocketPath != base.TraceSocket {
			t.Errorf("otel socket = %q", c.OTEL.SocketPath)
		}
		if e := c.Workers.OCI.Enabled; e == nil || !*e {
			t.Errorf("oci worker not enabled")
		}
		if e := c.Workers.Containerd.Enabled; e == nil || *e {
			t.Errorf("containerd worker not disabled")
		}
	})
	t.Run("quoting", func(t *testing.T) {
		cfg := base
		cfg.Root = `/odd "dir"\with	tab`
		c := loadConfig(t, cfg.render())
		if c.Root != cfg.Root {
			t.Errorf("root = %q, want %q", c.Root, cfg.Root)
		}
	})
}

// loadConfig parses text the way buildkitd does.
func loadConfig(t *testing.T, text string) bkconfig.Config {
	t.Helper()
	c, err := bkconfig.Load(strings.NewReader(text))
	if err != nil {
		t.Fatalf("buildkitd cannot parse the config: %v\n%s", err, text)
	}
	return c
}

func TestCheckMirror(t *testing.T) {
	for _, m := range []string{"127.0.0.1:5000", "localhost:5000", "[::1]:5000", "registry.lan:80"} {
		if err := checkMirror(m); err != nil {
			t.Errorf("checkMirror(%q) = %v", m, err)
		}
	}
	for _, m := range []string{"127.0.0.1", "http://127.0.0.1:5000", ":5000", `a"b:1`, "host:", "\x80:1", "host:0", "host:65536", "host:+1", "host:http", "a b:1"} {
		if err := checkMirror(m); err == nil {
			t.Errorf("checkMirror(%q) accepted", m)
		}
	}
}

func TestSocketPath(t *testing.T) {
	short := paths.Home("/root/.cache/minikit")
	if got := socketPathIn(short, "/run"); got != short.Socket() {
		t.Errorf("short home: socket %q, want %q", got, short.Socket())
	}

	long := paths.Home("/" + strings.Repeat("deep/", 20) + "minikit")
	if len(long.Socket()) <= maxSocketPath {
		t.Fatalf("test home not long enough: %d", len(long.Socket()))
	}
	got := socketPathIn(long, "/run")
	if len(got) > maxSocketPath {
		t.Errorf("long home: socket %q is %d bytes, limit %d", got, len(got), maxSocketPath)
	}
	if !strings.HasPrefix(got, "/run/minikit-") || filepath.Base(got) != socketName {
		t.Errorf("long home: socket %q, want /run/minikit-<hash>/%s", got, socketName)
	}
	if again := socketPathIn(long, "/run"); again != got {
		t.Errorf("not deterministic: %q then %q", got, again)
	}
	other := paths.Home(string(long) + "2")
	if o := socketPathIn(other, "/run"); o == got {
		t.Errorf("two homes share socket %q", o)
	}

	// Exactly at the limit stays in home.
	pad := maxSocketPath - len("/buildkitd/"+socketName) - 1
	edge := paths.Home("/" + strings.Repeat("x", pad))
	if len(edge.Socket()) != maxSocketPath {
		t.Fatalf("edge home socket is %d bytes", len(edge.Socket()))
	}
	if got := socketPathIn(edge, "/run"); got != edge.Socket() {
		t.Errorf("edge home moved to %q", got)
	}
}

func writeExe(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryLookupOrder(t *testing.T) {
	root := t.TempDir()
	explicit := filepath.Join(root, "explicit", "my-buildkitd")
	exe := filepath.Join(root, "exe")
	path1 := filepath.Join(root, "path1")
	path2 := filepath.Join(root, "path2")
	bin := filepath.Join(root, "home", "bin")
	for _, p := range []string{explicit, filepath.Join(exe, "buildkitd"), filepath.Join(path2, "buildkitd"), filepath.Join(bin, "buildkitd")} {
		writeExe(t, p, "exit 0")
	}
	// path1 has a buildkitd that is not executable: skipped.
	if err := os.MkdirAll(path1, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path1, "buildkitd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pathEnv := strings.Join([]string{"", "relative", path1, path2}, string(os.PathListSeparator))

	l := binaryLookup{Explicit: explicit, ExeDir: exe, PathEnv: pathEnv, BinDir: bin}
	steps := []struct {
		want   string
		remove string // then remove this, for the next step
	}{
		{explicit, ""},
		{filepath.Join(exe, "buildkitd"), filepath.Join(exe, "buildkitd")},
		{filepath.Join(path2, "buildkitd"), filepath.Join(path2, "buildkitd")},
		{filepath.Join(bin, "buildkitd"), filepath.Join(bin, "buildkitd")},
		{"", ""},
	}
	for i, s := range steps {
		if i == 1 {
			l.Explicit = ""
		}
		got, where, err := l.find()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != s.want {
			t.Fatalf("step %d: found %q (%s), want %q", i, got, where, s.want)
		}
		if s.remove != "" {
			if err := os.Remove(s.remove); err != nil {
				t.Fatal(err)
			}
		}
	}

	// An explicit path that does not work is an error, not a fallback.
	l.Explicit = filepath.Join(root, "nope")
	if _, _, err := l.find(); err == nil {
		t.Errorf("missing explicit binary accepted")
	}
	l.Explicit = filepath.Join(path1, "buildkitd")
	if _, _, err := l.find(); err == nil {
		t.Errorf("non-executable explicit binary accepted")
	}
}

func TestParseVersionOutput(t *testing.T) {
	for _, c := range []struct {
		out  string
		want string
		ok   bool
	}{
		{"buildkitd github.com/moby/buildkit v0.34.2 4c5d1e8f\n", "v0.34.2", true},
		{"buildkitd github.com/moby/buildkit v0.34.2 \n", "v0.34.2", true},
		{"buildkitd github.com/moby/buildkit v0.35.0-rc1 abc", "v0.35.0-rc1", true},
		{"WARN something\nbuildkitd github.com/moby/buildkit v0.20.0 x\n", "v0.20.0", true},
		{"buildkitd github.com/moby/buildkit v0.0.0+unknown \n", "", false},
		{"", "", false},
		{"buildkitd version 1\n", "", false},
		{"buildkitd github.com/moby/buildkit 0.34.2 x", "", false},
	} {
		got, ok := parseVersionOutput(c.out)
		if got != c.want || ok != c.ok {
			t.Errorf("parseVersionOutput(%q) = %q, %v; want %q, %v", c.out, got, ok, c.want, c.ok)
		}
	}
}

func TestBinaryVersion(t *testing.T) {
	dir := t.TempDir()
	stamped := filepath.Join(dir, "stamped")
	writeExe(t, stamped, `echo "buildkitd github.com/moby/buildkit v0.34.2 deadbeef"`)
	if v, err := binaryVersion(context.Background(), stamped); err != nil || v != "v0.34.2" {
		t.Errorf("stamped: %q, %v", v, err)
	}
	// Unstamped and not a Go binary: unknown, not an error.
	unstamped := filepath.Join(dir, "unstamped")
	writeExe(t, unstamped, `echo "buildkitd github.com/moby/buildkit v0.0.0+unknown "`)
	if v, err := binaryVersion(context.Background(), unstamped); err != nil || v != unknownVersion {
		t.Errorf("unstamped: %q, %v", v, err)
	}
	failing := filepath.Join(dir, "failing")
	writeExe(t, failing, "exit 3")
	if _, err := binaryVersion(context.Background(), failing); err == nil {
		t.Errorf("failing binary: no error")
	}
}

func TestModuleVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/minikit/minikit", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "golang.org/x/sys", Version: "v0.48.0"},
			{Path: buildkitModule, Version: "v0.34.2"},
		},
	}
	if v := moduleVersion(bi, buildkitModule); v != "v0.34.2" {
		t.Errorf("dep: %q", v)
	}
	bi.Deps[1].Replace = &debug.Module{Path: "github.com/fork/buildkit", Version: "v0.34.3"}
	if v := moduleVersion(bi, buildkitModule); v != "v0.34.3" {
		t.Errorf("replaced by version: %q", v)
	}
	bi.Deps[1].Replace = &debug.Module{Path: "../buildkit"}
	if v := moduleVersion(bi, buildkitModule); v != "" {
		t.Errorf("replaced by directory: %q", v)
	}
	main := &debug.BuildInfo{Main: debug.Module{Path: buildkitModule, Version: "v0.34.2"}}
	if v := moduleVersion(main, buildkitModule); v != "v0.34.2" {
		t.Errorf("main module: %q", v)
	}

	v, err := LibraryVersion(context.Background())
	if err != nil || !strings.HasPrefix(v, "v0.") {
		t.Errorf("LibraryVersion() = %q, %v", v, err)
	}
}

func TestPlanFingerprint(t *testing.T) {
	ctx := context.Background()
	home := paths.Home(t.TempDir())
	dir := t.TempDir()
	stamped := func(name, version string) string {
		p := filepath.Join(dir, name)
		writeExe(t, p, `echo "buildkitd github.com/moby/buildkit `+version+` x"`)
		return p
	}
	plan := func(cfg Config) *plan {
		t.Helper()
		p, err := makePlan(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := plan(Config{Home: home, Buildkitd: stamped("a", "v0.34.2")})
	if b := plan(Config{Home: home, Buildkitd: stamped("a", "v0.34.2")}); b.fingerprint != a.fingerprint {
		t.Errorf("same config, different fingerprints")
	}
	// Another copy of the same version (another minikit's, found next to
	// it): the same daemon.
	if b := plan(Config{Home: home, Buildkitd: stamped("copy", "v0.34.2")}); b.fingerprint != a.fingerprint {
		t.Errorf("another copy of the same buildkitd version changes the fingerprint")
	}
	if c := plan(Config{Home: home, Buildkitd: stamped("a", "v0.34.2"), Mirror: "127.0.0.1:5000"}); c.fingerprint == a.fingerprint {
		t.Errorf("mirror change does not change the fingerprint")
	}
	if d := plan(Config{Home: home, Buildkitd: stamped("new", "v0.35.0")}); d.fingerprint == a.fingerprint {
		t.Errorf("another buildkitd version does not change the fingerprint")
	}
	// Binaries that do not know their version: told apart by contents.
	u1 := plan(Config{Home: home, Buildkitd: stamped("u1", "v0.0.0+unknown")})
	u2 := plan(Config{Home: home, Buildkitd: stamped("u2", "v0.0.0+unknown")})
	if u1.fingerprint != u2.fingerprint {
		t.Errorf("identical unversioned copies differ")
	}
	writeExe(t, filepath.Join(dir, "u2"), `echo "buildkitd github.com/moby/buildkit v0.0.0+unknown y"`)
	if u3 := plan(Config{Home: home, Buildkitd: filepath.Join(dir, "u2")}); u3.fingerprint == u1.fingerprint {
		t.Errorf("a rebuilt unversioned binary does not change the fingerprint")
	}

	// The helper: its identity, not the executable that runs it.
	p1 := &Process{Args: []string{"/one/minikit", "serve"}, Identity: "serve v2 listen=127.0.0.1:5000"}
	p2 := &Process{Args: []string{"/other/minikit", "serve"}, Identity: p1.Identity}
	if p1.fingerprint() != p2.fingerprint() {
		t.Errorf("helper fingerprint depends on the executable's path")
	}
	if p3 := (&Process{Args: p1.Args, Identity: p1.Identity + " generation=2"}); p3.fingerprint() == p1.fingerprint() {
		t.Errorf("helper identity change does not change its fingerprint")
	}
	if (&Process{Args: []string{"x", "serve"}}).fingerprint() == (&Process{Args: []string{"x", "serve", "--other"}}).fingerprint() {
		t.Errorf("without an identity, a command line change does not change the fingerprint")
	}

	if _, err := makePlan(ctx, Config{Home: "relative"}); err == nil {
		t.Errorf("relative home accepted")
	}
	if _, err := makePlan(ctx, Config{Home: home, Mirror: "nope"}); err == nil {
		t.Errorf("bad mirror accepted")
	}
	if _, err := makePlan(ctx, Config{Home: home, Buildkitd: stamped("r", "v0.34.2"), Registry: &Process{}}); err == nil {
		t.Errorf("registry without a command line accepted")
	}
}

func TestStopNeverStarted(t *testing.T) {
	home := paths.Home(filepath.Join(t.TempDir(), "never"))
	ctx := context.Background()
	if err := Stop(ctx, home); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st, err := Status(ctx, home)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Running || st.Registry.Running || st.PID != 0 {
		t.Errorf("status of a never-started home: %+v", st)
	}
	if st.Addr != "unix://"+home.Socket() {
		t.Errorf("addr = %q", st.Addr)
	}
	// Stale files from a dead daemon are cleaned up, not an error.
	if err := os.MkdirAll(home.Buildkitd(), 0o700); err != nil {
		t.Fatal(err)
	}
	p := buildkitdProc(home)
	if err := p.write(procRecord{PID: 999999999, StartTicks: 1}); err != nil {
		t.Fatal(err)
	}
	if err := Stop(ctx, home); err != nil {
		t.Fatalf("Stop with stale files: %v", err)
	}
	if _, err := os.Stat(p.pidFile()); !os.IsNotExist(err) {
		t.Errorf("stale pid file left: %v", err)
	}
}

func TestParseProcStat(t *testing.T) {
	line := "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200\n"
	ticks, state, err := parseProcStat([]byte(line))
	if err != nil || ticks != 987654 || state != 'S' {
		t.Errorf("parseProcStat = %d, %c, %v", ticks, state, err)
	}
	if _, _, err := parseProcStat([]byte("garbage")); err == nil {
		t.Errorf("garbage parsed")
	}
}

func TestTrackedProcess(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := tracked{dir: dir, name: "sleeper"}
	rec, err := p.start([]string{"sleep", "60"}, nil, "fp", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, running, err := p.load()
	if err != nil || !ok || !running || got.PID != rec.PID || got.Fingerprint != "fp" || got.Labels["k"] != "v" {
		t.Fatalf("load = %+v, %v, %v, %v", got, ok, running, err)
	}
	pidText, err := os.ReadFile(p.pidFile())
	if err != nil || strings.TrimSpace(string(pidText)) != strconv.Itoa(rec.PID) {
		t.Errorf("pid file = %q, %v", pidText, err)
	}
	// Detached: its own session.
	if sid, err := sessionID(rec.PID); err != nil || sid != rec.PID {
		t.Errorf("session id = %d, %v; want %d", sid, err, rec.PID)
	}
	// A record with the right pid but another start time is not ours.
	if alive(procRecord{PID: rec.PID, StartTicks: rec.StartTicks + 1}) {
		t.Errorf("recycled pid taken for ours")
	}

	// A grace longer than the test's bound: only SIGTERM can end it in time.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stopped, err := p.stop(tctx, time.Hour)
	if err != nil || !stopped {
		t.Fatalf("stop = %v, %v (not ended by SIGTERM?)", stopped, err)
	}
	if alive(rec) {
		t.Errorf("still alive after stop")
	}
	for _, f := range []string{p.pidFile(), p.recordFile()} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind", f)
		}
	}
	if stopped, err := p.stop(ctx, time.Second); err != nil || stopped {
		t.Errorf("second stop = %v, %v", stopped, err)
	}
}

func TestTrackedProcessKill(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	p := tracked{dir: dir, name: "stubborn"}
	// Ignores SIGTERM, and has a child: SIGKILL must take the whole group.
	rec, err := p.start([]string{"sh", "-c", `trap "" TERM; sleep 60 & echo child $!; wait`}, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.logFile())
		for line := range strings.SplitSeq(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "child "); ok {
				child, _ = strconv.Atoi(n)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if child == 0 {
		t.Fatalf("child never reported; log:\n%s", tailFile(p.logFile(), 10))
	}
	childTicks, _, err := procStat(child)
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := p.stop(context.Background(), 300*time.Millisecond)
	if err != nil || !stopped {
		t.Fatalf("stop = %v, %v", stopped, err)
	}
	if alive(rec) {
		t.Errorf("leader alive after stop")
	}
	if !waitGone(context.Background(), procRecord{PID: child, StartTicks: childTicks}, 2*time.Second) {
		t.Errorf("child %d survived SIGKILL of the group", child)
	}
}

func TestTailFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 50 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got := tailFile(f, 3)
	if got != "line 47\nline 48\nline 49" {
		t.Errorf("tailFile = %q", got)
	}
	if got := tailFile(filepath.Join(t.TempDir(), "none"), 3); !strings.HasPrefix(got, "(no log") {
		t.Errorf("missing file: %q", got)
	}
}

func TestFileLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	ctx := context.Background()
	unlock, err := fileLock(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description: a second open in this process
	// contends like another minikit would.
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := fileLock(short, path, nil); err == nil {
		t.Fatalf("second lock acquired while held")
	}
	unlock()
	unlock2, err := fileLock(ctx, path, nil)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

// sessionID reads field 6 of /proc/<pid>/stat.
func sessionID(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return strconv.Atoi(f[3])
}

func TestInstallWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	l := binaryLookup{PathEnv: os.Getenv("PATH"), BinDir: filepath.Join(t.TempDir(), "bin")}
	err := installBuildkitd(context.Background(), l.BinDir, "v0.34.2", l)
	if !errors.Is(err, ErrNoGo) || !strings.Contains(err.Error(), "go command") {
		t.Errorf("error = %v, want ErrNoGo naming the go command", err)
	}
}
