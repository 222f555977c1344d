package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeGateway answers the calls a build function makes, without a daemon.
type fakeGateway struct {
	gateway.Client // nil: any other call panics

	mu        sync.Mutex
	configs   map[string]ocispecs.Image
	resolved  map[string]int
	platforms []string // asked for
	solved    []gateway.SolveRequest
}

func (g *fakeGateway) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resolved[ref]++
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		g.platforms = append(g.platforms, formatPlatform(*opt.ImageOpt.Platform))
	}
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

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// one is a build for platform p alone.
func one(p ocispecs.Platform) []ocispecs.Platform { return []ocispecs.Platform{p} }

func TestBuildFunction(t *testing.T) {
	const build, run = "docker.io/library/golang:x", "docker.io/library/debian:x"
	const standIn = "org.minikit.stand-in"
	runImg := ocispecs.Image{Config: ocispecs.ImageConfig{
		Env:        []string{"PATH=/bin", "LANG=C.UTF-8"},
		WorkingDir: "/srv",
		Labels:     map[string]string{standIn: "true", "other": "x"},
	}}
	buildImg := ocispecs.Image{Config: ocispecs.ImageConfig{Env: []string{"PATH=/go/bin"}}}
	gw := &fakeGateway{configs: map[string]ocispecs.Image{build: buildImg, run: runImg}, resolved: map[string]int{}}

	stage := from(build).copy("hello.go", ".").run("go build hello.go")
	src := Source{Name: testSourceName, FS: nil}
	tg := target("b", src, from(run).copyFrom(stage, "/hello", "."), ImageConfig{Env: []string{"A=1"}, Cmd: argv("./hello")}, build)

	var hooked []ocispecs.Image
	s := &solver{cfg: &config{afterSolve: func(ctx context.Context, c gateway.Client, ref gateway.Reference, got Target, img ocispecs.Image) error {
		if c != gw || ref != (fakeRef{}) || got.Name != "b" {
			t.Errorf("hook called with %v, %v, %s", c, ref, got.Name)
		}
		hooked = append(hooked, img)
		return nil
	}}}
	info := newBuilt(1)
	res, err := s.build(context.Background(), gw, tg, one(amd64), info, true)
	if err != nil {
		t.Fatal(err)
	}

	if len(info.plats[0].bases) != 2 || info.plats[0].bases[0].Ref != run || info.plats[0].bases[1].Ref != build ||
		info.plats[0].bases[0].Labels[standIn] != "true" || !strings.HasPrefix(info.plats[0].bases[0].Digest, "sha256:") || len(info.plats[0].bases[1].Labels) != 0 {
		t.Errorf("bases %+v; want %s (labelled) then %s", info.plats[0].bases, run, build)
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
			got.Config.Labels[standIn] != "true" || got.OS != "linux" || got.Architecture != "amd64" {
			t.Errorf("image config %+v", got)
		}
	}
}

// The graph is made for the platform given, and the images resolved for
// it.
func TestBuildFunctionPlatform(t *testing.T) {
	const base = "docker.io/library/alpine:x"
	gw := &fakeGateway{configs: map[string]ocispecs.Image{base: {}}, resolved: map[string]int{}}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	var seen ocispecs.Platform
	tg := Target{Name: "p", Base: base, Images: []string{base}, LLB: func(_ context.Context, in BuildInput) (llb.State, error) {
		seen = in.Platform
		return llb.Image(base, llb.Platform(in.Platform)), nil
	}}
	res, err := (&solver{cfg: &config{}}).build(context.Background(), gw, tg, one(arm), newBuilt(1), true)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Architecture != "arm64" || !slices.Contains(gw.platforms, "linux/arm64") {
		t.Errorf("LLB given %v, images resolved for %v; want linux/arm64", seen, gw.platforms)
	}
	var img ocispecs.Image
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterImageConfigKey], &img); err != nil || img.Architecture != "arm64" {
		t.Errorf("config platform %s/%s (%v)", img.OS, img.Architecture, err)
	}
}

func TestBuildFunctionErrors(t *testing.T) {
	gw := &fakeGateway{configs: map[string]ocispecs.Image{}, resolved: map[string]int{}}
	src := Source{Name: testSourceName}
	tg := target("b", src, from("docker.io/library/gone:1"), ImageConfig{})
	_, err := (&solver{cfg: &config{}}).build(context.Background(), gw, tg, one(amd64), newBuilt(1), true)
	if err == nil || !strings.Contains(err.Error(), "resolve base image docker.io/library/gone:1: not found") {
		t.Errorf("error %v", err)
	}
	if len(gw.solved) != 0 {
		t.Error("solved though the base image is missing")
	}

	gw.configs["docker.io/library/here:1"] = ocispecs.Image{}
	tg = target("h", src, from("docker.io/library/here:1"), ImageConfig{})
	s := &solver{cfg: &config{afterSolve: func(context.Context, gateway.Client, gateway.Reference, Target, ocispecs.Image) error {
		return errors.New("no container")
	}}}
	info := newBuilt(1)
	if _, err := s.build(context.Background(), gw, tg, one(amd64), info, true); err == nil || err.Error() != "after solving h: no container" {
		t.Errorf("hook error %v", err)
	}
	if len(info.plats[0].bases) != 1 || len(info.plats[0].bases[0].Labels) != 0 {
		t.Errorf("bases %+v for an image without labels", info.plats[0].bases)
	}

	// A panic in it too.
	panics := Target{Name: "p", LLB: func(context.Context, BuildInput) (llb.State, error) { panic("oops") }}
	if _, err := s.build(context.Background(), gw, panics, one(amd64), newBuilt(1), true); err == nil || !strings.Contains(err.Error(), "panicked: oops") {
		t.Errorf("LLB panic: %v", err)
	}
	// The LLB function's error fails the build, with the target's name.
	bad := Target{Name: "x", LLB: func(context.Context, BuildInput) (llb.State, error) { return llb.State{}, errors.New("no graph") }}
	if _, err := s.build(context.Background(), gw, bad, one(amd64), newBuilt(1), true); err == nil || !strings.Contains(err.Error(), "x") || !strings.Contains(err.Error(), "no graph") {
		t.Errorf("LLB error: %v", err)
	}
}

// The LLB function is given the epoch, a copy of it.
func TestBuildFunctionEpoch(t *testing.T) {
	gw := &fakeGateway{configs: map[string]ocispecs.Image{}, resolved: map[string]int{}}
	cfg, err := newConfig([]Option{SourceDateEpoch(time.Unix(1700000000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	var got *time.Time
	tg := Target{Name: "e", LLB: func(_ context.Context, in BuildInput) (llb.State, error) {
		got = in.Epoch
		return llb.Scratch(), nil
	}}
	if _, err := (&solver{cfg: cfg}).build(context.Background(), gw, tg, one(amd64), newBuilt(1), false); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Unix() != 1700000000 || got == cfg.epoch {
		t.Errorf("epoch given %v (the option's own pointer: %v)", got, got == cfg.epoch)
	}
}
