package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/llbdefs"
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
		{[]string{"--format", "yaml", "hello-c.gcc", "hello-c.gcc"}, "text or json"},
		{[]string{"hello-c.gcc", "hello-c.gcc", "--format", "yaml"}, "text or json"},
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
	if got, err := sourceDateEpoch("1700000000"); err != nil || got.Unix() != 1700000000 {
		t.Errorf("seconds: %v, %v", got, err)
	}
	for _, bad := range []string{"yesterday", "-5", "0"} {
		if _, err := sourceDateEpoch(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// In minikit's repository (go test runs in cmd/minikit): the last
	// commit touching samples/. Elsewhere (an exported tree): an error.
	if got, err := sourceDateEpoch("git"); err == nil && got.Year() < 2020 {
		t.Errorf("git: %v", got)
	}
	code, _, errOut := run(t, "solve", "--source-date-epoch", "soon", "hello-c.gcc")
	if code != exitUsage || !strings.Contains(errOut, "--source-date-epoch") {
		t.Errorf("bad epoch: exit %d, %s", code, errOut)
	}
}
