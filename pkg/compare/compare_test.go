package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
)

// built is a recipe with an image of the given sizes.
func built(name string, uncompressed, compressed int64) report.Recipe {
	program, _, _ := strings.Cut(name, ".")
	return report.Recipe{
		Name: name, Program: program, BuildImage: "b", RunImage: "r", Status: report.StatusOK, Expect: "0",
		Image: &measure.Image{Uncompressed: uncompressed, Compressed: compressed, Platform: "linux/amd64"},
		Run:   &report.RunOutcome{ExitCode: 0, Expected: true},
	}
}

func failed(name string) report.Recipe {
	program, _, _ := strings.Cut(name, ".")
	return report.Recipe{Name: name, Program: program, Status: report.StatusFailed, Expect: "0", Error: "process \"/bin/sh -c go build\" did not complete successfully: exit code: 1\nmore"}
}

// fixtures are an old and a new report: hello-go.golang.scratch grows by
// 8 % uncompressed and 3 % compressed, hello-c.gcc.scratch shrinks,
// hello-c.gcc-static.scratch stays, pyds.python goes from failing to
// built, hello-rust.rust from built to failing, whatsmyip.golang.scratch
// now exits 2, hello-py.python is removed and hello-java.openjdk added.
func fixtures() (oldRep, newRep *report.Report) {
	oldRep = &report.Report{
		Generated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Machine: "ci, linux/amd64", StandIns: true,
		Recipes: []report.Recipe{
			built("hello-c.gcc.scratch", 17_920, 2_260),
			built("hello-c.gcc-static.scratch", 764_000, 340_000),
			built("hello-go.golang.scratch", 2_400_000, 1_430_000),
			failed("pyds.python"),
			built("hello-rust.rust", 792_000_000, 286_000_000),
			built("whatsmyip.golang.scratch", 8_850_000, 4_000_000),
			built("hello-py.python", 168_000_000, 60_000_000),
		},
	}
	newRep = &report.Report{
		Generated: time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC), Machine: "ci, linux/amd64", StandIns: true,
		Recipes: []report.Recipe{
			built("hello-c.gcc.scratch", 17_000, 2_200),
			built("hello-c.gcc-static.scratch", 764_000, 340_000),
			built("hello-go.golang.scratch", 2_592_000, 1_472_900),
			built("pyds.python", 620_000_000, 229_000_000),
			failed("hello-rust.rust"),
			built("whatsmyip.golang.scratch", 8_850_000, 4_000_000),
			built("hello-java.openjdk", 468_000_000, 226_000_000),
		},
	}
	newRep.Recipes[5].Run = &report.RunOutcome{ExitCode: 2, Expected: false, Reason: "x509: certificate signed by unknown authority"}
	return oldRep, newRep
}

func byName(t *testing.T, c *Comparison, name string) Entry {
	t.Helper()
	for _, e := range c.Recipes {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s in %+v", name, c.Recipes)
	return Entry{}
}

func TestReports(t *testing.T) {
	oldRep, newRep := fixtures()
	c, err := Reports(oldRep, newRep, Files("old.json", "new.json"))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range c.Recipes {
		order = append(order, e.Name)
	}
	wantOrder := "hello-c.gcc.scratch hello-c.gcc-static.scratch hello-go.golang.scratch pyds.python hello-rust.rust whatsmyip.golang.scratch hello-java.openjdk hello-py.python"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("order %s, want %s", got, wantOrder)
	}

	g := byName(t, c, "hello-go.golang.scratch")
	if g.Kind != Changed || g.OutcomeChanged || *g.Uncompressed.Change != 192_000 || *g.Compressed.Change != 42_900 {
		t.Errorf("hello-go.golang.scratch: %+v", g)
	}
	if p := *g.Uncompressed.Percent; p < 7.999 || p > 8.001 {
		t.Errorf("hello-go.golang.scratch: uncompressed +%v%%, want 8", p)
	}
	if p := *g.Compressed.Percent; p < 2.999 || p > 3.001 {
		t.Errorf("hello-go.golang.scratch: compressed +%v%%, want 3", p)
	}
	if s := byName(t, c, "hello-c.gcc.scratch"); s.Kind != Changed || *s.Uncompressed.Change != -920 {
		t.Errorf("hello-c.gcc.scratch: %+v", s)
	}
	if s := byName(t, c, "hello-c.gcc-static.scratch"); s.Kind != Unchanged || *s.Uncompressed.Change != 0 {
		t.Errorf("hello-c.gcc-static.scratch: %+v", s)
	}
	p := byName(t, c, "pyds.python")
	if p.Kind != Changed || !p.OutcomeChanged || p.Regressed || p.OldStatus != report.StatusFailed || p.NewStatus != report.StatusOK ||
		p.Uncompressed.Old != nil || *p.Uncompressed.New != 620_000_000 || p.Uncompressed.Change != nil {
		t.Errorf("pyds.python: %+v", p)
	}
	r := byName(t, c, "hello-rust.rust")
	if r.Kind != Changed || !r.OutcomeChanged || !r.Regressed || r.Uncompressed.New != nil || !strings.HasPrefix(r.Reason, `process "/bin/sh -c go build"`) || strings.Contains(r.Reason, "more") {
		t.Errorf("hello-rust.rust: %+v", r)
	}
	w := byName(t, c, "whatsmyip.golang.scratch")
	if w.Kind != Changed || !w.OutcomeChanged || !w.Regressed || w.OldOutcome != "ok, exit 0" || w.NewOutcome != "ok, exit 2 (unexpected)" || w.Reason == "" {
		t.Errorf("whatsmyip.golang.scratch: %+v", w)
	}
	if a := byName(t, c, "hello-java.openjdk"); a.Kind != Added || a.OldStatus != "" || a.Uncompressed.Old != nil || *a.Uncompressed.New != 468_000_000 {
		t.Errorf("hello-java.openjdk: %+v", a)
	}
	if d := byName(t, c, "hello-py.python"); d.Kind != Removed || d.NewStatus != "" || d.Uncompressed.New != nil {
		t.Errorf("hello-py.python: %+v", d)
	}
	s := c.Summary
	if s.Changed != 5 || s.Added != 1 || s.Removed != 1 || s.Unchanged != 1 || s.OutcomeChanges != 3 || s.Regressions != 2 || s.Violations != 0 {
		t.Errorf("summary %+v", s)
	}
	// Built in both: gcc.scratch, gcc-static.scratch, golang.scratch, whatsmyip.
	if *s.Uncompressed.Old != 17_920+764_000+2_400_000+8_850_000 || *s.Uncompressed.New != 17_000+764_000+2_592_000+8_850_000 {
		t.Errorf("summary uncompressed %d -> %d", *s.Uncompressed.Old, *s.Uncompressed.New)
	}
	if len(c.Violations) != 0 || c.Limits != nil || len(c.Notes) != 0 {
		t.Errorf("no limits given: violations %v, limits %v, notes %v", c.Violations, c.Limits, c.Notes)
	}
	if c.Old.File != "old.json" || c.New.Recipes != 7 || !c.Old.StandIns {
		t.Errorf("sources %+v %+v", c.Old, c.New)
	}
	// The comparison shares no memory with the reports.
	newRep.Recipes[2].Image.Uncompressed = 1
	if *g.Uncompressed.New != 2_592_000 {
		t.Errorf("the comparison follows a change of the report")
	}
}

func limitsOf(t *testing.T, specs ...string) []Limit {
	t.Helper()
	var out []Limit
	for _, s := range specs {
		l, err := ParseLimit(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func violations(c *Comparison) string {
	var vs []string
	for _, v := range c.Violations {
		vs = append(vs, v.Recipe+" "+string(v.Metric)+" "+v.Limit)
	}
	return strings.Join(vs, ", ")
}

func TestGrowthLimits(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		uncompressed, compressed []string
		want                     string
	}{
		{"relative", []string{"5%"}, nil, "hello-go.golang.scratch uncompressed 5%"},
		{"loose", []string{"8%"}, nil, ""}, // exactly 8 %: allowed
		{"absolute", []string{"100kB"}, nil, "hello-go.golang.scratch uncompressed 100 kB"},
		{"absolute loose", []string{"192kB"}, nil, ""},
		{"both kinds", []string{"5%", "100kB"}, nil, "hello-go.golang.scratch uncompressed 5%, hello-go.golang.scratch uncompressed 100 kB"},
		{"per name looser", []string{"5%", "hello-go.*=10%"}, nil, ""},
		{"per name tighter", []string{"10%", "hello-go.golang.scratch=1%"}, nil, "hello-go.golang.scratch uncompressed hello-go.golang.scratch=1%"},
		{"zero", []string{"0%"}, nil, "hello-go.golang.scratch uncompressed 0%"},
		{"compressed", nil, []string{"2%"}, "hello-go.golang.scratch compressed 2%"},
		{"compressed loose", []string{"10%"}, []string{"5%"}, ""},
		{"removed and added are not checked", []string{"hello-java.*=0%", "hello-py.*=0%", "pyds.*=0%"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldRep, newRep := fixtures()
			c, err := Reports(oldRep, newRep, MaxGrowth(Uncompressed, limitsOf(t, tc.uncompressed...)...), MaxGrowth(Compressed, limitsOf(t, tc.compressed...)...))
			if err != nil {
				t.Fatal(err)
			}
			if got := violations(c); got != tc.want {
				t.Errorf("violations %q, want %q", got, tc.want)
			}
			if c.Summary.Violations != len(c.Violations) {
				t.Errorf("summary counts %d violations, %d listed", c.Summary.Violations, len(c.Violations))
			}
		})
	}
	oldRep, newRep := fixtures()
	c, err := Reports(oldRep, newRep, MaxGrowth(Uncompressed, limitsOf(t, "5%")...))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Violations[0]
	if v.Old != 2_400_000 || v.New != 2_592_000 || v.Growth != 192_000 || v.Percent == nil {
		t.Errorf("violation %+v", v)
	}
	if got, want := v.String(), "hello-go.golang.scratch: uncompressed 2.40 MB -> 2.59 MB, +192 kB (+8.0%), over its growth limit of 5%"; got != want {
		t.Errorf("violation %q, want %q", got, want)
	}
}

func TestReportsErrors(t *testing.T) {
	oldRep, newRep := fixtures()
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"unmatched", []Option{MaxGrowth(Uncompressed, limitsOf(t, "hello-go.golang.scrach=5%")...), LimitFlag(Uncompressed, "--max-growth")},
			`--max-growth hello-go.golang.scrach=5%: "hello-go.golang.scrach" matches none of the 8 recipe(s)`},
		{"twice", []Option{MaxGrowth(Compressed, limitsOf(t, "5%", "6%")...)}, "compressed 6%: every recipe already has a relative limit"},
		{"metric", []Option{MaxGrowth("docker", limitsOf(t, "5%")...)}, `unknown metric "docker"`},
	} {
		_, err := Reports(oldRep, newRep, tc.opts...)
		if !errors.Is(err, ErrBadLimit) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadLimit with %q", tc.name, err, tc.want)
		}
	}
	if _, err := Reports(nil, newRep); !errors.Is(err, ErrNotReport) {
		t.Errorf("nil old report: %v", err)
	}
	dup := *newRep
	dup.Recipes = append(append([]report.Recipe{}, newRep.Recipes...), failed("pyds.python"))
	if _, err := Reports(oldRep, &dup); !errors.Is(err, ErrNotReport) || !strings.Contains(err.Error(), "pyds.python is listed twice") {
		t.Errorf("duplicate recipe: %v", err)
	}
}

// A recipe listed once per platform is compared per platform.
func TestPlatforms(t *testing.T) {
	amd, arm := built("hello-c.gcc.scratch", 1000, 100), built("hello-c.gcc.scratch", 1200, 120)
	arm.Image.Platform = "linux/arm64"
	oldRep := &report.Report{Recipes: []report.Recipe{amd, arm}}
	amd2, arm2 := built("hello-c.gcc.scratch", 1000, 100), built("hello-c.gcc.scratch", 1500, 150)
	arm2.Image.Platform = "linux/arm64"
	newRep := &report.Report{Recipes: []report.Recipe{amd2, arm2}}
	c, err := Reports(oldRep, newRep, MaxGrowth(Uncompressed, limitsOf(t, "10%")...))
	if err != nil {
		t.Fatal(err)
	}
	if got := violations(c); got != "hello-c.gcc.scratch [linux/arm64] uncompressed 10%" {
		t.Errorf("violations %q", got)
	}
	if c.Summary.Unchanged != 1 || c.Summary.Changed != 1 {
		t.Errorf("summary %+v", c.Summary)
	}
	for _, in := range []string{
		`{"recipes": [{"name": "x", "image": {"platform": "linux/amd64"}}, {"name": "x"}]}`,
		`{"recipes": [{"name": "x"}, {"name": "x", "image": {"platform": "linux/amd64"}}]}`,
		`{"recipes": [{"name": "x", "image": {"platform": "linux/amd64"}}, {"name": "x", "image": {"platform": "linux/amd64"}}]}`,
	} {
		if _, err := Read(strings.NewReader(in)); !errors.Is(err, ErrNotReport) || !strings.Contains(err.Error(), "x is listed twice") {
			t.Errorf("Read(%s) = %v, want x listed twice", in, err)
		}
	}
	two := `{"recipes": [{"name": "x", "image": {"platform": "linux/amd64"}}, {"name": "x", "image": {"platform": "linux/arm64"}}, {"name": "y"}]}`
	if _, err := Read(strings.NewReader(two)); err != nil {
		t.Errorf("Read(%s) = %v", two, err)
	}
}

func TestStandInsNote(t *testing.T) {
	oldRep, newRep := fixtures()
	newRep.StandIns = false
	c, err := Reports(oldRep, newRep)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "old report was built on stand-ins, the new one on upstream images") {
		t.Errorf("notes %q", c.Notes)
	}
}

// A recipe run in one report only has not changed outcome; a new exit
// code has.
func TestOutcomeChanged(t *testing.T) {
	notRun, ran, ran127 := built("x", 1, 1), built("x", 1, 1), built("x", 1, 1)
	notRun.Run = nil
	ran127.Run = &report.RunOutcome{ExitCode: 127}
	for _, tc := range []struct {
		o, n report.Recipe
		want bool
	}{
		{notRun, ran, false}, {ran, notRun, false}, {ran, ran, false}, {ran, ran127, true}, {ran127, failed("x"), true},
	} {
		c, err := Reports(&report.Report{Recipes: []report.Recipe{tc.o}}, &report.Report{Recipes: []report.Recipe{tc.n}})
		if err != nil {
			t.Fatal(err)
		}
		if e := c.Recipes[0]; e.OutcomeChanged != tc.want || (e.Kind == Changed) != (tc.want || sizeChanged(e.Uncompressed)) {
			t.Errorf("%q -> %q: %+v, want outcome changed %v", tc.o.Outcome(), tc.n.Outcome(), e, tc.want)
		}
	}
}

func TestNoSizesNote(t *testing.T) {
	oldRep, newRep := fixtures()
	for i := range newRep.Recipes {
		newRep.Recipes[i].Image = nil
	}
	c, err := Reports(oldRep, newRep)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "the new report has no image sizes") {
		t.Errorf("notes %q", c.Notes)
	}
}

func writeJSON(t *testing.T, rep *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := report.WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRead(t *testing.T) {
	oldRep, _ := fixtures()
	rep, err := Read(bytes.NewReader(writeJSON(t, oldRep)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Recipes) != 7 || rep.Recipes[2].Image.Uncompressed != 2_400_000 || !rep.Generated.Equal(oldRep.Generated) {
		t.Errorf("read back %+v", rep)
	}
	if _, err := Read(strings.NewReader(`{"version": 1, "recipes": []}`)); err != nil {
		t.Errorf("version 1: %v", err)
	}
	for _, tc := range []struct {
		name, in string
		is       error
		want     string
	}{
		{"empty", "  \n", ErrNotReport, "empty"},
		{"not JSON", "NAME OUTCOME\nhello-c.gcc ok\n", ErrNotReport, "invalid character"},
		{"array", `[{"name": "x"}]`, ErrNotReport, "cannot unmarshal array"},
		{"null", `null`, ErrNotReport, "null"},
		{"no recipes", `{"generated": "2026-01-02T03:04:05Z", "daemon": "x"}`, ErrNotReport, `no "recipes" array`},
		{"recipes null", `{"recipes": null}`, ErrNotReport, `no "recipes" array`},
		{"recipes wrong type", `{"recipes": {"name": "x"}}`, ErrNotReport, "cannot unmarshal"},
		{"size wrong type", `{"recipes": [{"name": "x", "image": {"uncompressed": "big"}}]}`, ErrNotReport, "cannot unmarshal"},
		{"negative size", `{"recipes": [{"name": "x", "image": {"uncompressed": -1}}]}`, ErrNotReport, "x has a negative size"},
		{"no name", `{"recipes": [{"status": "ok"}]}`, ErrNotReport, "recipe 0 has no name"},
		{"twice", `{"recipes": [{"name": "x"}, {"name": "x"}]}`, ErrNotReport, "x is listed twice"},
		{"trailing", `{"recipes": []} {}`, ErrNotReport, "invalid character"},
		{"version 2", `{"version": 2, "recipes": []}`, ErrVersion, "version 2; this minikit reads version 1"},
		{"version text", `{"version": "1.0", "recipes": []}`, ErrNotReport, `"version" is "1.0"`},
	} {
		_, err := Read(strings.NewReader(tc.in))
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.is, tc.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	oldRep, _ := fixtures()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, writeJSON(t, oldRep), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(good); err != nil {
		t.Errorf("ReadFile: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"generated": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); !errors.Is(err, ErrNotReport) || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("ReadFile(bad) = %v, want ErrNotReport naming the file", err)
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := ReadFile(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist naming the file", err)
	}
}

func comparison(t *testing.T, limits ...string) *Comparison {
	t.Helper()
	oldRep, newRep := fixtures()
	c, err := Reports(oldRep, newRep, Files("old.json", "new.json"), MaxGrowth(Uncompressed, limitsOf(t, limits...)...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, comparison(t, "5%")); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"old:  old.json, 2026-01-02T03:04:05Z, stand-ins, 7 recipe(s)",
		"NAME ", "KIND", "COMPRESSED",
		"hello-go.golang.scratch", "2.40 MB -> 2.59 MB", "+192 kB (+8.0%)", "+42.9 kB (+3.0%)", "uncompressed over 5%",
		"hello-c.gcc.scratch", "-920 B (-5.1%)",
		"pyds.python", "failed -> ok, exit 0", "- -> 620 MB",
		"hello-rust.rust", "ok, exit 0 -> failed", "regressed",
		"hello-java.openjdk", "added",
		"hello-py.python", "removed",
		"5 changed, 1 added, 1 removed, 1 unchanged; 3 outcome change(s), 2 regression(s); built in both, uncompressed",
		"over its growth limit: hello-go.golang.scratch: uncompressed 2.40 MB -> 2.59 MB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hello-c.gcc-static.scratch") {
		t.Errorf("table lists the unchanged recipe:\n%s", out)
	}
	b.Reset()
	if err := WriteTable(&b, comparison(t), AllRecipes()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "hello-c.gcc-static.scratch") || strings.Contains(b.String(), "over its growth limit") {
		t.Errorf("AllRecipes table:\n%s", b.String())
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, comparison(t, "hello-go.*=5%")); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## minikit compare\n",
		"**1 over the growth limit:**",
		`- **hello-go.golang.scratch**: uncompressed 2.40 MB → 2.59 MB, +192 kB (+8.0%), over its growth limit of hello-go.\*=5%`,
		"| report | old.json | new.json |",
		"| base images | stand-ins | stand-ins |",
		"| recipe | kind | outcome | uncompressed | change | compressed | change |",
		"| hello-go.golang.scratch | changed | ok, exit 0 | 2.40 MB → 2.59 MB | **+192 kB (+8.0%)** | 1.43 MB → 1.47 MB | +42.9 kB (+3.0%) |",
		"| hello-rust.rust (regressed) | changed | ok, exit 0 → failed: process \"/bin/sh -c go build\" did not complete successfully: exit code: 1 |",
		"| hello-py.python | removed |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every table row has as many cells as the header.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 8 && !strings.Contains(line, "| old | new |") && strings.Count(line, "|") != 4 {
			t.Errorf("row with a wrong number of cells: %q", line)
		}
	}
	b.Reset()
	if err := WriteMarkdown(&b, comparison(t, "50%")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No recipe over its growth limit.") {
		t.Errorf("markdown with limits, none exceeded:\n%s", b.String())
	}
}

func TestMarkdownEscapes(t *testing.T) {
	oldRep := &report.Report{Recipes: []report.Recipe{built("a|b", 1, 1)}}
	newRep := &report.Report{Machine: "host <x> | *y*", Recipes: []report.Recipe{failed("a|b")}}
	newRep.Recipes[0].Error = "line `one` | _two_\nline two"
	c, err := Reports(oldRep, newRep)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`a\|b (regressed)`, `host \<x\> \| \*y\*`, "line \\`one\\` \\| \\_two\\_"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "line two") {
		t.Errorf("markdown has the error's second line:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, comparison(t, "5%")); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Old        map[string]any   `json:"old"`
		Recipes    []map[string]any `json:"recipes"`
		Violations []map[string]any `json:"violations"`
		Limits     map[string][]map[string]any
		Summary    map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Old["file"] != "old.json" || len(doc.Recipes) != 8 || len(doc.Violations) != 1 || doc.Summary["violations"] != 1.0 {
		t.Errorf("JSON %s", b.String())
	}
	v := doc.Violations[0]
	if v["recipe"] != "hello-go.golang.scratch" || v["metric"] != "uncompressed" || v["limit"] != "5%" || v["growth"] != 192000.0 {
		t.Errorf("violation %v", v)
	}
	if l := doc.Limits["uncompressed"]; len(l) != 1 || l[0]["relative"] != true || l[0]["percent"] != 5.0 {
		t.Errorf("limits %v", doc.Limits)
	}
	g := doc.Recipes[2]
	u, _ := g["uncompressed"].(map[string]any)
	if g["name"] != "hello-go.golang.scratch" || g["kind"] != "changed" || u["old"] != 2_400_000.0 || u["new"] != 2_592_000.0 || u["change"] != 192_000.0 {
		t.Errorf("recipe %v", g)
	}
	// Violations is an array even when empty, for jq.
	b.Reset()
	if err := WriteJSON(&b, comparison(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"violations": []`) {
		t.Errorf("no empty violations array:\n%s", b.String())
	}
	if err := WriteJSON(&b, nil); err == nil {
		t.Errorf("WriteJSON(nil) succeeded")
	}
}
