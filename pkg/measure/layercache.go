package measure

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"weak"

	digest "github.com/opencontainers/go-digest"
)

// A LayerCache keeps, on disk, what measuring each layer found: its
// uncompressed length and diff ID, its file list with sizes (what the
// merged filesystem, the largest files and the wasted bytes are computed
// from) and Docker's size for it. A measurement made with the cache
// (WithLayerCache) decompresses and hashes only the layers the cache does
// not hold, and gives the same Image, to the byte, as one made without it.
//
// Records are keyed by the layer blob's digest (its compressed digest, as
// the manifest names it), not by its diff ID: the blob digest is what an
// exporter, a layout or a registry names a blob by before sending a byte
// of it, so a known layer can be skipped without being read at all (see
// Receiver), whereas the diff ID is only known once the config has been
// read or the layer decompressed. The diff ID is kept in the record and
// still checked against the image config, as for a layer read in full.
//
// The cache is safe for concurrent use by goroutines and by processes:
// records are written to a temporary file and renamed into place, and a
// record that fails its checksum, or names another blob, is ignored and
// removed (the layer is then read again). Within a process, a layer
// being measured for one image is waited for, not read again, by another
// measurement that needs it. Records not used for PruneAfter are removed
// when the cache is opened, at most once a day: the cache stays about as
// large as the file lists of the layers in use.
type LayerCache struct {
	dir string

	mu     sync.Mutex
	flight map[digest.Digest]*layerFlight         // layers being measured in this process
	mem    map[digest.Digest]weak.Pointer[record] // records decoded and still in use
}

// PruneAfter is how long a layer record is kept without being used.
const PruneAfter = 30 * 24 * time.Hour

// recordMagic starts every layer record; its last byte is the format's
// version.
const recordMagic = "minikit-layer\x00\x01"

// A record is one layer's measurement, as cached.
type record struct {
	digest digest.Digest // the blob's
	size   int64         // the blob's length
	comp   compression
	stats  *layerStats
}

// A layerFlight is a layer being measured: done is closed when it is over.
type layerFlight struct {
	done chan struct{}
	rec  *record // nil: the measurement failed or was not a layer
}

// OpenLayerCache opens (creating it if need be) the layer cache in dir.
func OpenLayerCache(dir string) (*LayerCache, error) {
	if dir == "" {
		return nil, errors.New("layer cache: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	c := &LayerCache{dir: dir, flight: map[digest.Digest]*layerFlight{}, mem: map[digest.Digest]weak.Pointer[record]{}}
	c.prune(time.Now())
	return c, nil
}

// WithLayerCache measures with c: layers it holds are not read (a stream
// skips their bytes without decompressing or hashing them), and layers
// read in full are added to it. The result is the same as without it.
func WithLayerCache(c *LayerCache) Option { return func(o *options) { o.layers = c } }

// Dir is the directory the cache keeps its records in.
func (c *LayerCache) Dir() string { return c.dir }

func (c *LayerCache) path(d digest.Digest) string {
	return filepath.Join(c.dir, d.Algorithm().String()+"-"+d.Encoded()+".layer")
}

// lookup returns the record of blob d of the given size (-1: any), nil if
// the cache has none (or a broken one, which it removes).
func (c *LayerCache) lookup(d digest.Digest, size int64) *record {
	if c == nil || d.Validate() != nil {
		return nil
	}
	c.mu.Lock()
	if wp, ok := c.mem[d]; ok {
		if r := wp.Value(); r != nil {
			c.mu.Unlock()
			return sized(r, size)
		}
		delete(c.mem, d)
	}
	c.mu.Unlock()
	p := c.path(d)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	r, err := decodeRecord(data)
	if err != nil || r.digest != d {
		_ = os.Remove(p) // written again once the layer is read
		return nil
	}
	if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
		now := time.Now()
		_ = os.Chtimes(p, now, now) // in use: not pruned
	}
	c.remember(r)
	return sized(r, size)
}

func sized(r *record, size int64) *record {
	if size >= 0 && r.size != size {
		return nil
	}
	return r
}

func (c *LayerCache) remember(r *record) {
	c.mu.Lock()
	c.mem[r.digest] = weak.Make(r)
	c.mu.Unlock()
}

// store saves the measurement of a layer blob whose content matched its
// name. The cache is an optimisation: a failure to write is ignored.
func (c *LayerCache) store(b *blob) *record {
	if c == nil || b == nil || b.layer == nil || b.err != nil || b.sum != b.digest || b.digest.Validate() != nil {
		return nil
	}
	r := &record{digest: b.digest, size: b.size, comp: b.comp, stats: b.layer}
	c.remember(r)
	data := encodeRecord(r)
	tmp, err := os.CreateTemp(c.dir, ".layer-*")
	if err != nil {
		return r
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil || tmp.Close() != nil {
		_ = tmp.Close()
		return r
	}
	_ = os.Rename(tmp.Name(), c.path(b.digest))
	return r
}

// begin is called before a layer blob d of the given size is read: it
// returns the cached record, waiting for a measurement of the same blob
// under way in this process if there is one; or, when the caller is to
// read the blob, nil and a function to call with what was read (nil if
// reading failed).
func (c *LayerCache) begin(ctx context.Context, d digest.Digest, size int64) (*record, func(*blob) *record, error) {
	storeOnly := func(b *blob) *record { return c.store(b) }
	if c == nil {
		return nil, func(*blob) *record { return nil }, nil
	}
	for {
		if r := c.lookup(d, size); r != nil {
			return r, nil, nil
		}
		c.mu.Lock()
		f, ok := c.flight[d]
		if !ok {
			f = &layerFlight{done: make(chan struct{})}
			c.flight[d] = f
			c.mu.Unlock()
			var once sync.Once
			return nil, func(b *blob) *record {
				var r *record
				once.Do(func() {
					r = c.store(b)
					f.rec = r
					c.mu.Lock()
					delete(c.flight, d)
					c.mu.Unlock()
					close(f.done)
				})
				return r
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if f.rec == nil {
			// The other reader failed, or the blob is no layer: read it.
			return nil, storeOnly, nil
		}
	}
}

// prune removes the records not used for PruneAfter, and temporary files
// left by writers that died, at most once a day.
func (c *LayerCache) prune(now time.Time) {
	stamp := filepath.Join(c.dir, ".pruned")
	if fi, err := os.Stat(stamp); err == nil && now.Sub(fi.ModTime()) < 24*time.Hour {
		return
	}
	if f, err := os.Create(stamp); err == nil {
		_ = f.Close()
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".layer") && !strings.HasPrefix(name, ".layer-") {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		limit := PruneAfter
		if strings.HasPrefix(name, ".layer-") {
			limit = time.Hour
		}
		if now.Sub(fi.ModTime()) > limit {
			_ = os.Remove(filepath.Join(c.dir, name))
		}
	}
}

// The record format: recordMagic, then varints and strings (a uvarint
// length and the bytes), then a CRC-32C of everything before it.
//
//	digest, size, compression, uncompressed, diff ID, files, file bytes,
//	Docker size, entry count, then per entry: kind, size, the length of
//	the prefix shared with the previous entry's path, the rest of the path.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeRecord(r *record) []byte {
	st := r.stats
	buf := make([]byte, 0, 64+len(st.entries)*24)
	buf = append(buf, recordMagic...)
	putString := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	putString(r.digest.String())
	buf = binary.AppendVarint(buf, r.size)
	buf = binary.AppendUvarint(buf, uint64(r.comp))
	buf = binary.AppendVarint(buf, st.uncompressed)
	putString(st.diffID.String())
	buf = binary.AppendUvarint(buf, uint64(st.files))
	buf = binary.AppendVarint(buf, st.fileBytes)
	buf = binary.AppendVarint(buf, st.dockerSize)
	buf = binary.AppendUvarint(buf, uint64(len(st.entries)))
	prev := ""
	for _, e := range st.entries {
		n := 0
		for n < len(prev) && n < len(e.path) && prev[n] == e.path[n] {
			n++
		}
		buf = append(buf, byte(e.kind))
		buf = binary.AppendVarint(buf, e.size)
		buf = binary.AppendUvarint(buf, uint64(n))
		putString(e.path[n:])
		prev = e.path
	}
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, crcTable))
}

var errRecord = errors.New("layer record: malformed")

func decodeRecord(data []byte) (*record, error) {
	if len(data) < len(recordMagic)+4 || !bytes.HasPrefix(data, []byte(recordMagic)) {
		return nil, errRecord
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errRecord)
	}
	d := &decoder{b: body[len(recordMagic):]}
	r := &record{stats: &layerStats{}}
	st := r.stats
	r.digest = digest.Digest(d.str())
	r.size = d.varint()
	r.comp = compression(d.uvarint())
	st.uncompressed = d.varint()
	st.diffID = digest.Digest(d.str())
	st.files = int(d.uvarint())
	st.fileBytes = d.varint()
	st.dockerSize = d.varint()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) { // every entry takes at least a byte
		return nil, errRecord
	}
	st.entries = make([]entry, n)
	prev := ""
	for i := range st.entries {
		if len(d.b) == 0 {
			return nil, errRecord
		}
		kind := entryKind(d.b[0])
		d.b = d.b[1:]
		size := d.varint()
		shared := d.uvarint()
		rest := d.str()
		if d.err != nil || shared > uint64(len(prev)) || kind > kindOpaque {
			return nil, errRecord
		}
		p := prev[:shared] + rest
		st.entries[i] = entry{path: p, size: size, kind: kind}
		prev = p
	}
	if d.err != nil || len(d.b) != 0 || r.digest.Validate() != nil || st.diffID.Validate() != nil ||
		r.comp > compZstd || r.size < 0 || st.uncompressed < 0 {
		return nil, errRecord
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errRecord
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// Records lists the digests of the layers the cache holds records of.
func (c *LayerCache) Records() ([]digest.Digest, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	var out []digest.Digest
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".layer")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		alg, hex, _ := strings.Cut(name, "-")
		if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex); d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// blob is the record as the blob it was made from.
func (r *record) blob() *blob {
	return &blob{digest: r.digest, size: r.size, sum: r.digest, comp: r.comp, layer: r.stats}
}
