package measure

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkAgainstGGCR compares every number of a measured image with
// go-containerregistry's own reading of the same image.
func checkAgainstGGCR(t *testing.T, got *Image, img v1.Image) {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.ManifestDigest != d.String() {
		t.Errorf("manifest digest %s, want %s", got.ManifestDigest, d)
	}
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got.ConfigDigest != cn.String() {
		t.Errorf("config digest %s, want %s", got.ConfigDigest, cn)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(layers))
	}
	var comp, uncomp int64
	for i, l := range layers {
		g := got.Layers[i]
		size, _ := l.Size()
		digest, _ := l.Digest()
		diffID, _ := l.DiffID()
		mt, _ := l.MediaType()
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g.Index != i || g.Digest != digest.String() || g.DiffID != diffID.String() ||
			g.MediaType != string(mt) || g.Compressed != size || g.Uncompressed != n {
			t.Errorf("layer %d: got %+v, want digest %s diff_id %s media type %s compressed %d uncompressed %d",
				i, g, digest, diffID, mt, size, n)
		}
		comp += size
		uncomp += n
	}
	if got.Compressed != comp || got.Uncompressed != uncomp {
		t.Errorf("totals %d/%d, want %d/%d", got.Compressed, got.Uncompressed, comp, uncomp)
	}
	if got.BaseCompressed+got.AddedCompressed != comp || got.BaseUncompressed+got.AddedUncompressed != uncomp {
		t.Errorf("base + added != total: %+v", got)
	}
}

func TestMatchesGoContainerRegistry(t *testing.T) {
	rnd, err := random.Image(3000, 3)
	if err != nil {
		t.Fatal(err)
	}
	rndLayers, _ := rnd.Layers()
	hand := ggcrLayer(t, tarBytes(t,
		tfile{name: "usr/", dir: true},
		tfile{name: "usr/bin/", dir: true},
		tfile{name: "usr/bin/hello", size: 70000},
		tfile{name: "usr/bin/hi", symlink: "hello"},
	))
	img := ggcrImage(t, append(rndLayers, hand)...)
	dir := writeLayout(t, img)
	files := layoutFiles(t, dir)

	for name, ord := range map[string]order{"layers before index.json": blobsFirst, "index.json first": indexFirst} {
		t.Run(name, func(t *testing.T) {
			got, err := FromOCITar(bytes.NewReader(tarOf(t, files, ord(files))), BaseLayers(2))
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstGGCR(t, got, img)
			if got.BaseLayers != 2 || !got.BaseKnown || !got.Layers[1].FromBase || got.Layers[2].FromBase {
				t.Errorf("base: %d known %v, layers %+v", got.BaseLayers, got.BaseKnown, got.Layers)
			}
			if got.Layers[3].CreatedBy != "step D" || got.Layers[3].Files != 1 || got.Layers[3].Entries != 4 || got.Layers[3].FileBytes != 70000 {
				t.Errorf("layer 3: %+v", got.Layers[3])
			}
			if got.Largest[0] != (File{Path: "/usr/bin/hello", Size: 70000, Layer: 3}) {
				t.Errorf("largest: %+v", got.Largest)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		got, err := FromOCILayoutDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstGGCR(t, got, img)
	})
	t.Run("v1.Image", func(t *testing.T) {
		got, err := FromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstGGCR(t, got, img)
		fromTar, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(fromTar)
		if !bytes.Equal(a, b) {
			t.Errorf("FromImage and FromOCITar disagree:\n%s\n%s", a, b)
		}
	})
}

// A single file of N bytes in a one-layer image: the tar stream is its
// header (512), its content padded to 512 and the end of archive (1024).
func TestKnownFact(t *testing.T) {
	for _, n := range []int{0, 1, 512, 1000, 123456} {
		raw := tarBytes(t, tfile{name: "hello", size: n})
		want := int64(512 + (n+511)/512*512 + 1024)
		files := craft(t, []craftLayer{{blob: gzipBytes(t, raw), mediaType: ocispecs.MediaTypeImageLayerGzip, tar: raw}}, nil)
		got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		if err != nil {
			t.Fatal(err)
		}
		if got.Uncompressed != want || got.Layers[0].Uncompressed != want {
			t.Errorf("%d bytes: uncompressed %d, want %d", n, got.Uncompressed, want)
		}
		if got.Files != 1 || got.FileBytes != int64(n) || got.Largest[0] != (File{Path: "/hello", Size: int64(n)}) {
			t.Errorf("%d bytes: files %d (%d bytes), largest %+v", n, got.Files, got.FileBytes, got.Largest)
		}
		if got.Compressed != int64(len(gzipBytes(t, raw))) {
			t.Errorf("%d bytes: compressed %d", n, got.Compressed)
		}
	}
}

func TestWasted(t *testing.T) {
	l0 := tarBytes(t,
		tfile{name: "a", size: 100},
		tfile{name: "d/", dir: true},
		tfile{name: "d/x", size: 200},
		tfile{name: "d/y", size: 300},
		tfile{name: "keep", size: 50},
		tfile{name: "e/", dir: true},
		tfile{name: "e/f", size: 7},
		tfile{name: "big", size: 5000},
	)
	l1 := tarBytes(t,
		tfile{name: ".wh.a"},
		tfile{name: "keep", size: 70},     // overwrites 50
		tfile{name: "d/.wh..wh..opq"},     // hides x and y
		tfile{name: "d/z", size: 10},      // survives
		tfile{name: "e", size: 3},         // a file replacing a directory: hides e/f
		tfile{name: ".wh.missing"},        // removes nothing
		tfile{name: "big/inner", size: 1}, // a directory replacing a file
	)
	l2 := tarBytes(t, tfile{name: ".wh.keep"}) // removes the 70
	img := ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1), ggcrLayer(t, l2))
	files := layoutFiles(t, writeLayout(t, img))
	got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))), TopFiles(3))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstGGCR(t, got, img)
	wantWasted := int64(100 + 50 + 200 + 300 + 7 + 5000 + 70)
	if got.WastedBytes != wantWasted || got.WastedFiles != 7 {
		t.Errorf("wasted %d bytes in %d files, want %d in 7", got.WastedBytes, got.WastedFiles, wantWasted)
	}
	wantTop := []File{
		{Path: "/big", Size: 5000, Layer: 0, ShadowedBy: 1},
		{Path: "/d/y", Size: 300, Layer: 0, ShadowedBy: 1, Removed: true},
		{Path: "/d/x", Size: 200, Layer: 0, ShadowedBy: 1, Removed: true},
	}
	if !equalFiles(got.Wasted, wantTop) {
		t.Errorf("wasted %+v, want %+v", got.Wasted, wantTop)
	}
	wantLargest := []File{{Path: "/d/z", Size: 10, Layer: 1}, {Path: "/e", Size: 3, Layer: 1}, {Path: "/big/inner", Size: 1, Layer: 1}}
	if !equalFiles(got.Largest, wantLargest) || got.Files != 3 || got.FileBytes != 14 {
		t.Errorf("largest %+v (%d files, %d bytes), want %+v", got.Largest, got.Files, got.FileBytes, wantLargest)
	}
	// Every byte of every file version is either in the final
	// filesystem or wasted.
	var all int64
	for _, l := range got.Layers {
		all += l.FileBytes
	}
	if all != got.FileBytes+got.WastedBytes {
		t.Errorf("file bytes of the layers %d != final %d + wasted %d", all, got.FileBytes, got.WastedBytes)
	}
}

func equalFiles(a, b []File) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTruncatedStream(t *testing.T) {
	big := ggcrLayer(t, tarBytes(t, tfile{name: "data", size: 300000, noise: true}))
	small := ggcrLayer(t, tarBytes(t, tfile{name: "x", size: 10}))
	img := ggcrImage(t, small, big)
	files := layoutFiles(t, writeLayout(t, img))
	bigDigest, _ := big.Digest()
	for name, ord := range map[string]order{"layers first": blobsFirst, "index first": indexFirst} {
		t.Run(name, func(t *testing.T) {
			names := ord(files)
			stream := tarOf(t, files, names)
			// Cut in the middle of the big layer's blob.
			blobName := "blobs/sha256/" + bigDigest.Hex
			start := bytes.Index(stream, files[blobName][:64])
			if start < 0 {
				t.Fatal("layer not found in the stream")
			}
			_, err := FromOCITar(bytes.NewReader(stream[:start+1000]))
			mustContain(t, err, bigDigest.String(), "truncated")
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v is not io.ErrUnexpectedEOF", err)
			}
			if name == "index first" {
				mustContain(t, err, "layer 1 of manifest")
			}
		})
	}
	t.Run("at an entry boundary", func(t *testing.T) {
		// archive/tar takes an end of stream between two entries for the
		// end of the archive: what is missing must still be noticed.
		stream := tarOf(t, files, blobsFirst(files))
		cut := bytes.Index(stream, []byte("index.json\x00"))
		_, err := FromOCITar(bytes.NewReader(stream[:cut]))
		mustContain(t, err, "no index.json")
		stream = tarOf(t, files, indexFirst(files))
		cut = bytes.Index(stream, []byte("blobs/sha256/"+bigDigest.Hex))
		_, err = FromOCITar(bytes.NewReader(stream[:cut]))
		mustContain(t, err, "layer 1 ("+bigDigest.String()+")", "not in the layout")
	})
	t.Run("missing layer", func(t *testing.T) {
		var names []string
		for _, n := range indexFirst(files) {
			if !strings.HasSuffix(n, bigDigest.Hex) {
				names = append(names, n)
			}
		}
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, names)))
		mustContain(t, err, "layer 1 ("+bigDigest.String()+")", "not in the layout")
	})
}

func TestBadContent(t *testing.T) {
	raw := tarBytes(t, tfile{name: "f", size: 4000})
	gz := gzipBytes(t, raw)
	good := craftLayer{blob: gz, mediaType: ocispecs.MediaTypeImageLayerGzip, tar: raw}
	layerName := "blobs/sha256/" + digest.FromBytes(gz).Encoded()

	t.Run("bad layer digest", func(t *testing.T) {
		files := craft(t, []craftLayer{good}, nil)
		b := append([]byte{}, files[layerName]...)
		b[len(b)-5] ^= 0xff // in the gzip trailer: still decompresses, checksum aside
		files[layerName] = b
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, indexFirst(files))))
		mustContain(t, err, "layer 0 ("+digest.FromBytes(gz).String()+")")
	})
	t.Run("bad config digest", func(t *testing.T) {
		files := craft(t, []craftLayer{good}, nil)
		var m ocispecs.Manifest
		for _, b := range files {
			if json.Unmarshal(b, &m) == nil && m.Config.Digest != "" {
				break
			}
		}
		cn := "blobs/sha256/" + m.Config.Digest.Encoded()
		files[cn] = bytes.Replace(files[cn], []byte("amd64"), []byte("arm64"), 1)
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		mustContain(t, err, "config "+m.Config.Digest.String(), "content digest")
	})
	t.Run("diff ID mismatch", func(t *testing.T) {
		l := good
		l.diffID = digest.FromString("something else")
		files := craft(t, []craftLayer{l}, nil)
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		mustContain(t, err, "layer 0", "diff ID")
	})
	t.Run("unsupported media type", func(t *testing.T) {
		l := good
		l.mediaType = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
		files := craft(t, []craftLayer{l}, nil)
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		mustContain(t, err, "layer 0", "unsupported layer media type")
	})
	t.Run("media type says zstd", func(t *testing.T) {
		l := good
		l.mediaType = ocispecs.MediaTypeImageLayerZstd
		files := craft(t, []craftLayer{l}, nil)
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		mustContain(t, err, "layer 0", "says zstd", "content is gzip")
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		bad := append([]byte{}, gz[:len(gz)/2]...) // a valid name for invalid content
		l := craftLayer{blob: bad, mediaType: ocispecs.MediaTypeImageLayerGzip, tar: raw}
		files := craft(t, []craftLayer{l}, nil)
		_, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
		mustContain(t, err, "layer 0 ("+digest.FromBytes(bad).String()+")", "gzip")
	})
	t.Run("garbage", func(t *testing.T) {
		_, err := FromOCITar(strings.NewReader("this is not a tar stream at all, just words"))
		if err == nil {
			t.Fatal("no error")
		}
		_, err = FromOCITar(bytes.NewReader(nil))
		mustContain(t, err, "no index.json")
	})
}

func TestOtherCompressions(t *testing.T) {
	raw := tarBytes(t, tfile{name: "bin/", dir: true}, tfile{name: "bin/tool", size: 9999})
	var zbuf bytes.Buffer
	zw, err := zstd.NewWriter(&zbuf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw)
	zw.Close()
	files := craft(t, []craftLayer{
		{blob: zbuf.Bytes(), mediaType: ocispecs.MediaTypeImageLayerZstd, tar: raw},
		{blob: raw, mediaType: ocispecs.MediaTypeImageLayer, tar: raw},
		{blob: gzipBytes(t, raw), mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", tar: raw},
	}, []ocispecs.History{{CreatedBy: "a"}, {CreatedBy: "b", Comment: RecipeHistoryComment}, {CreatedBy: "c", Comment: RecipeHistoryComment}})
	got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got.Layers {
		if l.Uncompressed != int64(len(raw)) || l.DiffID != digest.FromBytes(raw).String() {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	if got.Layers[0].Compressed != int64(zbuf.Len()) || got.Layers[1].Compressed != int64(len(raw)) {
		t.Errorf("compressed sizes: %+v", got.Layers)
	}
	// The history comments tell the base layers apart.
	if got.BaseLayers != 1 || !got.BaseKnown || got.AddedUncompressed != 2*int64(len(raw)) {
		t.Errorf("base %d known %v added %d", got.BaseLayers, got.BaseKnown, got.AddedUncompressed)
	}
	if got.WastedBytes != 2*9999 || got.Largest[0] != (File{Path: "/bin/tool", Size: 9999, Layer: 2}) {
		t.Errorf("wasted %d, largest %+v", got.WastedBytes, got.Largest)
	}
}

func TestBase(t *testing.T) {
	l := func(n int) v1.Layer { return ggcrLayer(t, tarBytes(t, tfile{name: "f", size: n})) }
	base := ggcrImage(t, l(100), l(200))
	img := ggcrImage(t, l(100), l(200), l(300))
	baseCfg, _ := base.ConfigFile()
	var ids []string
	for _, h := range baseCfg.RootFS.DiffIDs {
		ids = append(ids, h.String())
	}
	files := layoutFiles(t, writeLayout(t, img))
	stream := tarOf(t, files, blobsFirst(files))
	for _, c := range []struct {
		name  string
		opts  []Option
		n     int
		known bool
	}{
		{"unknown", nil, 0, false},
		{"layers", []Option{BaseLayers(1)}, 1, true},
		{"too many layers", []Option{BaseLayers(9)}, 3, true},
		{"diff IDs", []Option{BaseDiffIDs(ids)}, 2, true},
		{"scratch", []Option{BaseDiffIDs(nil)}, 0, true},
		{"layers win", []Option{BaseDiffIDs(ids), BaseLayers(0)}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromOCITar(bytes.NewReader(stream), c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got.BaseLayers != c.n || got.BaseKnown != c.known {
				t.Errorf("base layers %d known %v, want %d %v", got.BaseLayers, got.BaseKnown, c.n, c.known)
			}
			var base int64
			for _, l := range got.Layers[:c.n] {
				base += l.Uncompressed
			}
			if got.BaseUncompressed != base || got.AddedUncompressed != got.Uncompressed-base {
				t.Errorf("base %d added %d, want %d", got.BaseUncompressed, got.AddedUncompressed, base)
			}
		})
	}
}

func TestSeveralImages(t *testing.T) {
	a := ggcrImage(t, ggcrLayer(t, tarBytes(t, tfile{name: "a", size: 1})))
	b := ggcrImage(t, ggcrLayer(t, tarBytes(t, tfile{name: "b", size: 2})))
	dir := writeLayout(t, a, b)
	files := layoutFiles(t, dir)
	stream := tarOf(t, files, blobsFirst(files))
	_, err := FromOCITar(bytes.NewReader(stream))
	mustContain(t, err, "2 images", "img0", "img1")
	got, err := FromOCITar(bytes.NewReader(stream), Ref("img1"))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstGGCR(t, got, b)
	got, err = FromOCILayoutDir(dir, Ref("img0"))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstGGCR(t, got, a)
	_, err = FromOCILayoutDir(dir, Ref("nope"))
	mustContain(t, err, "no image manifest")
}

// BuildKit's oci exporter writes an index whose manifest may be an index
// holding the image and an attestation manifest.
func TestNestedIndexWithAttestation(t *testing.T) {
	raw := tarBytes(t, tfile{name: "f", size: 10})
	files := craft(t, []craftLayer{{blob: raw, mediaType: ocispecs.MediaTypeImageLayer, tar: raw}}, nil)
	var top ocispecs.Index
	if err := json.Unmarshal(files["index.json"], &top); err != nil {
		t.Fatal(err)
	}
	imgDesc := top.Manifests[0]
	imgDesc.Platform = &ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	att := ocispecs.Manifest{MediaType: ocispecs.MediaTypeImageManifest}
	ab, _ := json.Marshal(att)
	attDesc := ocispecs.Descriptor{
		MediaType: ocispecs.MediaTypeImageManifest, Digest: digest.FromBytes(ab), Size: int64(len(ab)),
		Platform:    &ocispecs.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
	}
	files["blobs/sha256/"+attDesc.Digest.Encoded()] = ab
	inner := ocispecs.Index{MediaType: ocispecs.MediaTypeImageIndex, Manifests: []ocispecs.Descriptor{imgDesc, attDesc}}
	inner.SchemaVersion = 2
	ib, _ := json.Marshal(inner)
	files["blobs/sha256/"+digest.FromBytes(ib).Encoded()] = ib
	top.Manifests = []ocispecs.Descriptor{{MediaType: ocispecs.MediaTypeImageIndex, Digest: digest.FromBytes(ib), Size: int64(len(ib)),
		Annotations: map[string]string{ocispecs.AnnotationRefName: "docker.io/library/minikit:x"}}}
	files["index.json"], _ = json.Marshal(top)
	got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))), Ref("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ManifestDigest != imgDesc.Digest.String() || got.Uncompressed != int64(len(raw)) || got.Platform != "linux/amd64" {
		t.Errorf("got %+v", got)
	}
}

// The lead feeds FromOCITar from the exporter through a pipe: it must read
// to the end, padding after the end-of-archive included, so the writer
// never blocks.
func TestPipe(t *testing.T) {
	img := ggcrImage(t, ggcrLayer(t, tarBytes(t, tfile{name: "f", size: 100000})))
	files := layoutFiles(t, writeLayout(t, img))
	stream := tarOf(t, files, blobsFirst(files))
	stream = append(stream, make([]byte, 10240)...) // record padding

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// Small writes, like an exporter's.
		var err error
		for b := stream; len(b) > 0 && err == nil; {
			n := min(len(b), 777)
			_, err = pw.Write(b[:n])
			b = b[n:]
		}
		done <- pw.CloseWithError(err)
	}()
	got, err := FromOCITar(pr)
	pr.CloseWithError(err)
	if werr := <-done; werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstGGCR(t, got, img)

	// A failing writer reaches the reader as an error.
	pr, pw = io.Pipe()
	go func() {
		pw.Write(stream[:len(stream)/2])
		pw.CloseWithError(errors.New("exporter died"))
	}()
	_, err = FromOCITar(pr)
	mustContain(t, err, "exporter died")
}

func TestJSONNames(t *testing.T) {
	b, err := json.Marshal(Image{Layers: []Layer{{}}, Largest: []File{{ShadowedBy: 1, Removed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"manifest_digest"`, `"added_uncompressed"`, `"diff_id"`, `"from_base"`, `"shadowed_by"`, `"wasted_bytes"`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("%s missing from %s", name, b)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"./usr/bin/": "/usr/bin", "a//b": "/a/b", "/x": "/x", "./": "/", "../../etc": "/etc"} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
	e, ok := tarEntry(&tar.Header{Name: "./d/.wh..wh..opq", Typeflag: tar.TypeReg})
	if !ok || e.kind != kindOpaque || e.path != "/d" {
		t.Errorf("opaque: %+v", e)
	}
}
