package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTailWriterKeepsLastLines(t *testing.T) {
	w := &tailWriter{max: 3}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); fmt.Fprintf(w, "x%d\n", i) }()
	}
	wg.Wait()
	fmt.Fprint(w, "a\r\nb\nc\npartial")
	got := w.lines()
	if strings.Join(got, "|") != "b|c|partial" {
		t.Fatalf("lines %q", got)
	}
	w2 := &tailWriter{max: 2}
	fmt.Fprint(w2, strings.Repeat("y", 10000))
	if l := w2.lines(); len(l) != 1 || len(l[0]) != 4096 {
		t.Fatalf("an endless line is kept to its last 4096 bytes, got %d lines", len(l))
	}
}

func TestTestOption(t *testing.T) {
	c := &config{}
	if err := Test(TestOptions{})(c); err != nil {
		t.Fatal(err)
	}
	if c.test.Timeout != DefaultRunTimeout {
		t.Fatalf("defaults: %+v", c.test)
	}
	for _, bad := range []TestOptions{{Timeout: -time.Second}, {NetworkEnv: []string{"NOEQUALS"}}, {NetworkEnv: []string{"=x"}}} {
		if err := Test(bad)(&config{}); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

// TestEntitlements: network.host is asked for by the builds whose test
// run is on the host network, and no other.
func TestEntitlements(t *testing.T) {
	net := Target{Name: "n", Check: &Check{Network: true}}
	probe := Target{Name: "s", Check: &Check{Probe: &Probe{Port: 8080}}}
	plain := Target{Name: "p", Check: &Check{}}
	unchecked := Target{Name: "u"}
	tested := &solver{cfg: &config{test: &TestOptions{}}}
	built := &solver{cfg: &config{}}
	for _, tc := range []struct {
		s    *solver
		r    Target
		want []string
	}{
		{tested, net, []string{"network.host"}},
		{tested, probe, []string{"network.host"}},
		{tested, plain, nil},
		{tested, unchecked, nil},
		{built, net, nil},
		{built, probe, nil},
		{built, plain, nil},
	} {
		if got := tc.s.entitlements(tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("%s, test %v: entitlements %v, want %v", tc.r.Name, tc.s.cfg.test != nil, got, tc.want)
		}
	}
	// A target that needs nothing never probes.
	if err := tested.hostNetworkRefused(context.Background(), plain); err != nil {
		t.Error(err)
	}
}

// TestEntitlementCheck: a refusal is a daemon that builds without the
// entitlement and not with it; it is learnt once; a daemon that builds
// nothing decides nothing.
func TestEntitlementCheck(t *testing.T) {
	refusing := func(calls *int) func(context.Context, []string) error {
		return func(_ context.Context, ents []string) error {
			*calls++
			if len(ents) > 0 {
				return errors.New("granting entitlement network.host is not allowed by build daemon configuration")
			}
			return nil
		}
	}
	var calls int
	var e entitlementCheck
	for range 3 {
		err := e.check(context.Background(), refusing(&calls))
		if !errors.Is(err, ErrHostNetworkRefused) || !strings.Contains(err.Error(), "--allow-insecure-entitlement network.host") ||
			!strings.Contains(err.Error(), "not allowed by build daemon configuration") {
			t.Fatalf("refusing daemon: %v", err)
		}
	}
	if calls != 2 {
		t.Errorf("%d probes over 3 checks, want 2 (once with, once without)", calls)
	}

	calls = 0
	e = entitlementCheck{}
	granting := func(context.Context, []string) error { calls++; return nil }
	if err := e.check(context.Background(), granting); err != nil || e.check(context.Background(), granting) != nil || calls != 1 {
		t.Errorf("granting daemon: %v, %d probes", err, calls)
	}

	calls = 0
	e = entitlementCheck{}
	down := func(context.Context, []string) error {
		calls++
		return status.Error(codes.Unavailable, "connection refused")
	}
	if err := e.check(context.Background(), down); err != nil {
		t.Errorf("daemon down: %v; want undecided (nil)", err)
	}
	if err := e.check(context.Background(), down); err != nil || calls != 4 {
		t.Errorf("daemon down, again: %v, %d probes; want it asked again", err, calls)
	}
}

func TestUnexpectedRun(t *testing.T) {
	r := Result{Status: StatusOK, Run: &RunOutcome{ExitCode: 127, Expected: "127", Matches: true}}
	if r.Unexpected() {
		t.Error("an image failing as expected is not unexpected")
	}
	r.Run.Matches = false
	if !r.Unexpected() || len(Unexpected([]Result{r})) != 1 {
		t.Error("a run that differs from the expected outcome is unexpected")
	}
}

// TestSolveDaemonHostNetworkRefused: on a stock buildkitd (no insecure
// entitlement granted), Test fails only the recipe whose run needs the
// host network, saying which daemon flag allows it; on a daemon that
// grants it, that target runs on the host network.
func TestSolveDaemonHostNetworkRefused(t *testing.T) {
	base := pushBase(t)
	src := testSource(t)
	net := target("n.net", src, from(base), ImageConfig{Cmd: shell("cat /proc/net/dev")})
	net.Check = &Check{Network: true}
	plain := target("n.plain", src, from(base), ImageConfig{Cmd: shell("cat /proc/net/dev")})
	plain.Check = works()
	recipes := []Target{net, plain}
	for _, grant := range []bool{false, true} {
		var c *client.Client
		if grant {
			c = startBuildkitd(t, "--allow-insecure-entitlement", "network.host")
		} else {
			c = startBuildkitd(t)
		}
		results, err := Solve(context.Background(), c, recipes, NoExport(), Test(TestOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		net, plain := results[0], results[1]
		t.Logf("grant %v: %s %s %q; %s %s", grant, net.Name, net.Status, net.Error, plain.Name, plain.Status)
		if plain.Status != StatusOK || plain.Run == nil || !plain.Run.Matches || plain.Run.Network != "none" {
			t.Errorf("grant %v: %s: %s %+v: %s", grant, plain.Name, plain.Status, plain.Run, plain.Error)
		}
		if grant {
			if net.Status != StatusOK || net.Run == nil || !net.Run.Matches || net.Run.Network != "host" {
				t.Errorf("granted: %s: %s %+v: %s", net.Name, net.Status, net.Run, net.Error)
			}
			continue
		}
		if net.Status != StatusFailed || !errors.Is(net.Err, ErrHostNetworkRefused) || net.Run != nil ||
			!strings.Contains(net.Error, "--allow-insecure-entitlement network.host") {
			t.Errorf("refused: %s: %s, run %+v, error %v", net.Name, net.Status, net.Run, net.Err)
		}
	}
}
