package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/diagnose"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/runner"
)

// A partial recipe built on stand-ins says how its stand-in differs, in
// the report and in `minikit test`'s table; built upstream it says nothing.
func TestPartialRecipesShowHowTheirStandInDiffers(t *testing.T) {
	r := llbdefs.Recipe{Name: "x.y", Final: llbdefs.Scratch(), StandIn: llbdefs.Partial, Offline: "a glibc JRE 8 stands in for the musl one", Expect: llbdefs.Works}
	if row := RecipeRow(r, runner.Result{}, true); row.StandInDiffers != r.Offline {
		t.Errorf("on stand-ins: stand_in_differs %q, want %q", row.StandInDiffers, r.Offline)
	}
	if row := RecipeRow(r, runner.Result{}, false); row.StandInDiffers != "" {
		t.Errorf("upstream: stand_in_differs %q, want none", row.StandInDiffers)
	}
	faithful := llbdefs.Recipe{Name: "x.z", Final: llbdefs.Scratch(), StandIn: llbdefs.Offline}
	if row := RecipeRow(faithful, runner.Result{}, true); row.StandInDiffers != "" {
		t.Errorf("faithful recipe: stand_in_differs %q, want none", row.StandInDiffers)
	}
	res := runner.Result{Name: "x.y", Status: runner.StatusOK, Run: &runner.RunOutcome{ExitCode: 0, Kind: diagnose.OK, Reason: "ok", Expected: "0", Matches: true}}
	var b bytes.Buffer
	if err := WriteTestTable(&b, &Report{Recipes: []Recipe{RecipeRow(r, res, true)}}, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "partial stand-in: "+r.Offline) || !strings.Contains(b.String(), "1 as expected, 0 unexpected, 0 skipped") {
		t.Errorf("test table does not show the partial stand-in and the counts:\n%s", b.String())
	}
}

// RecipeRow carries the result over: the stand-ins from the bases'
// labels, the run with what it had to do, the image.
func TestRecipeRow(t *testing.T) {
	gcc := llbdefs.From("docker.io/library/gcc:12").Copy("hello.c", ".").Run("gcc -o hello hello.c")
	r := llbdefs.Recipe{Name: "hello-c.gcc.alpine", Final: llbdefs.From("docker.io/library/alpine:3.22").CopyFrom(gcc, "/hello", "/"),
		Cmd: llbdefs.Exec("/hello"), Expect: llbdefs.CannotStart, Extra: true}
	img := &measure.Image{Uncompressed: 100}
	res := runner.Result{
		Name: r.Name, Status: runner.StatusOK, ImageName: "docker.io/library/minikit:" + r.Name, Image: img,
		Bases: []runner.BaseImage{
			{Ref: "docker.io/library/gcc:12", Labels: map[string]string{StandInLabel: "true"}},
			{Ref: "docker.io/library/alpine:3.22", Labels: map[string]string{StandInLabel: "false"}},
		},
		Duration: 1500 * time.Millisecond, Vertices: 3, Cached: 2, Builder: "b1", RetriedFrom: []string{"b0"},
		Run: &runner.RunOutcome{ExitCode: 127, Kind: diagnose.MissingLoader, Reason: "no loader", Expected: "127", Matches: true,
			Network: "none", Duration: 40 * time.Millisecond, StderrTail: []string{"exec /hello: no such file or directory"}},
	}
	row := RecipeRow(r, res, true)
	want := Recipe{Name: r.Name, Program: "hello-c", Extra: true, BuildImage: "gcc:12", RunImage: "alpine:3.22", Status: "ok", Expect: "127",
		ImageName: res.ImageName, StandIn: true, StandInImages: []string{"docker.io/library/gcc:12"}, DurationMS: 1500, Vertices: 3, CachedVertices: 2,
		Image: img, Builder: "b1", RetriedFrom: []string{"b0"}}
	run := row.Run
	row.Run = nil
	if !equalRows(row, want) {
		t.Errorf("row %+v\nwant %+v", row, want)
	}
	if run == nil || run.ExitCode != 127 || !run.Expected || run.Kind != "missing-loader" || run.Want != "127" || run.DurationMS != 40 ||
		run.Network != "none" || !slices.Equal(run.StderrTail, res.Run.StderrTail) {
		t.Errorf("run %+v", run)
	}
	row.Run = run
	if !row.Failing() || row.Unexpected() {
		t.Errorf("an image exiting 127 as expected: failing %v (want true), unexpected %v (want false)", row.Failing(), row.Unexpected())
	}

	sk := SkippedRow(r, "upstream only: no apk index", true)
	if sk.Status != StatusSkipped || sk.Error != "upstream only: no apk index" || sk.Run != nil || sk.StandIn {
		t.Errorf("skipped row %+v", sk)
	}
}

func equalRows(a, b Recipe) bool {
	return a.Name == b.Name && a.Program == b.Program && a.Extra == b.Extra && a.BuildImage == b.BuildImage && a.RunImage == b.RunImage &&
		a.Status == b.Status && a.Expect == b.Expect && a.ImageName == b.ImageName && a.StandIn == b.StandIn &&
		slices.Equal(a.StandInImages, b.StandInImages) && a.DurationMS == b.DurationMS && a.Vertices == b.Vertices &&
		a.CachedVertices == b.CachedVertices && a.Image == b.Image && a.Builder == b.Builder && slices.Equal(a.RetriedFrom, b.RetriedFrom)
}

// Works: exit 0 and nothing amiss; a server that answered works, one
// whose output did not match does not.
func TestRunWorks(t *testing.T) {
	for _, c := range []struct {
		o    RunOutcome
		want bool
	}{
		{RunOutcome{ExitCode: 0, Kind: "ok"}, true},
		{RunOutcome{ExitCode: 0}, true}, // a report written before kinds
		{RunOutcome{ExitCode: 0, Kind: "output-mismatch"}, false},
		{RunOutcome{ExitCode: -1, Kind: "no-answer"}, false},
		{RunOutcome{ExitCode: 127, Kind: "no-shell"}, false},
	} {
		if got := c.o.Works(); got != c.want {
			t.Errorf("%+v: works %v, want %v", c.o, got, c.want)
		}
		row := Recipe{Status: StatusOK, Image: &measure.Image{}, Expect: "0", Run: &c.o}
		if row.Working() != c.want || row.Failing() == c.want {
			t.Errorf("%+v: working %v, failing %v", c.o, row.Working(), row.Failing())
		}
	}
}

func TestSummarize(t *testing.T) {
	rep := &Report{Recipes: []Recipe{
		{Status: StatusOK}, {Status: StatusOK, Run: &RunOutcome{Expected: true}},
		{Status: StatusOK, Run: &RunOutcome{ExitCode: 1}}, {Status: StatusExpectedFailure},
		{Status: StatusFailed}, {Status: StatusSkipped}, {Status: StatusCanceled},
	}}
	if got, want := Summarize(rep), (Summary{OK: 2, Expected: 1, Unexpected: 3, Skipped: 1}); got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}
}
