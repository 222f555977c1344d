package imagefs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		change Change
	}{
		{"./usr/bin/", "/usr/bin", Add},
		{"usr/bin/hello", "/usr/bin/hello", Add},
		{"/abs/../x", "/x", Add},
		{"./", "/", Add},
		{"etc/.wh.passwd", "/etc/passwd", Remove},
		{".wh.tmp", "/tmp", Remove},
		{"var/cache/.wh..wh..opq", "/var/cache", Opaque},
		{".wh..wh..opq", "/", Opaque},
		{"a/.wh.", "/a", Remove}, // a whiteout of nothing named: its directory
		{"not.wh.x", "/not.wh.x", Add},
	} {
		p, c := Classify(tc.name)
		if p != tc.path || c != tc.change {
			t.Errorf("Classify(%q) = %q, %v; want %q, %v", tc.name, p, c, tc.path, tc.change)
		}
	}
}

func TestCompression(t *testing.T) {
	content := bytes.Repeat([]byte("minikit "), 1000)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(content)
	zw.Close()
	ze, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	ze.Write(content)
	ze.Close()
	for _, tc := range []struct {
		blob []byte
		want Compression
	}{{gz.Bytes(), Gzip}, {zs.Bytes(), Zstd}, {content, Uncompressed}} {
		c := DetectCompression(tc.blob[:4])
		if c != tc.want {
			t.Errorf("%s blob detected as %s", tc.want, c)
			continue
		}
		r, err := Decompress(bytes.NewReader(tc.blob), c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: decompressed %d bytes (%v), want the %d written", c, len(got), err, len(content))
		}
	}
	if _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), Gzip); err == nil {
		t.Error("a broken gzip header decompressed")
	}
	for mt, want := range map[string]Compression{
		ocispecs.MediaTypeImageLayerGzip:                    Gzip,
		ocispecs.MediaTypeImageLayerZstd:                    Zstd,
		ocispecs.MediaTypeImageLayer:                        Uncompressed,
		"application/vnd.docker.image.rootfs.diff.tar.gzip": Gzip,
	} {
		if c, ok := MediaTypeCompression(mt); !ok || c != want {
			t.Errorf("%s: %v %v, want %v", mt, c, ok, want)
		}
	}
	if _, ok := MediaTypeCompression(ocispecs.MediaTypeImageConfig); ok {
		t.Error("a config media type taken for a layer")
	}
}

func desc(mt, os, arch, variant string, ann map[string]string) ocispecs.Descriptor {
	d := ocispecs.Descriptor{MediaType: mt, Digest: digest.FromString(mt + os + arch + variant + ann[ocispecs.AnnotationRefName]), Size: 10, Annotations: ann}
	if os != "" {
		d.Platform = &ocispecs.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	return d
}

func TestChoose(t *testing.T) {
	amd := desc(ocispecs.MediaTypeImageManifest, "linux", "amd64", "", nil)
	arm := desc(ocispecs.MediaTypeImageManifest, "linux", "arm64", "v8", nil)
	att := desc(ocispecs.MediaTypeImageManifest, "unknown", "unknown", "", map[string]string{"vnd.docker.reference.type": "attestation-manifest"})
	nested := ocispecs.Index{Manifests: []ocispecs.Descriptor{amd, arm, att}}
	raw, _ := json.Marshal(nested)
	inner := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageIndex, Digest: digest.FromBytes(raw), Size: int64(len(raw)),
		Annotations: map[string]string{ocispecs.AnnotationRefName: "example/app:1"}}
	fetch := func(d ocispecs.Descriptor) ([]byte, error) {
		if d.Digest == inner.Digest {
			return raw, nil
		}
		return nil, errors.New("no such blob")
	}
	top := []ocispecs.Descriptor{inner}

	got, err := Choose(top, fetch, Selector{Platform: "linux/arm64"}, "index.json")
	if err != nil || got.Digest != arm.Digest {
		t.Errorf("linux/arm64: %v %v, want %s", got.Digest, err, arm.Digest)
	}
	if got.Annotations[ocispecs.AnnotationRefName] != "example/app:1" {
		t.Errorf("the nested manifest did not get its index's ref name: %v", got.Annotations)
	}
	got, err = Choose(top, fetch, Selector{}, "index.json")
	def := map[string]digest.Digest{"linux/amd64": amd.Digest, "linux/arm64/v8": arm.Digest}[DefaultPlatform()]
	if def != "" && (err != nil || got.Digest != def) {
		t.Errorf("default platform %s: %v %v, want %s", DefaultPlatform(), got.Digest, err, def)
	}
	if _, err := Choose(top, fetch, Selector{Platform: "linux/s390x"}, "index.json"); err == nil || !strings.Contains(err.Error(), "no image manifest") {
		t.Errorf("linux/s390x: %v", err)
	}
	if _, err := Choose(top, fetch, Selector{Ref: "2"}, "index.json"); err == nil {
		t.Error("ref 2 found an image")
	}
	if got, err := Choose(top, fetch, Selector{Ref: "1", Platform: "linux/amd64"}, "index.json"); err != nil || got.Digest != amd.Digest {
		t.Errorf("ref 1, linux/amd64: %v %v", got.Digest, err)
	}
	// Two images with no platform: no default decides.
	a := desc(ocispecs.MediaTypeImageManifest, "", "", "", map[string]string{ocispecs.AnnotationRefName: "a"})
	b := desc(ocispecs.MediaTypeImageManifest, "", "", "", map[string]string{ocispecs.AnnotationRefName: "b"})
	if _, err := Choose([]ocispecs.Descriptor{a, b}, fetch, Selector{}, "index.json"); err == nil || !strings.Contains(err.Error(), "holds 2 images") {
		t.Errorf("two images: %v", err)
	}
	if got, err := Choose([]ocispecs.Descriptor{a, b}, fetch, Selector{Ref: "b"}, "index.json"); err != nil || got.Digest != b.Digest {
		t.Errorf("ref b: %v %v", got.Digest, err)
	}
	if _, err := Choose([]ocispecs.Descriptor{inner}, func(ocispecs.Descriptor) ([]byte, error) { return nil, errors.New("gone") }, Selector{}, "index.json"); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("unreadable nested index: %v", err)
	}
}

func TestLayoutName(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"index.json": "index.json", "./oci-layout": "oci-layout", "blobs/sha256/" + hex: "blobs/sha256/" + hex,
		"../blobs/sha256/" + hex: "blobs/sha256/" + hex, "manifest.json": "", "blobs/sha256/xyz": "",
		"blobs/sha256/" + hex + "/x": "", "blobs/../../etc/passwd": "", "": "",
	} {
		got, ok := layoutName(in)
		if got != want || ok != (want != "") {
			t.Errorf("layoutName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
