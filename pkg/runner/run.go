package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/entitlements"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/diagnose"
)

// DefaultRunTimeout bounds one test run of an image.
const DefaultRunTimeout = 30 * time.Second

// DefaultProbeTimeout is how long a Probe waits for an answer unless it
// says otherwise.
const DefaultProbeTimeout = 10 * time.Second

// outputTail is how many lines of a run's stdout and stderr are kept.
const outputTail = 20

// outputLimit is how much of a run's stdout is kept for
// Check.ExpectOutput.
const outputLimit = 1 << 20

// RunOutcome is what running a target's image did, explained (see
// pkg/diagnose), and whether that is what its Check expects.
type RunOutcome struct {
	// ExitCode is Docker's exit code: the process's own, 127 when the
	// executable, its loader or /bin/sh cannot be found, 126 when it cannot
	// be executed; 0 for a probed server that answered; -1 when no process
	// ended by itself (nothing to run, timeout, no container) or a probed
	// server never answered.
	ExitCode int `json:"exit_code"`
	// Kind classifies the outcome (diagnose.Kind, or one of KindError,
	// KindNoAnswer, KindOutputMismatch); Reason explains it.
	Kind   diagnose.Kind `json:"kind"`
	Reason string        `json:"reason"`
	// Expected is what the Check expects: the exit code ("0", "127"),
	// with the output it must match, or for a probe "answers :PORT/PATH";
	// Matches whether the run did that.
	Expected string `json:"expected"`
	Matches  bool   `json:"matches"`
	// RuntimeExitCode is the code BuildKit reported, before the mapping.
	RuntimeExitCode int `json:"runtime_exit_code"`

	Args    []string `json:"args,omitempty"`
	Network string   `json:"network"` // "none" or "host"
	// StdoutTail and StderrTail are the last lines the process printed.
	StdoutTail []string      `json:"stdout_tail,omitempty"`
	StderrTail []string      `json:"stderr_tail,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	TimedOut   bool          `json:"timed_out"`
}

// Kinds of outcome of the runner's own, beside diagnose's.
const (
	// KindError is the Kind of a run that could not happen (no container).
	KindError diagnose.Kind = "error"
	// KindNoAnswer: a probed server did not answer with a 2xx in time.
	KindNoAnswer diagnose.Kind = "no-answer"
	// KindOutputMismatch: the process ended as expected, but its output
	// does not match Check.ExpectOutput.
	KindOutputMismatch diagnose.Kind = "output-mismatch"
)

// TestOptions says how Test runs the images.
type TestOptions struct {
	// Timeout bounds each run (default DefaultRunTimeout): the process is
	// killed and its container released. A probe has its own timeout.
	Timeout time.Duration
	// NetworkEnv is added to the environment of the runs on the host
	// network (a Check with Network or a Probe), e.g.
	// WHATSMYIP_URL=https://127.0.0.1:PORT/.
	NetworkEnv []string
}

// Test runs each image that has a Check once it is solved, in the same
// build session, the way a container runtime would (Entrypoint+Cmd, Env,
// WorkingDir, User), and records the outcome in Result.Run. Targets whose
// Check needs the network (Network, Probe) run on the host's network, the
// others with none: only their builds ask for the network.host
// entitlement, and when the daemon does not grant it, only they fail,
// with an error wrapping ErrHostNetworkRefused.
func Test(o TestOptions) Option {
	return func(c *config) error {
		if o.Timeout < 0 {
			return fmt.Errorf("run timeout: %s is negative", o.Timeout)
		}
		if o.Timeout == 0 {
			o.Timeout = DefaultRunTimeout
		}
		for _, kv := range o.NetworkEnv {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("network environment %q: want KEY=VALUE", kv)
			}
		}
		c.test = &o
		return nil
	}
}

// ErrHostNetworkRefused is wrapped by the error of a target whose test run
// needs the host network on a buildkitd that does not grant the
// network.host entitlement.
var ErrHostNetworkRefused = errors.New(`buildkitd does not allow the network.host entitlement: ` +
	`start it with --allow-insecure-entitlement network.host, or add "network.host" to insecure-entitlements in its buildkitd.toml`)

// needsHostNetwork reports whether t's build runs a container on the host
// network (the Test option, a Check with Network or a Probe).
func (s *solver) needsHostNetwork(t Target) bool {
	return s.cfg.test != nil && t.Check.hostNetwork()
}

// entitlements are the entitlements t's build asks for.
func (s *solver) entitlements(t Target) []string {
	if s.needsHostNetwork(t) {
		return []string{string(entitlements.EntitlementNetworkHost)}
	}
	return nil
}

// An entitlementCheck learns once per run whether a daemon grants the
// network.host entitlement.
//
// buildkitd refuses an entitlement it does not grant with an error of no
// type of its own (gRPC code Unknown), told apart from other failures by
// its text only. So the check asks twice instead: an empty build asking
// for the entitlement, and when that fails, the same build without it.
// Only a daemon that solves the second and not the first refuses the
// entitlement; any other failure decides nothing (the target's own build
// then reports what is wrong).
type entitlementCheck struct {
	mu      sync.Mutex
	known   bool
	refused error // wraps ErrHostNetworkRefused; nil: granted
}

// hostNetworkRefused returns the error t fails with when its build needs
// the host network and the daemon does not grant it, else nil.
func (s *solver) hostNetworkRefused(ctx context.Context, t Target) error {
	if !s.needsHostNetwork(t) {
		return nil
	}
	if err := s.hostNetwork.check(ctx, s.probeEntitlement); err != nil {
		return fmt.Errorf("%s: the test run needs the host network: %w", t.Name, err)
	}
	return nil
}

// check returns the refusal, probing the daemon if it is not known yet:
// probe solves an empty build asking for the entitlements given.
func (e *entitlementCheck) check(ctx context.Context, probe func(context.Context, []string) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known {
		return e.refused
	}
	with := probe(ctx, []string{string(entitlements.EntitlementNetworkHost)})
	if with == nil {
		e.known = true
		return nil
	}
	if ctx.Err() != nil || probe(ctx, nil) != nil {
		return nil // undecided: asked again by the next target
	}
	e.known, e.refused = true, fmt.Errorf("%w (%w)", ErrHostNetworkRefused, with)
	return e.refused
}

// probeEntitlement solves an empty build on s's daemon, asking for ents.
func (s *solver) probeEntitlement(ctx context.Context, ents []string) error {
	def, err := llb.Scratch().Marshal(ctx)
	if err != nil {
		return err
	}
	sess, err := s.sessions.forBuild(client.SolveOpt{})
	if err != nil {
		return err
	}
	_, err = s.c.Solve(ctx, def, client.SolveOpt{
		SharedSession: sess, SessionPreInitialized: true,
		AllowedEntitlements: ents, Internal: true,
	}, nil)
	return err
}

// runCheck runs the image with its check, the probes of one port taking
// turns.
func (s *solver) runCheck(ctx context.Context, gw gateway.Client, ref gateway.Reference, img ocispecs.Image, p ocispecs.Platform, c Check) *RunOutcome {
	if c.Probe != nil {
		unlock, err := s.ports.lock(ctx, c.Probe.Port)
		if err != nil {
			return &RunOutcome{ExitCode: -1, Kind: KindError, Reason: "interrupted: " + err.Error(), Expected: c.expected(),
				RuntimeExitCode: -1, Network: "host"}
		}
		defer unlock()
	}
	return RunImage(ctx, gw, ref, img, p, c, *s.cfg.test)
}

// RunImage runs an image (ref, with config img, for platform p) in a
// gateway container as check says and explains what happened. It never
// fails: a container that cannot be created is an outcome of KindError.
// When ctx is canceled the process is killed and the container
// released. Probes on one port must not run at once (Solve has them take
// turns).
func RunImage(ctx context.Context, gw gateway.Client, ref gateway.Reference, img ocispecs.Image, p ocispecs.Platform, check Check, o TestOptions) *RunOutcome {
	if o.Timeout <= 0 {
		o.Timeout = DefaultRunTimeout
	}
	start := time.Now()
	cmd := img.Config.Cmd
	if check.Args != nil {
		cmd = check.Args
	}
	args := append(slices.Clone(img.Config.Entrypoint), cmd...)
	env := slices.Clone(img.Config.Env)
	netMode, netName := pb.NetMode_NONE, "none"
	if check.hostNetwork() {
		netMode, netName = pb.NetMode_HOST, "host"
		env = addEnv(env, o.NetworkEnv)
	}
	env = addEnv(env, check.Env)
	cwd := img.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	limit := o.Timeout
	if check.Probe != nil {
		limit = check.Probe.Timeout
		if limit <= 0 {
			limit = DefaultProbeTimeout
		}
	}
	out := &RunOutcome{Expected: check.expected(), Args: args, Network: netName, RuntimeExitCode: -1}
	defer func() {
		out.Duration = time.Since(start)
	}()
	run := diagnose.Run{Args: args, Env: env, Cwd: cwd, Limit: limit}
	files := refFS{ref}
	if len(args) == 0 {
		d := diagnose.Explain(ctx, files, run)
		out.ExitCode, out.Kind, out.Reason = d.ExitCode, d.Kind, d.Reason
		return out
	}

	ctr, err := gw.NewContainer(ctx, gateway.NewContainerRequest{
		Mounts:   []gateway.Mount{{Dest: "/", Ref: ref, MountType: pb.MountType_BIND}},
		NetMode:  netMode,
		Hostname: "runner-test",
		Platform: &pb.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
	})
	if err != nil {
		out.ExitCode, out.Kind, out.Reason = -1, KindError, "could not create a container: "+firstLineOf(err.Error())
		return out
	}
	// Release even when ctx is canceled (Ctrl-C): that is when it matters.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = ctr.Release(rctx)
	}()

	stdout := &outputWriter{tail: tailWriter{max: outputTail}, limit: outputLimit}
	stderr := &tailWriter{max: outputTail}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	proc, err := ctr.Start(pctx, gateway.StartRequest{Args: args, Env: env, Cwd: cwd, User: img.Config.User, Stdout: stdout, Stderr: stderr})
	var waitErr error
	answered := false
	if err != nil {
		waitErr = err
	} else {
		done := make(chan error, 1)
		go func() { done <- proc.Wait() }()
		timer := time.NewTimer(limit)
		defer timer.Stop()
		var answer <-chan error
		if check.Probe != nil {
			ch := make(chan error, 1)
			go func() { ch <- poll(pctx, check.Probe) }()
			answer = ch
		}
		select {
		case waitErr = <-done:
		case perr := <-answer: // nil: it answered
			answered = perr == nil
			waitErr = kill(ctx, proc, done, stop)
		case <-timer.C:
			run.TimedOut = true
			waitErr = kill(ctx, proc, done, stop)
		case <-ctx.Done():
			waitErr = kill(ctx, proc, done, stop)
		}
	}
	run.Stderr = stderr.String()
	out.StdoutTail, out.StderrTail = stdout.tail.lines(), stderr.lines()
	var exit *gatewaypb.ExitError
	switch {
	case answered:
		run.Code = 0
	case waitErr == nil:
		run.Code = 0
	case errors.As(waitErr, &exit):
		run.Code = int(exit.ExitCode)
		if exit.Err != nil {
			run.Message = exit.Err.Error()
		}
	case run.TimedOut:
		run.Code = -1
	default:
		if ctx.Err() != nil {
			out.ExitCode, out.Kind, out.Reason = -1, KindError, "interrupted: "+context.Cause(ctx).Error()
			return out
		}
		// No exit status: the process could not be started. runc's
		// message says why; it is classified below like any other.
		run.Code = -1
		run.Message = waitErr.Error()
	}
	out.RuntimeExitCode = run.Code
	out.TimedOut = run.TimedOut
	if check.Probe != nil {
		probeOutcome(ctx, out, files, run, check.Probe, limit, answered)
		return out
	}
	d := diagnose.Explain(ctx, files, run)
	if d.Kind == diagnose.Exited && run.Code == -1 {
		d.Reason = "could not run: " + firstLineOf(run.Message)
		d.Kind = KindError
	}
	out.ExitCode, out.Kind, out.Reason = d.ExitCode, d.Kind, d.Reason
	out.Matches = out.Kind != KindError && out.ExitCode == check.ExpectExit
	if out.Matches && check.ExpectOutput != nil && !check.ExpectOutput.Match(stdout.bytes()) {
		out.Matches = false
		out.Kind = KindOutputMismatch
		out.Reason = fmt.Sprintf("exited with code %d, but its output does not match %q", out.ExitCode, check.ExpectOutput.String())
		if stdout.truncated() {
			out.Reason += fmt.Sprintf(" (its first %d bytes were matched)", outputLimit)
		}
	}
	return out
}

// probeOutcome fills in the outcome of a probed server: it answered, or
// it ended first (explained as any run), or it was still silent at the
// time limit.
func probeOutcome(ctx context.Context, out *RunOutcome, files refFS, run diagnose.Run, pr *Probe, limit time.Duration, answered bool) {
	switch {
	case answered:
		out.ExitCode, out.Kind, out.Reason, out.Matches = 0, diagnose.OK, "answers "+pr.where(), true
		out.TimedOut = false
	case run.TimedOut || run.Code == 0:
		out.ExitCode, out.Kind = -1, KindNoAnswer
		out.Reason = fmt.Sprintf("no answer on %s after %s", pr.where(), limit)
		if !run.TimedOut {
			out.Reason = fmt.Sprintf("exited with code 0 before answering on %s", pr.where())
		}
	default:
		d := diagnose.Explain(ctx, files, run)
		if d.Kind == diagnose.Exited && run.Code == -1 {
			d.Reason = "could not run: " + firstLineOf(run.Message)
			d.Kind = KindError
		}
		out.ExitCode, out.Kind, out.Reason = d.ExitCode, d.Kind, d.Reason
	}
}

// poll asks http://127.0.0.1:PORT/PATH until it answers with a 2xx (nil)
// or ctx ends (its error).
func poll(ctx context.Context, pr *Probe) error {
	url := "http://127.0.0.1" + pr.where()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probe %s: %w", url, err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// addEnv sets every KEY=VALUE of extra in env (replacing the same key).
func addEnv(env, extra []string) []string {
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env = setEnv(env, k, v)
	}
	return env
}

// portLocks has the runs that probe one port take turns: each probe's
// server listens on the host's network.
type portLocks struct {
	mu    sync.Mutex
	ports map[int]chan struct{}
}

func newPortLocks() *portLocks { return &portLocks{ports: map[int]chan struct{}{}} }

// lock waits for port to be free, or ctx; unlock frees it.
func (l *portLocks) lock(ctx context.Context, port int) (unlock func(), err error) {
	l.mu.Lock()
	ch, ok := l.ports[port]
	if !ok {
		ch = make(chan struct{}, 1)
		l.ports[port] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// kill stops a process that overran its time or whose run was
// interrupted: SIGKILL, then a few seconds for its exit to arrive; the
// caller releases the container, which ends anything left daemon-side.
func kill(ctx context.Context, proc gateway.ContainerProcess, done <-chan error, stop context.CancelFunc) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = proc.Signal(sctx, syscall.SIGKILL)
	select {
	case err := <-done:
		return err
	case <-sctx.Done():
		stop() // stop reading its output: Wait returns
		return <-done
	}
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// tailWriter keeps the last lines written to it.
type tailWriter struct {
	mu   sync.Mutex
	max  int
	done []string
	part []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := append(w.part, p...)
	for {
		i := strings.IndexByte(string(data), '\n')
		if i < 0 {
			break
		}
		w.done = append(w.done, strings.TrimRight(string(data[:i]), "\r"))
		data = data[i+1:]
	}
	if len(data) > 4096 { // a line without end: keep its tail
		data = data[len(data)-4096:]
	}
	w.part = append([]byte(nil), data...)
	if n := len(w.done); n > w.max {
		w.done = append([]string(nil), w.done[n-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) Close() error { return nil }

func (w *tailWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]string(nil), w.done...)
	if len(w.part) > 0 {
		out = append(out, string(w.part))
	}
	if len(out) > w.max {
		out = out[len(out)-w.max:]
	}
	return out
}

func (w *tailWriter) String() string { return strings.Join(w.lines(), "\n") }

// outputWriter keeps a process's last lines and the first limit bytes of
// what it wrote.
type outputWriter struct {
	tail  tailWriter
	limit int

	mu   sync.Mutex
	buf  []byte
	over bool
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n := min(max(w.limit-len(w.buf), 0), len(p))
	w.buf = append(w.buf, p[:n]...)
	w.over = w.over || n < len(p)
	w.mu.Unlock()
	return w.tail.Write(p)
}

func (w *outputWriter) Close() error { return nil }

// bytes is the output kept.
func (w *outputWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.buf)
}

// truncated reports whether the process wrote more than was kept.
func (w *outputWriter) truncated() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.over
}

// refFS reads a solved image through the gateway, for diagnose.
type refFS struct{ ref gateway.Reference }

// Lstat describes name without following it: BuildKit's StatFile
// follows a final symlink, so the entry is read from name's directory
// listing instead (the root, which has no parent, is stat'ed).
func (f refFS) Lstat(ctx context.Context, name string) (diagnose.Stat, error) {
	clean := path.Clean("/" + name)
	if clean == "/" {
		st, err := f.ref.StatFile(ctx, gateway.StatRequest{Path: "/"})
		if err != nil {
			return diagnose.Stat{}, fmt.Errorf("%s: %w (%w)", name, fs.ErrNotExist, err)
		}
		return diagnose.Stat{Mode: fs.FileMode(st.Mode), Size: st.Size, Linkname: st.Linkname}, nil
	}
	dir, base := path.Split(clean)
	req := gateway.ReadDirRequest{Path: dir, IncludePattern: base}
	if strings.ContainsAny(base, `*?[\`) {
		req.IncludePattern = "" // a name, not a pattern: list it all
	}
	ents, err := f.ref.ReadDir(ctx, req)
	if err != nil {
		return diagnose.Stat{}, fmt.Errorf("%s: %w (%w)", name, fs.ErrNotExist, err)
	}
	for _, e := range ents {
		if path.Base(e.Path) == base {
			return diagnose.Stat{Mode: fs.FileMode(e.Mode), Size: e.Size, Linkname: e.Linkname}, nil
		}
	}
	return diagnose.Stat{}, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
}

func (f refFS) ReadFile(ctx context.Context, name string, off, length int64) ([]byte, error) {
	req := gateway.ReadRequest{Filename: name}
	if off > 0 || length > 0 {
		if length <= 0 {
			length = 1 << 30
		}
		req.Range = &gateway.FileRange{Offset: int(off), Length: int(length)}
	}
	return f.ref.ReadFile(ctx, req)
}

func (f refFS) ReadDir(ctx context.Context, dir string) ([]string, error) {
	ents, err := f.ref.ReadDir(ctx, gateway.ReadDirRequest{Path: dir})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Path)
	}
	return out, nil
}
