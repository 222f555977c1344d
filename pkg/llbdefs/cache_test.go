package llbdefs

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
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
