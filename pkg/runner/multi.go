package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/schedule"
)

// A Builder is one buildkitd SolveOn spreads recipes over.
type Builder struct {
	// Name identifies the builder in results (Result.Builder) and
	// messages: its address, say. Names must differ.
	Name   string
	Client *client.Client
}

// A builder a recipe lost its connection to is asked for its workers up
// to probeAttempts times, probeInterval apart, each call bounded by
// probeTimeout, before it is declared lost: gRPC fails calls at once while
// it reconnects, so one failed call does not make a builder lost.
const (
	probeTimeout  = 10 * time.Second
	probeAttempts = 3
	probeInterval = time.Second
)

// SolveOn builds the recipes on several builders, as Solve does on one,
// and returns one Result per recipe, in the order given, each naming its
// builder (Result.Builder).
//
// Recipes that share a build stage (the same LLB, so the same digest) go
// to the same builder, which solves the stage once; those groups are
// spread so that every builder gets about as many distinct build steps.
// Each builder solves up to Parallel recipes at once.
//
// When a recipe fails with a connection error (gRPC status Unavailable),
// or one of the builder's sessions ends under the run, the builder is
// asked for its workers; if it does not answer, it is declared lost: its builds still running are canceled, and every recipe
// it had not finished is queued on the builders left (keeping groups
// together), with the lost builder added to Result.RetriedFrom. A
// connection error on a builder that still answers stays the recipe's
// outcome. With no builder left the recipes keep their failure, wrapping
// ErrBuilderLost.
//
// The error is for setup problems only, as with Solve.
func SolveOn(ctx context.Context, builders []Builder, recipes []llbdefs.Recipe, opts ...Option) ([]Result, error) {
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
	return solveOn(ctx, builders, recipes, opts)
}

// ErrBuilderLost is wrapped by the error of every recipe that ended
// because the connection to its buildkitd was lost: the daemon stopped
// answering and no other builder was left to build the recipe on.
var ErrBuilderLost = errors.New("lost the connection to buildkitd")

// solveOn is Solve and SolveOn, the builders checked; a builder without a
// name is Solve's (its results' Builder stays empty).
func solveOn(ctx context.Context, builders []Builder, recipes []llbdefs.Recipe, opts []Option) ([]Result, error) {
	var items []schedule.Item
	if len(builders) > 1 {
		var err error
		if items, err = ScheduleItems(ctx, recipes); err != nil {
			return nil, err
		}
	} else {
		items = make([]schedule.Item, len(recipes)) // one builder: nothing to spread
		for i, r := range recipes {
			items[i].Name = r.Name
		}
	}
	s, err := newSolver(recipes, opts)
	if err != nil {
		return nil, err
	}
	defer s.disp.close()
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
		recipes:       recipes,
		items:         items,
		builders:      names,
		parallel:      s.cfg.parallel,
		dropped:       dropped,
		probeInterval: probeInterval,
		solve: func(ctx context.Context, b int, r llbdefs.Recipe) Result {
			return solvers[b].solve(ctx, r)
		},
		probe: func(ctx context.Context, b int) error {
			_, err := builders[b].Client.ListWorkers(ctx)
			return err
		},
	}
	return m.run(ctx)
}

// ScheduleItems describes the recipes for package schedule: a recipe's
// shared keys are the digests of its stages that do work (every stage but
// a bare FROM), its work keys the digests of its LLB vertices. The graphs
// are compiled without resolving the base images, which changes no
// digest's identity across recipes.
func ScheduleItems(ctx context.Context, recipes []llbdefs.Recipe) ([]schedule.Item, error) {
	src := llbdefs.DefaultSources()
	stageDigests := map[string]digest.Digest{} // memo by image, for bare stages
	items := make([]schedule.Item, len(recipes))
	for i, r := range recipes {
		it := schedule.Item{Name: r.Name}
		for _, st := range r.Stages() {
			d, err := stateDigest(ctx, st.State(src))
			if err != nil {
				return nil, fmt.Errorf("schedule %s: stage on %q: %w", r.Name, st.Image(), err)
			}
			bare, ok := stageDigests[st.Image()]
			if !ok {
				if bare, err = stateDigest(ctx, llbdefs.From(st.Image()).State(src)); err != nil {
					return nil, fmt.Errorf("schedule %s: image %q: %w", r.Name, st.Image(), err)
				}
				stageDigests[st.Image()] = bare
			}
			if d != bare {
				it.Shared = append(it.Shared, d.String())
			}
		}
		def, err := r.Definition(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("schedule: %w", err)
		}
		for _, op := range def.Def {
			it.Work = append(it.Work, digest.FromBytes(op).String())
		}
		items[i] = it
	}
	return items, nil
}

// stateDigest is the digest of a state's final vertex, which covers the
// whole graph below it.
func stateDigest(ctx context.Context, st llb.State) (digest.Digest, error) {
	def, err := st.Marshal(ctx, llb.Platform(llbdefs.Platform()))
	if err != nil {
		return "", err
	}
	if len(def.Def) == 0 {
		return digest.FromString("scratch"), nil
	}
	return digest.FromBytes(def.Def[len(def.Def)-1]), nil
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

// errNotStarted is the outcome of a recipe that never started.
var errNotStarted = errors.New("interrupted before it started")

// A multi runs recipes on several builders. solve and probe are the only
// ways it reaches a builder (tests give fakes).
type multi struct {
	recipes  []llbdefs.Recipe
	items    []schedule.Item
	builders []string
	parallel int
	// solve builds one recipe on builder b; it never fails (see
	// solver.solve).
	solve func(ctx context.Context, b int, r llbdefs.Recipe) Result
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
	moved    [][]string // per recipe: the builders it was taken from
	pending  int        // recipes without their final result
	stopping bool       // the caller's context is done
}

// builderState is one builder's queue; guarded by multi.mu but for probeMu.
type builderState struct {
	ctx     context.Context // canceled when the builder is lost
	cancel  context.CancelFunc
	queue   []int        // recipes waiting, in order
	running map[int]bool // recipes being solved
	lost    error        // why the builder was declared lost; nil while it answers
	retryTo map[int]int  // recipes running when it was lost -> builder to retry on (-1: none)
	probeMu sync.Mutex   // one probe at a time
}

// run solves every recipe and returns the results in order.
func (m *multi) run(ctx context.Context) ([]Result, error) {
	parts, err := schedule.Partition(m.items, len(m.builders))
	if err != nil {
		return nil, fmt.Errorf("solve: %w", err)
	}
	m.cond = sync.NewCond(&m.mu)
	m.results = make([]Result, len(m.recipes))
	m.moved = make([][]string, len(m.recipes))
	for i, r := range m.recipes {
		m.results[i] = Result{Name: r.Name, Status: StatusCanceled, Err: errNotStarted, Error: errNotStarted.Error()}
	}
	m.pending = len(m.recipes)
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

// work solves recipes from builder b's queue until there is nothing left
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

		res := m.solve(st.ctx, b, m.recipes[i])
		m.finish(ctx, b, i, res)
	}
}

// finish records recipe i's outcome on builder b, or queues it elsewhere
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
				// b was lost before this recipe's retry was planned,
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
		return true // another recipe's probe decided
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
// queued recipes go to the builders left and its running ones are given
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
				Name: m.recipes[i].Name, Status: StatusCanceled, Builder: m.builders[b], RetriedFrom: m.moved[i],
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

// placeLocked chooses a live builder for each recipe in idx, groups kept
// together, the builders' remaining work counted: recipe -> builder, -1
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
