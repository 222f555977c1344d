package report

import (
	"bytes"
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
