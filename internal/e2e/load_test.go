package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadIntoDocker: solve --load streams the image into this machine's
// Docker engine (docker load), says which tag it got, and Docker runs it;
// the image Docker has is the one the metadata file names (its ID is the
// config digest).
func TestLoadIntoDocker(t *testing.T) {
	requireBuildEnv(t)
	requireDockerEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const recipe = "hello-c.gcc-static.scratch"
	const tag = "minikit:" + recipe
	t.Cleanup(func() { _, _, _, _ = dockerCLI(context.Background(), nil, "rmi", "--force", tag) })
	meta := filepath.Join(t.TempDir(), "metadata.json")
	code, stdout, stderr := minikit(t, ctx, "solve", recipe, "--load", "--metadata-file", meta, "--progress", "plain")
	if code != 0 {
		t.Fatalf("solve --load: exit %d\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	if !strings.Contains(string(stderr), recipe+" loaded into Docker as "+tag+"\n") {
		t.Errorf("solve --load does not say which tag the image got:\n%s", tail(stderr, 2000))
	}
	m, ok := readMetadata(t, meta)[recipe]
	if !ok || !strings.HasPrefix(m.ConfigDigest, "sha256:") {
		t.Fatalf("metadata for %s: %+v", recipe, m)
	}
	code, id, errOut, err := dockerCLI(ctx, nil, "image", "inspect", "--format", "{{.Id}}", tag)
	if err != nil || code != 0 {
		t.Fatalf("docker image inspect %s: exit %d, %v: %s", tag, code, err, errOut)
	}
	if strings.TrimSpace(id) != m.ConfigDigest {
		t.Errorf("Docker's image %s is %s; the metadata's config digest is %s", tag, strings.TrimSpace(id), m.ConfigDigest)
	}
	code, out, errOut, err := dockerCLI(ctx, nil, "run", "--rm", "--network", "none", tag)
	if err != nil || code != 0 || out != "Hello, world!\n" {
		t.Errorf("docker run %s: exit %d (%v), output %q, errors %q; want exit 0 and \"Hello, world!\"", tag, code, err, out, errOut)
	}
}
