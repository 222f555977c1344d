package llbdefs

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/pkg/schedule"
)

// contextOpt is a context directory for tests that never build.
func contextOpt(t *testing.T) TargetOption {
	t.Helper()
	return ContextDir(t.TempDir())
}

// Every recipe becomes a target: its name, program, images, source,
// config and check.
func TestTargets(t *testing.T) {
	all := All()
	ts, err := Targets(all, contextOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != len(all) {
		t.Fatalf("%d targets for %d recipes", len(ts), len(all))
	}
	validName := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	for i, tg := range ts {
		r := all[i]
		if tg.Name != r.Name || tg.Program != r.Program() || tg.Base != r.RunImage() || !slices.Equal(tg.Images, r.Images()) ||
			tg.ExpectBuildFailure != r.ExpectBuildFailure() || len(tg.Sources) != 1 || tg.Sources[0].Name != SamplesName {
			t.Errorf("%s: target %+v", r.Name, tg)
		}
		if !validName.MatchString(tg.Name) {
			t.Errorf("%s is not a valid target name", tg.Name)
		}
		if name, err := runner.ImageNames(ImageNameTemplate).For(tg); err != nil || name != "docker.io/library/minikit:"+r.Name {
			t.Errorf("%s: image name %q, %v", r.Name, name, err)
		}
		switch {
		case r.ExpectBuildFailure():
			if tg.Check != nil {
				t.Errorf("%s: a check for a build expected to fail", r.Name)
			}
		case tg.Check == nil:
			t.Errorf("%s: no check", r.Name)
		case tg.Check.Network != r.Network || tg.Check.Probe != nil || tg.Check.ExpectOutput != nil || tg.Check.Args != nil:
			t.Errorf("%s: check %+v", r.Name, *tg.Check)
		case string(r.Expect) != map[int]string{0: "0", 1: "1", 127: "127"}[tg.Check.ExpectExit]:
			t.Errorf("%s: expects exit %d, the recipe %s", r.Name, tg.Check.ExpectExit, r.Expect)
		}
		if !slices.Equal(tg.Config.Cmd, r.Cmd.Config()) {
			t.Errorf("%s: cmd %q, want %q", r.Name, tg.Config.Cmd, r.Cmd.Config())
		}
		// The image config as built is the one the Dockerfile renders.
		img := tg.Config.Apply(ocispecs.Image{}, tg.Base == "", Platform())
		if want := r.ImageConfig(ocispecs.Image{}); !slices.Equal(img.Config.Env, want.Config.Env) || img.Config.WorkingDir != want.Config.WorkingDir {
			t.Errorf("%s: config %+v, want %+v", r.Name, img.Config, want.Config)
		}
	}
	// One source value for all, so that the run can share it.
	if ts[0].Sources[0].FS != ts[1].Sources[0].FS {
		t.Error("two targets of one call got two context filesystems")
	}
}

// The LLB function compiles the recipe as its Definition does, for the
// platform, epoch and compiler cache given.
func TestTargetsLLB(t *testing.T) {
	ctx := context.Background()
	r, ok := Lookup(Catalog(), "hello-go.golang.scratch")
	if !ok {
		t.Fatal("no hello-go.golang.scratch")
	}
	epoch := time.Unix(1700000000, 0)
	for _, cache := range []bool{false, true} {
		ts, err := Targets([]Recipe{r}, contextOpt(t), CompilerCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []ocispecs.Platform{Platform(), {OS: "linux", Architecture: "arm64"}} {
			st, err := ts[0].LLB(ctx, runner.BuildInput{Platform: p, Epoch: &epoch})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Marshal(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, err := r.Definition(ctx, Sources{Context: SamplesSource(), Platform: p, CompilerCache: cache, Epoch: &epoch})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Def) != len(want.Def) || string(got.Def[len(got.Def)-1]) != string(want.Def[len(want.Def)-1]) {
				t.Errorf("cache %v, %s: the target's graph is not the recipe's", cache, p.Architecture)
			}
		}
	}
}

func TestTargetsOptions(t *testing.T) {
	rs := Catalog()[:1]
	for want, opts := range map[string][]TargetOption{
		"ContextDir or Context option is required": nil,
		"empty path":           {ContextDir("")},
		"no such file":         {ContextDir("/nonexistent/minikit")},
		"no filesystem":        {Context(nil)},
		"build args: an empty": {contextOpt(t), BuildArgs(map[string]string{"": "x"})},
	} {
		if _, err := Targets(rs, opts...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	bad := Recipe{Name: "x.y", Final: Scratch(), Expect: "maybe"}
	if _, err := Targets([]Recipe{bad}, contextOpt(t)); err == nil || !strings.Contains(err.Error(), "not an exit code") {
		t.Errorf("unknown outcome: %v", err)
	}
	if ts, err := Targets(nil, contextOpt(t)); err != nil || len(ts) != 0 {
		t.Errorf("no recipes: %v, %v", ts, err)
	}
}

// The catalog's targets are scheduled as sharing work when they share a
// build stage's RUN step: a build stage and the recipes copying from it
// go to one builder; recipes that only share a base image or a COPY do
// not.
func TestScheduleCatalogTargets(t *testing.T) {
	var offline []Recipe
	for _, r := range Catalog() {
		if r.StandIn == Offline {
			offline = append(offline, r)
		}
	}
	ts, err := Targets(offline, contextOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	items, err := runner.ScheduleItems(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	groupOf := map[string]int{}
	for g, gr := range schedule.Groups(items) {
		for _, i := range gr.Items {
			groupOf[offline[i].Name] = g
		}
	}
	together := [][]string{
		// the gcc build stage (hello-c.gcc is that stage itself)
		{"hello-c.gcc", "hello-c.gcc.alpine", "hello-c.gcc.scratch", "hello-c.gcc.ubuntu"},
		{"hello-c.gcc-static.alpine", "hello-c.gcc-static.scratch"},
		{"hello-go.golang", "hello-go.golang.scratch", "hello-go.golang.scratch-string", "hello-go.golang.ubuntu-noworkdir.err"},
		{"hello-rust.rust", "hello-rust.rust.alpine", "hello-rust.rust.busybox-glibc", "hello-rust.rust.debian", "hello-rust.rust.scratch"},
		{"whatsmyip.golang", "whatsmyip.golang.alpine", "whatsmyip.golang.busybox", "whatsmyip.golang.busybox-glibc", "whatsmyip.golang.scratch", "whatsmyip.golang.ubuntu"},
	}
	for _, names := range together {
		for _, n := range names {
			if _, ok := groupOf[n]; !ok {
				t.Fatalf("%s is not an offline recipe", n)
			}
			if groupOf[n] != groupOf[names[0]] {
				t.Errorf("%s and %s share a build stage but are in different groups", n, names[0])
			}
		}
	}
	for _, p := range [][2]string{
		{"hello-c.gcc", "hello-c.gcc-static.scratch"}, // one COPY, two RUNs
		{"hello-go.golang", "whatsmyip.golang"},
		{"hello-go.golang-alpine.alpine", "hello-c.gcc-static.alpine"},
		{"hello-py.python", "hello-rust.rust"},
	} {
		if groupOf[p[0]] == groupOf[p[1]] {
			t.Errorf("%s and %s share no build stage but are grouped", p[0], p[1])
		}
	}
}
