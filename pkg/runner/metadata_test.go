package runner

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestWriteMetadata: buildx's shape, keyed by target, for the targets
// that built an image.
func TestWriteMetadata(t *testing.T) {
	manifest := "sha256:" + strings.Repeat("1", 64)
	config := "sha256:" + strings.Repeat("2", 64)
	results := []Result{
		{Name: "a", Status: StatusOK, ImageName: "docker.io/library/minikit:a",
			ImageNames:  []string{"docker.io/library/minikit:a", "r.example/min/a:a"},
			ImageDigest: manifest, ConfigDigest: config,
			ImageDescriptor: &ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageManifest, Digest: digest.Digest(manifest), Size: 481}},
		{Name: "b", Status: StatusOK, ImageName: "docker.io/library/b:latest", ImageDigest: manifest},
		{Name: "failed", Status: StatusFailed, Error: "boom"},
		{Name: "no-export", Status: StatusOK},
	}
	path := filepath.Join(t.TempDir(), "metadata.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteMetadata(path, results); err != nil {
		t.Fatal(err)
	}
	dt, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]json.RawMessage
	if err := json.Unmarshal(dt, &doc); err != nil {
		t.Fatalf("%v\n%s", err, dt)
	}
	if keys := slices.Sorted(maps.Keys(doc)); !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("targets %v; want a and b", keys)
	}
	if keys := slices.Sorted(maps.Keys(doc["a"])); !slices.Equal(keys, []string{"containerimage.config.digest", "containerimage.descriptor", "containerimage.digest", "image.name"}) {
		t.Errorf("a's keys %v", keys)
	}
	var a struct {
		Digest     string              `json:"containerimage.digest"`
		Config     string              `json:"containerimage.config.digest"`
		Descriptor ocispecs.Descriptor `json:"containerimage.descriptor"`
		Name       string              `json:"image.name"`
	}
	raw, _ := json.Marshal(doc["a"])
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if a.Digest != manifest || a.Config != config || a.Descriptor.Size != 481 || a.Descriptor.Digest.String() != manifest ||
		a.Descriptor.MediaType != ocispecs.MediaTypeImageManifest || a.Name != "docker.io/library/minikit:a,r.example/min/a:a" {
		t.Errorf("a: %+v", a)
	}
	if string(doc["b"]["image.name"]) != `"docker.io/library/b:latest"` {
		t.Errorf("b's name %s: want its ImageName", doc["b"]["image.name"])
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := WriteMetadata(filepath.Join(t.TempDir(), "missing", "m.json"), results); err == nil || !strings.Contains(err.Error(), "metadata file") {
		t.Errorf("a missing directory: %v", err)
	}
}

// A target built for two platforms has one Result per platform and one
// metadata entry: its image index's.
func TestMetadataIndex(t *testing.T) {
	index := "sha256:" + strings.Repeat("3", 64)
	desc := &ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageIndex, Digest: digest.Digest(index), Size: 700}
	results := []Result{
		{Name: "m", Platform: "linux/amd64", Status: StatusOK, ImageName: "docker.io/library/m:latest", ImageDigest: index, ImageDescriptor: desc},
		{Name: "m", Platform: "linux/arm64", Status: StatusOK, ImageName: "docker.io/library/m:latest", ImageDigest: index, ImageDescriptor: desc},
	}
	md := Metadata(results)
	if len(md) != 1 || md["m"].Digest != index || md["m"].Descriptor.MediaType != ocispecs.MediaTypeImageIndex || md["m"].ImageName != "docker.io/library/m:latest" {
		t.Errorf("metadata %+v; want one entry, the index's", md)
	}
}
