package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// runOutcome is a report row's run (pkg/report/FIELDS.md, RunOutcome),
// with Go names of its own: Matches is "expected", Expected "want".
type runOutcome struct {
	ExitCode   int      `json:"exit_code"`
	Kind       string   `json:"kind"`
	Reason     string   `json:"reason"`
	Expected   string   `json:"want"`
	Matches    bool     `json:"expected"`
	Network    string   `json:"network"`
	StdoutTail []string `json:"stdout_tail"`
	StderrTail []string `json:"stderr_tail"`
	TimedOut   bool     `json:"timed_out"`
}

// testRow is a row of `minikit test --format json`: the report's Recipe.
type testRow struct {
	Name   string      `json:"name"`
	Status string      `json:"status"`
	Error  string      `json:"error"`
	Expect string      `json:"expect"`
	Run    *runOutcome `json:"run"`
	// StandInDiffers: set for a partial recipe (see llbdefs.Partial).
	StandInDiffers string `json:"stand_in_differs"`
	// Skipped is why the recipe was not attempted: its error, when its
	// status is skipped.
	Skipped string `json:"-"`
}

// UnmarshalJSON reads a row and sets Skipped.
func (r *testRow) UnmarshalJSON(data []byte) error {
	type plain testRow
	if err := json.Unmarshal(data, (*plain)(r)); err != nil {
		return err
	}
	if r.Status == "skipped" {
		r.Skipped = r.Error
	}
	return nil
}

// testDoc is `minikit test --format json`: the report of solve's JSON.
type testDoc struct {
	StandIns bool      `json:"stand_ins"`
	Server   string    `json:"test_server"`
	Recipes  []testRow `json:"recipes"`
}

// unexpected counts the rows that call for attention, as the report does.
func (d testDoc) unexpected() int {
	n := 0
	for _, r := range d.Recipes {
		switch {
		case r.Status == "skipped":
		case r.Status != "ok" && r.Status != "expected-failure":
			n++
		case r.Run != nil && !r.Run.Matches:
			n++
		}
	}
	return n
}

// testJSON runs `minikit test --format json ARGS...`, logs the end of its
// stderr and returns its exit code and its decoded report.
func testJSON(t *testing.T, ctx context.Context, args ...string) (int, testDoc) {
	t.Helper()
	code, stdout, stderr := minikit(t, ctx, append([]string{"test", "--format", "json"}, args...)...)
	t.Logf("stderr (last 2000 bytes):\n%s", tail(stderr, 2000))
	var doc testDoc
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("test --format json (exit %d): %v\n%s", code, err, stdout)
	}
	// One shape for test and solve: the report, and nothing else.
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	var rep report.Report
	if err := dec.Decode(&rep); err != nil || len(rep.Recipes) != len(doc.Recipes) {
		t.Fatalf("test --format json is not a report (pkg/report/FIELDS.md): %v", err)
	}
	return code, doc
}

// runAll runs `minikit test --all --format json` once per test binary.
func runAll(t *testing.T) testDoc {
	t.Helper()
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	code, doc := testJSON(t, ctx, "--all")
	if code != 0 {
		for _, r := range doc.Recipes {
			if r.Run != nil && !r.Run.Matches {
				t.Errorf("%s: expected %s, got %d (%s) stderr %q", r.Name, r.Expect, r.Run.ExitCode, r.Run.Reason, r.Run.StderrTail)
			}
		}
		t.Fatalf("minikit test --all exited %d (want 0: every outcome as expected)", code)
	}
	return doc
}

// TestRunAllOnStandIns runs every stand-in image inside BuildKit and
// checks each outcome and the reason given for it.
func TestRunAllOnStandIns(t *testing.T) {
	doc := runAll(t)
	if !doc.StandIns || !strings.HasPrefix(doc.Server, "https://127.0.0.1:") {
		t.Errorf("stand-ins %v, server %q", doc.StandIns, doc.Server)
	}
	rows := map[string]testRow{}
	for _, r := range doc.Recipes {
		rows[r.Name] = r
	}
	cat := llbdefs.Catalog()
	ran := 0
	for _, r := range cat {
		row, ok := rows[r.Name]
		switch {
		case !ok:
			t.Errorf("%s: no row", r.Name)
		case !r.BuildsOffline():
			if !strings.Contains(row.Skipped, r.Offline) {
				t.Errorf("%s: upstream only, want skipped with its reason %q; got %q", r.Name, r.Offline, row.Skipped)
			}
		case r.ExpectBuildFailure():
			if row.Status != "expected-failure" || row.Run != nil {
				t.Errorf("%s: want a build failure and no run, got %+v", r.Name, row)
			}
		case row.Run == nil:
			t.Errorf("%s: built (%s) but not run: %s", r.Name, row.Status, row.Error)
		default:
			ran++
			if !row.Run.Matches || row.Run.Expected != string(r.Expect) || row.Run.Reason == "" {
				t.Errorf("%s: %+v", r.Name, *row.Run)
			}
			if want := map[bool]string{true: "host", false: "none"}[r.Network]; row.Run.Network != want {
				t.Errorf("%s: network %q, want %q", r.Name, row.Run.Network, want)
			}
			if want := map[bool]string{true: r.Offline}[r.StandIn == llbdefs.Partial]; row.StandInDiffers != want {
				t.Errorf("%s: stand_in_differs %q, want %q", r.Name, row.StandInDiffers, want)
			}
		}
	}
	// The seed matrix's offline rows: 38, one of them the row that fails
	// to build on purpose, so 37 images run.
	if ran != 37 || doc.unexpected() != 0 {
		t.Errorf("%d images run (want the 37 of the seed's 38 offline rows that build), %d unexpected", ran, doc.unexpected())
	}

	for _, c := range []struct {
		name   string
		code   int
		kind   string
		reason string
		stdout string
	}{
		{"hello-c.gcc.scratch", 127, "missing-loader", "no /lib64/ld-linux-x86-64.so.2 (glibc loader)", ""},
		{"hello-c.gcc.alpine", 127, "missing-loader", "glibc loader", ""},
		{"hello-go.golang.scratch-string", 127, "no-shell", "no /bin/sh", ""},
		{"whatsmyip.golang.ubuntu", 1, "x509-unknown-authority", "x509: certificate signed by unknown authority: no CA bundle in the image", ""},
		{"whatsmyip.golang-nocgo.scratch", 0, "ok", "ok", "203.0.113.7"},
		{"whatsmyip.golang", 0, "ok", "ok", "203.0.113.7"},
		{"whatsmyip.golang.busybox-glibc", 0, "ok", "ok", "203.0.113.7"},
		{"whatsmyip.golang-alpine.alpine", 0, "ok", "ok", "203.0.113.7"},
		{"whatsmyip.golang.busybox", 127, "missing-loader", "glibc loader", ""},
		{"hello-c.gcc-static.alpine", 0, "ok", "ok", "Hello, world!"},
		{"hello-rust.rust.busybox-glibc", 127, "missing-library", "libgcc_s.so.1", ""},
		{"hello-rust.rust.scratch", 127, "missing-loader", "ld-linux-x86-64.so.2", ""},
		{"hello-py.python", 0, "ok", "ok", ""},
	} {
		row := rows[c.name]
		if row.Run == nil {
			t.Errorf("%s: not run", c.name)
			continue
		}
		o := row.Run
		if o.ExitCode != c.code || o.Kind != c.kind || !strings.Contains(o.Reason, c.reason) {
			t.Errorf("%s: got %d %s %q, want %d %s containing %q", c.name, o.ExitCode, o.Kind, o.Reason, c.code, c.kind, c.reason)
		}
		if c.stdout != "" && !strings.Contains(strings.Join(o.StdoutTail, "\n"), c.stdout) {
			t.Errorf("%s: stdout %q, want %q", c.name, o.StdoutTail, c.stdout)
		}
	}
}

// TestRunTimeoutAndBadInput: a run that outlives --run-timeout is killed
// and reported as a timeout (unexpected: exit 1); a bad timeout is a
// usage error.
func TestRunTimeoutAndBadInput(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if code, _, stderr := minikit(t, ctx, "test", "--run-timeout", "-1s", "hello-c.gcc"); code != 2 {
		t.Errorf("negative --run-timeout: exit %d, want 2\n%s", code, stderr)
	}
	// hello-c.gcc runs in a few ms; with a limit of 1ns it cannot finish.
	code, stdout, stderr := minikit(t, ctx, "test", "--run-timeout", "1ns", "--format", "json", "hello-c.gcc")
	var doc testDoc
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
	}
	if code != 1 || len(doc.Recipes) != 1 || doc.Recipes[0].Run == nil {
		t.Fatalf("exit %d, doc %+v", code, doc)
	}
	o := doc.Recipes[0].Run
	if !o.TimedOut || o.Kind != "timeout" || o.Matches || !strings.Contains(o.Reason, "killed") {
		t.Errorf("want a timeout, got %+v", *o)
	}
}
