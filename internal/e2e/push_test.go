package e2e

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// authRegistry serves go-containerregistry's registry on 127.0.0.1
// behind HTTP basic authentication (user:pass for every request) and
// returns its host:port.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="minikit-e2e"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dockerConfig writes a Docker config directory holding user:pass for
// host (none when user is empty) and returns it, for DOCKER_CONFIG.
func dockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `{}`
	if user != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		cfg = `{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildxMetadata is one recipe's entry in a --metadata-file.
type buildxMetadata struct {
	Digest       string              `json:"containerimage.digest"`
	ConfigDigest string              `json:"containerimage.config.digest"`
	Descriptor   ocispecs.Descriptor `json:"containerimage.descriptor"`
	ImageName    string              `json:"image.name"`
}

func readMetadata(t *testing.T, path string) map[string]buildxMetadata {
	t.Helper()
	dt, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]buildxMetadata
	if err := json.Unmarshal(dt, &m); err != nil {
		t.Fatalf("metadata file: %v\n%s", err, dt)
	}
	return m
}

// ociIndexDigest returns the manifest digest an OCI layout tarball's
// index.json lists first.
func ociIndexDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no index.json (%v)", path, err)
		}
		if h.Name != "index.json" {
			continue
		}
		var idx ocispecs.Index
		if err := json.NewDecoder(tr).Decode(&idx); err != nil || len(idx.Manifests) == 0 {
			t.Fatalf("%s: index.json: %v, %+v", path, err, idx)
		}
		return idx.Manifests[0].Digest.String()
	}
}

// TestPushToAuthRegistry: solve --output type=registry pushes to a local
// registry that wants a login, with the credentials of the Docker config
// DOCKER_CONFIG names; without them the push fails. The registry then
// serves the manifest, config and layers whose digests the metadata file
// (buildx's shape) and the OCI tarball written in the same run report.
func TestPushToAuthRegistry(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const recipe, program = "hello-c.gcc-static.scratch", "hello-c"
	const user, pass = "minikit", "e2e-s3cret"
	host := authRegistry(t, user, pass)
	pushed := host + "/min/" + program + ":" + recipe
	ref, err := name.ParseReference(pushed, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	meta := filepath.Join(out, "metadata.json")
	args := []string{"solve", recipe, "--progress", "plain", "--format", "json",
		"--output", "type=registry,name=" + host + "/min/{program}:{name},registry.insecure=true",
		"--output", "type=oci,dest=" + filepath.Join(out, "{name}.oci.tar"),
		"--metadata-file", meta}

	// Without credentials the registry refuses the push.
	code, stdout, stderr := minikitEnv(t, ctx, []string{"DOCKER_CONFIG=" + dockerConfig(t, host, "", "")}, args...)
	if code != 1 {
		t.Fatalf("push without credentials: exit %d, want 1\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	t.Logf("without credentials: %s", tail(stderr, 600))
	if _, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err == nil {
		t.Fatalf("%s is in the registry after a push without credentials", pushed)
	}

	code, stdout, stderr = minikitEnv(t, ctx, []string{"DOCKER_CONFIG=" + dockerConfig(t, host, user, pass)}, args...)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	m, ok := readMetadata(t, meta)[recipe]
	if !ok || !strings.HasPrefix(m.Digest, "sha256:") || !strings.HasPrefix(m.ConfigDigest, "sha256:") {
		t.Fatalf("metadata for %s: %+v", recipe, m)
	}
	if !strings.Contains(string(stderr), recipe+" pushed to "+pushed+"@"+m.Digest) {
		t.Errorf("solve does not say where it pushed (%s@%s):\n%s", pushed, m.Digest, tail(stderr, 2000))
	}
	if !strings.Contains(m.ImageName, pushed) || m.Descriptor.Digest.String() != m.Digest || m.Descriptor.Size <= 0 {
		t.Errorf("metadata: name %q, descriptor %+v", m.ImageName, m.Descriptor)
	}

	// Anonymous pulls are refused: the registry really wants the login.
	_, err = remote.Get(ref)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous pull of %s: %v; want 401", pushed, err)
	}
	desc, err := remote.Get(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err != nil {
		t.Fatalf("pull back %s: %v", pushed, err)
	}
	if desc.Digest.String() != m.Digest || desc.Size != m.Descriptor.Size || string(desc.MediaType) != m.Descriptor.MediaType {
		t.Errorf("the registry serves %s (%d bytes, %s); the metadata says %s (%d, %s)", desc.Digest, desc.Size, desc.MediaType, m.Digest, m.Descriptor.Size, m.Descriptor.MediaType)
	}
	if d := ociIndexDigest(t, filepath.Join(out, recipe+".oci.tar")); d != m.Digest {
		t.Errorf("the OCI tarball of the same run holds %s, the registry %s", d, m.Digest)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := img.ConfigName(); err != nil || cfg.String() != m.ConfigDigest {
		t.Errorf("config %s (%v); the metadata says %s", cfg, err, m.ConfigDigest)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed() // go-containerregistry checks the digest as it reads
		if err != nil {
			t.Fatalf("layer %s: %v", d, err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("layer %s: %v", d, err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("layer %s: %v", d, err)
		}
	}
}
