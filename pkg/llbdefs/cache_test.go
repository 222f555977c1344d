package llbdefs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/runner"
)

// cacheMounts lists the Go build cache mounts of a definition's exec ops,
// by the shell command they run.
func cacheMounts(t *testing.T, r Recipe, src Sources) map[string]*pb.Mount {
	t.Helper()
	out := map[string]*pb.Mount{}
	for _, op := range ops(t, r, src) { // epoch_test.go
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		for _, m := range ex.Mounts {
			if m.MountType == pb.MountType_CACHE {
				out[ex.Meta.Args[len(ex.Meta.Args)-1]] = m
			}
		}
	}
	return out
}

func TestCompilerCacheOnlyInGoBuildStages(t *testing.T) {
	ctx := context.Background()
	cached := DefaultSources()
	cached.CompilerCache = true
	for _, r := range Catalog() {
		plain, err := r.Definition(ctx, DefaultSources())
		if err != nil {
			t.Fatal(err)
		}
		withCache, err := r.Definition(ctx, cached)
		if err != nil {
			t.Fatal(err)
		}
		if m := cacheMounts(t, r, DefaultSources()); len(m) != 0 {
			t.Errorf("%s: cache mounts without CompilerCache: %v", r.Name, m)
		}
		goBuild := false
		for _, s := range r.Stages()[:len(r.Stages())-1] {
			goBuild = goBuild || goImages[s.Image()]
		}
		mounts := cacheMounts(t, r, cached)
		if !goBuild {
			// No Go build stage (single-stage golang images included):
			// the very same graph.
			if defDigest(plain) != defDigest(withCache) {
				t.Errorf("%s: CompilerCache changed a recipe with no Go build stage", r.Name)
			}
			if len(mounts) != 0 {
				t.Errorf("%s: unexpected cache mounts %v", r.Name, mounts)
			}
			continue
		}
		if len(mounts) != 1 {
			t.Errorf("%s: want one cache mount, on go build; got %v", r.Name, mounts)
			continue
		}
		for cmd, m := range mounts {
			if !strings.HasPrefix(cmd, "go build ") {
				t.Errorf("%s: cache mount on %q, want go build", r.Name, cmd)
			}
			if m.Dest != GoBuildCache || m.CacheOpt == nil || m.CacheOpt.ID != GoBuildCacheID || m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
				t.Errorf("%s: cache mount %+v", r.Name, m)
			}
		}
	}
}

// The final stage of a multi-stage recipe is compiled as without the
// option: only what it copies from changes.
func TestCompilerCacheLeavesFinalStepsAlone(t *testing.T) {
	r, err := Select(Catalog(), "hello-go.golang.scratch")
	if err != nil {
		t.Fatal(err)
	}
	cached := DefaultSources()
	cached.CompilerCache = true
	plain := vertices(t, mustDef(t, r[0], DefaultSources()))
	withCache := vertices(t, mustDef(t, r[0], cached))
	common := 0
	for d := range withCache {
		if plain[d] {
			common++
		}
	}
	// Shared: the golang and samples sources and the COPY of hello.go.
	// Changed: go build, the final COPY --from, the terminal op.
	if common == 0 || common == len(withCache) {
		t.Errorf("%d of %d vertices shared; want the sources shared and the build changed", common, len(withCache))
	}
}

func mustDef(t *testing.T, r Recipe, src Sources) *llb.Definition {
	t.Helper()
	d, err := r.Definition(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// targetOpsOf compiles the recipes' targets' graphs with an epoch, and
// returns each one's ops by digest.
func targetOpsOf(t *testing.T, recipes []Recipe, opts ...TargetOption) map[string]map[digest.Digest]*pb.Op {
	t.Helper()
	ts, err := Targets(recipes, append([]TargetOption{ContextDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1700000000, 0)
	out := map[string]map[digest.Digest]*pb.Op{}
	for _, tg := range ts {
		st, err := tg.LLB(context.Background(), runner.BuildInput{Platform: Platform(), Epoch: &epoch})
		if err != nil {
			t.Fatal(err)
		}
		def, err := st.Marshal(context.Background(), llb.Platform(Platform()))
		if err != nil {
			t.Fatal(err)
		}
		ops := map[digest.Digest]*pb.Op{}
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				t.Fatal(err)
			}
			if op.Op != nil {
				ops[digest.FromBytes(dt)] = &op
			}
		}
		out[tg.Name] = ops
	}
	return out
}

// goCacheMounts returns the Go build cache mount of every go build RUN
// of a target's ops, and the digest of the op each mount reads from (""
// for none).
func goCacheMounts(ops map[digest.Digest]*pb.Op) map[*pb.Mount]digest.Digest {
	out := map[*pb.Mount]digest.Digest{}
	for _, op := range ops {
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		for _, m := range ex.Mounts {
			if m.MountType == pb.MountType_CACHE && m.Dest == GoBuildCache {
				src := digest.Digest("")
				if m.Input >= 0 {
					src = digest.Digest(op.Inputs[m.Input].Digest)
				}
				out[m] = src
			}
		}
	}
	return out
}

// With whatsmyip.golang in the solve, the Go 1.26 build stages' cache
// mount starts from its image: the very vertex that recipe builds, so
// BuildKit compiles it once for all; the mount is shared. The Go 1.27
// stages and a solve without the seed keep the empty, locked mount.
func TestCompilerCacheSeed(t *testing.T) {
	names := []string{GoCacheSeed, "hello-go.golang.scratch", "whatsmyip.golang-alpine.alpine", "whatsmyip.golang-nocgo.scratch",
		"hello-go.golang-alpine.scratch", "hello-go.golang127-static.scratch", "hello-c.gcc.scratch"}
	// The extras too, for the Go 1.27 one.
	recipes, err := Select(All(), names...)
	if err != nil {
		t.Fatal(err)
	}
	var others []Recipe // all but the seed
	for _, r := range recipes {
		if r.Name != GoCacheSeed {
			others = append(others, r)
		}
	}
	if len(others) != len(recipes)-1 {
		t.Fatalf("the seed recipe %s is not in the catalog", GoCacheSeed)
	}
	all := targetOpsOf(t, recipes, CompilerCache(true))
	// The seed's own image: its RUN go build is the vertex whose output
	// the others mount.
	var seedRun digest.Digest
	for d, op := range all[GoCacheSeed] {
		if ex := op.GetExec(); ex != nil {
			if len(goCacheMounts(map[digest.Digest]*pb.Op{d: op})) != 0 {
				t.Errorf("the seed recipe's own build has a cache mount: its image would change")
			}
			seedRun = d
		}
	}
	if seedRun == "" {
		t.Fatal("no RUN in the seed recipe")
	}
	for _, name := range names[1:] {
		mounts := goCacheMounts(all[name])
		switch {
		case name == "hello-c.gcc.scratch":
			if len(mounts) != 0 {
				t.Errorf("%s: cache mounts %v", name, mounts)
			}
			continue
		case len(mounts) != 1:
			t.Errorf("%s: %d Go cache mounts; want 1", name, len(mounts))
			continue
		}
		for m, src := range mounts {
			if name == "hello-go.golang127-static.scratch" {
				if src != "" || m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED || m.CacheOpt.ID != GoBuildCacheID {
					t.Errorf("%s: Go 1.27 mount %+v from %q; want an empty locked one", name, m, src)
				}
				continue
			}
			if src != seedRun || m.Selector != GoBuildCache || m.CacheOpt.Sharing != pb.CacheSharingOpt_SHARED || m.CacheOpt.ID != GoBuildCacheID {
				t.Errorf("%s: mount %+v from %s; want the seed's RUN %s, %s, shared", name, m, src, seedRun, GoBuildCache)
			}
			if all[name][seedRun] == nil {
				t.Errorf("%s: the seed's RUN is not in its graph", name)
			}
		}
	}

	// Without the seed recipe, or with the seed off: empty and locked.
	for label, ops := range map[string]map[string]map[digest.Digest]*pb.Op{
		"no seed recipe": targetOpsOf(t, others, CompilerCache(true)),
		"seed off":       targetOpsOf(t, recipes, CompilerCache(true), CompilerCacheSeed(false)),
	} {
		for name, o := range ops {
			for m, src := range goCacheMounts(o) {
				if src != "" || m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
					t.Errorf("%s, %s: mount %+v from %q; want an empty locked one", label, name, m, src)
				}
			}
		}
	}
}
