package measure

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
)

// A docker tarball as go-containerregistry writes it (docker load's
// format: manifest.json, the config, gzip layers) measures as the image
// itself, but for the manifest, which the archive does not hold.
func TestFromArchiveDockerTarball(t *testing.T) {
	img := cacheImage(t)
	want := measureGGCR(t, img)
	ref, _ := name.ParseReference("minikit.test/x:1")
	var buf bytes.Buffer
	if err := tarball.Write(ref, img, &buf); err != nil {
		t.Fatal(err)
	}
	got, err := FromArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.MediaType != dockerManifest || got.ManifestDigest == want.ManifestDigest {
		t.Errorf("manifest %s %s: want a docker manifest of its own", got.MediaType, got.ManifestDigest)
	}
	g, w := *got, *want
	g.ManifestDigest, g.MediaType, w.ManifestDigest, w.MediaType = "", "", "", ""
	g.Layers, w.Layers = nil, nil
	a, _ := json.Marshal(g)
	b, _ := json.Marshal(w)
	if !bytes.Equal(a, b) {
		t.Errorf("docker tarball:\n%s\nlayout:\n%s", a, b)
	}
	for i := range want.Layers {
		gl, wl := got.Layers[i], want.Layers[i]
		gl.MediaType, wl.MediaType = "", ""
		if gl != wl {
			t.Errorf("layer %d: %+v, want %+v", i, gl, wl)
		}
	}
	if _, err := FromArchive(bytes.NewReader(buf.Bytes()), Ref("nope")); err == nil {
		t.Error("ref nope found an image")
	}
	if _, err := FromArchive(bytes.NewReader(buf.Bytes()), Ref("1")); err != nil {
		t.Errorf("ref 1: %v", err)
	}
}

// The format of `docker save` before Docker 25: uncompressed layer.tar
// files in v1 layer directories, a shared layer as a symbolic link,
// manifest.json last.
func TestFromArchiveLegacyDockerSave(t *testing.T) {
	l0 := tarBytes(t, tfile{name: "bin/", dir: true}, tfile{name: "bin/sh", size: 1000})
	l1 := tarBytes(t, tfile{name: "bin/sh", size: 1200}, tfile{name: "etc/.wh.x"})
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` +
		digest.FromBytes(l0).String() + `","` + digest.FromBytes(l1).String() + `","` + digest.FromBytes(l0).String() + `"]},` +
		`"history":[{"created_by":"base"},{"created_by":"step"},{"created_by":"again"}]}`)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	manifest := []byte(`[{"Config":"` + cfgName + `","RepoTags":["minikit:legacy"],"Layers":["aaa/layer.tar","bbb/layer.tar","ccc/layer.tar"]}]`)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	put("aaa/VERSION", []byte("1.0"))
	put("aaa/layer.tar", l0)
	put("bbb/layer.tar", l1)
	if err := tw.WriteHeader(&tar.Header{Name: "ccc/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"}); err != nil {
		t.Fatal(err)
	}
	put(cfgName, cfg)
	put("repositories", []byte(`{"minikit":{"legacy":"bbb"}}`))
	put("manifest.json", manifest)
	tw.Close()

	file := filepath.Join(t.TempDir(), "save.tar")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := FromArchiveFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != 3 || got.Layers[2].Digest != got.Layers[0].Digest || got.Layers[0].Digest != digest.FromBytes(l0).String() {
		t.Fatalf("layers %+v", got.Layers)
	}
	if got.Compressed != got.Uncompressed || got.Uncompressed != int64(2*len(l0)+len(l1)) {
		t.Errorf("compressed %d, uncompressed %d, want both %d", got.Compressed, got.Uncompressed, 2*len(l0)+len(l1))
	}
	if got.ConfigDigest != digest.FromBytes(cfg).String() || got.Layers[1].CreatedBy != "step" {
		t.Errorf("config %s, layer 1 %+v", got.ConfigDigest, got.Layers[1])
	}
	// /bin/sh: 1000, then 1200, then 1000 again: two hidden versions.
	if got.Files != 1 || got.FileBytes != 1000 || got.WastedBytes != 2200 {
		t.Errorf("files %d (%d bytes), wasted %d", got.Files, got.FileBytes, got.WastedBytes)
	}
	if _, err := FromArchive(bytes.NewReader(tarBytes(t, tfile{name: "x", size: 3}))); err == nil || !strings.Contains(err.Error(), "neither index.json") {
		t.Errorf("not an archive: %v", err)
	}
}
