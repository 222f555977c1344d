package report

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/measure"
)

func rankRecipe(name string, extra bool, size, largest int64, run *RunOutcome, expect string) Recipe {
	prog, _, _ := strings.Cut(name, ".")
	return Recipe{Name: name, Program: prog, Extra: extra, Status: StatusOK, Expect: expect, Run: run,
		Image: &measure.Image{Uncompressed: size, FileBytes: largest, Largest: []measure.File{{Path: "/hello", Size: largest}}}}
}

func TestRank(t *testing.T) {
	ok := &RunOutcome{ExitCode: 0, Expected: true}
	recipes := []Recipe{
		rankRecipe("hello-c.gcc.ubuntu", false, 80_000_000, 16_000, ok, "0"),
		rankRecipe("hello-c.gcc-static.scratch", false, 800_000, 790_000, ok, "0"),
		rankRecipe("hello-c.gcc.scratch", false, 20_000, 16_000, &RunOutcome{ExitCode: 127, Expected: true}, "127"),
		rankRecipe("hello-c.musl-static.scratch", true, 16_000, 14_000, ok, "0"),
		rankRecipe("hello-py.python", false, 70_000_000, 6_000_000, nil, "0"), // not run: expected to work
		{Name: "hello-c.alpine", Program: "hello-c", Status: StatusSkipped, Expect: "0"},
		{Name: "hello-go.golang", Program: "hello-go", Status: StatusFailed, Expect: "0"},
	}
	got := Rank(recipes, map[string]string{"hello-c": "hello-c.musl-static.scratch", "hello-go": "hello-go.golang-static.scratch"})
	if len(got) != 2 || got[0].Program != "hello-c" || got[1].Program != "hello-py" {
		t.Fatalf("programs: %+v", got)
	}
	c := got[0]
	if c.FloorBytes != 14_000 || c.Smallest != "hello-c.musl-static.scratch" || c.SmallestSeed != "hello-c.gcc-static.scratch" {
		t.Errorf("hello-c: %+v", c)
	}
	var names []string
	for _, e := range c.Entries {
		names = append(names, e.Recipe)
	}
	if strings.Join(names, " ") != "hello-c.musl-static.scratch hello-c.gcc-static.scratch hello-c.gcc.ubuntu" {
		t.Errorf("order (the exit-127 image is not working): %v", names)
	}
	if e := c.Entries[0]; !e.Extra || !e.Verified || math.Abs(e.Ratio-16_000.0/14_000) > 1e-9 || e.FileRatio != 1 {
		t.Errorf("floor entry: %+v", e)
	}
	py := got[1]
	if py.FloorRecipe != "" || py.FloorBytes != 0 || py.Entries[0].Ratio != 0 || py.Entries[0].Verified {
		t.Errorf("no floor: %+v", py)
	}

	// Floor recipe not built in this run: no ratios.
	got = Rank(recipes[:3], map[string]string{"hello-c": "hello-c.musl-static.scratch"})
	if got[0].FloorBytes != 0 || got[0].Entries[0].Ratio != 0 || got[0].SmallestSeed != got[0].Smallest {
		t.Errorf("no floor built: %+v", got[0])
	}
}

func TestWriteRanking(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := WriteRanking(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Smallest working image per program", "PROGRAM", "hello-c", "1.", "x"} {
		if !strings.Contains(out, want) {
			t.Errorf("ranking table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := WriteRanking(&buf, &Report{}); err != nil || buf.Len() != 0 {
		t.Errorf("empty ranking wrote %q, %v", buf.String(), err)
	}
	buf.Reset()
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if html := buf.String(); !strings.Contains(html, `id="ranking"`) || !strings.Contains(html, `data-program="hello-c"><td>hello-c</td>`) {
		t.Error("the HTML report has no ranking table")
	}
}

func TestFormatRatio(t *testing.T) {
	for in, want := range map[float64]string{0: "-", 1.0834: "1.08x", 12.5: "12.50x", 4321.4: "4321x"} {
		if got := FormatRatio(in); got != want {
			t.Errorf("FormatRatio(%v) = %q, want %q", in, got, want)
		}
	}
}

// Programs with no static executable (Java, Python) are ranked without a
// floor, and a program whose only working image is an extra has no seed's
// smallest: the table, the JSON and the HTML say "-" or leave it out.
func TestRankWithoutFloor(t *testing.T) {
	ok := &RunOutcome{ExitCode: 0, Expected: true}
	const java, javaCC, py = "hello-java.debian-jlink.distroless-java-base", "hello-java.debian-jlink.distroless-cc", "hello-py.distroless-python3-minimal"
	rep := &Report{Recipes: []Recipe{
		rankRecipe("hello-c.musl-static.scratch", true, 19_456, 17_808, ok, "0"),
		rankRecipe(java, true, 46_000_000, 22_000_000, ok, "0"),
		rankRecipe(javaCC, true, 45_000_000, 22_000_000, &RunOutcome{ExitCode: 127, Expected: true, Reason: "shared library libz.so.1 missing"}, "127"),
		{Name: "hello-java.openjdk-15-jlink.ubuntu", Program: "hello-java", Status: StatusSkipped, Expect: "0"},
		rankRecipe("hello-py.python", false, 180_000_000, 6_000_000, ok, "0"),
		rankRecipe(py, true, 30_000_000, 6_000_000, ok, "0"),
	}}
	rep.Ranking = Rank(rep.Recipes, map[string]string{"hello-c": "hello-c.musl-static.scratch"})
	if len(rep.Ranking) != 3 {
		t.Fatalf("want hello-c, hello-java and hello-py ranked: %+v", rep.Ranking)
	}
	j, p := rep.Ranking[1], rep.Ranking[2]
	if j.Program != "hello-java" || j.FloorRecipe != "" || j.FloorBytes != 0 || j.Smallest != java || j.SmallestSeed != "" || len(j.Entries) != 1 {
		t.Errorf("hello-java (the exit-127 image is not working, no seed row built): %+v", j)
	}
	if p.Program != "hello-py" || p.Smallest != py || p.SmallestSeed != "hello-py.python" || len(p.Entries) != 2 {
		t.Errorf("hello-py: %+v", p)
	}
	for _, rk := range rep.Ranking[1:] {
		for _, e := range rk.Entries {
			if e.Ratio != 0 || e.FileRatio != 0 || !e.Verified {
				t.Errorf("%s: ratios without a floor: %+v", e.Recipe, e)
			}
		}
	}

	var buf bytes.Buffer
	if err := WriteRanking(&buf, rep); err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	// PROGRAM FLOOR SMALLEST SIZE ("46.0 MB": 2 fields) xFLOOR SEED SIZE xFLOOR
	if f := strings.Fields(lines["hello-java"]); len(f) != 9 || f[1] != "-" || f[2] != java || f[5] != "-" || f[6] != "-" || f[7] != "-" || f[8] != "-" {
		t.Errorf("hello-java row: %q", lines["hello-java"])
	}
	if f := strings.Fields(lines["hello-py"]); len(f) != 10 || f[1] != "-" || f[2] != py || f[5] != "-" || f[6] != "hello-py.python" || f[9] != "-" {
		t.Errorf("hello-py row: %q", lines["hello-py"])
	}

	buf.Reset()
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Ranking []map[string]any `json:"ranking"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, rk := range raw.Ranking[1:] {
		if _, has := rk["floor_recipe"]; has {
			t.Errorf("%v: floor_recipe without a floor", rk["program"])
		}
		for _, e := range rk["entries"].([]any) {
			if _, has := e.(map[string]any)["ratio"]; has {
				t.Errorf("%v: a ratio without a floor: %v", rk["program"], e)
			}
		}
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Ranking) != 3 || back.Ranking[1].Smallest != java || back.Ranking[1].SmallestSeed != "" || !back.Ranking[1].Entries[0].Extra {
		t.Errorf("JSON round trip: %+v", back.Ranking)
	}

	buf.Reset()
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	javaRow := `<tr data-program="hello-java"><td>hello-java</td><td class="n">-</td><td class="mono">` + java + ` <span class="tag added">extra</span></td>`
	if !strings.Contains(html, javaRow) {
		t.Errorf("HTML: no hello-java row starting %s", javaRow)
	}
	_, row, _ := strings.Cut(html, javaRow)
	row, _, _ = strings.Cut(row, "</tr>")
	if !strings.HasSuffix(row, `<td>-</td><td class="n">-</td><td class="n">-</td>`) || strings.Count(row, `<td class="n">-</td>`) != 4 {
		t.Errorf("HTML hello-java row: no ratio and no seed's smallest expected: %s", row)
	}
}
