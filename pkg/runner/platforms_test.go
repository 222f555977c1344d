package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/measure"
)

// platformGateway solves each definition into a ref naming the platform
// of its ops, so that a test can tell which platform's ref went where.
type platformGateway struct {
	*fakeGateway
	fail string // a platform whose solve fails
}

type platformRef struct {
	gateway.Reference
	platform string
}

func (g *platformGateway) Solve(ctx context.Context, req gateway.SolveRequest) (*gateway.Result, error) {
	if _, err := g.fakeGateway.Solve(ctx, req); err != nil {
		return nil, err
	}
	plat := ""
	for _, dt := range req.Definition.Def {
		var op pb.Op
		if op.Unmarshal(dt) == nil && op.Platform != nil {
			plat = op.Platform.OS + "/" + op.Platform.Architecture
		}
	}
	if plat == g.fail {
		return nil, errors.New("exec format error")
	}
	res := gateway.NewResult()
	res.SetRef(platformRef{platform: plat})
	return res, nil
}

var arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}

// A build for two platforms returns what BuildKit's image exporter makes
// an index of: a ref per platform key, each platform's config and base
// config under the key, and the platforms listed in order.
func TestBuildFunctionPlatforms(t *testing.T) {
	const run = "docker.io/library/alpine:x"
	runImg := func(arch string) ocispecs.Image {
		return ocispecs.Image{
			Platform: ocispecs.Platform{OS: "linux", Architecture: arch},
			RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(arch)}},
		}
	}
	gw := &platformGateway{fakeGateway: &fakeGateway{configs: map[string]ocispecs.Image{run: runImg("amd64")}, resolved: map[string]int{}}}
	var mu sync.Mutex
	var seen []string
	tg := Target{Name: "two", Base: run, Images: []string{run}, Config: ImageConfig{Cmd: []string{"/hello"}},
		LLB: func(_ context.Context, in BuildInput) (llb.State, error) {
			mu.Lock()
			seen = append(seen, formatPlatform(in.Platform))
			mu.Unlock()
			return llb.Image(run, llb.Platform(in.Platform)), nil
		}}
	var hooked []string
	s := &solver{cfg: &config{afterSolve: func(_ context.Context, _ gateway.Client, ref gateway.Reference, _ Target, img ocispecs.Image) error {
		mu.Lock()
		defer mu.Unlock()
		if got := ref.(platformRef).platform; got != img.OS+"/"+img.Architecture {
			t.Errorf("hook: the %s ref with the %s/%s config", got, img.OS, img.Architecture)
		}
		hooked = append(hooked, img.Architecture)
		return nil
	}}}
	ps := []ocispecs.Platform{amd64, arm64}
	info := newBuilt(len(ps))
	res, err := s.build(context.Background(), gw, tg, ps, info, true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("LLB made for %v; want each platform once", seen)
	}
	slices.Sort(hooked)
	if !slices.Equal(hooked, []string{"amd64", "arm64"}) {
		t.Errorf("hook ran for %v", hooked)
	}
	if res.Ref != nil || len(res.Refs) != 2 {
		t.Fatalf("result: single ref %v, refs %v; want one ref per platform", res.Ref, res.Refs)
	}
	var exp exptypes.Platforms
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterPlatformsKey], &exp); err != nil {
		t.Fatalf("%s: %v", exptypes.ExporterPlatformsKey, err)
	}
	if len(exp.Platforms) != 2 {
		t.Fatalf("platforms %+v", exp)
	}
	for i, want := range []string{"linux/amd64", "linux/arm64"} {
		p := exp.Platforms[i]
		if p.ID != want || formatPlatform(p.Platform) != want {
			t.Errorf("platform %d: %+v; want %s", i, p, want)
		}
		ref, ok := res.Refs[p.ID].(platformRef)
		if !ok || ref.platform != want {
			t.Errorf("ref %s: %v; want the %s solve's", p.ID, res.Refs[p.ID], want)
		}
		var img ocispecs.Image
		if err := json.Unmarshal(res.Metadata[exptypes.ExporterImageConfigKey+"/"+p.ID], &img); err != nil {
			t.Fatalf("config of %s: %v", p.ID, err)
		}
		if img.OS+"/"+img.Architecture != want || !slices.Equal(img.Config.Cmd, []string{"/hello"}) {
			t.Errorf("config of %s: %s/%s, cmd %v", p.ID, img.OS, img.Architecture, img.Config.Cmd)
		}
		if _, ok := res.Metadata[exptypes.ExporterImageBaseConfigKey+"/"+p.ID]; !ok {
			t.Errorf("no base config for %s", p.ID)
		}
		if len(info.plats[i].bases) != 1 || info.plats[i].bases[0].Ref != run {
			t.Errorf("bases for %s: %+v", want, info.plats[i].bases)
		}
	}
	for _, k := range []string{exptypes.ExporterImageConfigKey, exptypes.ExporterImageBaseConfigKey} {
		if _, ok := res.Metadata[k]; ok {
			t.Errorf("an index's result has a single-image %s", k)
		}
	}
	if !slices.Contains(gw.platforms, "linux/arm64") || !slices.Contains(gw.platforms, "linux/amd64") {
		t.Errorf("base images resolved for %v; want both platforms", gw.platforms)
	}
}

// One platform failing fails the build, naming the platform, and keeps
// the error for errors.Is.
func TestBuildFunctionPlatformFails(t *testing.T) {
	gw := &platformGateway{fakeGateway: &fakeGateway{configs: map[string]ocispecs.Image{}, resolved: map[string]int{}}, fail: "linux/arm64"}
	tg := Target{Name: "f", LLB: func(_ context.Context, in BuildInput) (llb.State, error) {
		return llb.Image("docker.io/library/x:1", llb.Platform(in.Platform)), nil
	}}
	info := newBuilt(2)
	_, err := (&solver{cfg: &config{}}).build(context.Background(), gw, tg, []ocispecs.Platform{amd64, arm64}, info, true)
	if err == nil || !strings.HasPrefix(err.Error(), "linux/arm64: ") || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("error %v; want the arm64 solve's, naming linux/arm64", err)
	}
	if info.built {
		t.Error("built is set though a platform failed")
	}
	canceled := context.Canceled
	err = eachPlatform(context.Background(), []ocispecs.Platform{amd64, arm64}, func(ctx context.Context, i int) error {
		if i == 0 {
			<-ctx.Done() // the other's failure cancels it
			return ctx.Err()
		}
		return canceled
	})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "linux/arm64: ") {
		t.Errorf("eachPlatform: %v; want the failing platform's error first", err)
	}
}

// A target's Result becomes one per platform, each with its own image,
// run and bases and the build's shared outcome; a single platform's is
// left alone.
func TestSplitPlatforms(t *testing.T) {
	res := Result{Name: "x", Status: StatusOK, ImageDigest: "sha256:idx", Builder: "b", platformResults: []Result{
		{Image: &measure.Image{ManifestDigest: "sha256:a"}, Run: &RunOutcome{ExitCode: 0}, Bases: []BaseImage{{Ref: "a"}}},
		{Image: &measure.Image{ManifestDigest: "sha256:b"}, Run: &RunOutcome{ExitCode: 127}, Bases: []BaseImage{{Ref: "b"}}},
	}}
	got := splitPlatforms(res, []ocispecs.Platform{amd64, arm64})
	if len(got) != 2 {
		t.Fatalf("%d results", len(got))
	}
	for i, want := range []struct{ plat, manifest string }{{"linux/amd64", "sha256:a"}, {"linux/arm64", "sha256:b"}} {
		r := got[i]
		if r.Name != "x" || r.Platform != want.plat || r.Image.ManifestDigest != want.manifest || r.Run != res.platformResults[i].Run ||
			r.Bases[0].Ref != res.platformResults[i].Bases[0].Ref || r.ImageDigest != "sha256:idx" || r.Builder != "b" || r.platformResults != nil {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	// Never built (canceled): each platform gets the outcome.
	never := splitPlatforms(Result{Name: "y", Status: StatusCanceled, Error: "interrupted"}, []ocispecs.Platform{amd64, arm64})
	if len(never) != 2 || never[1].Platform != "linux/arm64" || never[1].Status != StatusCanceled || never[1].Image != nil {
		t.Errorf("canceled: %+v", never)
	}
	if one := splitPlatforms(res, []ocispecs.Platform{amd64}); len(one) != 1 || one[0].Platform != "" {
		t.Errorf("one platform: %+v", one)
	}
	if one := splitPlatforms(Result{Name: "z"}, nil); len(one) != 1 || one[0].Platform != "" {
		t.Errorf("the builder's platform: %+v", one)
	}
}

func TestCheckPlatforms(t *testing.T) {
	good := [][]ocispecs.Platform{nil, {amd64}, {amd64, arm64}, {arm64, {OS: "linux", Architecture: "arm", Variant: "v7"}}}
	for _, ps := range good {
		if err := checkPlatforms(ps); err != nil {
			t.Errorf("%v: %v", ps, err)
		}
	}
	bad := map[string][]ocispecs.Platform{
		"want an OS and an architecture": {amd64, {OS: "linux"}},
		"linux/amd64 given twice":        {amd64, arm64, amd64},
		"linux/arm64/v8 given twice":     {arm64, {OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}
	for want, ps := range bad {
		if err := checkPlatforms(ps); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v; want %q", ps, err, want)
		}
	}
}
