package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
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
	wall := map[Mode]time.Duration{Minikit: 60 * time.Second, Sequential: 70 * time.Second, MinikitCache: 40 * time.Second, Bake: 80 * time.Second}
	for _, m := range Modes() {
		for _, s := range []State{Cold, Warm} {
			w := wall[m]
			if s == Warm {
				w /= 100
			}
			r.Rows = append(r.Rows, &Row{Mode: m, State: s, Command: m.Describe(),
				Runs: []Usage{{Wall: w, User: time.Second, Sys: time.Second / 2, MaxRSS: 40 << 20, DaemonCPU: 2 * w}}})
		}
	}
	r.finish()
	return r
}

func TestFinish(t *testing.T) {
	r := sample()
	if v, ok := r.ratio(Minikit, Bake, Cold); !ok || v != 0.75 {
		t.Errorf("minikit/bake cold = %v, %v; want 0.75", v, ok)
	}
	if len(r.Ratios) != 8 {
		t.Errorf("%d ratios, want 8", len(r.Ratios))
	}
	met := map[string]bool{}
	for _, x := range r.Targets {
		met[x.Goal] = x.Met
	}
	if len(met) != 5 || !met["cold minikit solve at most 0.8 x bake (bake without shared compiler caches)"] ||
		!met["minikit client memory under 100 MiB"] || !met["warm minikit solve at most 0.5 x bake"] ||
		!met["cold minikit solve --compiler-cache=false at most 0.8 x bake (parallelism alone)"] {
		t.Errorf("targets: %+v", r.Targets)
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
		"minikit solve --compiler-cache=false cold 1m0s",
		"minikit solve --parallel 1 warm 0.70s",
		"minikit solve (default) cold 40.00s",
		"docker-buildx bake cold 1m20s 1.50s 40.0 MiB 2m40s",
		"minikit / bake           0.75  0.75",
		"minikit-cache / minikit  0.67  0.67",
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
		Ratios []struct{ Wall float64 }
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) != 8 || doc.Rows[0].Median["wall_s"] != 60 || doc.Rows[0].Median["cpu_s"] != 1.5 ||
		doc.Rows[0].Median["max_rss_bytes"] != 40<<20 || len(doc.Ratios) != 8 {
		t.Errorf("json: %s", b.Bytes())
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
