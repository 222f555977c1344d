package measure

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/imagefs"
)

// maxJSON is the largest blob kept in memory as a possible manifest, index
// or config. Larger JSON blobs (SBOMs, provenance) are hashed and dropped.
const maxJSON = 4 << 20

// errMissing is returned by a store for a blob it does not hold.
var errMissing = errors.New("blob not found")

// compression is what a blob's first bytes say it is: one of
// imagefs.Compression's values, or compJSON.
type compression int

const (
	compNone compression = compression(imagefs.Uncompressed) // tried as a plain tar
	compGzip compression = compression(imagefs.Gzip)
	compZstd compression = compression(imagefs.Zstd)
	compJSON compression = 3
)

func (c compression) String() string {
	switch c {
	case compGzip:
		return "gzip"
	case compZstd:
		return "zstd"
	case compJSON:
		return "JSON"
	}
	return "uncompressed"
}

// A blob is what reading one blob found. Reading it failed only if the
// source could not be read; content problems are recorded in it and matter
// only if the blob is used.
type blob struct {
	digest digest.Digest // its name in the layout
	size   int64         // bytes read
	sum    digest.Digest // sha256 of the bytes read
	comp   compression
	data   []byte      // compJSON: the content
	layer  *layerStats // compressed or plain tar: what its tar stream holds
	err    error       // why it could not be read as a layer
}

// check reports a blob whose content does not match its name or its
// expected size (-1: unknown).
func (b *blob) check(size int64) error {
	if b.sum != b.digest {
		return fmt.Errorf("content digest is %s, not %s", b.sum, b.digest)
	}
	if size >= 0 && b.size != size {
		return fmt.Errorf("blob is %d bytes, the descriptor says %d", b.size, size)
	}
	return nil
}

// layerStats is what a layer's tar stream holds.
type layerStats struct {
	uncompressed int64         // length of the tar stream
	diffID       digest.Digest // its sha256
	entries      []entry
	files        int   // regular files
	fileBytes    int64 // their sizes
	dockerSize   int64 // what Docker counts for it (see dockerLayer)
}

type entryKind uint8

const (
	kindFile entryKind = iota
	kindDir
	kindOther    // symlink, hard link, device, fifo
	kindWhiteout // path is the name removed
	kindOpaque   // path is the directory whose lower contents are hidden
)

// An entry is one tar entry of a layer.
type entry struct {
	path string // absolute and cleaned; for whiteouts, the path removed
	size int64  // the tar header's size (a regular file's length; 0 for most others)
	kind entryKind
}

// hashReader hashes and counts what is read through it and remembers the
// source's first error, so that a failure of the stream itself is told
// apart from bad content.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error // first error other than io.EOF
}

func newHashReader(r io.Reader) *hashReader { return &hashReader{r: r, h: sha256.New()} }

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
	}
	if err != nil && err != io.EOF && h.err == nil {
		h.err = err
	}
	return n, err
}

func (h *hashReader) digest() digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, fmt.Sprintf("%x", h.h.Sum(nil)))
}

// analyze reads a blob of the given size to its end: it hashes it and, by
// its first bytes, keeps it (small JSON) or decompresses and walks it as a
// layer. The error is a failure to read r (including r ending before size
// bytes); problems with the content are left in the blob.
func analyze(r io.Reader, name digest.Digest, size int64) (*blob, error) {
	raw := newHashReader(r)
	b := &blob{digest: name}

	headSize := int64(512) // size < 0: unknown
	if size >= 0 {
		headSize = min(size, headSize)
	}
	head := make([]byte, headSize)
	n, _ := io.ReadFull(raw, head)
	head = head[:n]
	content := io.MultiReader(bytes.NewReader(head), raw)

	if looksJSON(head) && size <= maxJSON {
		b.comp = compJSON
		data, _ := io.ReadAll(io.LimitReader(content, maxJSON+1))
		if len(data) > maxJSON {
			data, b.err = nil, fmt.Errorf("JSON blob of more than %d bytes", maxJSON)
		}
		b.data = data
	} else {
		c := imagefs.DetectCompression(head)
		b.comp = compression(c)
		b.layer, b.err = readLayerBlob(content, c)
	}
	// Whatever the content, hash the blob to its end.
	if _, err := io.Copy(io.Discard, raw); err != nil && raw.err == nil {
		raw.err = err
	}
	b.size = raw.n
	b.sum = raw.digest()
	if errors.Is(raw.err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("blob %s: truncated: %d of %d bytes: %w", name, raw.n, size, raw.err)
	}
	if raw.err != nil {
		return nil, fmt.Errorf("blob %s: reading byte %d of %d: %w", name, raw.n, size, raw.err)
	}
	if size >= 0 && raw.n < size {
		return nil, fmt.Errorf("blob %s: truncated: %d of %d bytes: %w", name, raw.n, size, io.ErrUnexpectedEOF)
	}
	if b.err != nil {
		b.layer = nil
	}
	return b, nil
}

func looksJSON(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// readLayerBlob decompresses a layer blob and walks its tar stream.
func readLayerBlob(r io.Reader, c imagefs.Compression) (*layerStats, error) {
	if c == imagefs.Uncompressed {
		return readTarLayer(r)
	}
	zr, err := imagefs.Decompress(r, c)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	st, err := readTarLayer(zr)
	if err != nil {
		return nil, fmt.Errorf("%s layer: %w", c, err)
	}
	return st, nil
}

// readTarLayer walks a layer's tar stream and reads it to its end (past
// the end-of-archive blocks), hashing it.
func readTarLayer(r io.Reader) (*layerStats, error) {
	u := newHashReader(r)
	st := &layerStats{}
	docker := newDockerLayer()
	tr := tar.NewReader(u)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar stream, after %d entries: %w", len(st.entries), err)
		}
		docker.add(hdr)
		e, ok := tarEntry(hdr)
		if !ok {
			continue
		}
		if e.kind == kindFile {
			st.files++
			st.fileBytes += e.size
		}
		st.entries = append(st.entries, e)
	}
	if _, err := io.Copy(io.Discard, u); err != nil {
		return nil, fmt.Errorf("tar stream, after the end of the archive: %w", err)
	}
	st.uncompressed = u.n
	st.diffID = u.digest()
	st.dockerSize = docker.size()
	return st, nil
}

// tarEntry turns a tar header into an entry; false for the root directory
// and metadata-only headers.
func tarEntry(hdr *tar.Header) (entry, bool) {
	p, change := imagefs.Classify(hdr.Name)
	switch change {
	case imagefs.Opaque:
		return entry{path: p, size: hdr.Size, kind: kindOpaque}, true
	case imagefs.Remove:
		return entry{path: p, size: hdr.Size, kind: kindWhiteout}, true
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		return entry{path: p, size: hdr.Size, kind: kindFile}, true
	case tar.TypeDir:
		if p == "/" {
			return entry{}, false
		}
		return entry{path: p, size: hdr.Size, kind: kindDir}, true
	case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return entry{}, false // archive/tar folds these into the next header
	}
	return entry{path: p, size: hdr.Size, kind: kindOther}, true
}

// cleanPath makes a tar name absolute and clean: "./usr/bin/" -> "/usr/bin".
func cleanPath(name string) string { return imagefs.CleanPath(name) }
