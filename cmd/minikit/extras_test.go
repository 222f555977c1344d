package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/minikit/minikit/internal/sourcedate"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
)

func TestListExtras(t *testing.T) {
	code, out, _ := run(t, "list", "--extras", "--json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var rows []listRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	extras := 0
	for _, r := range rows {
		if r.Extra {
			extras++
		}
	}
	if len(rows) != 51+len(llbdefs.Extras()) || extras != len(llbdefs.Extras()) {
		t.Errorf("list --extras: %d rows, %d extras", len(rows), extras)
	}
	// Without --extras, an extra's name is refused with a hint.
	code, _, errOut := run(t, "list", "hello-c.musl-static.scratch")
	if code != exitUsage || !strings.Contains(errOut, "add --extras") {
		t.Errorf("extra without --extras: exit %d, %s", code, errOut)
	}
}

func TestSelectRecipesExtras(t *testing.T) {
	for _, tc := range []struct {
		all, extras bool
		names       []string
		want        int
	}{
		{true, false, nil, 51},
		{true, true, nil, 51 + len(llbdefs.Extras())},
		{false, true, nil, len(llbdefs.Extras())},
		{false, true, []string{"hello-c.musl-*"}, 2},
		{false, false, []string{"hello-c.gcc"}, 1},
	} {
		rs, err := selectRecipes(tc.all, tc.extras, tc.names)
		if err != nil || len(rs) != tc.want {
			t.Errorf("all=%v extras=%v %v: %d recipes, %v; want %d", tc.all, tc.extras, tc.names, len(rs), err, tc.want)
		}
	}
	if _, err := selectRecipes(false, false, []string{"hello-c.musl-*"}); err == nil || !strings.Contains(err.Error(), "add --extras") {
		t.Errorf("extras glob without --extras: %v", err)
	}
}

// diff's command-line errors are usage errors, found before connecting.
func TestDiffUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hello-c.gcc"}, "two recipes"},
		{[]string{"hello-c.gcc", "hello-c.musl-static.scrach"}, "did you mean hello-c.musl-static.scratch"},
		{[]string{"hello-c.*", "hello-c.gcc"}, "name exactly one"},
		{[]string{"--format", "yaml", "hello-c.gcc", "hello-c.gcc"}, "table or json"},
		{[]string{"hello-c.gcc", "hello-c.gcc", "--format", "yaml"}, "table or json"},
		{[]string{"hello-c.gcc", "--limit", "-1", "hello-c.gcc"}, "--limit"},
	} {
		var out, errb bytes.Buffer
		err := app{stdout: &out, stderr: &errb}.diff(context.Background(), tc.args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("diff %v: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

func TestSourceDateEpochFlag(t *testing.T) {
	ctx := context.Background()
	epoch := func(env string, args ...string) (sourcedate.Epoch, []runner.Option, error) {
		t.Helper()
		t.Setenv("SOURCE_DATE_EPOCH", env)
		fs := flag.NewFlagSet("solve", flag.ContinueOnError)
		fs.String("source-date-epoch", "", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return sourceDateEpoch(ctx, fs, "")
	}
	if e, opts, err := epoch("5", "--source-date-epoch", "1700000000"); err != nil || e.Time.Unix() != 1700000000 || len(opts) != 1 {
		t.Errorf("flag: %v, %d options, %v", e, len(opts), err)
	}
	if e, opts, err := epoch("1600000000"); err != nil || e.Time.Unix() != 1600000000 || len(opts) != 1 {
		t.Errorf("env: %v, %d options, %v", e, len(opts), err)
	}
	for _, off := range []string{"off", ""} {
		if e, opts, err := epoch("1600000000", "--source-date-epoch="+off); err != nil || !e.Off || len(opts) != 0 {
			t.Errorf("%q: %v, %d options, %v", off, e, len(opts), err)
		}
	}
	// The default in minikit's checkout (go test runs in cmd/minikit):
	// the last commit touching samples/; in an exported tree, the
	// fallback. Either way on, with one option.
	if e, opts, err := epoch(""); err != nil || e.Off || len(opts) != 1 || !(strings.HasPrefix(e.Source, "git") || strings.HasPrefix(e.Source, "fallback")) {
		t.Errorf("default: %v, %d options, %v", e, len(opts), err)
	}
	for _, bad := range []string{"yesterday", "-5"} {
		_, _, err := epoch("", "--source-date-epoch", bad)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	code, _, errOut := run(t, "solve", "--source-date-epoch", "soon", "hello-c.gcc")
	if code != exitUsage || !strings.Contains(errOut, "--source-date-epoch=soon") {
		t.Errorf("bad epoch: exit %d, %s", code, errOut)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "later")
	code, _, errOut = run(t, "solve", "hello-c.gcc")
	if code != exitUsage || !strings.Contains(errOut, "$SOURCE_DATE_EPOCH=later") {
		t.Errorf("bad $SOURCE_DATE_EPOCH: exit %d, %s", code, errOut)
	}
}
