package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/llbdefs"
)

func recipeNames(rs []llbdefs.Recipe) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// On the stand-ins, --all skips the upstream-only recipes only: a partial
// one is built and run like a faithful one.
func TestSplitOfflineBuildsPartialRecipes(t *testing.T) {
	rs := []llbdefs.Recipe{
		{Name: "a.faithful", StandIn: llbdefs.Offline},
		{Name: "b.partial", StandIn: llbdefs.Partial, Offline: "a glibc JRE stands in for a musl one"},
		{Name: "c.upstream", StandIn: llbdefs.Online, Offline: "needs the apk index"},
	}
	build, skip := splitOffline(rs, true)
	if got := strings.Join(recipeNames(build), ","); got != "a.faithful,b.partial" {
		t.Errorf("built %s, want a.faithful,b.partial", got)
	}
	if got := strings.Join(recipeNames(skip), ","); got != "c.upstream" {
		t.Errorf("skipped %s, want c.upstream", got)
	}
	if got := upstreamOnly(skip[0]); !strings.Contains(got, "needs the apk index") {
		t.Errorf("skip reason %q lacks the recipe's own reason", got)
	}
	build, skip = splitOffline(rs, false)
	if len(build) != 3 || len(skip) != 0 {
		t.Errorf("not on stand-ins: built %v, skipped %v; want all built", recipeNames(build), recipeNames(skip))
	}
}

// `minikit list` gives every upstream-only or partial seed row its own
// reason, in the table and in JSON.
func TestListGivesEachRowNotOfflineItsReason(t *testing.T) {
	code, out, _ := run(t, "list")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	code, js, _ := run(t, "list", "--json")
	if code != exitOK {
		t.Fatalf("list --json: exit %d", code)
	}
	var rows []listRow
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		t.Fatal(err)
	}
	byName := map[string]listRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	online := 0
	for _, r := range llbdefs.Catalog() {
		if r.StandIn == llbdefs.Offline {
			continue
		}
		if r.StandIn == llbdefs.Online {
			online++
		}
		if r.Offline == "" {
			t.Errorf("%s: no reason in the catalog", r.Name)
			continue
		}
		if !strings.Contains(lines[r.Name], string(r.StandIn)+": "+r.Offline) {
			t.Errorf("list line of %s lacks its reason %q:\n%s", r.Name, r.Offline, lines[r.Name])
		}
		if got := byName[r.Name].Offline; got != r.Offline {
			t.Errorf("list --json %s: offline %q, want %q", r.Name, got, r.Offline)
		}
	}
	if online == 0 {
		t.Error("no upstream-only rows in the catalog")
	}
}
