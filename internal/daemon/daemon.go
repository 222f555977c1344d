// Package daemon runs minikit's private buildkitd: one per state directory
// (paths.Home), started on first use, detached so that it outlives minikit,
// and reused by every later run with the same configuration.
//
// Use:
//
//	addr, err := daemon.Ensure(ctx, daemon.Config{Home: home, Mirror: "127.0.0.1:5000", Log: os.Stderr})
//	c, err := client.New(ctx, addr) // github.com/moby/buildkit/client
//
// Status reports on it and Stop ends it. When the user points minikit at an
// existing buildkitd (--addr, BUILDKIT_HOST), none of this is used.
//
// Files, under home.Buildkitd(): buildkitd.toml (the configuration),
// buildkitd.pid and buildkitd.json (the running process and the
// configuration it was started with), buildkitd.log (its output; the
// previous run's in buildkitd.log.1), root/ (its state), daemon.lock, and
// the socket unless the path is too long (see SocketPath). The registry
// helper's pid, record and log are in home.Registry().
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
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
	stopGrace           = 10 * time.Second
	// reuseProbeTimeout bounds the check that a running daemon answers.
	reuseProbeTimeout = 3 * time.Second
	// registryReuseTimeout bounds Ready for a registry helper that runs already.
	registryReuseTimeout = 3 * time.Second
	fingerprintFormat    = "minikit-daemon/1"
)

// Config says which private buildkitd Ensure should provide.
type Config struct {
	// Home is minikit's state directory. Required.
	Home paths.Home
	// Buildkitd is the buildkitd binary to run. Optional: by default it is
	// looked for next to the minikit executable, on PATH, in Home.Bin(),
	// and otherwise built into Home.Bin() from the Go module proxy.
	Buildkitd string
	// Mirror is the host:port of a plain-HTTP registry buildkitd uses as
	// its docker.io mirror. Optional.
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
}

// plan is everything Ensure needs to know before touching any process.
type plan struct {
	cfg         Config
	dir         string // home.Buildkitd()
	socket      string
	addr        string
	configFile  string
	configText  string
	lookup      binaryLookup
	binary      string // found binary, or where it will be built
	binaryWhere string // "" when it must be built
	args        []string
	fingerprint string
}

func makePlan(cfg Config) (*plan, error) {
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
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	p := &plan{cfg: cfg, dir: cfg.Home.Buildkitd()}
	p.socket = SocketPath(cfg.Home)
	p.addr = "unix://" + p.socket
	p.configFile = filepath.Join(p.dir, "buildkitd.toml")
	root := filepath.Join(p.dir, "root")
	p.configText = bkConfig{
		Root:        root,
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
	}
	p.binary, p.binaryWhere = bin, where
	// The flags repeat what the file says, so that `ps` shows which daemon
	// this is and a stray system-wide default can never apply.
	p.args = []string{bin,
		"--config", p.configFile,
		"--root", root,
		"--addr", p.addr,
		"--oci-worker=true",
		"--containerd-worker=false",
	}
	p.fingerprint = p.computeFingerprint()
	return p, nil
}

// computeFingerprint identifies the wanted daemon: command line, config,
// the binary file as it is now (so a rebuilt or replaced binary restarts
// the daemon) and the buildkit version minikit was built with (so
// upgrading minikit does too). All of it is cheap: no process is run.
func (p *plan) computeFingerprint() string {
	bin := "missing"
	if fi, err := os.Stat(p.binary); err == nil {
		bin = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	want := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		want = moduleVersion(bi, buildkitModule)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n", fingerprintFormat, want, bin, strings.Join(p.args, "\x00"), p.configText)
	return hex.EncodeToString(h.Sum(nil))
}

func (p *plan) logf(format string, args ...any) {
	fmt.Fprintf(p.cfg.Log, format+"\n", args...)
}

func buildkitdProc(home paths.Home) tracked { return tracked{dir: home.Buildkitd(), name: "buildkitd"} }
func registryProc(home paths.Home) tracked  { return tracked{dir: home.Registry(), name: "registry"} }

// processFingerprint identifies a helper process: its command line,
// environment, and executable file as it is now (so a rebuilt minikit
// serving as its own registry gets the helper restarted).
func processFingerprint(p *Process) string {
	exe := ""
	if len(p.Args) > 0 {
		if path, err := exec.LookPath(p.Args[0]); err == nil {
			if fi, err := os.Stat(path); err == nil {
				exe = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", fingerprintFormat, exe, strings.Join(p.Args, "\x00"), strings.Join(p.Env, "\x00"))
	return hex.EncodeToString(h.Sum(nil))
}

// Ensure returns the address (unix://<socket>) of the private buildkitd for
// cfg.Home, answering requests and configured as cfg says. A daemon already
// running with the same configuration is reused; one running with another
// configuration is restarted; otherwise one is started (and, the first time,
// buildkitd is built). The registry helper, if any, is brought up first.
func Ensure(ctx context.Context, cfg Config) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w (buildkitd runs build steps in runc containers): run minikit as root, or use an existing buildkitd with --addr or BUILDKIT_HOST", ErrNotRoot)
	}
	p, err := makePlan(cfg)
	if err != nil {
		return "", err
	}

	// Fast path: everything runs as wanted. No lock, no process started.
	if p.registryUp(ctx) {
		if rec, ok, running, err := buildkitdProc(cfg.Home).load(); err == nil && ok && running &&
			rec.Fingerprint == p.fingerprint && probe(ctx, p.addr, reuseProbeTimeout) == nil {
			return p.addr, nil
		}
	}

	for _, d := range []string{string(cfg.Home), p.dir, filepath.Dir(p.socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("prepare buildkitd state: %w", err)
		}
	}
	unlock, err := fileLock(ctx, filepath.Join(p.dir, "daemon.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Plan again under the lock: the minikit that held it may have built
	// buildkitd meanwhile, which changes where the binary is found.
	if p, err = makePlan(cfg); err != nil {
		return "", err
	}

	if err := p.ensureRegistry(ctx); err != nil {
		return "", err
	}
	if err := p.ensureBuildkitd(ctx); err != nil {
		return "", err
	}
	return p.addr, nil
}

// registryUp reports whether no registry helper is wanted, or the wanted one
// runs and is ready.
func (p *plan) registryUp(ctx context.Context) bool {
	r := p.cfg.Registry
	if r == nil {
		return true
	}
	rec, ok, running, err := registryProc(p.cfg.Home).load()
	if err != nil || !ok || !running || rec.Fingerprint != processFingerprint(r) {
		return false
	}
	if r.Ready == nil {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, registryReuseTimeout)
	defer cancel()
	return r.Ready(rctx) == nil
}

func (p *plan) ensureRegistry(ctx context.Context) error {
	r := p.cfg.Registry
	if r == nil {
		return nil
	}
	if len(r.Args) == 0 {
		return errors.New("daemon: Config.Registry has no command line")
	}
	name := r.Name
	if name == "" {
		name = "registry"
	}
	if p.registryUp(ctx) {
		return nil
	}
	proc := registryProc(p.cfg.Home)
	if stopped, err := proc.stop(ctx, stopGrace); err != nil {
		return err
	} else if stopped {
		p.logf("restarting %s (its command line changed or it stopped answering)", name)
	}
	p.logf("starting %s (%s)", name, strings.Join(r.Args, " "))
	rec, err := proc.start(r.Args, r.Env, processFingerprint(r), map[string]string{"name": name})
	if err != nil {
		return err
	}
	if r.Ready == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if err := r.Ready(rctx); err != nil {
		state := "still running"
		if !alive(rec) {
			state = "exited"
		}
		return fmt.Errorf("%s (pid %d, %s) is not ready: %w; last lines of %s:\n%s",
			name, rec.PID, state, err, proc.logFile(), tailFile(proc.logFile(), 20))
	}
	return nil
}

func (p *plan) ensureBuildkitd(ctx context.Context) error {
	proc := buildkitdProc(p.cfg.Home)
	rec, ok, running, err := proc.load()
	if err != nil {
		return err
	}
	if ok && running {
		// Another minikit may have started it while we waited for the
		// lock. A daemon with the right configuration that is slow to
		// answer (a loaded machine) is far likelier than a hung one: give
		// it longer than the fast path does before restarting it.
		if rec.Fingerprint == p.fingerprint && probe(ctx, p.addr, max(reuseProbeTimeout, p.cfg.StartTimeout/3)) == nil {
			return nil
		}
		why := "its configuration changed"
		if rec.Fingerprint == p.fingerprint {
			why = "it does not answer"
		}
		p.logf("restarting buildkitd (pid %d): %s", rec.PID, why)
		if _, err := proc.stop(ctx, stopGrace); err != nil {
			return err
		}
	} else if ok {
		_, _ = proc.stop(ctx, 0) // remove stale files
	}

	if _, err := exec.LookPath("runc"); err != nil {
		return fmt.Errorf("%w: install it (apt-get install runc); buildkitd runs build steps with it", ErrNoRunc)
	}
	want, verr := LibraryVersion(ctx)
	built := false
	if p.binaryWhere == "" {
		if verr != nil {
			return fmt.Errorf("buildkitd not found in %s, and cannot tell which version to build: %w", p.lookup.searched(), verr)
		}
		p.logf("building buildkitd %s from the Go module proxy into %s (once; this takes a few minutes) ...", want, p.lookup.BinDir)
		if err := installBuildkitd(ctx, p.lookup.BinDir, want, p.lookup); err != nil {
			return err
		}
		built = true
	}
	version, err := binaryVersion(ctx, p.binary)
	if err != nil {
		return fmt.Errorf("check buildkitd: %w", err)
	}
	if verr == nil && version != want && !built && filepath.Dir(p.binary) == p.lookup.BinDir {
		// minikit's own build, left by another minikit version: replace it.
		p.logf("rebuilding buildkitd: %s is %s, minikit wants %s (this takes a few minutes) ...", p.binary, version, want)
		if err := installBuildkitd(ctx, p.lookup.BinDir, want, p.lookup); err != nil {
			return err
		}
		built = true
		if version, err = binaryVersion(ctx, p.binary); err != nil {
			return fmt.Errorf("check buildkitd: %w", err)
		}
	}
	if verr == nil && version != want {
		p.logf("warning: %s is buildkitd %s, minikit was built with buildkit %s", p.binary, version, want)
	}
	if built {
		p.fingerprint = p.computeFingerprint()
	}

	if err := writeFileAtomic(p.configFile, []byte(p.configText), 0o600); err != nil {
		return fmt.Errorf("write buildkitd config: %w", err)
	}
	if err := os.Remove(p.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	p.logf("starting buildkitd %s (state in %s)", version, p.dir)
	start := time.Now()
	rec, err = proc.start(p.args, nil, p.fingerprint, map[string]string{
		"socket":  p.socket,
		"version": version,
		"binary":  p.binary,
		"config":  p.configFile,
		"mirror":  p.cfg.Mirror,
	})
	if err != nil {
		return err
	}
	if err := waitAnswering(ctx, rec, p.addr, p.cfg.StartTimeout); err != nil {
		if ctx.Err() == nil {
			// Ours to clean up: it will not come up by itself.
			_, _ = proc.stop(context.WithoutCancel(ctx), 2*time.Second)
		}
		return fmt.Errorf("buildkitd (pid %d) did not come up: %w; last lines of %s:\n%s",
			rec.PID, err, proc.logFile(), tailFile(proc.logFile(), 20))
	}
	p.logf("buildkitd is up at %s (%.1fs)", p.addr, time.Since(start).Seconds())
	return nil
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
	// Running: the recorded buildkitd process is alive.
	Running bool
	// Answering: it answered a ListWorkers request.
	Answering bool
	PID       int
	Addr      string // unix://<socket>
	Socket    string
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
	Name    string
	Running bool
	PID     int
	Args    []string
	LogFile string
	Started time.Time
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
		st.Running, st.PID, st.Started = true, rec.PID, rec.Started
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
	}
	if running {
		st.Registry.Running, st.Registry.PID, st.Registry.Started = true, rrec.PID, rrec.Started
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
// SIGKILL) and then its registry helper, and removes their pid files.
// Stopping what is not running is not an error.
func Stop(ctx context.Context, home paths.Home) error {
	if home == "" {
		return errors.New("daemon: empty home")
	}
	if _, err := os.Stat(home.Buildkitd()); err == nil {
		unlock, err := fileLock(ctx, filepath.Join(home.Buildkitd(), "daemon.lock"))
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
	}
	if _, err := registryProc(home).stop(ctx, stopGrace); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
