package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// fakeGateway answers the calls a build function makes, without a daemon.
type fakeGateway struct {
	gateway.Client // nil: any other call panics

	mu       sync.Mutex
	configs  map[string]ocispecs.Image
	resolved map[string]int
	solved   []gateway.SolveRequest
}

func (g *fakeGateway) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resolved[ref]++
	img, ok := g.configs[ref]
	if !ok {
		return "", "", nil, errors.New("not found")
	}
	dt, err := json.Marshal(img)
	return ref, digest.FromBytes(dt), dt, err
}

func (g *fakeGateway) Solve(ctx context.Context, req gateway.SolveRequest) (*gateway.Result, error) {
	g.mu.Lock()
	g.solved = append(g.solved, req)
	g.mu.Unlock()
	res := gateway.NewResult()
	res.SetRef(fakeRef{})
	return res, nil
}

type fakeRef struct{ gateway.Reference }

func TestBuildFunction(t *testing.T) {
	const build, run = "docker.io/library/golang:x", "docker.io/library/debian:x"
	runImg := ocispecs.Image{Config: ocispecs.ImageConfig{
		Env:        []string{"PATH=/bin", "LANG=C.UTF-8"},
		WorkingDir: "/srv",
		Labels:     map[string]string{StandInLabel: "true", "other": "x"},
	}}
	buildImg := ocispecs.Image{Config: ocispecs.ImageConfig{Env: []string{"PATH=/go/bin"}}}
	gw := &fakeGateway{configs: map[string]ocispecs.Image{build: buildImg, run: runImg}, resolved: map[string]int{}}

	stage := llbdefs.From(build).Copy("hello.go", ".").Run("go build hello.go")
	r := llbdefs.Recipe{Name: "b", Final: llbdefs.From(run).Env("A", "1").CopyFrom(stage, "/hello", "."), Cmd: llbdefs.Exec("./hello")}

	var hooked []ocispecs.Image
	s := &solver{cfg: &config{afterSolve: func(ctx context.Context, c gateway.Client, ref gateway.Reference, got llbdefs.Recipe, img ocispecs.Image) error {
		if c != gw || ref != (fakeRef{}) || got.Name != "b" {
			t.Errorf("hook called with %v, %v, %s", c, ref, got.Name)
		}
		hooked = append(hooked, img)
		return nil
	}}}
	var info built
	res, err := s.build(context.Background(), gw, r, &info, true)
	if err != nil {
		t.Fatal(err)
	}

	if !slices.Equal(info.standIns, []string{run}) {
		t.Errorf("stand-ins %v; want [%s]", info.standIns, run)
	}
	for ref, n := range gw.resolved {
		if n != 1 {
			t.Errorf("%s resolved %d times; want once", ref, n)
		}
	}
	if len(gw.solved) != 1 || !gw.solved[0].Evaluate || gw.solved[0].Definition == nil {
		t.Fatalf("solve requests %+v; want one evaluated definition", gw.solved)
	}
	if len(info.steps) == 0 {
		t.Error("no steps recorded")
	}

	var img ocispecs.Image
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterImageConfigKey], &img); err != nil {
		t.Fatal(err)
	}
	if len(hooked) != 1 {
		t.Fatalf("hook called %d times", len(hooked))
	}
	for _, got := range []ocispecs.Image{img, hooked[0]} {
		if !slices.Equal(got.Config.Env, []string{"PATH=/bin", "LANG=C.UTF-8", "A=1"}) ||
			got.Config.WorkingDir != "/srv" || !slices.Equal(got.Config.Cmd, []string{"./hello"}) ||
			got.Config.Labels[StandInLabel] != "true" || got.OS != "linux" || got.Architecture != "amd64" {
			t.Errorf("image config %+v", got)
		}
	}
}

func TestBuildFunctionErrors(t *testing.T) {
	gw := &fakeGateway{configs: map[string]ocispecs.Image{}, resolved: map[string]int{}}
	r := llbdefs.Recipe{Name: "b", Final: llbdefs.From("docker.io/library/gone:1")}
	_, err := (&solver{cfg: &config{}}).build(context.Background(), gw, r, &built{}, true)
	if err == nil || !strings.Contains(err.Error(), "resolve base image docker.io/library/gone:1: not found") {
		t.Errorf("error %v", err)
	}
	if len(gw.solved) != 0 {
		t.Error("solved though the base image is missing")
	}

	gw.configs["docker.io/library/here:1"] = ocispecs.Image{}
	r = llbdefs.Recipe{Name: "h", Final: llbdefs.From("docker.io/library/here:1")}
	s := &solver{cfg: &config{afterSolve: func(context.Context, gateway.Client, gateway.Reference, llbdefs.Recipe, ocispecs.Image) error {
		return errors.New("no container")
	}}}
	var info built
	if _, err := s.build(context.Background(), gw, r, &info, true); err == nil || err.Error() != "after solving h: no container" {
		t.Errorf("hook error %v", err)
	}
	if len(info.standIns) != 0 {
		t.Errorf("stand-ins %v for an image without the label", info.standIns)
	}
}
