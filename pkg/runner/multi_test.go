package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/util/grpcerrors"
	pkgerrors "github.com/pkg/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minikit/minikit/pkg/schedule"
)

// groupedTargets are targets whose graphs share work as a catalog's do:
// four groups of three sharing a RUN step (a build stage, a target
// copying it onto scratch, one copying it onto a base), and singletons,
// two of them sharing a COPY but not their RUN, two expected to fail.
func groupedTargets(t *testing.T) []Target {
	t.Helper()
	src := Source{Name: testSourceName} // never built
	const base = "docker.io/library/base:1"
	var out []Target
	for g := range 4 {
		build := from("docker.io/library/gcc:1").copy(fmt.Sprintf("p%d.c", g), ".").run(fmt.Sprintf("cc -o p%d p%d.c", g, g))
		out = append(out,
			target(fmt.Sprintf("g%d.build", g), src, build, ImageConfig{}),
			target(fmt.Sprintf("g%d.scratch", g), src, scratch().copyFrom(build, "/p", "/"), ImageConfig{}, "docker.io/library/gcc:1"),
			target(fmt.Sprintf("g%d.base", g), src, from(base).copyFrom(build, "/p", "/"), ImageConfig{}, "docker.io/library/gcc:1"),
		)
	}
	copied := from("docker.io/library/gcc:1").copy("s.c", ".")
	out = append(out,
		target("s.dynamic", src, copied.run("cc s.c"), ImageConfig{}),
		target("s.static", src, copied.run("cc -static s.c"), ImageConfig{}),
		target("s.copy", src, scratch().copy("s.c", "/"), ImageConfig{}),
		target("s.bare", src, from(base), ImageConfig{}),
		target("s.fails.err", src, scratch().copyFrom(scratch(), "/nope", "/"), ImageConfig{}),
		target("s.alsofails.err", src, from(base).run("false"), ImageConfig{}),
	)
	out[len(out)-1].ExpectBuildFailure = true
	out[len(out)-2].ExpectBuildFailure = true
	return out
}

func targetIndex(rs []Target) map[string]int {
	m := map[string]int{}
	for i, r := range rs {
		m[r.Name] = i
	}
	return m
}

func TestScheduleItemsGroupSharedSteps(t *testing.T) {
	ctx := context.Background()
	rs := groupedTargets(t)
	items, err := ScheduleItems(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	groups := schedule.Groups(items)
	groupOf := map[string]int{}
	for g, gr := range groups {
		for _, i := range gr.Items {
			groupOf[rs[i].Name] = g
		}
	}
	for g := range 4 {
		names := []string{fmt.Sprintf("g%d.build", g), fmt.Sprintf("g%d.scratch", g), fmt.Sprintf("g%d.base", g)}
		for _, n := range names {
			if groupOf[n] != groupOf[names[0]] {
				t.Errorf("%s and %s share a RUN step but are in different groups", n, names[0])
			}
		}
		if g > 0 && groupOf[names[0]] == groupOf["g0.build"] {
			t.Errorf("g%d and g0 share no RUN step but are grouped", g)
		}
	}
	// The same COPY and different RUNs, the same bare base: no work shared.
	for _, p := range [][2]string{{"s.dynamic", "s.static"}, {"s.bare", "g0.base"}, {"s.copy", "s.dynamic"}} {
		if groupOf[p[0]] == groupOf[p[1]] {
			t.Errorf("%s and %s share no RUN step but are grouped", p[0], p[1])
		}
	}
	if len(items[targetIndex(rs)["s.copy"]].Shared) != 0 || len(items[0].Work) == 0 {
		t.Errorf("items %+v", items[:1])
	}

	parts, err := schedule.Partition(items, 2)
	if err != nil {
		t.Fatal(err)
	}
	var weights []int
	for b, idx := range parts {
		if len(idx) == 0 {
			t.Fatalf("builder %d gets nothing", b)
		}
		weights = append(weights, schedule.Weight(items, idx))
	}
	heaviest := 0
	for _, g := range groups {
		heaviest = max(heaviest, g.Weight)
	}
	if d := weights[0] - weights[1]; d > heaviest || -d > heaviest {
		t.Errorf("unbalanced: weights %v, heaviest group %d", weights, heaviest)
	}

	// A target whose graph cannot be made has no keys; it is still an item.
	bad := Target{Name: "bad", LLB: func(context.Context, BuildInput) (llb.State, error) { return llb.State{}, errors.New("no") }}
	items, err = ScheduleItems(ctx, []Target{bad})
	if err != nil || len(items) != 1 || items[0].Name != "bad" || len(items[0].Work) != 0 {
		t.Errorf("bad target: %+v, %v", items, err)
	}
}

// fakeCluster plays builders for multi: each builder answers until it is
// killed; solving on a killed builder fails as a lost connection does.
type fakeCluster struct {
	t      *testing.T
	killed []atomic.Bool
	// onSolve, if set, runs first in every solve; a non-nil result is the
	// outcome.
	onSolve func(ctx context.Context, b int, r Target) *Result
	// probeOK, if set, makes probes answer whatever the builder's state.
	probeOK bool

	mu     sync.Mutex
	solved map[string][]int // recipe -> builders it was solved on, in order
	probes atomic.Int32
}

func newFakeCluster(t *testing.T, n int) *fakeCluster {
	return &fakeCluster{t: t, killed: make([]atomic.Bool, n), solved: map[string][]int{}}
}

func (f *fakeCluster) multi(rs []Target, parallel int) *multi {
	f.t.Helper()
	items, err := ScheduleItems(context.Background(), rs)
	if err != nil {
		f.t.Fatal(err)
	}
	names := make([]string, len(f.killed))
	for i := range names {
		names[i] = fmt.Sprintf("b%d", i)
	}
	return &multi{
		targets: rs, items: items, builders: names, parallel: parallel,
		probeInterval: time.Millisecond,
		solve:         f.solve,
		probe: func(ctx context.Context, b int) error {
			f.probes.Add(1)
			if f.killed[b].Load() && !f.probeOK {
				return status.Error(codes.Unavailable, "connection error: dial tcp 127.0.0.1:1: connect: connection refused")
			}
			return nil
		},
	}
}

func (f *fakeCluster) solve(ctx context.Context, b int, r Target) Result {
	f.mu.Lock()
	f.solved[r.Name] = append(f.solved[r.Name], b)
	f.mu.Unlock()
	if f.onSolve != nil {
		if res := f.onSolve(ctx, b, r); res != nil {
			return *res
		}
	}
	if f.killed[b].Load() {
		return failedResult(r.Name, StatusFailed, fmt.Errorf("failed to solve: %w", status.Error(codes.Unavailable, "error reading from server: EOF")))
	}
	if ctx.Err() != nil {
		return failedResult(r.Name, StatusCanceled, ctx.Err())
	}
	if r.ExpectBuildFailure {
		return failedResult(r.Name, StatusExpectedFailure, errors.New("failed to calculate checksum: not found"))
	}
	return Result{Name: r.Name, Status: StatusOK}
}

// failedResult is a result with an error.
func failedResult(name string, st Status, err error) Result {
	return Result{Name: name, Status: st, Err: err, Error: err.Error()}
}

// runMulti runs m with a deadline, failing the test on a hang.
func runMulti(t *testing.T, ctx context.Context, m *multi) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	results, err := m.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("run hung")
	}
	return results
}

func wantSettled(t *testing.T, rs []Target, results []Result) {
	t.Helper()
	for i, res := range results {
		want := StatusOK
		if rs[i].ExpectBuildFailure {
			want = StatusExpectedFailure
		}
		if res.Status != want || res.Name != rs[i].Name {
			t.Errorf("%s: %+v, want %s", rs[i].Name, res, want)
		}
	}
}

func TestMultiSpreadsGroups(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 2)
	results := runMulti(t, context.Background(), f.multi(rs, 3))
	wantSettled(t, rs, results)
	perBuilder := map[string]int{}
	for _, res := range results {
		perBuilder[res.Builder]++
		if len(res.RetriedFrom) > 0 {
			t.Errorf("%s retried from %v with no builder lost", res.Name, res.RetriedFrom)
		}
	}
	if perBuilder["b0"] == 0 || perBuilder["b1"] == 0 || len(perBuilder) != 2 {
		t.Errorf("recipes per builder: %v", perBuilder)
	}
	byName := targetIndex(rs)
	if a, b := results[byName["g1.build"]].Builder, results[byName["g1.scratch"]].Builder; a != b {
		t.Errorf("g1.build on %s, g1.scratch on %s: they share the build step", a, b)
	}
	if f.probes.Load() != 0 {
		t.Errorf("%d probes with every builder up", f.probes.Load())
	}
}

// TestMultiRetriesLostBuilder: b1 dies after its first recipe; everything
// it had not finished is built on b0, groups kept together.
func TestMultiRetriesLostBuilder(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 2)
	var first atomic.Bool
	f.onSolve = func(ctx context.Context, b int, r Target) *Result {
		if b == 1 && !f.killed[1].Load() && first.Swap(true) {
			f.killed[1].Store(true) // the second recipe on b1 finds it dead
		}
		return nil
	}
	m := f.multi(rs, 1)
	results := runMulti(t, context.Background(), m)
	wantSettled(t, rs, results)

	var onB1, retried int
	for _, res := range results {
		switch {
		case res.Builder == "b1":
			onB1++
			if len(res.RetriedFrom) != 0 {
				t.Errorf("%s: built on b1 but retried from %v", res.Name, res.RetriedFrom)
			}
		case slices.Equal(res.RetriedFrom, []string{"b1"}):
			retried++
			if res.Builder != "b0" {
				t.Errorf("%s: retried on %s, want b0", res.Name, res.Builder)
			}
		}
	}
	if onB1 != 1 || retried < 2 {
		t.Errorf("%d recipe(s) built on b1 (want 1), %d retried on b0 (want several)", onB1, retried)
	}
	// Groups moved whole: recipes sharing a stage, both retried, are on
	// one builder (b0, the only one left).
	groups := schedule.Groups(m.items)
	for _, g := range groups {
		builders := map[string]bool{}
		for _, i := range g.Items {
			if results[i].Builder != "b1" {
				builders[results[i].Builder] = true
			}
		}
		if len(builders) > 1 {
			t.Errorf("group %v spread over %v", g.Items, builders)
		}
	}
}

// TestMultiCancelsRunningOnLostBuilder: builds that hang on a dead
// builder are canceled once another recipe's failure shows it is lost,
// and retried.
func TestMultiCancelsRunningOnLostBuilder(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 2)
	var started atomic.Int32
	f.onSolve = func(ctx context.Context, b int, r Target) *Result {
		if b != 1 || f.killed[1].Load() {
			return nil
		}
		if started.Add(1) < 3 {
			<-ctx.Done() // hangs until canceled
			res := failedResult(r.Name, StatusCanceled, ctx.Err())
			return &res
		}
		f.killed[1].Store(true)
		res := failedResult(r.Name, StatusFailed, status.Error(codes.Unavailable, "transport is closing"))
		return &res
	}
	results := runMulti(t, context.Background(), f.multi(rs, 3))
	wantSettled(t, rs, results)
	var retried int
	for _, res := range results {
		if res.Builder == "b1" {
			t.Errorf("%s: outcome from the lost builder: %+v", res.Name, res)
		}
		if slices.Equal(res.RetriedFrom, []string{"b1"}) {
			retried++
		}
	}
	if retried == 0 {
		t.Error("nothing retried")
	}
}

// TestMultiConnErrorOnLiveBuilder: a connection error on a builder that
// still answers is the recipe's outcome; nothing moves.
func TestMultiConnErrorOnLiveBuilder(t *testing.T) {
	rs := groupedTargets(t)[:6]
	f := newFakeCluster(t, 2)
	f.probeOK = true
	f.onSolve = func(ctx context.Context, b int, r Target) *Result {
		if r.Name == rs[0].Name {
			res := failedResult(r.Name, StatusFailed, status.Error(codes.Unavailable, "connection reset by peer"))
			return &res
		}
		return nil
	}
	results := runMulti(t, context.Background(), f.multi(rs, 2))
	if results[0].Status != StatusFailed || len(results[0].RetriedFrom) != 0 {
		t.Errorf("%+v: want failed, not retried", results[0])
	}
	if n := len(f.solved[rs[0].Name]); n != 1 {
		t.Errorf("%s solved %d times", rs[0].Name, n)
	}
	if f.probes.Load() != 1 {
		t.Errorf("%d probes, want 1", f.probes.Load())
	}
	wantSettled(t, rs[1:], results[1:])
}

// TestMultiEveryBuilderLost: nothing left to retry on; the run ends with
// the failures.
func TestMultiEveryBuilderLost(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 2)
	f.killed[0].Store(true)
	f.killed[1].Store(true)
	results := runMulti(t, context.Background(), f.multi(rs, 2))
	for _, res := range results {
		if res.Status == StatusOK || res.Status == StatusExpectedFailure {
			t.Errorf("%s: %s with every builder dead", res.Name, res.Status)
		}
		if res.Builder == "" {
			t.Errorf("%s: no builder named: %+v", res.Name, res)
		}
	}
	var noneLeft int
	for _, res := range results {
		if strings.Contains(res.Error, "no builder left") {
			noneLeft++
		}
		// Every recipe ended for want of a daemon: the CLI says so.
		if !errors.Is(res.Err, ErrBuilderLost) {
			t.Errorf("%s: error %v does not wrap ErrBuilderLost", res.Name, res.Err)
		}
		if res.Err == nil || res.Error != res.Err.Error() {
			t.Errorf("%s: Error %q is not Err's message (%v)", res.Name, res.Error, res.Err)
		}
	}
	if noneLeft == 0 {
		t.Errorf("no result says no builder is left: %+v", results)
	}
	// The build's own error is kept.
	var lostConn int
	for _, res := range results {
		if connLost(res.Err) && strings.Contains(res.Error, "error reading from server") {
			lostConn++
		}
	}
	if lostConn == 0 {
		t.Errorf("no result keeps the build's connection error: %+v", results)
	}
}

// TestMultiOneBuilderLost: Solve's case, one builder that dies while
// recipes are running and queued: each of them ends with ErrBuilderLost,
// the queued ones not started.
func TestMultiOneBuilderLost(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 1)
	var n atomic.Int32
	f.onSolve = func(ctx context.Context, b int, r Target) *Result {
		if n.Add(1) == 3 {
			f.killed[0].Store(true)
		}
		return nil
	}
	m := f.multi(rs, 2)
	m.builders = []string{""} // Solve's builder has no name
	results := runMulti(t, context.Background(), m)
	var ok, lost int
	for _, res := range results {
		switch {
		case res.Status == StatusOK || res.Status == StatusExpectedFailure:
			ok++
		case errors.Is(res.Err, ErrBuilderLost):
			lost++
			if !strings.Contains(res.Error, "buildkitd does not answer") {
				t.Errorf("%s: %q does not say the daemon does not answer", res.Name, res.Error)
			}
		default:
			t.Errorf("%s: %s %v, not for want of the daemon", res.Name, res.Status, res.Err)
		}
		if res.Builder != "" {
			t.Errorf("%s: builder %q, want none named", res.Name, res.Builder)
		}
	}
	if ok < 2 || lost < len(rs)-3 {
		t.Errorf("%d built, %d lost of %d", ok, lost, len(rs))
	}
}

// TestMultiCanceled: the caller's cancellation stops everything, and
// nothing is retried.
func TestMultiCanceled(t *testing.T) {
	rs := groupedTargets(t)
	f := newFakeCluster(t, 2)
	f.onSolve = func(ctx context.Context, b int, r Target) *Result {
		<-ctx.Done()
		res := failedResult(r.Name, StatusCanceled, ctx.Err())
		return &res
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	results := runMulti(t, ctx, f.multi(rs, 2))
	for _, res := range results {
		if res.Status != StatusCanceled || len(res.RetriedFrom) != 0 {
			t.Errorf("%s: %+v, want canceled, not retried", res.Name, res)
		}
	}
	if f.probes.Load() != 0 {
		t.Errorf("%d probes after a cancellation", f.probes.Load())
	}
}

func TestSolveOnArguments(t *testing.T) {
	ctx := context.Background()
	rs := groupedTargets(t)[:1]
	c := &client.Client{}
	for _, tc := range []struct {
		builders []Builder
		want     string
	}{
		{nil, "no builder"},
		{[]Builder{{Name: "a"}}, "no BuildKit client"},
		{[]Builder{{Client: c}}, "no name"},
		{[]Builder{{Name: "a", Client: c}, {Name: "a", Client: c}}, "given twice"},
	} {
		_, err := SolveOn(ctx, tc.builders, rs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.builders, err, tc.want)
		}
	}
}

func TestConnLost(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "error reading from server: EOF")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{unavailable, true},
		{fmt.Errorf("failed to solve: %w", unavailable), true},
		{pkgerrors.Wrap(unavailable, "listing workers for Build"), true},
		{grpcerrors.FromGRPC(status.Error(codes.Unavailable, "connection error")), true},
		{grpcerrors.WrapCode(errors.New("x"), codes.Unavailable), true},
		// The build function's error hides the client's: both are looked at.
		{&buildError{fn: context.Canceled, daemon: unavailable}, true},
		{errors.Join(errors.New("x"), unavailable), true},
		{nil, false},
		{context.Canceled, false},
		{status.Error(codes.Canceled, "grpc: the client connection is closing"), false},
		// Words are not codes.
		{errors.New("rpc error: code = Unavailable desc = connection refused"), false},
		{errors.New(`process "/bin/sh -c gcc -o hello hello.c" did not complete successfully: exit code: 1`), false},
	} {
		if got := connLost(tc.err); got != tc.want {
			t.Errorf("connLost(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
