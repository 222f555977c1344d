package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// cacheRecipes share the golang-alpine build stage, so their cache exports
// write the same blobs at the same time.
var cacheRecipes = []string{"hello-c.gcc-static.scratch", "hello-go.golang-alpine.scratch", "hello-go.golang-alpine.alpine"}

// TestCacheExportImport exports the recipes' build cache to a local
// directory from the private daemon, then starts a second private daemon
// with an empty state (its own MINIKIT_HOME, its own stand-in registry)
// and solves them again importing that cache: every build step must come
// from it.
func TestCacheExportImport(t *testing.T) {
	home := requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cache := t.TempDir()

	solve := func(args ...string) []resultRow {
		t.Helper()
		args = append([]string{"solve", "--format", "json", "--progress", "plain"}, args...)
		code, stdout, stderr := minikit(t, ctx, append(args, cacheRecipes...)...)
		if code != 0 {
			t.Fatalf("minikit %v exited %d\n%s\n%s", args, code, stdout, tail(stderr, 3000))
		}
		rows := parseRows(t, stdout)
		if len(rows) != len(cacheRecipes) {
			t.Fatalf("%d rows, want %d", len(rows), len(cacheRecipes))
		}
		for _, r := range rows {
			if r.Status != "ok" || !r.StandIn || r.Vertices == 0 {
				t.Errorf("%s: want ok on stand-ins with build steps, got %+v", r.Name, r)
			}
		}
		return rows
	}

	start := time.Now()
	solve("--cache-to", "type=local,mode=max,dest="+cache)
	t.Logf("solve with cache export: %s", time.Since(start).Round(time.Millisecond))
	var idx ocispecs.Index
	data, err := os.ReadFile(filepath.Join(cache, "index.json"))
	if err == nil {
		err = json.Unmarshal(data, &idx)
	}
	if err != nil {
		t.Fatalf("cache index: %v", err)
	}
	tags := map[string]bool{}
	for _, m := range idx.Manifests {
		tags[m.Annotations[ocispecs.AnnotationRefName]] = true
	}
	for _, n := range cacheRecipes {
		if !tags[n] {
			t.Errorf("cache index has no entry for %s: %s", n, data)
		}
	}

	// A second private daemon, with nothing in its state: the same
	// stand-ins and buildkitd binary, its own registry port.
	fresh := t.TempDir()
	if err := os.Symlink(home.StandIns(), filepath.Join(fresh, "standins")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home.Bin(), "buildkitd")); err == nil {
		if err := os.Symlink(home.Bin(), filepath.Join(fresh, "bin")); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MINIKIT_HOME", fresh)
	t.Setenv("MINIKIT_REGISTRY", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Cleanup(func() {
		if code, _, stderr := minikit(t, context.Background(), "daemon", "stop"); code != 0 {
			t.Errorf("stopping the second daemon: exit %d\n%s", code, stderr)
		}
	})
	if _, err := os.Stat(filepath.Join(fresh, "buildkitd", "root")); !os.IsNotExist(err) {
		t.Fatalf("the second daemon's state exists already (%v)", err)
	}

	start = time.Now()
	rows := solve("--cache-from", "type=local,src="+cache)
	t.Logf("solve on an empty daemon with cache import: %s", time.Since(start).Round(time.Millisecond))
	for _, r := range rows {
		if r.Cached != r.Vertices {
			t.Errorf("%s: %d of %d build steps from the cache, want all", r.Name, r.Cached, r.Vertices)
		}
	}
}
