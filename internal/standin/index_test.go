package standin

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestIndexReplacedWhole: naming an image in the layout replaces
// index.json by a new file (a hard-linked copy keeps its own), the image
// of a name is replaced, other names are kept, and removal drops only
// what it selects.
func TestIndexReplacedWhole(t *testing.T) {
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := random.Image(64, 1)
	b, _ := random.Image(64, 1)
	c, _ := random.Index(64, 1, 2)
	if err := putNamed(lp, "a", a); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "index.json")
	if err := os.Link(filepath.Join(dir, "index.json"), link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(link)
	if err := putNamed(lp, "a", b); err != nil {
		t.Fatal(err)
	}
	if err := putNamedIndex(lp, "c", c); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(link); string(after) != string(before) {
		t.Error("a hard link to the old index.json changed: it was written in place")
	}
	imgs, err := layoutImagesByName(t, lp)
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := b.Digest()
	cd, _ := c.Digest()
	if len(imgs) != 2 || imgs["a"] != bd.String() || imgs["c"] != cd.String() {
		t.Fatalf("index holds %v, want a=%s and c=%s", imgs, bd, cd)
	}
	// Every blob the index names is there: the layout reads back whole.
	if _, err := lp.Image(bd); err != nil {
		t.Error(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	child, err := idx.ImageIndex(cd)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := child.IndexManifest()
	for _, d := range im.Manifests {
		img, err := child.Image(d.Digest)
		if err == nil {
			_, err = img.RawConfigFile()
		}
		if err != nil {
			t.Errorf("image %s of the index: %v", d.Digest, err)
		}
	}
	if err := removeDescriptors(lp, func(d v1.Descriptor) bool { return d.Annotations[AnnotationRefName] == "a" }); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := layoutImagesByName(t, lp); len(imgs) != 1 || imgs["c"] == "" {
		t.Errorf("after removing a: %v", imgs)
	}
}

func layoutImagesByName(t *testing.T, lp layout.Path) (map[string]string, error) {
	t.Helper()
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range im.Manifests {
		out[d.Annotations[AnnotationRefName]] = d.Digest.String()
	}
	return out, nil
}
