package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// standInLabel is how minikit marks its stand-in base images; to the
// runner it is a label like any other (Result.Bases).
const standInLabel = "org.minikit.stand-in"

// pushBase pushes a stand-in base image to a registry on 127.0.0.1 (which
// BuildKit reaches over plain HTTP): a static busybox as /bin/sh and
// /bin/cat, PATH=/bin, WORKDIR /srv, labelled as a stand-in.
func pushBase(t *testing.T) string {
	t.Helper()
	busybox, err := os.ReadFile("/usr/bin/busybox")
	if err != nil {
		skipOrFail(t, "no static busybox at /usr/bin/busybox to make a base image: %v", err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(busybox))},
		{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "bin/cat", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(busybox)
		}
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, img)},
		Config: v1.Config{Env: []string{"PATH=/bin"}, WorkingDir: "/srv", Labels: map[string]string{standInLabel: "true"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/minikit/base:1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func mustDiffIDs(t *testing.T, img v1.Image) []v1.Hash {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// TestSolveDaemonBaseImage builds on a base image from a registry: RUN
// steps get its PATH and working directory, the final config inherits
// them, and the result reports the base with its labels. Two targets copy
// from the same RUN stage, solved in parallel.
func TestSolveDaemonBaseImage(t *testing.T) {
	c := startBuildkitd(t)
	base := pushBase(t)

	src := testSource(t)
	build := from(base).copy("hello.c", ".").run("cat hello.c > out")
	recipes := []Target{
		target("b.run", src, build, ImageConfig{Cmd: argv("./out")}),
		target("b.onto-base", src, from(base).copyFrom(build, "/srv/out", "."), ImageConfig{Cmd: shell("cat out")}),
		target("b.onto-scratch", src, scratch().copyFrom(build, "/srv/out", "/"), ImageConfig{Cmd: argv("/out")}, base),
		target("b.noworkdir.err", src, from(base).copyFrom(build, "out", "."), ImageConfig{Cmd: argv("/out")}),
	}
	recipes[3].ExpectBuildFailure = true
	var mu sync.Mutex
	outs := map[string]string{}
	configs := map[string]ocispecs.Image{}
	hook := func(ctx context.Context, _ gateway.Client, ref gateway.Reference, r Target, img ocispecs.Image) error {
		p := "/srv/out"
		if r.Name == "b.onto-scratch" {
			p = "/out"
		}
		dt, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: p})
		if err != nil {
			return err
		}
		mu.Lock()
		outs[r.Name] = string(dt)
		configs[r.Name] = img
		mu.Unlock()
		return nil
	}
	results, err := Solve(context.Background(), c, recipes, AfterSolve(hook))
	if err != nil {
		t.Fatal(err)
	}
	res := byName(results)
	for _, r := range results {
		t.Logf("%-16s %-16s %d/%d cached %q %q", r.Name, r.Status, r.Cached, r.Vertices, r.FailedVertex, r.Error)
		if len(r.Bases) != 1 || r.Bases[0].Ref != base || r.Bases[0].Labels[standInLabel] != "true" || !strings.HasPrefix(r.Bases[0].Digest, "sha256:") {
			t.Errorf("%s: bases %+v; want %s, labelled", r.Name, r.Bases, base)
		}
	}
	for _, n := range []string{"b.run", "b.onto-base", "b.onto-scratch"} {
		if res[n].Status != StatusOK {
			t.Errorf("%s: %s: %s", n, res[n].Status, res[n].Error)
		}
		if !strings.Contains(outs[n], "int main") {
			t.Errorf("%s: out holds %q; want hello.c", n, outs[n])
		}
	}
	if img := configs["b.onto-base"]; !slices.Equal(img.Config.Env, []string{"PATH=/bin"}) || img.Config.WorkingDir != "/srv" ||
		img.Config.Labels[standInLabel] != "true" || !slices.Equal(img.Config.Cmd, []string{"/bin/sh", "-c", "cat out"}) {
		t.Errorf("b.onto-base config: %+v", img.Config)
	}
	if img := configs["b.onto-scratch"]; img.Config.WorkingDir == "/srv" || len(img.Config.Labels) != 0 || slices.Contains(img.Config.Env, "PATH=/bin") {
		t.Errorf("b.onto-scratch config inherits from the build stage: %+v", img.Config)
	}
	if r := res["b.onto-scratch"]; r.Vertices != 3 { // COPY, RUN, COPY --from
		t.Errorf("b.onto-scratch: %d steps; want 3", r.Vertices)
	}

	// Solved again, every step comes from the cache.
	again, err := Solve(context.Background(), c, []Target{target("b.onto-scratch", testSource(t), scratch().copyFrom(build, "/srv/out", "/"), ImageConfig{Cmd: argv("/out")}, base)})
	if err != nil {
		t.Fatal(err)
	}
	if r := again[0]; r.Status != StatusOK || r.Vertices != 3 || r.Cached != 3 || r.ConfigDigest != res["b.onto-scratch"].ConfigDigest {
		t.Errorf("b.onto-scratch again: %s, %d/%d cached, config %s (first %s)", r.Status, r.Cached, r.Vertices, r.ConfigDigest, res["b.onto-scratch"].ConfigDigest)
	}
	if r := res["b.noworkdir.err"]; r.Status != StatusExpectedFailure || !strings.Contains(r.FailedVertex, "COPY --from=") {
		t.Errorf("b.noworkdir.err: %s at %q: %s", r.Status, r.FailedVertex, r.Error)
	}
}
