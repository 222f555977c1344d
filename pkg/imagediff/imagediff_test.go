package imagediff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// tfile is one entry of a test layer.
type tfile struct {
	name, body, link string
	typ              byte
}

func layerTar(t *testing.T, gz bool, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: f.name, Typeflag: typ, Mode: 0o644, Linkname: f.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	if !gz {
		return buf.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(buf.Bytes())
	zw.Close()
	return z.Bytes()
}

// layout returns an OCI layout tar stream of one image, blobs first (as
// an exporter may write them), index.json last.
func layout(t *testing.T, cfg ocispecs.ImageConfig, layers ...[]byte) []byte {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	add := func(b []byte) ocispecs.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispecs.Descriptor{Digest: d, Size: int64(len(b))}
	}
	mf := ocispecs.Manifest{MediaType: ocispecs.MediaTypeImageManifest}
	mf.SchemaVersion = 2
	for _, l := range layers {
		desc := add(l)
		desc.MediaType = ocispecs.MediaTypeImageLayerGzip
		mf.Layers = append(mf.Layers, desc)
	}
	img := ocispecs.Image{Config: cfg}
	img.OS, img.Architecture = "linux", "amd64"
	cb, _ := json.Marshal(img)
	mf.Config = add(cb)
	mf.Config.MediaType = ocispecs.MediaTypeImageConfig
	mb, _ := json.Marshal(mf)
	md := add(mb)
	md.MediaType = ocispecs.MediaTypeImageManifest
	idx := ocispecs.Index{Manifests: []ocispecs.Descriptor{md}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Name: "blobs/", Typeflag: tar.TypeDir, Mode: 0o755})
	for d, b := range blobs {
		put("blobs/sha256/"+d.Encoded(), b)
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", ib)
	tw.Close()
	return buf.Bytes()
}

func TestReadAndCompare(t *testing.T) {
	base := layerTar(t, true,
		tfile{name: "etc/", typ: tar.TypeDir},
		tfile{name: "etc/ssl/", typ: tar.TypeDir},
		tfile{name: "etc/ssl/certs/", typ: tar.TypeDir},
		tfile{name: "etc/ssl/certs/ca-certificates.crt", body: strings.Repeat("c", 200)},
		tfile{name: "etc/ssl/openssl.cnf", body: strings.Repeat("o", 50)},
		tfile{name: "old/", typ: tar.TypeDir},
		tfile{name: "old/a", body: "aaaa"},
		tfile{name: "bin/", typ: tar.TypeDir},
		tfile{name: "bin/sh", body: strings.Repeat("s", 1000)},
	)
	top := layerTar(t, false, // an uncompressed layer
		tfile{name: "old/.wh..wh..opq"},
		tfile{name: "bin/.wh.sh"},
		tfile{name: "hello", body: strings.Repeat("h", 300)},
		tfile{name: "hello-link", typ: tar.TypeLink, link: "hello"},
	)
	a, err := ReadOCITar(bytes.NewReader(layout(t, ocispecs.ImageConfig{Cmd: []string{"./hello"}, WorkingDir: "/"}, base, top)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Files["/bin/sh"]; ok {
		t.Error("whiteout not applied")
	}
	if _, ok := a.Files["/old/a"]; ok {
		t.Error("opaque whiteout not applied")
	}
	if e := a.Files["/hello-link"]; e.Kind != KindFile || e.Size != 300 {
		t.Errorf("hard link: %+v", e)
	}
	if a.Config.Config.Cmd[0] != "./hello" || !strings.HasPrefix(a.ManifestDigest, "sha256:") {
		t.Errorf("config %+v, digest %s", a.Config.Config, a.ManifestDigest)
	}

	b, err := ReadOCITar(bytes.NewReader(layout(t, ocispecs.ImageConfig{Cmd: []string{"./hello"}, Env: []string{"X=1"}},
		layerTar(t, true,
			tfile{name: "hello", body: strings.Repeat("H", 320)},
			tfile{name: "etc/ssl/certs/ca-certificates.crt", body: strings.Repeat("c", 200)},
			tfile{name: "new/", typ: tar.TypeDir},
			tfile{name: "new/big", body: strings.Repeat("b", 5000)},
		))))
	if err != nil {
		t.Fatal(err)
	}
	a.Name, b.Name, a.Base, b.Base = "a", "b", "debian:bookworm", "scratch"
	d := Compare(a, b)
	paths := func(cs []Change) string {
		var ps []string
		for _, c := range cs {
			ps = append(ps, c.Path)
		}
		return strings.Join(ps, " ")
	}
	if got := paths(d.OnlyA); got != "/hello-link /etc/ssl/openssl.cnf /bin /old" {
		t.Errorf("only in a: %s", got)
	}
	if got := paths(d.OnlyB); got != "/new/big" {
		t.Errorf("only in b (a directory with new contents is implied): %s", got)
	}
	if len(d.Changed) != 1 || d.Changed[0].Path != "/hello" || d.Changed[0].Delta != 20 {
		t.Errorf("changed: %+v", d.Changed)
	}
	if d.OnlyABytes != 350 || d.OnlyBBytes != 5000 || d.DeltaBytes != (320+200+5000)-(200+50+300+300) {
		t.Errorf("bytes: only a %d, only b %d, delta %d", d.OnlyABytes, d.OnlyBBytes, d.DeltaBytes)
	}
	var fields []string
	for _, c := range d.Config {
		fields = append(fields, c.Field)
	}
	if strings.Join(fields, " ") != "Base Env WorkingDir" {
		t.Errorf("config changes: %+v", d.Config)
	}
	if d.Same() || !Compare(a, a).Same() {
		t.Error("Same")
	}

	var buf bytes.Buffer
	if err := WriteText(&buf, d, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"only in a", "only in b", "/new/big", "changed", "/hello", "+20 B", "Env", "Base"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := ReadOCITar(strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "index.json") {
		t.Errorf("empty stream: %v", err)
	}
	full := layout(t, ocispecs.ImageConfig{}, layerTar(t, true, tfile{name: "x", body: "x"}))
	if _, err := ReadOCITar(bytes.NewReader(full[:len(full)/2])); err == nil {
		t.Error("truncated stream accepted")
	}
}
