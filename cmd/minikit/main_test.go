package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
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
	code, out, _ := run(t, "list", "--json", "whatsmyip.*")
	if code != exitOK {
		t.Fatalf("exit %d", code)
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
		{[]string{"solve", "--all", "--output", "tar=x"}, "unknown kind"},
		{[]string{"solve", "--all", "--output", "oci="}, "directory is required"},
		{[]string{"solve", "--all", "--format", "xml"}, "--format"},
		{[]string{"solve", "--all", "--progress", "fancy"}, "--progress"},
		{[]string{"solve", "--nosuchflag"}, "not defined"},
		{[]string{"list", "nosuch*"}, "no recipe matches"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"daemon"}, "status, start, stop"},
		{[]string{"daemon", "restart"}, "unknown daemon command"},
	} {
		// MINIKIT_HOME points nowhere useful: nothing may be started.
		t.Setenv("MINIKIT_HOME", t.TempDir())
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

func TestHelp(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != exitOK || !strings.Contains(out, "minikit solve") {
		t.Errorf("exit %d: %s", code, out)
	}
	code, _, stderr := run(t, "solve", "--help")
	if code != exitOK || !strings.Contains(stderr, "-parallel") {
		t.Errorf("solve --help: exit %d: %s", code, stderr)
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
