package imagefs

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Walk follows an index to its manifests and their blobs, each index or
// manifest once however often it is named, visits but does not follow
// what it cannot read, and skips children of other media types.
func TestWalk(t *testing.T) {
	blobs := map[digest.Digest][]byte{}
	put := func(mt string, v any) ocispecs.Descriptor {
		raw, _ := json.Marshal(v)
		d := digest.FromBytes(raw)
		blobs[d] = raw
		return ocispecs.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
	}
	cfg := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageConfig, Digest: digest.FromString("config")}
	layer := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: digest.FromString("layer")}
	man := put(ocispecs.MediaTypeImageManifest, ocispecs.Manifest{Config: cfg, Layers: []ocispecs.Descriptor{layer}})
	missing := ocispecs.Descriptor{MediaType: DockerManifest, Digest: digest.FromString("gone")}
	other := ocispecs.Descriptor{MediaType: "application/vnd.example+json", Digest: digest.FromString("other")}
	inner := put(DockerManifestList, ocispecs.Index{Manifests: []ocispecs.Descriptor{man, missing}})
	root := put(ocispecs.MediaTypeImageIndex, ocispecs.Index{Manifests: []ocispecs.Descriptor{man, inner, other}})
	fetch := func(d ocispecs.Descriptor) ([]byte, error) {
		if b, ok := blobs[d.Digest]; ok {
			return b, nil
		}
		return nil, errors.New("missing")
	}
	var got []string
	Walk(root, fetch, func(d ocispecs.Descriptor, kind string) {
		got = append(got, kind+" "+d.Digest.String())
	})
	want := []string{
		KindIndex + " " + root.Digest.String(),
		KindManifest + " " + man.Digest.String(), KindConfig + " " + cfg.Digest.String(), KindLayer + " " + layer.Digest.String(),
		KindIndex + " " + inner.Digest.String(),
		KindManifest + " " + man.Digest.String(), // named again: visited, not followed
		KindManifest + " " + missing.Digest.String(),
	}
	if !slices.Equal(got, want) {
		t.Errorf("Walk visited\n%q\nwant\n%q", got, want)
	}
}
