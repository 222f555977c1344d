package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/timings"
)

func TestStandInRecipesAreBakesStandInsGroup(t *testing.T) {
	rs := StandInRecipes()
	// The 38 seed rows the stand-ins reproduce, less the one that fails
	// to build on purpose.
	if len(rs) != 37 {
		t.Errorf("%d recipes, want the 37 of the standins group", len(rs))
	}
	hcl, _, err := bake.Generate(llbdefs.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	_, group, ok := strings.Cut(string(hcl), `group "`+bake.GroupStandIns+`"`)
	if !ok {
		t.Fatal("no standins group in the generated bake file")
	}
	group, _, _ = strings.Cut(group, "]")
	for _, r := range rs {
		if !strings.Contains(group, `"`+bake.TargetName(r.Name)+`"`) {
			t.Errorf("%s is not in the standins group", r.Name)
		}
	}
	if n := strings.Count(group, `",`) + strings.Count(group, "\"\n"); n < len(rs) {
		t.Errorf("group has fewer targets (%d) than recipes (%d)", n, len(rs))
	}
}

func TestParse(t *testing.T) {
	for _, m := range Modes() {
		if got, err := ParseMode(string(m)); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMode("buildctl"); err == nil {
		t.Error("ParseMode accepted an unknown mode")
	}
	for only, want := range map[string][]State{"": {Cold, Warm}, "cold": {Cold}, "warm": {Warm}} {
		if got, err := ParseStates(only); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseStates(%q) = %v, %v", only, got, err)
		}
	}
	if _, err := ParseStates("hot"); err == nil {
		t.Error("ParseStates accepted hot")
	}
}

func TestParseStatCPU(t *testing.T) {
	// pid (comm with a space) state ppid ... utime stime cutime cstime ...
	line := "1234 (build kitd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 1000 200 20 0 30 0 5000 0 0\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 15 * time.Second; got != want { // (250+50+1000+200) ticks / 100
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("short line accepted")
	}
}

func TestMedian(t *testing.T) {
	us := []Usage{{Wall: 3 * time.Second, MaxRSS: 30}, {Wall: time.Second, MaxRSS: 10}, {Wall: 2 * time.Second, MaxRSS: 50}}
	if m := median(us); m.Wall != 2*time.Second || m.MaxRSS != 30 {
		t.Errorf("median of 3: %+v", m)
	}
	if m := median(us[:2]); m.Wall != 2*time.Second || m.MaxRSS != 20 {
		t.Errorf("median of 2: %+v", m)
	}
	if m := median(nil); m != (Usage{}) {
		t.Errorf("median of none: %+v", m)
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write(bytes.Repeat([]byte("a"), tailMax))
	b.Write([]byte("end"))
	if s := b.String(); len(s) != tailMax || !strings.HasSuffix(s, "aend") {
		t.Errorf("kept %d bytes ending %q", len(s), s[len(s)-4:])
	}
}

// sample is a result as Run leaves it.
func sample() *Result {
	r := &Result{Recipes: []string{"a", "b"}, CPUs: 2, Buildkitd: "v0.34.2", Export: "image store"}
	wall := map[Mode]time.Duration{Solve: 36 * time.Second, SolveLayers: 32 * time.Second, SolveLocked: 50 * time.Second, MinikitCache: 30 * time.Second,
		Minikit: 60 * time.Second, Sequential: 70 * time.Second, Bake: 80 * time.Second}
	for _, m := range Modes() {
		for _, s := range []State{Cold, Warm} {
			w := wall[m]
			if s == Warm {
				w /= 100
			}
			r.Rows = append(r.Rows, &Row{Mode: m, State: s, Command: m.Describe(),
				Runs: []Usage{{Wall: w, User: time.Second, Sys: time.Second / 2, MaxRSS: 40 << 20, DaemonCPU: 2 * w, Load: 1.5}}})
		}
	}
	for _, m := range []Mode{Solve, Bake} {
		row := &Row{Mode: m, State: LongLived, Command: m.Describe()}
		for i := range 3 {
			row.Runs = append(row.Runs, Usage{Wall: wall[m] / 100 * time.Duration(i+1)})
		}
		r.Rows = append(r.Rows, row)
	}
	r.Check = &Check{Modes: []Mode{Solve, Minikit}, OK: true, Recipes: []RecipeCheck{
		{Name: "a", Verdict: SameDigest, Digests: map[Mode]string{Solve: "sha256:1", Minikit: "sha256:1"}},
		{Name: "b", Verdict: SameBuild, Why: "writes files", Digests: map[Mode]string{Solve: "sha256:2", Minikit: "sha256:3"}},
	}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Profiles = map[Mode]*timings.Summary{Solve: timings.Summarize([]timings.Named{{Name: "a", Profile: &timings.Profile{
		Started: start, WallMS: 3000, Steps: []timings.Step{
			{ID: "x", Name: "RUN go build", Category: timings.Compile, StartMS: 500, RunningMS: 2000, Critical: true},
			{ID: "y", Name: "exporting to image", Category: timings.Export, StartMS: 2600, RunningMS: 400, Critical: true},
		}}}})}
	r.finish()
	return r
}

func TestFinish(t *testing.T) {
	r := sample()
	if v, ok := r.ratio(Minikit, Bake, Cold); !ok || v != 0.75 {
		t.Errorf("minikit/bake cold = %v, %v; want 0.75", v, ok)
	}
	// 10 pairs cold and warm, and solve/bake long-lived.
	if len(r.Ratios) != 21 {
		t.Errorf("%d ratios, want 21", len(r.Ratios))
	}
	if v, ok := r.ratio(Solve, Bake, LongLived); !ok || math.Abs(v-0.45) > 1e-9 {
		t.Errorf("solve/bake long-lived = %v, %v; want 0.45 (medians 0.72 s / 1.6 s)", v, ok)
	}
	met := map[string]bool{}
	for _, x := range r.Targets {
		met[x.Goal] = x.Met
	}
	want := map[string]bool{
		"cold minikit solve, sizes measured, at most 0.5 x bake":                              true, // 0.45
		"cold minikit solve, sizes measured, base layers measured before, at most 0.5 x bake": true, // 0.4
		"warm minikit solve, sizes measured, at most 0.25 x bake":                             false,
		"warm solve on a long-lived daemon (3 alternating pairs) at most 0.25 x bake":         false,
		"warm minikit solve under 2 s":                                                        true,
		"the optimizations leave the images as they are":                                      true,
		"minikit client memory under 100 MiB":                                                 true,
	}
	if !maps.Equal(met, want) {
		t.Errorf("targets:\n got %v\nwant %v", met, want)
	}
	r.Check.OK = false
	for _, x := range r.targets() {
		if strings.HasPrefix(x.Goal, "the optimizations") && (x.Met || !strings.Contains(x.Measured, "1 same digest, 1 same build")) {
			t.Errorf("check target %+v", x)
		}
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := squeeze(b.String())
	for _, want := range []string{
		"minikit solve --sizes=false --compiler-cache=false cold 1m0s",
		"minikit solve --sizes=false --compiler-cache=false --parallel 1 warm 0.70s",
		"minikit solve (default: sizes measured, compiler cache seeded) cold 36.00s",
		"docker-buildx bake cold 1m20s 1.50s 40.0 MiB 2m40s 1.50 1",
		"docker-buildx bake long-lived 1.60s",
		"solve / bake 0.45 (0.46) 0.45 (0.72) 0.45",
		"minikit / bake 0.75 (0.75) 0.75 (0.87) -",
		"b: same build: writes files",
		"The cold solve run",
		"Critical path: a",
	} {
		if !strings.Contains(out, squeeze(want)) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rows []struct {
			Mode   string
			State  string
			Median map[string]float64
		}
		Ratios   []struct{ Wall float64 }
		Profiles []struct {
			Mode     string
			Top      []struct{ Name string }
			Critical []struct{ Name string } `json:"critical_path"`
		}
		Check struct {
			OK      bool
			Recipes []struct{ Verdict string }
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) != 16 || doc.Rows[0].Median["wall_s"] != 36 || doc.Rows[0].Median["cpu_s"] != 1.5 ||
		doc.Rows[0].Median["max_rss_bytes"] != 40<<20 || doc.Rows[0].Median["load"] != 1.5 || len(doc.Ratios) != 21 {
		t.Errorf("json: %s", b.Bytes())
	}
	if len(doc.Profiles) != 1 || doc.Profiles[0].Mode != "solve" || len(doc.Profiles[0].Top) != 2 || len(doc.Profiles[0].Critical) != 2 ||
		doc.Profiles[0].Top[0].Name != "RUN go build" {
		t.Errorf("json profiles: %+v", doc.Profiles)
	}
	if !doc.Check.OK || len(doc.Check.Recipes) != 2 || doc.Check.Recipes[1].Verdict != "same build" {
		t.Errorf("json check: %+v", doc.Check)
	}
}

// squeeze turns every run of spaces into one.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestTopTenSteps checks that a cold profile of more than ten steps is
// shown, in the table and the JSON, as its ten longest, longest first.
func TestTopTenSteps(t *testing.T) {
	r := sample()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var steps []timings.Step
	for i := range 12 {
		steps = append(steps, timings.Step{ID: fmt.Sprint("s", i), Name: fmt.Sprintf("RUN step-%02d", i), Category: timings.Compile,
			StartMS: int64(i) * 10, RunningMS: int64(i+1) * 100})
	}
	r.Profiles = map[Mode]*timings.Summary{Solve: timings.Summarize([]timings.Named{{Name: "a", Profile: &timings.Profile{
		Started: start, WallMS: 2000, Steps: steps}}})}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "Top 10 steps by running time (12 distinct steps") {
		t.Errorf("table lacks the top 10 of 12 steps:\n%s", out)
	}
	// The two shortest are left out; the longest comes first.
	if strings.Contains(out, "RUN step-00") || strings.Contains(out, "RUN step-01") {
		t.Errorf("table lists a step outside the top 10:\n%s", out)
	}
	if i, j := strings.Index(out, "RUN step-11"), strings.Index(out, "RUN step-02"); i < 0 || j < 0 || i > j {
		t.Errorf("top steps not longest first:\n%s", out)
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Profiles []struct {
			Top []struct {
				Name     string  `json:"name"`
				RunningS float64 `json:"running_s"`
			} `json:"top"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Profiles) != 1 || len(doc.Profiles[0].Top) != 10 {
		t.Fatalf("json profiles: %s", b.Bytes())
	}
	top := doc.Profiles[0].Top
	if top[0].Name != "RUN step-11" || top[0].RunningS != 1.2 || top[9].Name != "RUN step-02" {
		t.Errorf("json top: %+v", top)
	}
}
