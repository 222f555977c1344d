package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/minikit/minikit/pkg/llbdefs"
)

// DefaultRunTimeout bounds one test run of an image.
const DefaultRunTimeout = 30 * time.Second

// outputTail is how many lines of a run's stdout and stderr are kept.
const outputTail = 20

// RunOutcome is what running a recipe's image did, explained (see
// pkg/diagnose), and whether that is what the recipe expects.
type RunOutcome struct {
	// ExitCode is Docker's exit code: the process's own, 127 when the
	// executable, its loader or /bin/sh cannot be found, 126 when it cannot
	// be executed; -1 when no process ended by itself (nothing to run,
	// timeout, no container).
	ExitCode int `json:"exit_code"`
	// Kind classifies the outcome (diagnose.Kind, or "error" when the
	// container could not be run at all); Reason explains it.
	Kind   diagnose.Kind `json:"kind"`
	Reason string        `json:"reason"`
	// Expected is the recipe's expected outcome (llbdefs.Outcome) and
	// Matches whether ExitCode is that.
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

// KindError is the Kind of a run that could not happen (no container).
const KindError diagnose.Kind = "error"

// TestOptions says how Test runs the images.
type TestOptions struct {
	// Timeout bounds each run (default DefaultRunTimeout): the process is
	// killed and its container released.
	Timeout time.Duration
	// NetworkEnv is added to the environment of the recipes that declare
	// Network (e.g. WHATSMYIP_URL=https://127.0.0.1:PORT/).
	NetworkEnv []string
}

// Test runs each image once it is solved, in the same build session, the
// way a container runtime would (Entrypoint+Cmd, Env, WorkingDir), and
// records the outcome in Result.Run. Recipes that declare Network run on
// the host's network, the others with none: only their builds ask for the
// network.host entitlement, and when the daemon does not grant it, only
// they fail, with an error wrapping ErrHostNetworkRefused.
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

// ErrHostNetworkRefused is wrapped by the error of a recipe whose test run
// needs the host network on a buildkitd that does not grant the
// network.host entitlement.
var ErrHostNetworkRefused = errors.New(`buildkitd does not allow the network.host entitlement: ` +
	`start it with --allow-insecure-entitlement network.host, or add "network.host" to insecure-entitlements in its buildkitd.toml`)

// needsHostNetwork reports whether r's build runs a container on the host
// network (the Test option, a recipe that declares Network).
func (s *solver) needsHostNetwork(r llbdefs.Recipe) bool {
	return s.cfg.test != nil && r.Network
}

// entitlements are the entitlements r's build asks for.
func (s *solver) entitlements(r llbdefs.Recipe) []string {
	if s.needsHostNetwork(r) {
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
// entitlement; any other failure decides nothing (the recipe's own build
// then reports what is wrong).
type entitlementCheck struct {
	mu      sync.Mutex
	known   bool
	refused error // wraps ErrHostNetworkRefused; nil: granted
}

// hostNetworkRefused returns the error r fails with when its build needs
// the host network and the daemon does not grant it, else nil.
func (s *solver) hostNetworkRefused(ctx context.Context, r llbdefs.Recipe) error {
	if !s.needsHostNetwork(r) {
		return nil
	}
	if err := s.hostNetwork.check(ctx, s.probe); err != nil {
		return fmt.Errorf("%s: the test run needs the host network: %w", r.Name, err)
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
		return nil // undecided: asked again by the next recipe
	}
	e.known, e.refused = true, fmt.Errorf("%w (%w)", ErrHostNetworkRefused, with)
	return e.refused
}

// probe solves an empty build on s's daemon, asking for ents.
func (s *solver) probe(ctx context.Context, ents []string) error {
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

// RunImage runs the image (ref, with config img) of recipe r in a gateway
// container and explains what happened. It never fails: a container that
// cannot be created is an outcome of KindError.
func RunImage(ctx context.Context, gw gateway.Client, ref gateway.Reference, r llbdefs.Recipe, img ocispecs.Image, o TestOptions) *RunOutcome {
	if o.Timeout <= 0 {
		o.Timeout = DefaultRunTimeout
	}
	start := time.Now()
	args := append(append([]string(nil), img.Config.Entrypoint...), img.Config.Cmd...)
	env := append([]string(nil), img.Config.Env...)
	netMode, netName := pb.NetMode_NONE, "none"
	if r.Network {
		netMode, netName = pb.NetMode_HOST, "host"
		env = append(env, o.NetworkEnv...)
	}
	cwd := img.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	out := &RunOutcome{Expected: string(r.Expect), Args: args, Network: netName, RuntimeExitCode: -1}
	defer func() {
		out.Duration = time.Since(start)
		out.Matches = out.Kind != KindError && fmt.Sprint(out.ExitCode) == out.Expected
	}()
	run := diagnose.Run{Args: args, Env: env, Cwd: cwd, Limit: o.Timeout}
	files := refFS{ref}
	if len(args) == 0 {
		d := diagnose.Explain(ctx, files, run)
		out.ExitCode, out.Kind, out.Reason = d.ExitCode, d.Kind, d.Reason
		return out
	}

	p := llbdefs.Platform()
	ctr, err := gw.NewContainer(ctx, gateway.NewContainerRequest{
		Mounts:   []gateway.Mount{{Dest: "/", Ref: ref, MountType: pb.MountType_BIND}},
		NetMode:  netMode,
		Hostname: "minikit-test",
		Platform: &pb.Platform{OS: p.OS, Architecture: p.Architecture},
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

	stdout, stderr := &tailWriter{max: outputTail}, &tailWriter{max: outputTail}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	proc, err := ctr.Start(pctx, gateway.StartRequest{Args: args, Env: env, Cwd: cwd, Stdout: stdout, Stderr: stderr})
	var waitErr error
	if err != nil {
		waitErr = err
	} else {
		done := make(chan error, 1)
		go func() { done <- proc.Wait() }()
		timer := time.NewTimer(o.Timeout)
		defer timer.Stop()
		select {
		case waitErr = <-done:
		case <-timer.C:
			run.TimedOut = true
			waitErr = kill(ctx, proc, done, stop)
		case <-ctx.Done():
			waitErr = kill(ctx, proc, done, stop)
		}
	}
	run.Stderr = stderr.String()
	out.StdoutTail, out.StderrTail = stdout.lines(), stderr.lines()
	var exit *gatewaypb.ExitError
	switch {
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
	d := diagnose.Explain(ctx, files, run)
	if d.Kind == diagnose.Exited && run.Code == -1 {
		d.Reason = "could not run: " + firstLineOf(run.Message)
		d.Kind = KindError
	}
	out.ExitCode, out.Kind, out.Reason = d.ExitCode, d.Kind, d.Reason
	return out
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

// refFS reads a solved image through the gateway, for diagnose.
type refFS struct{ ref gateway.Reference }

func (f refFS) Lstat(ctx context.Context, name string) (diagnose.Stat, error) {
	st, err := f.ref.StatFile(ctx, gateway.StatRequest{Path: name})
	if err != nil {
		return diagnose.Stat{}, fmt.Errorf("%s: %w (%v)", name, fs.ErrNotExist, err)
	}
	return diagnose.Stat{Mode: fs.FileMode(st.Mode), Size: st.Size, Linkname: st.Linkname}, nil
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
