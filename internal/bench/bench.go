// Package bench measures minikit against the alternatives on one
// buildkitd and one set of recipes: minikit's parallel solve, the same
// solve one recipe at a time, minikit with shared compiler caches, and
// `docker buildx bake` of the generated bake file. Each runs cold (a
// buildkitd started on an empty state directory) and warm (the same
// command again, everything cached).
//
// Every client is a child process (minikit solve, docker-buildx bake),
// measured the same way from its exit status: wall time, CPU time
// (user+sys) and peak resident memory (getrusage's ru_maxrss). Beside
// them, the CPU time buildkitd and its children (runc, the compilers)
// spent meanwhile says how much work the build itself was.
//
// The daemon is the bench's own: a private buildkitd (internal/daemon) in
// a directory of its own, with the offline stand-ins served as its
// docker.io mirror by a stand-in registry on a port of its own, so no
// other minikit daemon, cache or registry is touched.
//
// Use:
//
//	res, err := bench.Run(ctx, bench.Config{Minikit: exe, Buildx: "bin/docker-buildx",
//		StandIns: home.StandIns(), Dir: tmp, Registry: "127.0.0.1:5020",
//		Recipes: bench.StandInRecipes(), Runs: 1})
//	res.WriteTable(os.Stdout)
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/pkg/timings"
	"github.com/minikit/minikit/samples"
)

// A Mode is one way of building the recipes.
type Mode string

const (
	// Solve is `minikit solve` as the README runs it (solve --all): every
	// image measured, the Go build stages sharing one compiler cache
	// seeded from whatsmyip.golang's image; --timings for the profile.
	Solve Mode = "solve"
	// SolveLayers is Solve on a fresh daemon, but with the machine's
	// layer measurements kept (the measurement cache's layer records, as
	// an earlier run on the machine left them; the images' own
	// measurements emptied): the base images' layers are not read again.
	SolveLayers Mode = "solve-layers"
	// SolveLocked is Solve with --compiler-cache=locked: the shared
	// compiler cache starts empty and is filled by whichever build gets
	// it first (the lever before the seed).
	SolveLocked Mode = "solve-locked"
	// MinikitCache is `minikit solve --sizes=false`: the default
	// compiler cache, no measuring.
	MinikitCache Mode = "minikit-cache"
	// Minikit is `minikit solve --sizes=false --compiler-cache=false`:
	// the recipes' LLB solved in parallel, each Go build with its own
	// compiler cache, as bake builds them.
	Minikit Mode = "minikit"
	// Sequential is Minikit one recipe at a time (--parallel 1).
	Sequential Mode = "sequential"
	// Bake is `docker-buildx bake` of the generated docker-bake.hcl.
	Bake Mode = "bake"
)

// Modes lists every mode, in the order they run and are shown.
func Modes() []Mode {
	return []Mode{Solve, SolveLayers, SolveLocked, MinikitCache, Minikit, Sequential, Bake}
}

// DefaultModes are the modes measured when none are named: all but
// Sequential.
func DefaultModes() []Mode {
	return []Mode{Solve, SolveLayers, SolveLocked, MinikitCache, Minikit, Bake}
}

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	var names []string
	for _, m := range Modes() {
		if string(m) == s {
			return m, nil
		}
		names = append(names, string(m))
	}
	return "", fmt.Errorf("unknown mode %q: want one of %s", s, strings.Join(names, ", "))
}

// Describe says what a mode runs, for the table.
func (m Mode) Describe() string {
	switch m {
	case Solve:
		return "minikit solve (default: sizes measured, compiler cache seeded)"
	case SolveLayers:
		return "minikit solve (default), base layers measured before on this machine"
	case SolveLocked:
		return "minikit solve --compiler-cache=locked"
	case MinikitCache:
		return "minikit solve --sizes=false"
	case Minikit:
		return "minikit solve --sizes=false --compiler-cache=false"
	case Sequential:
		return "minikit solve --sizes=false --compiler-cache=false --parallel 1"
	case Bake:
		return "docker-buildx bake"
	}
	return string(m)
}

// minikit reports whether the mode's client is minikit.
func (m Mode) minikit() bool { return m != Bake }

// sizes reports whether the mode measures the images.
func (m Mode) sizes() bool { return m == Solve || m == SolveLayers || m == SolveLocked }

// A State is the daemon's state when a command starts.
type State string

const (
	// Cold: buildkitd just started on an empty state directory; nothing
	// pulled, nothing cached; minikit's measurement cache empty (but for
	// its layer records in the SolveLayers mode).
	Cold State = "cold"
	// Warm: the same command just ran on this daemon; everything cached.
	Warm State = "warm"
	// LongLived: warm, on a daemon that has served every mode's runs
	// before, the main mode and bake alternating (Config.Pairs).
	LongLived State = "long-lived"
)

// States lists the states, in the order they are shown.
func States() []State { return []State{Cold, Warm, LongLived} }

// ParseStates reads --only: "" (both), "cold" or "warm".
func ParseStates(only string) ([]State, error) {
	switch only {
	case "":
		return []State{Cold, Warm}, nil
	case "cold":
		return []State{Cold}, nil
	case "warm":
		return []State{Warm}, nil
	}
	return nil, fmt.Errorf("unknown state %q: want cold or warm", only)
}

// Config is what to measure and with what.
type Config struct {
	// Minikit is the minikit executable run as the client (and as the
	// stand-in registry). Required.
	Minikit string
	// Buildx is the docker-buildx executable. Required with the Bake mode.
	Buildx string
	// Buildkitd is the buildkitd binary. Optional: found as
	// internal/daemon finds it (next to minikit, on PATH), else in the
	// user's minikit home (UserBin), else built there.
	Buildkitd string
	// UserBin is the user's minikit bin directory, searched for buildkitd.
	UserBin string
	// StandIns is the OCI layout of the stand-in base images. Required.
	StandIns string
	// Dir is the bench's own state directory: daemon, buildx config, bake
	// files. Required; its buildkitd state is deleted before each cold run.
	Dir string
	// Registry is the loopback host:port the bench's stand-in registry
	// listens on; empty picks the address of the stand-ins' package index
	// (pip's, baked into the python stand-ins) when it is free, so that
	// the pip recipes find it, else a free port.
	Registry string
	// Recipes are what every mode builds. Required.
	Recipes []llbdefs.Recipe
	// Modes and States to measure; empty means all.
	Modes  []Mode
	States []State
	// Runs is how many times each measurement is repeated (median
	// reported); 0 means 1.
	Runs int
	// Pairs is how many alternating pairs of warm runs, the main mode
	// (Solve, else MinikitCache) then bake, are measured at the end on
	// the last daemon, once it has served every mode (LongLived); 0 for
	// none.
	Pairs int
	// Log receives progress lines. Optional.
	Log io.Writer
}

// StandInRecipes returns the recipes the stand-ins reproduce and that
// build: the bake file's `standins` group.
func StandInRecipes() []llbdefs.Recipe {
	var out []llbdefs.Recipe
	for _, r := range llbdefs.Catalog() {
		if r.BuildsOffline() && !r.ExpectBuildFailure() {
			out = append(out, r)
		}
	}
	return out
}

// Run measures every mode in every state, cfg.Runs times, and checks
// that the minikit modes built the same images.
//
// With cold runs wanted, each run goes through the modes in turn, and for
// each restarts buildkitd on an empty state directory, empties the
// measurement cache, runs the command (cold) and, if wanted, runs it
// again (warm). With warm runs only, each mode's daemon is emptied and
// filled once by an untimed run, and then measured cfg.Runs times. Then,
// with cfg.Pairs, the last daemon runs the main mode and bake once each
// untimed, and then cfg.Pairs pairs of them, alternating.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, home: paths.Home(cfg.Dir), log: cfg.Log}
	if b.log == nil {
		b.log = io.Discard
	}
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	defer b.stop(context.WithoutCancel(ctx))

	res := &Result{
		Recipes:  recipeNames(cfg.Recipes),
		CPUs:     runtime.NumCPU(),
		Export:   "buildkitd's image store only (minikit:NAME); bake without attestations (--provenance=false); sizes measured by the solve and solve-locked modes only",
		Started:  time.Now().UTC(),
		Profiles: map[Mode]*timings.Summary{},
	}
	res.LoadBefore, _ = loadAverage()
	rows := map[key]*Row{}
	row := func(m Mode, s State) *Row {
		r := rows[key{m, s}]
		if r == nil {
			r = &Row{Mode: m, State: s, Command: m.Describe()}
			rows[key{m, s}] = r
			res.Rows = append(res.Rows, r)
		}
		return r
	}
	for _, m := range cfg.Modes {
		for _, s := range cfg.States {
			row(m, s)
		}
	}
	record := func(m Mode, s State, out output) {
		r := row(m, s)
		r.Runs = append(r.Runs, out.usage)
		u := out.usage
		fmt.Fprintf(b.log, "bench: %s %s: wall %s, client cpu %s, client max rss %s, daemon cpu %s; load %.2f\n",
			m.Describe(), s, fmtDuration(u.Wall), fmtDuration(u.CPU()), fmtBytes(u.MaxRSS), fmtDuration(u.DaemonCPU), u.Load)
	}
	built := map[Mode]output{} // each mode's first cold run, for the check
	wantCold, wantWarm := slices.Contains(cfg.States, Cold), slices.Contains(cfg.States, Warm)
	if wantCold {
		for run := 1; run <= cfg.Runs; run++ {
			for _, m := range cfg.Modes {
				fmt.Fprintf(b.log, "bench: run %d/%d, %s: fresh buildkitd\n", run, cfg.Runs, m.Describe())
				if err := b.fresh(ctx, m); err != nil {
					return nil, err
				}
				out, err := b.measure(ctx, m)
				if err != nil {
					return nil, err
				}
				record(m, Cold, out)
				if run == 1 {
					built[m] = out
					b.keep(m, out)
					if p, err := out.profile(); err != nil {
						return nil, err
					} else if p != nil {
						res.Profiles[m] = p
					}
				}
				if wantWarm {
					if out, err = b.measure(ctx, m); err != nil {
						return nil, err
					}
					record(m, Warm, out)
				}
				if run == 1 {
					if err := b.measured(ctx, m, built); err != nil {
						return nil, err
					}
				}
			}
		}
	} else {
		for _, m := range cfg.Modes {
			fmt.Fprintf(b.log, "bench: %s: fresh buildkitd, filled by an untimed run\n", m.Describe())
			if err := b.fresh(ctx, m); err != nil {
				return nil, err
			}
			out, err := b.measure(ctx, m)
			if err != nil {
				return nil, err
			}
			built[m] = out
			if err := b.measured(ctx, m, built); err != nil {
				return nil, err
			}
			for range cfg.Runs {
				out, err := b.measure(ctx, m)
				if err != nil {
					return nil, err
				}
				record(m, Warm, out)
			}
		}
	}
	if main, ok := cfg.pairModes(); ok && cfg.Pairs > 0 {
		fmt.Fprintf(b.log, "bench: %d alternating pairs, %s and %s, on the daemon that served the runs above\n", cfg.Pairs, main, Bake)
		for _, m := range []Mode{main, Bake} { // untimed: each has built everything on this daemon
			if _, err := b.measure(ctx, m); err != nil {
				return nil, err
			}
		}
		for range cfg.Pairs {
			for _, m := range []Mode{main, Bake} {
				out, err := b.measure(ctx, m)
				if err != nil {
					return nil, err
				}
				record(m, LongLived, out)
			}
		}
	}
	res.Check = check(cfg.Recipes, built, cfg.Dir)
	res.Wall = time.Since(res.Started)
	res.LoadAfter, _ = loadAverage()
	res.Buildkitd = b.version
	res.finish()
	return res, nil
}

// keep writes a minikit mode's first cold report into the bench's
// directory (report-MODE.json), for a look afterwards with --dir.
func (b *bench) keep(m Mode, out output) {
	if len(out.report) == 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(string(b.home), "report-"+string(m)+".json"), out.report, 0o644); err != nil {
		fmt.Fprintf(b.log, "bench: %v\n", err)
	}
}

// measured gives built[m] the measurements of its images: for a minikit
// mode that does not measure, from an untimed run that does (the same
// images, from the cache), once.
func (b *bench) measured(ctx context.Context, m Mode, built map[Mode]output) error {
	o, ok := built[m]
	if !ok || !m.minikit() || len(o.images()) > 0 {
		return nil
	}
	fmt.Fprintf(b.log, "bench: %s: measuring its images, untimed, for the image check\n", m.Describe())
	v, err := b.verify(ctx, m)
	if err != nil {
		return err
	}
	for name, d := range v.digests {
		if o.digests[name] != d {
			return fmt.Errorf("bench: %s: %s built as %s, then %s from the cache", m.Describe(), name, o.digests[name], d)
		}
	}
	o.report = v.report
	built[m] = o
	return nil
}

// pairModes returns the main mode of the long-lived pairs: Solve, else
// MinikitCache; ok only when bake is measured too.
func (cfg *Config) pairModes() (Mode, bool) {
	if !slices.Contains(cfg.Modes, Bake) {
		return "", false
	}
	for _, m := range []Mode{Solve, MinikitCache} {
		if slices.Contains(cfg.Modes, m) {
			return m, true
		}
	}
	return "", false
}

func (cfg *Config) check() error {
	switch {
	case cfg.Minikit == "":
		return errors.New("bench: no minikit executable")
	case cfg.StandIns == "":
		return errors.New("bench: no stand-ins directory")
	case cfg.Dir == "":
		return errors.New("bench: no state directory")
	case len(cfg.Recipes) == 0:
		return errors.New("bench: no recipes")
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = DefaultModes()
	}
	if len(cfg.States) == 0 {
		cfg.States = []State{Cold, Warm}
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	if slices.Contains(cfg.Modes, Bake) && cfg.Buildx == "" {
		return errors.New("bench: the bake mode needs docker-buildx")
	}
	for _, r := range cfg.Recipes {
		if r.ExpectBuildFailure() {
			return fmt.Errorf("bench: %s is expected to fail: bake would cancel every other target", r.Name)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.StandIns, "index.json")); err != nil {
		return fmt.Errorf("bench: stand-ins: %w", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	cfg.Dir = dir
	return nil
}

type key struct {
	m Mode
	s State
}

// bench is one benchmark in progress.
type bench struct {
	cfg     Config
	home    paths.Home
	log     io.Writer
	addr    string // unix:// address of the bench's buildkitd
	pid     int    // its process
	lease   *daemon.Lease
	version string
	bakeDir string // docker-bake.hcl, dockerfiles/, samples/
	env     []string
	builder string // the buildx builder name
	made    bool   // the buildx builder exists
}

// prepare writes the bake files and picks the registry port.
func (b *bench) prepare(ctx context.Context) error {
	if err := os.MkdirAll(string(b.home), 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if b.cfg.Registry == "" {
		addr, err := registryAddr(b.cfg.StandIns)
		if err != nil {
			return err
		}
		b.cfg.Registry = addr
	}
	if b.cfg.Buildkitd == "" && b.cfg.UserBin != "" {
		if p := filepath.Join(b.cfg.UserBin, "buildkitd"); isExecutable(p) && !foundByDaemon() {
			b.cfg.Buildkitd = p
		}
	}
	warned := map[string]bool{}
	for _, u := range pipIndexes(b.cfg.StandIns) {
		if host := indexHost(u); host != "" && host != b.cfg.Registry && !warned[u] {
			warned[u] = true
			fmt.Fprintf(b.log, "bench: the python stand-ins' pip finds its package index at %s, the bench's registry is %s: "+
				"recipes running pip fail unless a minikit registry serves it there\n", u, b.cfg.Registry)
		}
	}
	// Children talk to the bench's daemon by address, with the bench's
	// directory as their home (samples), never to another daemon.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "BUILDKIT_HOST" && k != "MINIKIT_HOME" && k != "MINIKIT_REGISTRY" &&
			k != "BUILDX_CONFIG" && k != "DOCKER_CONFIG" && k != "BUILDX_BUILDER" {
			b.env = append(b.env, kv)
		}
	}
	b.env = append(b.env, "MINIKIT_HOME="+string(b.home),
		"BUILDX_CONFIG="+filepath.Join(string(b.home), "buildx"),
		"DOCKER_CONFIG="+filepath.Join(string(b.home), "docker"),
		"BUILDX_NO_DEFAULT_LOAD=1")
	if slices.Contains(b.cfg.Modes, Bake) {
		b.bakeDir = filepath.Join(string(b.home), "bake")
		if _, err := samples.WriteTo(filepath.Join(b.bakeDir, bake.DefaultContext)); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if _, err := bake.Write(b.bakeDir, llbdefs.Catalog()); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b.builder = "minikit-bench"
	}
	return nil
}

// fresh restarts the bench's buildkitd on an empty state directory,
// checks that it holds no cache record, and empties the measurement cache
// for mode m (keeping its layer records for SolveLayers).
func (b *bench) fresh(ctx context.Context, m Mode) error {
	b.release()
	if err := daemon.Stop(ctx, b.home); err != nil {
		return fmt.Errorf("bench: stop buildkitd: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(b.home.Buildkitd(), "root")); err != nil {
		return fmt.Errorf("bench: empty the buildkitd state: %w", err)
	}
	// Cold for the measurements too: no image measured before, nor any
	// layer but with SolveLayers.
	if err := b.emptyMeasurements(m == SolveLayers); err != nil {
		return err
	}
	reg, err := connect.StandInRegistry(b.home, b.cfg.StandIns, b.cfg.Registry, b.cfg.Minikit)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	reg.Name = "bench stand-in registry"
	lease, err := daemon.Acquire(ctx, daemon.Config{
		Home:      b.home,
		Buildkitd: b.cfg.Buildkitd,
		Mirror:    b.cfg.Registry,
		Log:       b.log,
		Registry:  reg,
	})
	if err != nil {
		return fmt.Errorf("bench: start buildkitd: %w", err)
	}
	b.lease = lease
	addr := lease.Addr
	b.addr = addr
	st, err := daemon.Status(ctx, b.home)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.pid, b.version = st.PID, st.Version
	if n, err := cacheRecords(ctx, addr); err != nil {
		return err
	} else if n != 0 {
		return fmt.Errorf("bench: a fresh buildkitd holds %d cache records", n)
	}
	if b.builder != "" && !b.made {
		if out, err := b.buildx(ctx, "create", "--name", b.builder, "--driver", "remote", addr); err != nil {
			return fmt.Errorf("bench: docker-buildx create: %w\n%s", err, out)
		}
		b.made = true
	}
	if b.builder != "" {
		// Connects the remote driver: not part of any measurement.
		if out, err := b.buildx(ctx, "inspect", "--bootstrap", "--builder", b.builder); err != nil {
			return fmt.Errorf("bench: docker-buildx inspect: %w\n%s", err, out)
		}
	}
	return nil
}

// emptyMeasurements empties the measurement cache, but for its layer
// records (runner.LayerCacheDir) when keepLayers.
func (b *bench) emptyMeasurements(keepLayers bool) error {
	dir := b.home.Measurements()
	if !keepLayers {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("bench: empty the measurement cache: %w", err)
		}
		return nil
	}
	layers := runner.LayerCacheDir(dir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		entries = nil
	} else if err != nil {
		return fmt.Errorf("bench: empty the measurement cache: %w", err)
	}
	kept := false
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p == layers {
			kept = true
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("bench: empty the measurement cache: %w", err)
		}
	}
	if !kept {
		fmt.Fprintf(b.log, "bench: no layer measured on this machine yet (run the solve mode before): as cold as solve\n")
	}
	return nil
}

// stop ends the bench's daemon and registry and deletes the buildkitd
// state; the rest of the directory is the caller's.
func (b *bench) stop(ctx context.Context) {
	b.release()
	if err := daemon.Stop(ctx, b.home); err != nil {
		fmt.Fprintf(b.log, "bench: stop buildkitd: %v\n", err)
		return
	}
	if err := os.RemoveAll(filepath.Join(b.home.Buildkitd(), "root")); err != nil {
		fmt.Fprintf(b.log, "bench: %v\n", err)
	}
}

// release gives up the bench's lease on its daemon, before it stops it.
func (b *bench) release() {
	if b.lease != nil {
		if err := b.lease.Release(); err != nil {
			fmt.Fprintf(b.log, "bench: %v\n", err)
		}
		b.lease = nil
	}
}

// cacheRecords counts buildkitd's cache records (pulled layers included).
func cacheRecords(ctx context.Context, addr string) (int, error) {
	c, err := client.New(ctx, addr)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer c.Close()
	du, err := c.DiskUsage(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: disk usage: %w", err)
	}
	return len(du), nil
}

// freePort returns a loopback host:port nothing listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: pick a registry port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// foundByDaemon reports whether internal/daemon finds a buildkitd by
// itself: next to the minikit executable or on PATH.
func foundByDaemon() bool {
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		if isExecutable(filepath.Join(filepath.Dir(exe), "buildkitd")) {
			return true
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.IsAbs(dir) && isExecutable(filepath.Join(dir, "buildkitd")) {
			return true
		}
	}
	return false
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func recipeNames(rs []llbdefs.Recipe) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}
