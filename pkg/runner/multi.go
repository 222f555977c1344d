package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minikit/minikit/pkg/schedule"
)

// A Builder is one buildkitd SolveOn spreads targets over.
type Builder struct {
	// Name identifies the builder in results (Result.Builder) and
	// messages: its address, say. Names must differ.
	Name   string
	Client *client.Client
}

// A builder a target lost its connection to is asked for its workers up
// to probeAttempts times, probeInterval apart, each call bounded by
// probeTimeout, before it is declared lost: gRPC fails calls at once while
// it reconnects, so one failed call does not make a builder lost.
const (
	probeTimeout  = 10 * time.Second
	probeAttempts = 3
	probeInterval = time.Second
)

// SolveOn builds the targets on several builders, as Solve does on one,
// and returns one Result per target (per target and platform, for a
// target built for several), in the order given, each naming its
// builder (Result.Builder).
//
// Targets that share a build step that runs something (the same RUN
// vertex, so the same digest) go to the same builder, which solves it
// once; those groups are spread so that every builder gets about as many
// distinct build steps (ScheduleItems). Each builder solves up to
// Parallel targets at once.
//
// When a target fails with a connection error (gRPC status Unavailable),
// or one of the builder's sessions ends under the run, the builder is
// asked for its workers; if it does not answer, it is declared lost: its
// builds still running are canceled, and every target it had not
// finished is queued on the builders left (keeping groups together), with
// the lost builder added to Result.RetriedFrom. A connection error on a
// builder that still answers stays the target's outcome. With no builder
// left the targets keep their failure, wrapping ErrBuilderLost.
//
// The error is for setup problems only, as with Solve.
func SolveOn(ctx context.Context, builders []Builder, targets []Target, opts ...Option) ([]Result, error) {
	if len(builders) == 0 {
		return nil, errors.New("solve: no builder")
	}
	seen := map[string]bool{}
	for i, b := range builders {
		if b.Client == nil {
			return nil, fmt.Errorf("solve: builder %d (%q) has no BuildKit client", i, b.Name)
		}
		if b.Name == "" {
			return nil, fmt.Errorf("solve: builder %d has no name", i)
		}
		if seen[b.Name] {
			return nil, fmt.Errorf("solve: builder %s given twice", b.Name)
		}
		seen[b.Name] = true
	}
	return solveOn(ctx, builders, targets, opts)
}

// ErrBuilderLost is wrapped by the error of every target that ended
// because the connection to its buildkitd was lost: the daemon stopped
// answering and no other builder was left to build the target on.
var ErrBuilderLost = errors.New("lost the connection to buildkitd")

// solveOn is Solve and SolveOn, the builders checked; a builder without a
// name is Solve's (its results' Builder stays empty).
func solveOn(ctx context.Context, builders []Builder, targets []Target, opts []Option) ([]Result, error) {
	s, err := newSolver(targets, opts)
	if err != nil {
		return nil, err
	}
	defer s.disp.close()
	var items []schedule.Item
	if len(builders) > 1 {
		if items, err = scheduleItems(ctx, targets, s.cfg); err != nil {
			return nil, err
		}
	} else {
		items = make([]schedule.Item, len(targets)) // one builder: nothing to spread
		for i, t := range targets {
			items[i].Name = t.Name
		}
	}
	solvers := make([]*solver, len(builders))
	names := make([]string, len(builders))
	for i, b := range builders {
		solvers[i] = s.forBuilder(b.Client)
		// Once every build on the builder has ended (session.go).
		defer solvers[i].sessions.close()
		names[i] = b.Name
	}
	dropped := make([]<-chan struct{}, len(builders))
	for i, sv := range solvers {
		dropped[i] = sv.sessions.dropped
	}
	m := &multi{
		targets:       targets,
		items:         items,
		builders:      names,
		parallel:      s.cfg.parallel,
		dropped:       dropped,
		probeInterval: probeInterval,
		solve: func(ctx context.Context, b int, t Target) Result {
			return solvers[b].solve(ctx, t)
		},
		probe: func(ctx context.Context, b int) error {
			_, err := builders[b].Client.ListWorkers(ctx)
			return err
		},
	}
	results, err := m.run(ctx)
	if err != nil {
		return nil, err
	}
	var out []Result
	for i, res := range results {
		out = append(out, splitPlatforms(res, s.cfg.targetPlatforms(targets[i]))...) // platforms.go
	}
	return out, nil
}

// ScheduleItems describes the targets for package schedule as SolveOn
// does: a target's shared keys are the digests of its graph's exec (RUN)
// vertices, where the work is (each covers the whole graph below it, so
// two targets share one only when they share that step and everything it
// runs on), its work keys the digests of all its vertices. The graphs are
// made as opts would have them built (their Platforms and SourceDateEpoch
// options, every platform's graph; without Platforms, linux on this
// machine's architecture)
// but without a resolver, which changes no vertex's identity across
// targets. A target whose graph cannot be made has no keys (its build
// reports why). The error is the options', or ctx's when it ends.
func ScheduleItems(ctx context.Context, targets []Target, opts ...Option) ([]schedule.Item, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return scheduleItems(ctx, targets, cfg)
}

// fallbackPlatform is linux on this machine's architecture.
func fallbackPlatform() ocispecs.Platform {
	return ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

func scheduleItems(ctx context.Context, targets []Target, cfg *config) ([]schedule.Item, error) {
	items := make([]schedule.Item, len(targets))
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("schedule: %w", err)
		}
		items[i] = schedule.Item{Name: t.Name}
		if t.LLB == nil {
			continue
		}
		ps := cfg.targetPlatforms(t)
		if len(ps) == 0 {
			ps = []ocispecs.Platform{fallbackPlatform()}
		}
		for _, p := range ps { // one build makes every platform's image
			in := BuildInput{Platform: p}
			if cfg.epoch != nil {
				e := *cfg.epoch
				in.Epoch = &e
			}
			st, err := t.graph(ctx, in)
			if err != nil {
				continue
			}
			d, err := st.Marshal(ctx, llb.Platform(p))
			if err != nil {
				continue
			}
			for _, dt := range d.Def {
				key := digest.FromBytes(dt).String()
				if slices.Contains(items[i].Work, key) {
					continue
				}
				items[i].Work = append(items[i].Work, key)
				var op pb.Op
				if op.Unmarshal(dt) == nil && op.GetExec() != nil {
					items[i].Shared = append(items[i].Shared, key)
				}
			}
		}
	}
	return items, nil
}

// connLost reports whether err says the connection to buildkitd failed:
// a gRPC status Unavailable anywhere in its chain (a build's error joins
// its build function's and BuildKit's client's, buildError).
func connLost(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case interface{ GRPCStatus() *status.Status }:
		if e.GRPCStatus().Code() == codes.Unavailable {
			return true
		}
	case interface{ Code() codes.Code }: // BuildKit's grpcerrors.WrapCode
		if e.Code() == codes.Unavailable {
			return true
		}
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return connLost(e.Unwrap())
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(e.Unwrap(), connLost)
	}
	return false
}

// errNotStarted is the outcome of a target that never started.
var errNotStarted = errors.New("interrupted before it started")

// A multi runs targets on several builders. solve and probe are the only
// ways it reaches a builder (tests give fakes).
type multi struct {
	targets  []Target
	items    []schedule.Item
	builders []string
	parallel int
	// solve builds one target on builder b; it never fails (see
	// solver.solve).
	solve func(ctx context.Context, b int, t Target) Result
	// probe returns an error when builder b does not answer.
	probe         func(ctx context.Context, b int) error
	probeInterval time.Duration
	// dropped[b], if not nil, is signalled when one of builder b's
	// sessions ends under a build: the builder is probed then. A build
	// does not always fail when its daemon dies (BuildKit's client does
	// not end a build function waiting for a container's process), so
	// the end of the sessions is what tells.
	dropped []<-chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond
	state    []*builderState
	results  []Result
	moved    [][]string // per target: the builders it was taken from
	pending  int        // targets without their final result
	stopping bool       // the caller's context is done
}

// builderState is one builder's queue; guarded by multi.mu but for probeMu.
type builderState struct {
	ctx     context.Context // canceled when the builder is lost
	cancel  context.CancelFunc
	queue   []int        // targets waiting, in order
	running map[int]bool // targets being solved
	lost    error        // why the builder was declared lost; nil while it answers
	retryTo map[int]int  // targets running when it was lost -> builder to retry on (-1: none)
	probeMu sync.Mutex   // one probe at a time
}

// run solves every target and returns the results in order.
func (m *multi) run(ctx context.Context) ([]Result, error) {
	parts, err := schedule.Partition(m.items, len(m.builders))
	if err != nil {
		return nil, fmt.Errorf("solve: %w", err)
	}
	m.cond = sync.NewCond(&m.mu)
	m.results = make([]Result, len(m.targets))
	m.moved = make([][]string, len(m.targets))
	for i, r := range m.targets {
		m.results[i] = Result{Name: r.Name, Status: StatusCanceled, Err: errNotStarted, Error: errNotStarted.Error()}
	}
	m.pending = len(m.targets)
	m.state = make([]*builderState, len(m.builders))
	for b := range m.builders {
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		m.state[b] = &builderState{ctx: bctx, cancel: cancel, queue: parts[b], running: map[int]bool{}, retryTo: map[int]int{}}
	}
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.stopping = true
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer stop()

	wctx, stopWatching := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	for b, ch := range m.dropped {
		if ch != nil {
			watchers.Go(func() { m.watch(wctx, b, ch) })
		}
	}
	var wg sync.WaitGroup
	for b := range m.builders {
		for range m.parallel {
			wg.Go(func() { m.work(ctx, b) })
		}
	}
	wg.Wait()
	stopWatching()
	watchers.Wait()
	return m.results, nil
}

// watch probes builder b each time one of its sessions drops, until ctx
// is done (the run is over).
func (m *multi) watch(ctx context.Context, b int, dropped <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-dropped:
			m.check(ctx, b)
		}
	}
}

// work solves targets from builder b's queue until there is nothing left
// to do or the builder is lost.
func (m *multi) work(ctx context.Context, b int) {
	st := m.state[b]
	for {
		m.mu.Lock()
		for len(st.queue) == 0 && st.lost == nil && m.pending > 0 && !m.stopping {
			m.cond.Wait()
		}
		if st.lost != nil || m.pending == 0 || m.stopping {
			m.mu.Unlock()
			return
		}
		i := st.queue[0]
		st.queue = st.queue[1:]
		st.running[i] = true
		m.mu.Unlock()

		res := m.solve(st.ctx, b, m.targets[i])
		m.finish(ctx, b, i, res)
	}
}

// finish records target i's outcome on builder b, or queues it elsewhere
// when b is lost.
func (m *multi) finish(ctx context.Context, b, i int, res Result) {
	st := m.state[b]
	res.Builder = m.builders[b]
	failed := res.Status != StatusOK && res.Status != StatusUnexpectedSuccess
	if failed && ctx.Err() == nil {
		lost := m.isLost(b)
		if !lost && connLost(res.Err) {
			lost = m.check(ctx, b)
		}
		if lost {
			m.mu.Lock()
			delete(st.running, i)
			to, ok := st.retryTo[i]
			if !ok || (to >= 0 && m.state[to].lost != nil) {
				// b was lost before this target's retry was planned,
				// or the builder planned has been lost since.
				to = m.placeLocked([]int{i})[i]
			}
			if to >= 0 {
				m.moved[i] = append(m.moved[i], m.builders[b])
				m.state[to].queue = append(m.state[to].queue, i)
				m.cond.Broadcast()
				m.mu.Unlock()
				return
			}
			m.mu.Unlock()
			res.Err = fmt.Errorf("%w (%w; no builder left to retry on)", res.Err, m.lostErr(b))
			res.Error = res.Err.Error()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(st.running, i)
	res.RetriedFrom = m.moved[i]
	m.results[i] = res
	m.pending--
	if m.pending == 0 {
		m.cond.Broadcast()
	}
}

// label names builder b in messages.
func (m *multi) label(b int) string {
	if m.builders[b] == "" {
		return "buildkitd" // Solve's only builder
	}
	return "builder " + m.builders[b]
}

func (m *multi) isLost(b int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state[b].lost != nil
}

func (m *multi) lostErr(b int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state[b].lost
}

// check probes builder b and, if it does not answer, declares it lost. It
// reports whether b is lost.
func (m *multi) check(ctx context.Context, b int) bool {
	st := m.state[b]
	st.probeMu.Lock()
	defer st.probeMu.Unlock()
	if m.isLost(b) {
		return true // another target's probe decided
	}
	var err error
	for attempt := range probeAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(m.probeInterval):
			}
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err = m.probe(pctx, b)
		cancel()
		if err == nil || ctx.Err() != nil {
			return false
		}
	}
	m.lose(b, fmt.Errorf("%w: %s does not answer: %w", ErrBuilderLost, m.label(b), err))
	return true
}

// lose declares builder b lost: its running builds are canceled, its
// queued targets go to the builders left and its running ones are given
// a builder to go to once they return.
func (m *multi) lose(b int, why error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[b]
	st.lost = why
	st.cancel()
	unfinished := append([]int(nil), st.queue...)
	for i := range st.running {
		unfinished = append(unfinished, i)
	}
	slices.Sort(unfinished)
	dest := m.placeLocked(unfinished)
	for _, i := range st.queue {
		to := dest[i]
		if to < 0 {
			err := fmt.Errorf("not started: %w; no builder left to retry on", why)
			m.results[i] = Result{
				Name: m.targets[i].Name, Status: StatusCanceled, Builder: m.builders[b], RetriedFrom: m.moved[i],
				Err: err, Error: err.Error(),
			}
			m.pending--
			continue
		}
		m.moved[i] = append(m.moved[i], m.builders[b])
		m.state[to].queue = append(m.state[to].queue, i)
	}
	st.queue = nil
	for i := range st.running {
		st.retryTo[i] = dest[i]
	}
	m.cond.Broadcast()
}

// placeLocked chooses a live builder for each target in idx, groups kept
// together, the builders' remaining work counted: target -> builder, -1
// when every builder is lost. m.mu is held.
func (m *multi) placeLocked(idx []int) map[int]int {
	dest := map[int]int{}
	var live []int
	var loads []int
	for b, st := range m.state {
		if st.lost != nil {
			continue
		}
		live = append(live, b)
		left := append([]int(nil), st.queue...)
		for i := range st.running {
			left = append(left, i)
		}
		loads = append(loads, schedule.Weight(m.items, left))
	}
	if len(live) == 0 {
		for _, i := range idx {
			dest[i] = -1
		}
		return dest
	}
	sub := make([]schedule.Item, len(idx))
	for k, i := range idx {
		sub[k] = m.items[i]
	}
	groups := schedule.Groups(sub)
	byBuilder, _ := schedule.Assign(groups, loads) // no error: live is not empty
	for lb, gs := range byBuilder {
		for _, g := range gs {
			for _, k := range groups[g].Items {
				dest[idx[k]] = live[lb]
			}
		}
	}
	return dest
}
