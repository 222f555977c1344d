package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/pkg/report"
)

// TestRegistryReadOnly: with the private daemon and its stand-in registry
// running, pushes to the registry are refused (405) and the next solve
// still builds on the stand-ins.
func TestRegistryReadOnly(t *testing.T) {
	home := requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const recipe = "hello-c.gcc-static.alpine"
	solve := func() {
		t.Helper()
		code, stdout, stderr := minikit(t, ctx, "solve", recipe, "--format", "json", "--progress", "plain")
		if code != 0 {
			t.Fatalf("solve %s exited %d\n%s\n%s", recipe, code, stdout, tail(stderr, 3000))
		}
		doc, err := report.ReadJSON(bytes.NewReader(stdout))
		if err != nil {
			t.Fatalf("solve --format json: %v\n%s", err, stdout)
		}
		if len(doc.Recipes) != 1 || doc.Recipes[0].Status != report.StatusOK || !doc.Recipes[0].StandIn {
			t.Fatalf("solve %s: want ok on the stand-ins, got %+v", recipe, doc.Recipes)
		}
	}
	solve() // starts the private daemon and the registry

	reg := os.Getenv("MINIKIT_REGISTRY")
	if reg == "" {
		reg = connect.DefaultRegistry
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/v2/library/alpine/manifests/3.22"},
		{http.MethodPost, "/v2/library/alpine/blobs/uploads/"},
		{http.MethodPatch, "/v2/library/alpine/blobs/uploads/x"},
		{http.MethodDelete, "/v2/library/alpine/manifests/3.22"},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, "http://"+reg+c.path, bytes.NewReader(manifest))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s http://%s%s: %s, want 405", c.method, reg, c.path, resp.Status)
		}
	}

	// What the registry serves is still the layout's.
	idx, err := layout.ImageIndexFromPath(home.StandIns())
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "library/alpine:3.22" {
			want = d.Digest.String()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+reg+"/v2/library/alpine/manifests/3.22", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); want == "" || got != want {
		t.Errorf("library/alpine:3.22 served as %q (%s), want the layout's %q", got, resp.Status, want)
	}

	solve()
}
