package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseCache(t *testing.T) {
	for _, tc := range []struct {
		in     string
		export bool
		want   client.CacheOptionsEntry
	}{
		{"type=local,dest=/c,mode=max", true, client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"dest": "/c", "mode": "max"}}},
		{"type=local,src=/c", false, client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"src": "/c"}}},
		{"type=registry,ref=reg.example/minikit/cache", true, client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": "reg.example/minikit/cache"}}},
		{"reg.example:5000/cache:v1", false, client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": "reg.example:5000/cache:v1"}}},
		{"inline", true, client.CacheOptionsEntry{Type: "inline", Attrs: map[string]string{}}},
		{"type=gha,scope=ci", false, client.CacheOptionsEntry{Type: "gha", Attrs: map[string]string{"scope": "ci"}}},
		{`type=local,"dest=/a,b"`, true, client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"dest": "/a,b"}}},
		{"TYPE=local, Dest=/c", true, client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"dest": "/c"}}},
	} {
		got, err := ParseCache(tc.in, tc.export)
		if err != nil {
			t.Errorf("ParseCache(%q, %v): %v", tc.in, tc.export, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCache(%q, %v) = %+v, want %+v", tc.in, tc.export, got, tc.want)
		}
	}
}

func TestParseCacheErrors(t *testing.T) {
	for _, tc := range []struct {
		in     string
		export bool
		msg    string
	}{
		{"", true, "empty"},
		{"dest=/c", true, "no type"},
		{"type=floppy,dest=/c", true, `unknown cache type "floppy"`},
		{"type=local", true, "needs dest="},
		{"type=local,src=/c", true, "exports to dest"},
		{"type=local,dest=/c", false, "imports from src"},
		{"type=local,src=/c,tag=x", false, "after the recipe"},
		{"type=local,dest=/c,reset=true", true, "share the cache's blobs"},
		{"type=local,dest=/c,mode=all", true, "want min or max"},
		{"type=local,src=/c,mode=max", false, "--cache-to only"},
		{"type=local,dest=/c,ignore-error=maybe", true, "want true or false"},
		{"type=registry", true, "needs ref="},
		{"type=registry,ref=r@sha256:abc", false, "digest"},
		{"type=inline", false, "export only"},
		{"type=local,dest=/c,dest=/d", true, "given twice"},
		{"type=local,type=registry", true, "type given twice"},
		{"type=local,novalue", true, `"novalue" is not key=value`},
		{`type=local,"dest=/c`, true, "comma-separated"},
	} {
		_, err := ParseCache(tc.in, tc.export)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseCache(%q, %v) = %v, want an error with %q", tc.in, tc.export, err, tc.msg)
		}
		flag := "--cache-from"
		if tc.export {
			flag = "--cache-to"
		}
		if err != nil && !strings.HasPrefix(err.Error(), flag) {
			t.Errorf("ParseCache(%q): %v does not name %s", tc.in, err, flag)
		}
	}
}

func TestRecipeCache(t *testing.T) {
	src := t.TempDir()
	// Only hello-a has been cached before.
	if err := os.MkdirAll(localRecipeDir(src, "hello-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(localRecipeDir(src, "hello-a"), "index.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACTIONS_RUNTIME_TOKEN", "tok")
	t.Setenv("ACTIONS_CACHE_URL", "https://cache.example/")
	t.Setenv("ACTIONS_CACHE_SERVICE_V2", "")
	given := []client.CacheOptionsEntry{
		{Type: "local", Attrs: map[string]string{"dest": "/c", "mode": "max"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg:5000/cache"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg:5000/cache:v1"}},
		{Type: "gha", Attrs: map[string]string{}},
		{Type: "s3", Attrs: map[string]string{"name": "ci", "bucket": "b"}},
		{Type: "inline"},
	}
	got := recipeCache(given, "hello-a", true, "minikit")
	want := []client.CacheOptionsEntry{
		{Type: "local", Attrs: map[string]string{"dest": "/c/minikit/hello-a", "mode": "max"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg:5000/cache:hello-a"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg:5000/cache:v1-hello-a"}},
		{Type: "gha", Attrs: map[string]string{"scope": "minikit-hello-a", "token": "tok", "url": "https://cache.example/"}},
		{Type: "s3", Attrs: map[string]string{"name": "ci-hello-a", "bucket": "b"}},
		{Type: "inline", Attrs: map[string]string{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exports:\n got %+v\nwant %+v", got, want)
	}
	if given[0].Attrs["dest"] != "/c" {
		t.Error("recipeCache changed the entries it was given")
	}

	imports := []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": src}}}
	if got := recipeCache(imports, "hello-a", false, "minikit"); len(got) != 1 || got[0].Attrs["src"] != localRecipeDir(src, "hello-a") {
		t.Errorf("import of a cached recipe: %+v", got)
	}
	if got := recipeCache(imports, "hello-b", false, "minikit"); len(got) != 0 {
		t.Errorf("import of a recipe never cached: %+v, want none", got)
	}
}

func TestRecipeRefLongTag(t *testing.T) {
	name := strings.Repeat("n", 120)
	got := recipeRef("reg/cache:"+strings.Repeat("t", 20), name)
	_, tag, _ := strings.Cut(got, ":")
	if len(tag) != 128 || !strings.HasSuffix(tag, name) {
		t.Errorf("tag %q: want 128 characters ending with the recipe name", tag)
	}
}

// TestLocalCacheLayout checks the directory a local cache export leaves:
// per-recipe layouts sharing DIR/blobs, and DIR/index.json naming every
// recipe, written by many goroutines at once.
func TestLocalCacheLayout(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	exports := []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": dir}}}
	if err := prepareLocalCaches(exports, names); err != nil {
		t.Fatal(err)
	}
	if err := prepareLocalCaches(exports, names); err != nil {
		t.Fatalf("second prepare: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		// What BuildKit's client leaves in a recipe's layout.
		blob := []byte("manifest of " + n)
		d := digestOf(blob)
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(localRecipeDir(dir, n), "blobs", "sha256", d.Encoded()), blob, 0o644); err != nil {
			t.Fatal(err)
		}
		idx := ocispecs.Index{Manifests: []ocispecs.Descriptor{{
			MediaType: ocispecs.MediaTypeImageManifest, Digest: d, Size: int64(len(blob)),
			Annotations: map[string]string{ocispecs.AnnotationRefName: "latest"},
		}}}
		data, _ := json.Marshal(idx)
		if err := os.WriteFile(filepath.Join(localRecipeDir(dir, n), "index.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = publishLocalCache(dir, n)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publish %s: %v", names[i], err)
		}
	}
	var idx ocispecs.Index
	if err := readCacheJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != len(names) {
		t.Fatalf("index has %d manifests, want %d", len(idx.Manifests), len(names))
	}
	for i, m := range idx.Manifests {
		if m.Annotations[ocispecs.AnnotationRefName] != names[i] || m.Digest != digestOf([]byte("manifest of "+names[i])) {
			t.Errorf("manifest %d: %+v", i, m)
		}
		if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", m.Digest.Encoded())); err != nil {
			t.Errorf("blob of %s not in the shared blobs: %v", names[i], err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Error(err)
	}
	// Publishing again replaces the entry rather than adding one.
	if err := publishLocalCache(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if err := readCacheJSON(filepath.Join(dir, "index.json"), &idx); err != nil || len(idx.Manifests) != len(names) {
		t.Errorf("after republishing: %d manifests (%v)", len(idx.Manifests), err)
	}

	// A recipe directory whose blobs are not the shared ones is refused.
	if err := os.MkdirAll(filepath.Join(localRecipeDir(dir, "x"), "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := prepareLocalCaches(exports, []string{"x"}); err == nil || !strings.Contains(err.Error(), "should be a link") {
		t.Errorf("prepare over a foreign directory: %v", err)
	}
}

func TestCacheOptions(t *testing.T) {
	cfg, err := newConfig([]Option{
		CacheExports(client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"dest": "/c"}}),
		CacheImports(client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"src": "/c"}})})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.cacheExports) != 1 || len(cfg.cacheImports) != 1 {
		t.Errorf("config %+v", cfg)
	}
	if _, err := newConfig([]Option{CacheImports(client.CacheOptionsEntry{Type: "inline"})}); err == nil {
		t.Error("an inline cache import was accepted")
	}
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
