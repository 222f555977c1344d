package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// useDockerConfig points DOCKER_CONFIG at a config holding user:pass for
// host.
func useDockerConfig(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// TestSolveDaemonOutputs: one build pushed to a registry that wants a
// login (the Docker config's credentials), written as one OCI tarball,
// its root filesystem as files and as a tarball; the registry holds the
// digests the result and the metadata file report. Then NoCache builds
// every step again and Pull resolves the base again.
func TestSolveDaemonOutputs(t *testing.T) {
	c := startBuildkitd(t)
	base := pushBase(t)
	const user, pass = "minikit", "s3cret"
	host := authRegistry(t, user, pass)
	useDockerConfig(t, host, user, pass)
	ctx := context.Background()

	build := from(base).copy("hello.c", ".").run("cat hello.c > out")
	tg := target("o.hello", testSource(t), scratch().copyFrom(build, "/srv/out", "/"), ImageConfig{Cmd: argv("/out")}, base)
	tg.Program = "hello"
	dir := t.TempDir()
	var exports []Export
	for _, s := range []string{
		"type=registry,name=" + host + "/min/{program}:{name},registry.insecure=true",
		"type=oci,dest=" + filepath.Join(dir, "one.tar"),
		"type=local,dest=" + filepath.Join(dir, "fs"),
		"type=tar,dest=" + filepath.Join(dir, "{name}.rootfs.tar"),
	} {
		e, err := ParseOutput(s)
		if err != nil {
			t.Fatal(err)
		}
		exports = append(exports, e)
	}
	results, err := Solve(ctx, c, []Target{tg}, Exports(exports...), NameTemplate("minikit:{name}"), Measure())
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Status != StatusOK {
		t.Fatalf("%s: %s", r.Status, r.Error)
	}
	pushed := host + "/min/hello:o.hello"
	if !slices.Equal(r.Pushed, []string{pushed}) || !slices.Equal(r.ImageNames, []string{pushed, "docker.io/library/minikit:o.hello"}) || r.ImageName != pushed {
		t.Errorf("pushed %v, names %v, name %q", r.Pushed, r.ImageNames, r.ImageName)
	}
	want := []string{filepath.Join(dir, "one.tar"), filepath.Join(dir, "o.hello.rootfs.tar"), filepath.Join(dir, "fs", "o.hello")}
	if !slices.Equal(r.Outputs, want) {
		t.Errorf("outputs %v; want %v", r.Outputs, want)
	}
	if dt, err := os.ReadFile(filepath.Join(dir, "fs", "o.hello", "out")); err != nil || !strings.Contains(string(dt), "int main") {
		t.Errorf("local export: out holds %q, %v", dt, err)
	}
	if names := tarNames(t, want[1]); !slices.Contains(names, "out") {
		t.Errorf("tar export holds %v", names)
	}
	if names := tarNames(t, want[0]); !slices.Contains(names, "index.json") {
		t.Errorf("oci export holds %v", names)
	}

	ref, err := name.ParseReference(pushed, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref); err == nil {
		t.Fatal("the registry serves the image without a login")
	}
	desc, err := remote.Get(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err != nil {
		t.Fatalf("pull back %s: %v", pushed, err)
	}
	if desc.Digest.String() != r.ImageDigest {
		t.Errorf("the registry has %s; the result says %s", desc.Digest, r.ImageDigest)
	}
	if d := r.ImageDescriptor; d == nil || d.Digest.String() != desc.Digest.String() || d.Size != desc.Size || string(d.MediaType) != string(desc.MediaType) {
		t.Errorf("descriptor %+v; the registry's %+v", r.ImageDescriptor, desc.Descriptor)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := img.ConfigName(); err != nil || cfg.String() != r.ConfigDigest {
		t.Errorf("config %s, %v; the result says %s", cfg, err, r.ConfigDigest)
	}
	if r.Image == nil || r.Image.ManifestDigest != r.ImageDigest {
		t.Errorf("measured %+v; want the exported manifest %s", r.Image, r.ImageDigest)
	}

	meta := filepath.Join(dir, "metadata.json")
	if err := WriteMetadata(meta, results); err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if dt, err := os.ReadFile(meta); err != nil || json.Unmarshal(dt, &doc) != nil {
		t.Fatalf("metadata: %s, %v", dt, err)
	}
	if m := doc["o.hello"]; m["containerimage.digest"] != desc.Digest.String() || m["containerimage.config.digest"] != r.ConfigDigest ||
		m["image.name"] != pushed+",docker.io/library/minikit:o.hello" {
		t.Errorf("metadata %v", doc)
	}

	warm, err := Solve(ctx, c, []Target{tg}, NoExport())
	if err != nil {
		t.Fatal(err)
	}
	cold, err := Solve(ctx, c, []Target{tg}, NoExport(), NoCache(), Pull())
	if err != nil {
		t.Fatal(err)
	}
	w, k := warm[0], cold[0]
	t.Logf("warm %d/%d cached, cold %d/%d cached", w.Cached, w.Vertices, k.Cached, k.Vertices)
	if w.Status != StatusOK || w.Vertices != 3 || w.Cached != 3 {
		t.Errorf("again: %s, %d/%d cached; want every step cached", w.Status, w.Cached, w.Vertices)
	}
	if k.Status != StatusOK || k.Vertices != 3 || k.Cached != 0 {
		t.Errorf("NoCache: %s (%s), %d/%d cached; want no step cached", k.Status, k.Error, k.Cached, k.Vertices)
	}
	if len(k.Bases) != 1 || k.Bases[0].Digest != r.Bases[0].Digest {
		t.Errorf("Pull: bases %+v; first %+v", k.Bases, r.Bases)
	}
}
