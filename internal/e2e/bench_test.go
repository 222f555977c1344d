package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// benchDoc is the part of `minikit bench --format json` this test reads.
type benchDoc struct {
	Recipes []string `json:"recipes"`
	CPUs    int      `json:"cpus"`
	Rows    []struct {
		Mode   string       `json:"mode"`
		State  string       `json:"state"`
		Median benchUsage   `json:"median"`
		Runs   []benchUsage `json:"runs"`
	} `json:"rows"`
	Ratios []struct {
		Of    string   `json:"of"`
		To    string   `json:"to"`
		State string   `json:"state"`
		Wall  *float64 `json:"wall"`
	} `json:"ratios"`
	Targets []struct {
		Goal     string `json:"goal"`
		Measured string `json:"measured"`
	} `json:"targets"`
}

type benchUsage struct {
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"cpu_s"`
	MaxRSS     int64   `json:"max_rss_bytes"`
	DaemonCPUS float64 `json:"daemon_cpu_s"`
}

// TestBench runs `minikit bench` once on three small recipes, cold and
// warm, every mode, and checks that every row is there with sane
// numbers. It asserts nothing about which is faster: timings depend on
// the machine.
func TestBench(t *testing.T) {
	requireBuildEnv(t)
	bx := requireBuildx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	recipes := []string{"hello-py.python", "hello-c.gcc.scratch", "hello-go.golang-alpine.scratch"}
	args := append([]string{"bench", "--runs", "1", "--format", "json", "--buildx", bx.bin, "--dir", t.TempDir()}, recipes...)
	code, stdout, stderr := minikit(t, ctx, args...)
	if code != 0 {
		t.Fatalf("minikit bench exited %d\n%s\n%s", code, stdout, tail(stderr, 4000))
	}
	var doc benchDoc
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("bench output: %v\n%s", err, stdout)
	}
	if len(doc.Recipes) != len(recipes) || doc.CPUs < 1 {
		t.Errorf("recipes %q, cpus %d", doc.Recipes, doc.CPUs)
	}
	want := map[string]bool{}
	for _, m := range []string{"minikit", "sequential", "minikit-cache", "bake"} {
		for _, s := range []string{"cold", "warm"} {
			want[m+" "+s] = true
		}
	}
	for _, r := range doc.Rows {
		k := r.Mode + " " + r.State
		if !want[k] {
			t.Errorf("unexpected or repeated row %s", k)
			continue
		}
		delete(want, k)
		if len(r.Runs) != 1 {
			t.Errorf("%s: %d runs, want 1", k, len(r.Runs))
		}
		u := r.Median
		if u.WallS <= 0 || u.CPUS <= 0 || u.MaxRSS < 1<<20 || u.DaemonCPUS < 0 || u.CPUS > 100*u.WallS {
			t.Errorf("%s: implausible numbers %+v", k, u)
		}
		if r.State == "cold" && u.DaemonCPUS <= 0 {
			t.Errorf("%s: a cold build with no daemon CPU time: %+v", k, u)
		}
	}
	for k := range want {
		t.Errorf("row %s missing", k)
	}
	if len(doc.Ratios) != 8 {
		t.Errorf("%d ratios, want 8 (4 pairs, cold and warm)", len(doc.Ratios))
	}
	for _, r := range doc.Ratios {
		if r.Wall == nil || *r.Wall <= 0 {
			t.Errorf("ratio %s/%s %s: %v", r.Of, r.To, r.State, r.Wall)
		}
	}
	if len(doc.Targets) == 0 {
		t.Error("no targets reported")
	}
	t.Logf("bench:\n%s", stdout)
}
