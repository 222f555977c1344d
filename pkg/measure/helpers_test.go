package measure

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// A tfile is an entry of a hand-made layer tar.
type tfile struct {
	name    string
	size    int  // content length, for regular files
	dir     bool // a directory
	symlink string
	noise   bool // incompressible content
}

// tarBytes writes the entries as an uncompressed tar stream.
func tarBytes(t *testing.T, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(f.size), Format: tar.FormatPAX}
		switch {
		case f.dir:
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		case f.symlink != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, f.symlink, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			content := bytes.Repeat([]byte{byte(len(f.name))}, f.size)
			if f.noise {
				rand.New(rand.NewSource(int64(f.size))).Read(content) //nolint:gosec // test data
			}
			if _, err := tw.Write(content); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ggcrLayer is a gzip OCI layer made by go-containerregistry from an
// uncompressed tar.
func ggcrLayer(t *testing.T, tarball_ []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarball_)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ggcrImage stacks the layers into an OCI image, one history entry per
// layer (created_by "step N"), plus an empty_layer entry first.
func ggcrImage(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.History = []v1.History{{CreatedBy: "ENV nothing", EmptyLayer: true}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "step " + string(rune('A'+i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// writeLayout writes images to an OCI layout directory.
func writeLayout(t *testing.T, imgs ...v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		ann := map[string]string{ocispecs.AnnotationRefName: "img" + string(rune('0'+i))}
		if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// layoutFiles reads a layout directory into memory, keyed by slash path.
func layoutFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Orders of a layout's entries in a tar stream.
type order func(files map[string][]byte) []string

// blobsFirst puts the largest blobs (the layers) first and index.json
// last: the manifest comes after the layers it names.
func blobsFirst(files map[string][]byte) []string {
	names := sortedNames(files)
	sort.SliceStable(names, func(i, j int) bool {
		return len(files[names[i]]) > len(files[names[j]]) && names[i] != "index.json"
	})
	return moveLast(names, "index.json")
}

// indexFirst puts index.json and the small JSON blobs before the layers.
func indexFirst(files map[string][]byte) []string {
	names := sortedNames(files)
	sort.SliceStable(names, func(i, j int) bool { return len(files[names[i]]) < len(files[names[j]]) })
	return append([]string{"index.json"}, without(names, "index.json")...)
}

func sortedNames(files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func without(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

func moveLast(names []string, last string) []string {
	return append(without(names, last), last)
}

// tarOf writes the layout files as a tar stream, in the given order, with
// directory entries as BuildKit writes them.
func tarOf(t *testing.T, files map[string][]byte, names []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		b := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A crafted layout is written by hand, to make what go-containerregistry
// refuses to: wrong diff IDs, odd media types.
type craftLayer struct {
	blob      []byte
	mediaType string
	diffID    digest.Digest // "" = sha256 of uncompressed (given)
	tar       []byte        // the uncompressed stream, for the diff ID
}

func craft(t *testing.T, layers []craftLayer, history []ocispecs.History) map[string][]byte {
	t.Helper()
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	put := func(b []byte) ocispecs.Descriptor {
		d := digest.FromBytes(b)
		files["blobs/sha256/"+d.Encoded()] = b
		return ocispecs.Descriptor{Digest: d, Size: int64(len(b))}
	}
	var cfg ocispecs.Image
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.RootFS.Type = "layers"
	cfg.History = history
	var m ocispecs.Manifest
	m.SchemaVersion = 2
	m.MediaType = ocispecs.MediaTypeImageManifest
	for _, l := range layers {
		d := put(l.blob)
		d.MediaType = l.mediaType
		m.Layers = append(m.Layers, d)
		id := l.diffID
		if id == "" {
			id = digest.FromBytes(l.tar)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, id)
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = put(cb)
	m.Config.MediaType = ocispecs.MediaTypeImageConfig
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := put(mb)
	md.MediaType = ocispecs.MediaTypeImageManifest
	idx := ocispecs.Index{MediaType: ocispecs.MediaTypeImageIndex, Manifests: []ocispecs.Descriptor{md}}
	idx.SchemaVersion = 2
	ib, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	files["index.json"] = ib
	return files
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
