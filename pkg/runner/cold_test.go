package runner

import (
	"context"
	"slices"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// coldGraph is two images, a local source and a step on each image, copied
// together onto scratch.
func coldGraph() llb.State {
	src := llb.Local("src", llb.LocalUniqueID("u"))
	build := llb.Image("docker.io/library/gcc:15").Run(llb.Shlex("cc -o /out/hello /src/hello.c"), llb.AddMount("/src", src)).Root()
	alpine := llb.Image("alpine:3.22", llb.ResolveModeForcePull) // already force-pull: kept
	return alpine.File(llb.Copy(build, "/out/hello", "/hello"))
}

// ops reads a definition's vertices by digest.
func ops(t *testing.T, def *llb.Definition) map[digest.Digest]*pb.Op {
	t.Helper()
	out := map[digest.Digest]*pb.Op{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		out[digest.FromBytes(dt)] = &op
	}
	return out
}

func TestForcePull(t *testing.T) {
	ctx := context.Background()
	p := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	def, err := coldGraph().Marshal(ctx, llb.Platform(p))
	if err != nil {
		t.Fatal(err)
	}
	got, err := forcePull(def)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Def) != len(def.Def) {
		t.Fatalf("%d vertices; want %d", len(got.Def), len(def.Def))
	}
	before, after := ops(t, def), ops(t, got)
	images, kept := 0, 0
	for d, op := range after {
		for _, in := range op.Inputs {
			if _, ok := after[digest.Digest(in.Digest)]; !ok {
				t.Errorf("vertex %s: input %s is not in the definition", d, in.Digest)
			}
		}
		if src := op.GetSource(); src != nil {
			switch {
			case src.Identifier == "local://src":
				if _, ok := before[d]; !ok {
					t.Errorf("the local source changed")
				}
			default:
				images++
				if src.Attrs[pb.AttrImageResolveMode] != pb.AttrImageResolveModeForcePull {
					t.Errorf("%s: resolve mode %q", src.Identifier, src.Attrs[pb.AttrImageResolveMode])
				}
			}
		}
		if _, ok := before[d]; ok {
			kept++
		}
	}
	// gcc changed, so did its RUN, the copy and the terminal vertex;
	// alpine (already force-pull) and the local source kept their bytes.
	if images != 2 || kept != 2 {
		t.Errorf("%d images, %d vertices kept; want 2, 2", images, kept)
	}
	for d := range got.Metadata {
		if _, ok := after[d]; !ok {
			t.Errorf("metadata for %s, not a vertex", d)
		}
	}
	if len(got.Metadata) != len(def.Metadata) {
		t.Errorf("%d metadata entries; want %d", len(got.Metadata), len(def.Metadata))
	}
	if got.Source != nil {
		for d := range got.Source.Locations {
			if _, ok := after[digest.Digest(d)]; !ok {
				t.Errorf("source locations for %s, not a vertex", d)
			}
		}
	}
	again, err := forcePull(got)
	if err != nil || !slices.EqualFunc(again.Def, got.Def, slices.Equal) {
		t.Errorf("force pull twice changed the definition (%v)", err)
	}
	if _, err := forcePull(&llb.Definition{Def: [][]byte{{0xff, 0xff}}}); err == nil {
		t.Error("a vertex that is not an op: no error")
	}
}

func TestColdMarshal(t *testing.T) {
	ctx := context.Background()
	p := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	warm := &config{}
	def, err := warm.marshal(ctx, coldGraph(), p)
	if err != nil {
		t.Fatal(err)
	}
	for d, md := range def.Metadata {
		if md.IgnoreCache {
			t.Errorf("%s: ignore-cache without NoCache", d)
		}
	}
	cold := &config{noCache: true, pull: true}
	def, err = cold.marshal(ctx, coldGraph(), p)
	if err != nil {
		t.Fatal(err)
	}
	vertices := ops(t, def)
	ignored := 0
	for d, op := range vertices {
		if op.Platform != nil && op.Platform.Architecture != "arm64" {
			t.Errorf("%s: platform %v", d, op.Platform)
		}
		if def.Metadata[d].IgnoreCache {
			ignored++
		}
		if src := op.GetSource(); src != nil && src.Identifier != "local://src" && src.Attrs[pb.AttrImageResolveMode] != pb.AttrImageResolveModeForcePull {
			t.Errorf("%s: not force-pull", src.Identifier)
		}
	}
	if ignored != len(vertices)-1 { // every vertex but the terminal one
		t.Errorf("%d of %d vertices ignore the cache", ignored, len(vertices))
	}
	if m := cold.resolveMode(llb.ResolveModeDefault.String()); m != "pull" {
		t.Errorf("resolve mode with Pull: %q", m)
	}
	if m := warm.resolveMode(llb.ResolveModePreferLocal.String()); m != "local" {
		t.Errorf("resolve mode without Pull: %q", m)
	}
	var none *config
	if m := none.resolveMode("default"); m != "default" {
		t.Errorf("resolve mode without options: %q", m)
	}
}
