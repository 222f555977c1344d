// Package daemon runs minikit's private buildkitd: one per state directory
// (paths.Home), started on first use, detached so that it outlives minikit,
// and reused by every later run with the same configuration.
//
// Use:
//
//	lease, err := daemon.Acquire(ctx, daemon.Config{Home: home, Mirror: "127.0.0.1:5000", Log: os.Stderr})
//	defer lease.Release()
//	c, err := client.New(ctx, lease.Addr) // github.com/moby/buildkit/client
//
// The lease keeps other minikits from restarting the daemon under the
// caller's builds. Status reports on it and Stop ends it. When the user
// points minikit at an existing buildkitd (--addr, BUILDKIT_HOST), none of
// this is used.
//
// Files, all private to the user, under home.Buildkitd(): buildkitd.toml
// (the configuration), buildkitd.pid and buildkitd.json (the running
// process and the configuration it was started with), buildkitd.log (its
// output; the previous run's in buildkitd.log.1), root/ (its state),
// daemon.lock (held while starting or stopping), inuse.lock (held shared by
// every client, exclusively by a restart), and the socket unless the path
// is too long (see SocketPath). The registry helper's pid, record and log
// are in home.Registry().
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/minikit/minikit/internal/paths"
)

// Errors for missing preconditions, for callers that want to tell them
// apart (errors.Is). The returned errors carry the full explanation.
var (
	ErrNotRoot = errors.New("the private buildkitd needs root")
	ErrNoRunc  = errors.New("runc not found")
	ErrNoGo    = errors.New("cannot build buildkitd")
)

// Defaults.
const (
	DefaultStartTimeout = 60 * time.Second
	// DefaultBusyTimeout bounds the wait for other minikits' builds to
	// finish before a restart.
	DefaultBusyTimeout = 10 * time.Minute
	stopGrace          = 10 * time.Second
	// reuseProbeTimeout bounds the check that a running daemon answers.
	reuseProbeTimeout = 3 * time.Second
	// registryReuseTimeout bounds Ready for a registry helper that runs already.
	registryReuseTimeout = 3 * time.Second
	// helperPoll is how often a starting helper is checked for having exited.
	helperPoll        = 50 * time.Millisecond
	fingerprintFormat = "minikit-daemon/2"
)

// Errors about the registry helper, for errors.Is.
var (
	// ErrHelperExited: the helper exited while Acquire waited for it to be ready.
	ErrHelperExited = errors.New("the helper process exited")
	// ErrAddrInUse: the helper exited and another program serves on its
	// address (Process.Addr).
	ErrAddrInUse = errors.New("its address is held by another program")
)

// Config says which private buildkitd Acquire should provide.
type Config struct {
	// Home is minikit's state directory. Required.
	Home paths.Home
	// Buildkitd is the buildkitd binary to run. Optional: by default it is
	// looked for next to the minikit executable, on PATH, in Home.Bin(),
	// and otherwise built into Home.Bin() from the Go module proxy.
	Buildkitd string
	// Mirror is the host:port of a plain-HTTP registry buildkitd uses as
	// its docker.io and gcr.io mirror. Optional.
	Mirror string
	// Registry is a helper process (the stand-in registry) started before
	// buildkitd and kept running beside it. Optional.
	Registry *Process
	// Log receives one-line progress messages. Optional.
	Log io.Writer
	// StartTimeout bounds the wait for a freshly started buildkitd to
	// answer, and for the registry helper's Ready. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// BusyTimeout bounds the wait, before restarting the daemon or its
	// registry helper for another configuration, for the other minikits
	// using them to finish (ErrBusy after it). Zero means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// plan is everything Acquire needs to know before touching any process.
type plan struct {
	cfg         Config
	dir         string // home.Buildkitd()
	root        string // buildkitd's state
	socket      string
	addr        string
	configFile  string
	configText  string
	lookup      binaryLookup
	binary      string // found binary, or where it will be built
	binaryWhere string // "" when it must be built
	// version is the found binary's buildkitd version, or the version that
	// will be built (the library's), "" when unknown.
	version     string
	args        []string
	fingerprint string
}

func makePlan(ctx context.Context, cfg Config) (*plan, error) {
	if cfg.Home == "" {
		return nil, errors.New("daemon: Config.Home is empty")
	}
	if !filepath.IsAbs(string(cfg.Home)) {
		return nil, fmt.Errorf("daemon: Config.Home %q is not an absolute path", cfg.Home)
	}
	if cfg.Mirror != "" {
		if err := checkMirror(cfg.Mirror); err != nil {
			return nil, err
		}
	}
	if cfg.Registry != nil && len(cfg.Registry.Args) == 0 {
		return nil, errors.New("daemon: Config.Registry has no command line")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = DefaultBusyTimeout
	}
	p := &plan{cfg: cfg, dir: cfg.Home.Buildkitd()}
	p.root = filepath.Join(p.dir, "root")
	p.socket = SocketPath(cfg.Home)
	p.addr = "unix://" + p.socket
	p.configFile = filepath.Join(p.dir, "buildkitd.toml")
	p.configText = bkConfig{
		Root:        p.root,
		Socket:      p.socket,
		TraceSocket: filepath.Join(filepath.Dir(p.socket), traceSocketName),
		Mirror:      cfg.Mirror,
	}.render()
	p.lookup = binaryLookup{
		Explicit: cfg.Buildkitd,
		ExeDir:   exeDir(),
		PathEnv:  os.Getenv("PATH"),
		BinDir:   cfg.Home.Bin(),
	}
	bin, where, err := p.lookup.find()
	if err != nil {
		return nil, err
	}
	if bin == "" {
		bin = filepath.Join(cfg.Home.Bin(), "buildkitd")
		p.version, _ = LibraryVersion(ctx) // what would be built
	} else if p.version, err = binaryVersion(ctx, bin); err != nil {
		return nil, fmt.Errorf("check buildkitd: %w", err)
	}
	p.binary, p.binaryWhere = bin, where
	// The flags repeat what the file says, so that `ps` shows which daemon
	// this is and a stray system-wide default can never apply.
	p.args = []string{bin,
		"--config", p.configFile,
		"--root", p.root,
		"--addr", p.addr,
		"--oci-worker=true",
		"--containerd-worker=false",
	}
	if p.fingerprint, err = p.computeFingerprint(); err != nil {
		return nil, err
	}
	return p, nil
}

// computeFingerprint identifies the wanted daemon by what it runs and how:
// the buildkitd version, flags and config, not which copy of the binary was
// found (two minikit binaries sharing a home find different ones). A binary
// that does not know its version is identified by its contents.
func (p *plan) computeFingerprint() (string, error) {
	version := p.version
	if version == unknownVersion && p.binaryWhere != "" {
		sum, err := fileDigest(p.binary)
		if err != nil {
			return "", fmt.Errorf("check buildkitd: %w", err)
		}
		version += " " + sum
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", fingerprintFormat, version, strings.Join(p.args[1:], "\x00"), p.configText)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (p *plan) logf(format string, args ...any) {
	fmt.Fprintf(p.cfg.Log, format+"\n", args...)
}

func buildkitdProc(home paths.Home) tracked { return tracked{dir: home.Buildkitd(), name: "buildkitd"} }
func registryProc(home paths.Home) tracked  { return tracked{dir: home.Registry(), name: "registry"} }

// Lease is one client's use of the private buildkitd and its registry
// helper: while any lease is held no minikit restarts them. A minikit that
// needs them configured otherwise waits for every lease to be released (up
// to Config.BusyTimeout, saying so once). Release it when done with the
// daemon; a process that exits releases its leases.
type Lease struct {
	// Addr is the daemon's address, unix://<socket>.
	Addr string
	// PID is the daemon's process id.
	PID  int
	rec  procRecord
	lock *useLock
}

// Release ends the lease. Calling it again does nothing.
func (l *Lease) Release() error {
	if l == nil || l.lock == nil {
		return nil
	}
	err := l.lock.close()
	l.lock = nil
	return err
}

// Exited reports whether the daemon process this lease was taken on has
// exited (killed, crashed or stopped), whatever runs in its place now.
func (l *Lease) Exited() bool { return !alive(l.rec) }

// Acquire returns a lease on the private buildkitd for cfg.Home, answering
// requests and configured as cfg says. A daemon already running with the
// same configuration is reused; one running with another configuration is
// restarted once no other lease is held; otherwise one is started (and,
// the first time, buildkitd is built). The registry helper, if any, is
// brought up first, and restarted only under the same rule.
func Acquire(ctx context.Context, cfg Config) (*Lease, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w (buildkitd runs build steps in runc containers): run minikit as root, or use an existing buildkitd with --addr or BUILDKIT_HOST", ErrNotRoot)
	}
	p, err := makePlan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{string(cfg.Home), p.dir, filepath.Dir(p.socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("prepare buildkitd state: %w", err)
		}
	}
	use, err := openUseLock(filepath.Join(p.dir, "inuse.lock"))
	if err != nil {
		return nil, fmt.Errorf("prepare buildkitd state: %w", err)
	}
	lease, err := p.acquire(ctx, use)
	if err != nil {
		_ = use.close()
		return nil, err
	}
	return lease, nil
}

func (p *plan) acquire(ctx context.Context, use *useLock) (*Lease, error) {
	// Fast path: everything runs as wanted. No process is started, and
	// only the shared lock is taken (unless a restart holds it).
	if ok, err := use.tryShared(); err != nil {
		return nil, err
	} else if ok {
		if p.registryUp(ctx) {
			if rec, ok, running, err := buildkitdProc(p.cfg.Home).load(); err == nil && ok && running &&
				rec.Fingerprint == p.fingerprint && probe(ctx, p.addr, reuseProbeTimeout) == nil {
				return &Lease{Addr: p.addr, PID: rec.PID, rec: rec, lock: use}, nil
			}
		}
		if err := use.unlock(); err != nil {
			return nil, err
		}
	}

	unlock, err := fileLock(ctx, filepath.Join(p.dir, "daemon.lock"), func() {
		p.logf("waiting for another minikit that is starting or restarting the private buildkitd in %s", p.dir)
	})
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Plan again under the lock: the minikit that held it may have built
	// buildkitd meanwhile, which changes where the binary is found.
	if p, err = makePlan(ctx, p.cfg); err != nil {
		return nil, err
	}
	if err := p.ensureRegistry(ctx, use); err != nil {
		return nil, err
	}
	rec, err := p.ensureBuildkitd(ctx, use)
	if err != nil {
		return nil, err
	}
	if err := use.shared(ctx); err != nil {
		return nil, err
	}
	return &Lease{Addr: p.addr, PID: rec.PID, rec: rec, lock: use}, nil
}

// registryUp reports whether no registry helper is wanted, or the wanted one
// runs and is ready.
func (p *plan) registryUp(ctx context.Context) bool {
	r := p.cfg.Registry
	if r == nil {
		return true
	}
	rec, ok, running, err := registryProc(p.cfg.Home).load()
	if err != nil || !ok || !running || rec.Fingerprint != r.fingerprint() {
		return false
	}
	if r.Ready == nil {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, registryReuseTimeout)
	defer cancel()
	return r.Ready(rctx) == nil
}

func (p *plan) ensureRegistry(ctx context.Context, use *useLock) error {
	r := p.cfg.Registry
	if r == nil {
		return nil
	}
	name := r.displayName()
	proc := registryProc(p.cfg.Home)
	rec, ok, running, err := proc.load()
	if err != nil {
		return err
	}
	switch {
	case ok && running:
		if p.registryUp(ctx) {
			return nil
		}
		why := "its configuration changed"
		if rec.Fingerprint == r.fingerprint() {
			why = "it does not answer"
		}
		what := fmt.Sprintf("%s (pid %d): %s", name, rec.PID, why)
		if err := use.exclusive(ctx, p.cfg.BusyTimeout, p.logf, what); err != nil {
			return err
		}
		p.logf("restarting %s", what)
		if _, err := proc.stop(ctx, stopGrace); err != nil {
			return err
		}
	case ok:
		_, _ = proc.stop(ctx, 0) // remove stale files
	}
	p.logf("starting %s (%s)", name, strings.Join(r.Args, " "))
	rec, err = proc.start(r.Args, r.Env, r.fingerprint(), map[string]string{"name": name, "addr": r.Addr})
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, rec); err != nil {
		if ctx.Err() == nil {
			// Ours to clean up: it will not come up by itself.
			_, _ = proc.stop(context.WithoutCancel(ctx), 2*time.Second)
		}
		return err
	}
	return nil
}

// waitReady waits for the freshly started registry helper's Ready, and
// meanwhile watches that it still runs: a helper that exits (its port taken,
// a bad layout) is reported at once, with its log, not after StartTimeout.
func (p *plan) waitReady(ctx context.Context, rec procRecord) error {
	r := p.cfg.Registry
	if r.Ready == nil {
		return nil
	}
	name, logFile := r.displayName(), registryProc(p.cfg.Home).logFile()
	rctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- r.Ready(rctx) }()
	tick := time.NewTicker(helperPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-ready:
			if err == nil {
				return nil
			}
			state := "still running"
			if !alive(rec) {
				state = "exited"
			}
			return fmt.Errorf("%s (pid %d, %s) is not ready: %w; last lines of %s:\n%s",
				name, rec.PID, state, err, logFile, tailFile(logFile, 20))
		case <-tick.C:
			if alive(rec) {
				continue
			}
			cancel()
			why := ErrHelperExited
			if r.Addr != "" && listening(r.Addr) {
				why = fmt.Errorf("%w: %w: %s", ErrHelperExited, ErrAddrInUse, r.Addr)
			}
			if rerr := <-ready; rerr != nil && !errors.Is(rerr, context.Canceled) {
				// What Ready saw says more (a foreign server at the address).
				why = fmt.Errorf("%w (%w)", why, rerr)
			}
			return fmt.Errorf("%s (pid %d) exited as it started: %w; last lines of %s:\n%s",
				name, rec.PID, why, logFile, tailFile(logFile, 20))
		}
	}
}

// listening reports whether something accepts TCP connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ensureBuildkitd leaves buildkitd running as planned, restarting it (with
// the use lock held exclusively) when it runs otherwise, and returns its
// record.
func (p *plan) ensureBuildkitd(ctx context.Context, use *useLock) (procRecord, error) {
	proc := buildkitdProc(p.cfg.Home)
	rec, ok, running, err := proc.load()
	if err != nil {
		return procRecord{}, err
	}
	if ok && running {
		// Another minikit may have started it while we waited for the
		// lock. A daemon with the right configuration that is slow to
		// answer (a loaded machine) is far likelier than a hung one: give
		// it longer than the fast path does before restarting it.
		if rec.Fingerprint == p.fingerprint && probe(ctx, p.addr, max(reuseProbeTimeout, p.cfg.StartTimeout/3)) == nil {
			return rec, nil
		}
		why := "its configuration changed"
		if rec.Fingerprint == p.fingerprint {
			why = "it does not answer"
		}
		what := fmt.Sprintf("buildkitd (pid %d): %s", rec.PID, why)
		if err := use.exclusive(ctx, p.cfg.BusyTimeout, p.logf, what); err != nil {
			return procRecord{}, err
		}
		p.logf("restarting %s", what)
		if _, err := proc.stop(ctx, stopGrace); err != nil {
			return procRecord{}, err
		}
	} else if ok {
		_, _ = proc.stop(ctx, 0) // remove stale files
	}
	if err := cleanStale(ctx, p.root); err != nil {
		return procRecord{}, err
	}

	if _, err := exec.LookPath("runc"); err != nil {
		return procRecord{}, fmt.Errorf("%w: install it (apt-get install runc); buildkitd runs build steps with it", ErrNoRunc)
	}
	want, verr := LibraryVersion(ctx)
	built := false
	if p.binaryWhere == "" {
		if verr != nil {
			return procRecord{}, fmt.Errorf("buildkitd not found in %s, and cannot tell which version to build: %w", p.lookup.searched(), verr)
		}
		p.logf("building buildkitd %s from the Go module proxy into %s (once; this takes a few minutes) ...", want, p.lookup.BinDir)
		if err := installBuildkitd(ctx, p.lookup.BinDir, want, p.lookup); err != nil {
			return procRecord{}, err
		}
		built = true
	} else if verr == nil && p.version != want && filepath.Dir(p.binary) == p.lookup.BinDir {
		// minikit's own build, left by another minikit version: replace it.
		p.logf("rebuilding buildkitd: %s is %s, minikit wants %s (this takes a few minutes) ...", p.binary, p.version, want)
		if err := installBuildkitd(ctx, p.lookup.BinDir, want, p.lookup); err != nil {
			return procRecord{}, err
		}
		built = true
	}
	if built {
		p.binaryWhere = "in " + p.lookup.BinDir
		if p.version, err = binaryVersion(ctx, p.binary); err != nil {
			return procRecord{}, fmt.Errorf("check buildkitd: %w", err)
		}
		if p.fingerprint, err = p.computeFingerprint(); err != nil {
			return procRecord{}, err
		}
	}
	if verr == nil && p.version != want {
		p.logf("warning: %s is buildkitd %s, minikit was built with buildkit %s", p.binary, p.version, want)
	}

	if err := writeFileAtomic(p.configFile, []byte(p.configText), 0o600); err != nil {
		return procRecord{}, fmt.Errorf("write buildkitd config: %w", err)
	}
	traceSocket := filepath.Join(filepath.Dir(p.socket), traceSocketName)
	for _, s := range []string{p.socket, traceSocket} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return procRecord{}, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	tmp, err := tmpDir(p.root)
	if err != nil {
		return procRecord{}, err
	}
	p.logf("starting buildkitd %s (state in %s)", p.version, p.dir)
	start := time.Now()
	rec, err = proc.start(p.args, []string{"TMPDIR=" + tmp}, p.fingerprint, map[string]string{
		"socket":  p.socket,
		"version": p.version,
		"binary":  p.binary,
		"config":  p.configFile,
		"mirror":  p.cfg.Mirror,
	})
	if err != nil {
		return procRecord{}, err
	}
	if err := waitAnswering(ctx, rec, p.addr, p.cfg.StartTimeout); err != nil {
		if ctx.Err() == nil {
			// Ours to clean up: it will not come up by itself.
			_, _ = proc.stop(context.WithoutCancel(ctx), 2*time.Second)
		}
		return procRecord{}, fmt.Errorf("buildkitd (pid %d) did not come up: %w; last lines of %s:\n%s",
			rec.PID, err, proc.logFile(), tailFile(proc.logFile(), 20))
	}
	// buildkitd makes its sockets group- or world-writable (the trace
	// socket is meant for build containers): they are for minikit, as root.
	for _, s := range []string{p.socket, traceSocket} {
		if err := os.Chmod(s, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return procRecord{}, fmt.Errorf("make the buildkitd socket private: %w", err)
		}
	}
	p.logf("buildkitd is up at %s (%.1fs)", p.addr, time.Since(start).Seconds())
	return rec, nil
}

// waitAnswering polls until the daemon answers, exits, or timeout passes.
func waitAnswering(ctx context.Context, rec procRecord, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if !alive(rec) {
			return errors.New("it exited")
		}
		if last = probe(ctx, addr, 2*time.Second); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("no answer within %s (last: %v)", timeout, last)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probe checks that a buildkitd answers at addr and has a worker.
func probe(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sock := strings.TrimPrefix(addr, "unix://")
	if _, err := os.Stat(sock); err != nil {
		return err
	}
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return errors.New("buildkitd has no workers")
	}
	return nil
}

// State describes the private buildkitd of a home, as Status reports it.
type State struct {
	// Running: the recorded buildkitd process is alive (the same process:
	// a recycled pid is not taken for it).
	Running bool
	// Answering: it answered a ListWorkers request.
	Answering bool
	// PID is the recorded process, alive or not (see Running); 0 when
	// there is no record.
	PID    int
	Addr   string // unix://<socket>
	Socket string
	// Version is the daemon's own report when it answers and knows it,
	// else what minikit determined when starting it.
	Version    string
	Binary     string
	ConfigFile string
	Mirror     string
	LogFile    string
	Started    time.Time // zero when not running
	Registry   ProcessStatus
}

// ProcessStatus describes the registry helper process.
type ProcessStatus struct {
	Name string
	// Running: the recorded process is alive.
	Running bool
	// PID is the recorded process, alive or not; 0 when there is no record.
	PID  int
	Args []string
	// Addr is where it serves (Process.Addr), when known.
	Addr    string
	LogFile string
	Started time.Time // zero when not running
}

// Status reports on the private buildkitd of home and its registry helper.
// A daemon that is not running is not an error.
func Status(ctx context.Context, home paths.Home) (State, error) {
	if home == "" {
		return State{}, errors.New("daemon: empty home")
	}
	proc := buildkitdProc(home)
	st := State{
		Socket:     SocketPath(home),
		ConfigFile: filepath.Join(home.Buildkitd(), "buildkitd.toml"),
		LogFile:    proc.logFile(),
	}
	st.Addr = "unix://" + st.Socket
	rec, ok, running, err := proc.load()
	if err != nil {
		return st, err
	}
	if ok {
		st.PID = rec.PID
		if s := rec.Labels["socket"]; s != "" {
			st.Socket, st.Addr = s, "unix://"+s
		}
		st.Version = rec.Labels["version"]
		st.Binary = rec.Labels["binary"]
		st.Mirror = rec.Labels["mirror"]
		if c := rec.Labels["config"]; c != "" {
			st.ConfigFile = c
		}
	}
	if running {
		st.Running, st.Started = true, rec.Started
		if probe(ctx, st.Addr, reuseProbeTimeout) == nil {
			st.Answering = true
			if info, err := infoVersion(ctx, st.Addr); err == nil && info != "" && info != unknownVersion {
				st.Version = info
			}
		}
	}

	rp := registryProc(home)
	st.Registry.LogFile = rp.logFile()
	rrec, ok, running, err := rp.load()
	if err != nil {
		return st, err
	}
	if ok {
		st.Registry.Name = rrec.Labels["name"]
		st.Registry.Args = rrec.Args
		st.Registry.Addr = rrec.Labels["addr"]
		st.Registry.PID = rrec.PID
	}
	if running {
		st.Registry.Running, st.Registry.Started = true, rrec.Started
	}
	return st, nil
}

func infoVersion(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, reuseProbeTimeout)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.BuildkitVersion.Version, nil
}

// Stop ends the private buildkitd of home (SIGTERM, up to 10 s, then
// SIGKILL) and then its registry helper, removes their pid files, and
// cleans up what a killed buildkitd leaves (mounts, build containers,
// partial downloads). It does not wait for other minikits' leases: their
// builds fail. Stopping what is not running is not an error.
func Stop(ctx context.Context, home paths.Home) error {
	if home == "" {
		return errors.New("daemon: empty home")
	}
	if _, err := os.Stat(home.Buildkitd()); err == nil {
		unlock, err := fileLock(ctx, filepath.Join(home.Buildkitd(), "daemon.lock"), nil)
		if err != nil {
			return err
		}
		defer unlock()
	}
	var errs []error
	proc := buildkitdProc(home)
	socket := SocketPath(home)
	if rec, ok, _, err := proc.load(); err == nil && ok && rec.Labels["socket"] != "" {
		socket = rec.Labels["socket"]
	}
	if _, err := proc.stop(ctx, stopGrace); err != nil {
		errs = append(errs, err)
	} else {
		for _, f := range []string{socket, filepath.Join(filepath.Dir(socket), traceSocketName)} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove socket: %w", err))
			}
		}
		if dir := filepath.Dir(socket); dir != home.Buildkitd() {
			_ = os.Remove(dir) // the short directory for a deep home; only if empty
		}
		if err := cleanStale(ctx, filepath.Join(home.Buildkitd(), "root")); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := registryProc(home).stop(ctx, stopGrace); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
