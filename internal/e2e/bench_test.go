package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
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
		Met      bool   `json:"met"`
	} `json:"targets"`
	Profiles []struct {
		Mode string `json:"mode"`
		Top  []struct {
			Name     string  `json:"name"`
			Category string  `json:"category"`
			RunningS float64 `json:"running_s"`
		} `json:"top"`
		Critical []struct {
			Name string `json:"name"`
		} `json:"critical_path"`
	} `json:"profiles"`
	Check *struct {
		OK      bool     `json:"ok"`
		Modes   []string `json:"modes"`
		Recipes []struct {
			Name    string            `json:"name"`
			Verdict string            `json:"verdict"`
			Why     string            `json:"why"`
			Digests map[string]string `json:"digests"`
		} `json:"recipes"`
	} `json:"check"`
}

type benchUsage struct {
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"cpu_s"`
	MaxRSS     int64   `json:"max_rss_bytes"`
	DaemonCPUS float64 `json:"daemon_cpu_s"`
}

// TestBench runs `minikit bench` once on three small recipes, cold and
// warm, in the modes that compile differently (solve: the seeded compiler
// cache; solve-locked: the locked one; minikit: none) and bake, then two
// long-lived pairs, and checks that every row is there with sane numbers,
// that the cold solves' profiles (their top steps, critical path) and the
// image check are reported, and that the check passes: every recipe got
// the same manifest digest in every mode, the optimizations do not change
// the images. It asserts nothing about which is faster: timings depend on
// the machine. The other modes (solve-layers, minikit-cache) compile as
// solve does; they are left out to keep the test short, as it runs in CI.
func TestBench(t *testing.T) {
	requireBuildEnv(t)
	bx := requireBuildx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	recipes := []string{"hello-py.python", "hello-c.gcc.scratch", "hello-go.golang-alpine.scratch"}
	// A port of its own for the bench's registry: none of these recipes
	// runs pip, which would want the stand-ins' package index address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	registry := l.Addr().String()
	l.Close()
	modes := []string{"solve", "solve-locked", "minikit", "bake"}
	args := append([]string{"bench", "--runs", "1", "--pairs", "2", "--format", "json", "--buildx", bx.bin, "--dir", t.TempDir(),
		"--registry", registry, "--modes", strings.Join(modes, ",")}, recipes...)
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
	want := map[string]int{"solve long-lived": 2, "bake long-lived": 2}
	for _, m := range modes {
		for _, s := range []string{"cold", "warm"} {
			want[m+" "+s] = 1
		}
	}
	for _, r := range doc.Rows {
		k := r.Mode + " " + r.State
		n, ok := want[k]
		if !ok {
			t.Errorf("unexpected or repeated row %s", k)
			continue
		}
		delete(want, k)
		if len(r.Runs) != n {
			t.Errorf("%s: %d runs, want %d", k, len(r.Runs), n)
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
	// solve/bake, solve-locked/bake, minikit/bake and solve/solve-locked,
	// cold and warm, and solve/bake long-lived.
	if len(doc.Ratios) != 9 {
		t.Errorf("%d ratios, want 9", len(doc.Ratios))
	}
	for _, r := range doc.Ratios {
		if r.Wall == nil || *r.Wall <= 0 {
			t.Errorf("ratio %s/%s %s: %v", r.Of, r.To, r.State, r.Wall)
		}
	}
	if len(doc.Targets) == 0 {
		t.Error("no targets reported")
	}
	profiled := map[string]bool{}
	for _, p := range doc.Profiles {
		profiled[p.Mode] = true
		if len(p.Top) == 0 || len(p.Top) > 10 || len(p.Critical) == 0 || p.Top[0].RunningS <= 0 {
			t.Errorf("%s profile: top %+v, critical path %+v", p.Mode, p.Top, p.Critical)
		}
		for i := 1; i < len(p.Top); i++ {
			if p.Top[i].RunningS > p.Top[i-1].RunningS {
				t.Errorf("%s profile: top steps not longest first: %+v", p.Mode, p.Top)
			}
		}
	}
	if !profiled["solve"] || !profiled["solve-locked"] || len(profiled) != 2 {
		t.Errorf("profiles of %v; want solve and solve-locked", profiled)
	}
	c := doc.Check
	if c == nil || !slices.Equal(c.Modes, []string{"solve", "solve-locked", "minikit"}) || len(c.Recipes) != len(recipes) || !c.OK {
		t.Fatalf("image check %+v", doc.Check)
	}
	for _, r := range c.Recipes {
		// All three recipes are reproducible (no step writes a file
		// dated by the build): the same manifest in every mode.
		if r.Verdict != "same digest" || len(r.Digests) != len(c.Modes) {
			t.Errorf("%s: %s (%s): %v", r.Name, r.Verdict, r.Why, r.Digests)
		}
		for m, d := range r.Digests {
			if !strings.HasPrefix(d, "sha256:") || d != r.Digests["solve"] {
				t.Errorf("%s: %s built %q, solve %q", r.Name, m, d, r.Digests["solve"])
			}
		}
	}
	t.Logf("bench:\n%s", stdout)
}

// timingsDoc is the part of `solve --timings --format json` this test
// reads.
type timingsDoc struct {
	Recipes []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Timings *struct {
			Started time.Time `json:"started"`
			WallMS  int64     `json:"wall_ms"`
			Steps   []struct {
				ID        string `json:"id"`
				Name      string `json:"name"`
				Category  string `json:"category"`
				Cached    bool   `json:"cached"`
				StartMS   int64  `json:"start_ms"`
				RunningMS int64  `json:"running_ms"`
				Critical  bool   `json:"critical"`
			} `json:"steps"`
		} `json:"timings"`
	} `json:"recipes"`
}

// TestSolveTimings solves two recipes that share a build stage with
// --timings: each recipe's JSON profile has its pull, copy, compile,
// export and measure steps, the shared RUN under one ID in both, a
// critical path ending in the measurement; the table lists the steps
// and the critical path. Without --timings, the JSON has none.
func TestSolveTimings(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	names := []string{"hello-c.gcc.scratch", "hello-c.gcc.alpine"}
	code, stdout, stderr := minikit(t, ctx, append([]string{"solve", "--progress", "quiet", "--timings", "--format", "json"}, names...)...)
	if code != 0 {
		t.Fatalf("solve --timings exited %d\n%s", code, tail(stderr, 4000))
	}
	var doc timingsDoc
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	runs := map[string]string{} // RUN step name -> ID, per recipe
	for _, r := range doc.Recipes {
		p := r.Timings
		if p == nil || p.Started.IsZero() || p.WallMS <= 0 || len(p.Steps) == 0 {
			t.Fatalf("%s: timings %+v", r.Name, p)
		}
		cats := map[string]bool{}
		var last string
		for _, s := range p.Steps {
			cats[s.Category] = true
			if s.RunningMS < 0 || s.ID == "" || s.Name == "" {
				t.Errorf("%s: step %+v", r.Name, s)
			}
			if s.Category == "compile" {
				if id, ok := runs[s.Name]; ok && id != s.ID {
					t.Errorf("%s: the shared %q has ID %s here, %s in the other", r.Name, s.Name, s.ID, id)
				}
				runs[s.Name] = s.ID
			}
			if s.Critical {
				last = s.Category
			}
		}
		for _, c := range []string{"pull", "copy", "compile", "export", "measure"} {
			if !cats[c] {
				t.Errorf("%s: no %s step in %+v", r.Name, c, p.Steps)
			}
		}
		if last != "measure" {
			t.Errorf("%s: the critical path ends with a %q step, not the measurement", r.Name, last)
		}
	}
	if len(runs) != 1 {
		t.Errorf("RUN steps %v: want the one gcc build both recipes share", runs)
	}

	code, stdout, stderr = minikit(t, ctx, append([]string{"solve", "--progress", "quiet", "--timings"}, names...)...)
	if code != 0 {
		t.Fatalf("solve --timings exited %d\n%s", code, tail(stderr, 4000))
	}
	for _, want := range []string{"Where the time went: 2 targets", "Top ", "Critical path: hello-c.gcc.", "Time per kind of work", "compile"} {
		if !bytes.Contains(stdout, []byte(want)) {
			t.Errorf("the table lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, stderr = minikit(t, ctx, append([]string{"solve", "--progress", "quiet", "--format", "json"}, names...)...)
	if code != 0 {
		t.Fatalf("solve exited %d\n%s", code, tail(stderr, 4000))
	}
	if bytes.Contains(stdout, []byte(`"timings"`)) {
		t.Error("timings in the JSON without --timings")
	}
}
