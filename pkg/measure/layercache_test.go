package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// cacheImage is an image with whiteouts, an opaque directory, a file
// replaced by a directory and random layers: every kind of entry a layer
// record holds.
func cacheImage(t *testing.T) v1.Image {
	t.Helper()
	rnd, err := random.Image(2000, 2)
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := rnd.Layers()
	l0 := ggcrLayer(t, tarBytes(t,
		tfile{name: "a", size: 100},
		tfile{name: "d/", dir: true},
		tfile{name: "d/x", size: 200},
		tfile{name: "keep", size: 50},
		tfile{name: "lnk", symlink: "keep"},
		tfile{name: "big", size: 5000, noise: true},
	))
	l1 := ggcrLayer(t, tarBytes(t,
		tfile{name: ".wh.a"},
		tfile{name: "keep", size: 70},
		tfile{name: "d/.wh..wh..opq"},
		tfile{name: "d/z", size: 10},
		tfile{name: "big/inner", size: 1},
	))
	return ggcrImage(t, rl[0], l0, rl[1], l1)
}

// jsonOf returns a function giving a measurement's JSON, failing t on
// a measuring error.
func jsonOf(t *testing.T) func(*Image, error) string {
	return func(img *Image, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(img)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func layerDigests(t *testing.T, img v1.Image) []digest.Digest {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, l := range ls {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, digest.Digest(h.String()))
	}
	return out
}

// garbled replaces every layer blob of a layout by bytes of the same
// length that are no layer: a measurement that reads them fails.
func garbled(files map[string][]byte, layers []digest.Digest) map[string][]byte {
	out := map[string][]byte{}
	for n, b := range files {
		out[n] = b
	}
	for _, d := range layers {
		name := "blobs/sha256/" + d.Encoded()
		out[name] = bytes.Repeat([]byte{0xff}, len(files[name]))
	}
	return out
}

// corrupt damages every record of the cache in one of several ways.
func corrupt(t *testing.T, c *LayerCache) {
	t.Helper()
	ds, err := c.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		p := c.path(d)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0: // a flipped bit in the file list
			data[len(data)/2] ^= 0x10
		case 1: // truncated
			data = data[:len(data)-7]
		case 2: // another layer's record under this name
			other := ds[(i+1)%len(ds)]
			if data, err = os.ReadFile(c.path(other)); err != nil {
				t.Fatal(err)
			}
		case 3: // not a record at all
			data = []byte("{}")
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The records decoded in memory would hide the damage.
	c.mu.Lock()
	clear(c.mem)
	c.mu.Unlock()
}

// A measurement with the layer cache, empty, warm or damaged, is the same
// to the byte as one without; a warm cache does not read the layers.
func TestLayerCacheSameImage(t *testing.T) {
	img := cacheImage(t)
	dir := writeLayout(t, img)
	files := layoutFiles(t, dir)
	layers := layerDigests(t, img)
	stream := func(files map[string][]byte) *bytes.Reader {
		return bytes.NewReader(tarOf(t, files, blobsFirst(files)))
	}
	want := jsonOf(t)(FromOCITar(stream(files), TopFiles(4)))
	if !strings.Contains(want, `"wasted_bytes":`) || !strings.Contains(want, `"dive_efficiency":`) {
		t.Fatalf("unexpected JSON: %s", want)
	}
	if _, err := FromOCITar(stream(garbled(files, layers)), TopFiles(4)); err == nil {
		t.Fatal("the garbled layout measured without error: the test proves nothing")
	}

	type source struct {
		name    string
		measure func(c *LayerCache, garble bool) (*Image, error)
	}
	sources := []source{
		{"tar stream", func(c *LayerCache, garble bool) (*Image, error) {
			f := files
			if garble {
				f = garbled(files, layers)
			}
			return FromOCITar(stream(f), TopFiles(4), WithLayerCache(c))
		}},
		{"layout directory", func(c *LayerCache, garble bool) (*Image, error) {
			d := dir
			if garble {
				d = t.TempDir()
				for n, b := range garbled(files, layers) {
					p := filepath.Join(d, filepath.FromSlash(n))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			return FromOCILayoutDir(d, TopFiles(4), WithLayerCache(c))
		}},
		{"receiver", func(c *LayerCache, garble bool) (*Image, error) {
			f := files
			if garble {
				f = garbled(files, layers)
			}
			return receive(t, f, c)
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			c, err := OpenLayerCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(t)(src.measure(c, false)); got != want {
				t.Errorf("empty cache:\n got %s\nwant %s", got, want)
			}
			ds, err := c.Records()
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(layers) {
				t.Fatalf("%d records after the first measurement, want one per layer (%d)", len(ds), len(layers))
			}
			// Warm: the garbled layers are never read.
			if got := jsonOf(t)(src.measure(c, true)); got != want {
				t.Errorf("warm cache:\n got %s\nwant %s", got, want)
			}
			// A fresh process: records from disk only.
			c2, err := OpenLayerCache(c.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(t)(src.measure(c2, true)); got != want {
				t.Errorf("warm cache from disk:\n got %s\nwant %s", got, want)
			}
			// Damaged: every layer is read again, and the records repaired.
			corrupt(t, c2)
			if got := jsonOf(t)(src.measure(c2, false)); got != want {
				t.Errorf("damaged cache:\n got %s\nwant %s", got, want)
			}
			c2.mu.Lock()
			clear(c2.mem)
			c2.mu.Unlock()
			if got := jsonOf(t)(src.measure(c2, true)); got != want {
				t.Errorf("repaired cache:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// receive plays BuildKit's oci exporter with tar=false: each blob of the
// layout, layers first and the manifest last, is written into a Receiver
// unless it says it has it. It returns the measured image.
func receive(t *testing.T, files map[string][]byte, c *LayerCache) (*Image, error) {
	t.Helper()
	ctx := context.Background()
	var idx ocispecs.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	md := idx.Manifests[0]
	var m ocispecs.Manifest
	if err := json.Unmarshal(files["blobs/sha256/"+md.Digest.Encoded()], &m); err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(WithLayerCache(c))
	for _, d := range append(append(append([]ocispecs.Descriptor{}, m.Layers...), m.Config), md) {
		if err := writeBlob(ctx, r, d, files["blobs/sha256/"+d.Digest.Encoded()]); err != nil {
			return nil, err
		}
	}
	return r.Image(md.Digest, TopFiles(4))
}

func writeBlob(ctx context.Context, st content.Ingester, d ocispecs.Descriptor, data []byte) error {
	w, err := st.Writer(ctx, content.WithRef("ref-"+d.Digest.String()), content.WithDescriptor(ocispecs.Descriptor{Digest: d.Digest, Size: d.Size}))
	if errors.Is(err, cerrdefs.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	for len(data) > 0 { // in chunks, as the session's content proxy sends
		n := min(len(data), 1000)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return w.Commit(ctx, d.Size, d.Digest)
}

// A layer that one Receiver is receiving is waited for by another that
// needs it, which then does not receive it.
func TestReceiverWaitsForTheSameLayer(t *testing.T) {
	ctx := context.Background()
	c, err := OpenLayerCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob := gzipBytes(t, tarBytes(t, tfile{name: "f", size: 3000, noise: true}))
	d := ocispecs.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	a, b := NewReceiver(WithLayerCache(c)), NewReceiver(WithLayerCache(c))
	wa, err := a.Writer(ctx, content.WithRef("a"), content.WithDescriptor(d))
	if err != nil {
		t.Fatal(err)
	}
	var bErr error
	bDone := make(chan struct{})
	go func() {
		defer close(bDone)
		_, bErr = b.Writer(ctx, content.WithRef("b"), content.WithDescriptor(d))
	}()
	if _, err := wa.Write(blob[:100]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // give b the time to return too early, were it to
	select {
	case <-bDone:
		t.Fatalf("the second writer returned (%v) while the first was receiving the layer", bErr)
	default:
	}
	if _, err := wa.Write(blob[100:]); err != nil {
		t.Fatal(err)
	}
	if err := wa.Commit(ctx, d.Size, d.Digest); err != nil {
		t.Fatal(err)
	}
	<-bDone
	if !errors.Is(bErr, cerrdefs.ErrAlreadyExists) {
		t.Fatalf("second writer: %v, want already exists", bErr)
	}
	if _, err := b.Info(ctx, d.Digest); err != nil {
		t.Errorf("the second receiver does not know the layer: %v", err)
	}

	// A writer closed before its commit lets a waiting one receive.
	blob2 := gzipBytes(t, tarBytes(t, tfile{name: "g", size: 10}))
	d2 := ocispecs.Descriptor{Digest: digest.FromBytes(blob2), Size: int64(len(blob2))}
	w1, err := a.Writer(ctx, content.WithRef("a2"), content.WithDescriptor(d2))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		got <- writeBlob(ctx, b, d2, blob2)
	}()
	time.Sleep(10 * time.Millisecond)
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("after the first writer gave up: %v", err)
	}
	if _, err := b.Info(ctx, d2.Digest); err != nil {
		t.Errorf("the second receiver did not receive the layer: %v", err)
	}
}

// A blob whose bytes do not match its digest is refused at commit, and
// nothing is cached for it.
func TestReceiverRefusesBadContent(t *testing.T) {
	ctx := context.Background()
	c, err := OpenLayerCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(WithLayerCache(c))
	blob := gzipBytes(t, tarBytes(t, tfile{name: "f", size: 10}))
	d := ocispecs.Descriptor{Digest: digest.FromString("something else"), Size: int64(len(blob))}
	err = writeBlob(ctx, r, d, blob)
	if !errors.Is(err, cerrdefs.ErrFailedPrecondition) {
		t.Fatalf("got %v, want a failed precondition", err)
	}
	if ds, _ := c.Records(); len(ds) != 0 {
		t.Errorf("records for a bad blob: %v", ds)
	}
	if _, err := r.Info(ctx, d.Digest); !errors.Is(err, cerrdefs.ErrNotFound) {
		t.Errorf("info of a refused blob: %v", err)
	}
	if _, err := r.Image(d.Digest); err == nil {
		t.Error("measured an image from nothing")
	}
}

// Concurrent measurements sharing one cache agree with one made alone.
func TestLayerCacheConcurrent(t *testing.T) {
	img := cacheImage(t)
	files := layoutFiles(t, writeLayout(t, img))
	want := jsonOf(t)(FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))), TopFiles(4)))
	c, err := OpenLayerCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var im *Image
			if i%2 == 0 {
				im, errs[i] = receive(t, files, c)
			} else {
				im, errs[i] = FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))), TopFiles(4), WithLayerCache(c))
			}
			if errs[i] == nil {
				b, _ := json.Marshal(im)
				got[i] = string(b)
			}
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("measurement %d: %v", i, errs[i])
		}
		if got[i] != want {
			t.Errorf("measurement %d differs:\n got %s\nwant %s", i, got[i], want)
		}
	}
}

// Records not used for PruneAfter go; others stay.
func TestLayerCachePrune(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "sha256-"+strings.Repeat("a", 64)+".layer")
	fresh := filepath.Join(dir, "sha256-"+strings.Repeat("b", 64)+".layer")
	stale := filepath.Join(dir, ".layer-123")
	for _, p := range []string{old, fresh, stale} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-PruneAfter - time.Hour)
	for _, p := range []string{old, stale} {
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenLayerCache(dir); err != nil {
		t.Fatal(err)
	}
	for p, keep := range map[string]bool{old: false, fresh: true, stale: false} {
		if _, err := os.Stat(p); (err == nil) != keep {
			t.Errorf("%s: kept %v, want %v", filepath.Base(p), err == nil, keep)
		}
	}
}

// A record decodes to what was encoded; any damage is detected.
func TestRecordRoundTrip(t *testing.T) {
	r := &record{
		digest: digest.FromString("blob"),
		size:   1234,
		comp:   compZstd,
		stats: &layerStats{
			uncompressed: 99999, diffID: digest.FromString("tar"), files: 2, fileBytes: 300, dockerSize: 310,
			entries: []entry{
				{path: "/usr", kind: kindDir},
				{path: "/usr/bin/x", size: 100, kind: kindFile},
				{path: "/usr/bin/y", size: 200, kind: kindFile},
				{path: "/usr/lib", kind: kindWhiteout},
				{path: "/etc", kind: kindOpaque},
				{path: "/etc/l", kind: kindOther},
			},
		},
	}
	data := encodeRecord(r)
	got, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.digest != r.digest || got.size != r.size || got.comp != r.comp {
		t.Errorf("got %+v", got)
	}
	a, b := *got.stats, *r.stats
	if a.uncompressed != b.uncompressed || a.diffID != b.diffID || a.files != b.files || a.fileBytes != b.fileBytes ||
		a.dockerSize != b.dockerSize || len(a.entries) != len(b.entries) {
		t.Fatalf("stats %+v, want %+v", a, b)
	}
	for i := range a.entries {
		if a.entries[i] != b.entries[i] {
			t.Errorf("entry %d: %+v, want %+v", i, a.entries[i], b.entries[i])
		}
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x01
		if _, err := decodeRecord(bad); err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
	}
	for n := range data {
		if _, err := decodeRecord(data[:n]); err == nil {
			t.Fatalf("a record cut at %d bytes decoded", n)
		}
	}
}
