package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = app{stdout: &out, stderr: &errb}.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestListShowsTheCatalog(t *testing.T) {
	code, out, _ := run(t, "list")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// header + 51 rows + count line
	if len(lines) != 53 || !strings.HasSuffix(lines[len(lines)-1], "51 recipes") {
		t.Fatalf("list printed %d lines:\n%s", len(lines), out)
	}
	if !strings.Contains(out, "hello-go.golang.scratch ") || !strings.Contains(out, "golang:1.26-bookworm") {
		t.Errorf("list lacks a row or the pinned image:\n%s", out)
	}
}

func TestListJSON(t *testing.T) {
	code, out, _ := run(t, "list", "--format", "json", "whatsmyip.*")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	// --json is the same.
	if _, alias, _ := run(t, "list", "--json", "whatsmyip.*"); alias != out {
		t.Errorf("list --json differs from list --format json:\n%s", alias)
	}
	var rows []listRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 {
		t.Fatalf("%d whatsmyip rows", len(rows))
	}
	for _, r := range rows {
		if r.Program != "whatsmyip" || r.Expect == "" || r.StandIn == "" || r.BuildImage == "" {
			t.Errorf("incomplete row %+v", r)
		}
	}
}

func TestBadInputExitsTwoBeforeConnecting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"solve", "nosuch"}, `no recipe matches "nosuch"`},
		{[]string{"solve", "hello-go.golang.scrach"}, "did you mean hello-go.golang.scratch"},
		{[]string{"solve"}, "--all"},
		{[]string{"solve", "--all", "hello-c.gcc"}, "not both"},
		{[]string{"solve", "--all", "--parallel", "0"}, "--parallel"},
		{[]string{"solve", "--all", "--output", "zip=x"}, "unknown kind"},
		{[]string{"solve", "--all", "--output", "oci="}, "directory is required"},
		{[]string{"solve", "--all", "--output", "oci=a\x00b"}, "NUL"},
		{[]string{"solve", "--all", "--cache-to", "type=registry,ref=Not A Repo"}, "not an image repository"},
		{[]string{"solve", "--all", "--cache-from", "type=local,src=a\ntype=gha"}, "more than one line"},
		{[]string{"solve", "--all", "--format", "xml"}, "--format"},
		{[]string{"solve", "--all", "--progress", "fancy"}, "--progress"},
		{[]string{"solve", "--nosuchflag"}, "not defined"},
		{[]string{"solve", "hello-c.gcc", "--max-size", "nosuch=5kB"}, `--max-size nosuch=5kB: "nosuch" matches none of the 1 recipe(s) selected`},
		{[]string{"solve", "hello-c.*", "--max-size", "hello-c.*=1MB", "--max-size", "hello-go.*=5kB"}, `"hello-go.*" matches none`},
		{[]string{"solve", "hello-c.gcc", "--max-size", "hello-c.gcc=5kB", "--max-size", "hello-c.gcc=6kB"}, "already has a budget"},
		{[]string{"solve", "hello-c.gcc", "--max-size", "hello-c.gcc"}, "want NAME=LIMIT"},
		{[]string{"solve", "hello-c.gcc", "--max-size", "hello-c.gcc=compressed=5kB", "--max-size", "hello-c.gcc=5kB,compressed=6kB"}, "already has a budget for compressed"},
		{[]string{"solve", "hello-c.gcc", "--max-size", "hello-c.gcc=dive-efficiency=2"}, "at most 1"},
		{[]string{"solve", "hello-c.gcc", "--max-size", "hello-c.gcc=dive-waste=1MB"}, "unknown metric"},
		{[]string{"list", "nosuch*"}, "no recipe matches"},
		{[]string{"list", "--format", "yaml"}, "--format must be table or json"},
		{[]string{"list", "--json", "--format", "table"}, "--json is --format json"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"daemon"}, "status, start, stop"},
		{[]string{"daemon", "restart"}, "unknown daemon command"},
	} {
		// MINIKIT_HOME points nowhere useful: nothing may be started
		// (and a regression reaches no daemon: BUILDKIT_HOST).
		t.Setenv("MINIKIT_HOME", t.TempDir())
		t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/minikit.sock")
		code, _, stderr := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestUnreachableDaemonExitsThree(t *testing.T) {
	t.Setenv("MINIKIT_HOME", t.TempDir())
	code, _, stderr := run(t, "solve", "--addr", "unix:///nonexistent/minikit.sock", "hello-c.gcc")
	if code != exitEnv || !strings.Contains(stderr, "unreachable") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// A budget that applies to a selected recipe passes the check: the run
// goes on to the daemon (unreachable here).
func TestMatchingBudgetIsAccepted(t *testing.T) {
	t.Setenv("MINIKIT_HOME", t.TempDir())
	for _, budget := range []string{"hello-c.gcc=5kB", "hello-c.*=5kB", "*=1MB", "hello-c.*=compressed=1MB,wasted=0,dive-efficiency=90%,dive-user-wasted=0.1,dive-wasted=20MB"} {
		code, _, stderr := run(t, "solve", "--addr", "unix:///nonexistent/minikit.sock", "--max-size", budget, "--max-size", budget, "hello-c.gcc")
		if code != exitEnv || !strings.Contains(stderr, "unreachable") {
			t.Errorf("--max-size %s: exit %d, stderr %q; want the daemon tried (exit 3)", budget, code, stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != exitOK || !strings.Contains(out, "minikit solve") {
		t.Errorf("exit %d: %s", code, out)
	}
	if !strings.Contains(out, "130 interrupted") || !strings.Contains(out, "second signal") {
		t.Errorf("--help does not explain the signals' exit codes:\n%s", out)
	}
	code, out, stderr := run(t, "solve", "--help")
	if code != exitOK || !strings.Contains(out, "--parallel") || stderr != "" {
		t.Errorf("solve --help: exit %d, stdout %q, stderr %q; want the flags on stdout", code, out, stderr)
	}
}

func TestParseFlagsAfterNames(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		names []string
		n     int
		v     bool
	}{
		{[]string{"a", "-n", "3", "b"}, []string{"a", "b"}, 3, false},
		{[]string{"--v", "a", "--n=2"}, []string{"a"}, 2, true},
		{[]string{"a", "--", "-n", "b"}, []string{"a", "-n", "b"}, 0, false},
		{[]string{"--", "a"}, []string{"a"}, 0, false},
		{nil, nil, 0, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		n := fs.Int("n", 0, "")
		v := fs.Bool("v", false, "")
		if err := parse(fs, tc.args); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(fs.Args(), tc.names) || *n != tc.n || *v != tc.v {
			t.Errorf("%q: names %q n=%d v=%v, want %q n=%d v=%v", tc.args, fs.Args(), *n, *v, tc.names, tc.n, tc.v)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("n", 0, "")
	var ue usageError
	if err := parse(fs, []string{"a", "-n", "x"}); !errors.As(err, &ue) {
		t.Errorf("bad value after a name: %v, want a usage error", err)
	}
}

// A signal cancels the run's context and makes the exit code 128+signo,
// whatever the command returned: a failure (the daemon cannot be reached
// once canceled) or success (list).
func TestSignalExitCodes(t *testing.T) {
	t.Setenv("MINIKIT_HOME", t.TempDir())
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGINT, "SIGINT", 130}, {syscall.SIGTERM, "SIGTERM", 143}} {
		for _, args := range [][]string{
			{"solve", "--addr", "unix:///nonexistent/minikit.sock", "hello-c.gcc"},
			{"list"},
		} {
			var out, errb bytes.Buffer
			a := app{stdout: &out, stderr: &errb}
			sigs := make(chan os.Signal, 1)
			ctx, stop := a.onSignals(context.Background(), sigs, func(code int) { t.Errorf("exit(%d) after one signal", code) })
			sigs <- tc.sig
			<-ctx.Done()
			code := a.run(ctx, args)
			stop()
			if code != tc.code || !strings.Contains(errb.String(), "minikit "+args[0]+": stopped by "+tc.name) {
				t.Errorf("%s during %v: exit %d, stderr %q; want %d, saying so", tc.name, args, code, errb.String(), tc.code)
			}
		}
	}
}

// A second signal exits at once, with its code.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	var errb bytes.Buffer
	a := app{stdout: io.Discard, stderr: &errb}
	sigs := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	ctx, stop := a.onSignals(context.Background(), sigs, func(code int) { exited <- code })
	defer stop()
	sigs <- syscall.SIGINT
	<-ctx.Done()
	sigs <- syscall.SIGINT
	select {
	case code := <-exited:
		if code != 130 {
			t.Errorf("exit(%d) on a second SIGINT, want 130", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGINT did not exit")
	}
	if !strings.Contains(errb.String(), "second signal (SIGINT)") {
		t.Errorf("stderr %q does not say why it quit", errb.String())
	}
}

// With no signal, the context is the parent's and the watch ends with stop.
func TestNoSignal(t *testing.T) {
	a := app{stdout: io.Discard, stderr: io.Discard}
	ctx, stop := a.onSignals(context.Background(), make(chan os.Signal), func(int) { t.Error("exit without a signal") })
	if code := a.run(ctx, []string{"list"}); code != exitOK {
		t.Errorf("list: exit %d", code)
	}
	stop()
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Errorf("cause after stop: %v", context.Cause(ctx))
	}
}
