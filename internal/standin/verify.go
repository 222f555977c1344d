package standin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/imagefs"
)

// ErrCorrupt marks a stand-in layout whose blobs do not match their
// digests (or are missing): `minikit standins build` repairs it.
var ErrCorrupt = errors.New("stand-in layout is corrupt")

// repairHint ends every corruption message.
const repairHint = "run `minikit standins build` to repair the stand-ins"

// recordName is the file, inside the layout, that records the blobs whose
// digests were verified and what their files looked like then. It is a
// cache: losing it costs one full check.
const recordName = ".minikit-verified.json"

// maxManifestSize bounds the manifests and indexes read from a layout.
const maxManifestSize = 4 << 20

// fileID is what a blob's file looked like when its digest was checked.
// Any write to the file changes its ctime, which no user can set back.
type fileID struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

func statID(fi fs.FileInfo) fileID {
	id := fileID{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Ctime = st.Ctim.Nano()
		id.Ino = st.Ino
		id.Dev = uint64(st.Dev)
	}
	return id
}

// verifiedRecord is the JSON form of the record file.
type verifiedRecord struct {
	Blobs map[string]fileID `json:"blobs"` // by digest
}

// loadRecord reads the record of verified blobs of layoutDir. A missing
// or unreadable record is an empty one: everything gets checked.
func loadRecord(layoutDir string) map[v1.Hash]fileID {
	out := map[v1.Hash]fileID{}
	data, err := os.ReadFile(filepath.Join(layoutDir, recordName))
	if err != nil {
		return out
	}
	var rec verifiedRecord
	if json.Unmarshal(data, &rec) != nil {
		return out
	}
	for d, id := range rec.Blobs {
		if h, err := v1.NewHash(d); err == nil {
			out[h] = id
		}
	}
	return out
}

// saveRecord replaces the record of verified blobs of layoutDir
// atomically; the file is private to its user.
func saveRecord(layoutDir string, ids map[v1.Hash]fileID) error {
	rec := verifiedRecord{Blobs: map[string]fileID{}}
	for h, id := range ids {
		rec.Blobs[h.String()] = id
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(layoutDir, recordName+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(layoutDir, recordName))
}

// blobUse is one blob the layout's index refers to, directly or through
// a manifest.
type blobUse struct {
	desc   v1.Descriptor
	kind   string   // index, manifest, config or layer
	images []string // names of the images that use it
}

// repoContents is what one repository of the layout holds.
type repoContents struct {
	tags      map[string]v1.Descriptor
	manifests map[v1.Hash]v1.Descriptor // tagged manifests and their children
	blobs     map[v1.Hash]bool          // configs and layers
}

// contents is what a layout's index refers to.
type contents struct {
	dir    string
	images []string // image names, in index order
	blobs  map[v1.Hash]*blobUse
	order  []v1.Hash // blobs in the order first seen
	repos  map[string]*repoContents
}

// readContents lists the images of the OCI layout at dir and every blob
// they use, walked by imagefs.Walk. Manifests are read but not verified: a
// corrupt one shows up when its blob is checked.
func readContents(dir string) (*contents, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read layout index: %w", err)
	}
	var root ocispecs.Index
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %s: index.json: %w; %s", ErrCorrupt, dir, err, repairHint)
	}
	c := &contents{dir: dir, blobs: map[v1.Hash]*blobUse{}, repos: map[string]*repoContents{}}
	fetch := func(d ocispecs.Descriptor) ([]byte, error) {
		h, err := v1.NewHash(d.Digest.String())
		if err != nil {
			return nil, err
		}
		if d.Size > maxManifestSize {
			return nil, fmt.Errorf("%s: larger than %d bytes", d.Digest, maxManifestSize)
		}
		return readLimited(c.blobPath(h), maxManifestSize)
	}
	for _, od := range root.Manifests {
		d, ok := v1Descriptor(od)
		if !ok {
			return nil, fmt.Errorf("%w: %s: index.json: bad digest %q; %s", ErrCorrupt, dir, od.Digest, repairHint)
		}
		img := d.Annotations[AnnotationRefName]
		var repo *repoContents
		if name, tag, ok := splitRefName(img); ok {
			repo = c.repos[name]
			if repo == nil {
				repo = &repoContents{tags: map[string]v1.Descriptor{}, manifests: map[v1.Hash]v1.Descriptor{}, blobs: map[v1.Hash]bool{}}
				c.repos[name] = repo
			}
			repo.tags[tag] = d
		}
		if img == "" {
			img = d.Digest.String()
		}
		c.images = append(c.images, img)
		imagefs.Walk(od, fetch, func(od ocispecs.Descriptor, kind string) {
			vd, ok := v1Descriptor(od)
			if !ok {
				return // a digest ggcr cannot hold: nothing to serve or check
			}
			c.add(vd, kind, img)
			if repo == nil {
				return
			}
			switch kind {
			case imagefs.KindIndex, imagefs.KindManifest:
				repo.manifests[vd.Digest] = vd
			default:
				repo.blobs[vd.Digest] = true
			}
		})
	}
	return c, nil
}

// v1Descriptor is d as go-containerregistry's descriptor, which the
// registry serves; false for a digest it cannot parse.
func v1Descriptor(d ocispecs.Descriptor) (v1.Descriptor, bool) {
	h, err := v1.NewHash(d.Digest.String())
	if err != nil {
		return v1.Descriptor{}, false
	}
	out := v1.Descriptor{MediaType: types.MediaType(d.MediaType), Size: d.Size, Digest: h, URLs: d.URLs, Annotations: d.Annotations,
		Data: d.Data, ArtifactType: d.ArtifactType}
	if p := d.Platform; p != nil {
		out.Platform = &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures}
	}
	return out, true
}

// splitRefName splits a ref.name annotation such as library/gcc:12-bookworm
// into repository and tag.
func splitRefName(s string) (name, tag string, ok bool) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 || strings.Contains(s[i+1:], "/") {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func (c *contents) add(desc v1.Descriptor, kind, img string) {
	u := c.blobs[desc.Digest]
	if u == nil {
		u = &blobUse{desc: desc, kind: kind}
		c.blobs[desc.Digest] = u
		c.order = append(c.order, desc.Digest)
	}
	for _, have := range u.images {
		if have == img {
			return
		}
	}
	u.images = append(u.images, img)
}

// readable says whether the manifest or index blob desc names can be
// read and parsed.
func (c *contents) readable(desc v1.Descriptor) bool {
	data, err := readLimited(c.blobPath(desc.Digest), maxManifestSize)
	if err != nil {
		return false
	}
	if desc.MediaType.IsIndex() {
		_, err = v1.ParseIndexManifest(bytes.NewReader(data))
	} else {
		_, err = v1.ParseManifest(bytes.NewReader(data))
	}
	return err == nil
}

func (c *contents) blobPath(h v1.Hash) string {
	return filepath.Join(c.dir, "blobs", h.Algorithm, h.Hex)
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// badBlob is a blob of the layout that failed its check.
type badBlob struct {
	use *blobUse
	why string
}

// checkFile checks that the open file f holds desc's content: its size
// first, then, unless it is unchanged since known was recorded, its
// digest (reading f from its start). It returns what f looks like now
// and, when it is wrong, why.
func checkFile(f *os.File, desc v1.Descriptor, known fileID, haveKnown bool) (fileID, string) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, fmt.Sprintf("unreadable: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return fileID{}, "not a regular file"
	}
	id := statID(fi)
	if desc.Size > 0 && id.Size != desc.Size {
		return id, fmt.Sprintf("%d bytes, want %d", id.Size, desc.Size)
	}
	if haveKnown && id == known {
		return id, ""
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return id, fmt.Sprintf("unreadable: %v", err)
	}
	h, _, err := v1.SHA256(f)
	if err != nil {
		return id, fmt.Sprintf("unreadable: %v", err)
	}
	if h != desc.Digest {
		return id, "content does not match its digest"
	}
	return id, ""
}

// checkBlob is checkFile on the blob file of desc in c.
func (c *contents) checkBlob(desc v1.Descriptor, record map[v1.Hash]fileID) (fileID, string) {
	f, err := os.Open(c.blobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fileID{}, "missing"
	}
	if err != nil {
		return fileID{}, fmt.Sprintf("unreadable: %v", err)
	}
	defer f.Close()
	known, ok := record[desc.Digest]
	return checkFile(f, desc, known, ok)
}

// verify checks every blob of c (see CheckLayout), keeps the record of
// the good ones up to date and returns the bad ones.
func (c *contents) verify() []badBlob {
	record := loadRecord(c.dir)
	good := make(map[v1.Hash]fileID, len(c.order))
	var bad []badBlob
	for _, h := range c.order {
		u := c.blobs[h]
		id, why := c.checkBlob(u.desc, record)
		if why != "" {
			bad = append(bad, badBlob{use: u, why: why})
			continue
		}
		good[h] = id
	}
	if !sameIDs(record, good) {
		// Best effort: a record that cannot be written (a read-only
		// layout) only costs the next check its time.
		_ = saveRecord(c.dir, good)
	}
	return bad
}

func sameIDs(a, b map[v1.Hash]fileID) bool {
	if len(a) != len(b) {
		return false
	}
	for h, id := range a {
		if bid, ok := b[h]; !ok || bid != id {
			return false
		}
	}
	return true
}

// corruptError describes bad blobs of the layout at dir; it wraps
// ErrCorrupt.
func corruptError(dir string, bad []badBlob) error {
	var parts []string
	for _, b := range bad {
		imgs := append([]string(nil), b.use.images...)
		sort.Strings(imgs)
		parts = append(parts, fmt.Sprintf("%s %s of %s: %s", b.use.kind, shortDigest(b.use.desc.Digest), strings.Join(imgs, ", "), b.why))
	}
	return fmt.Errorf("%w: %s: %s; %s", ErrCorrupt, dir, strings.Join(parts, "; "), repairHint)
}

func shortDigest(h v1.Hash) string {
	s := h.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

// CheckLayout is the cheap integrity check of the stand-in layout at
// layoutDir: every blob its images use must be there with the size its
// descriptor gives, and its digest is recomputed when its file changed
// (size, mtime, ctime or inode) since it was last verified. The record of
// verified blobs lives in the layout (private to its user). An error wraps
// ErrCorrupt, names the bad blobs and their images, and says to run
// `minikit standins build`.
func CheckLayout(layoutDir string) error {
	c, err := readContents(layoutDir)
	if err != nil {
		return fmt.Errorf("check stand-ins: %w", err)
	}
	if bad := c.verify(); len(bad) > 0 {
		return fmt.Errorf("check stand-ins: %w", corruptError(layoutDir, bad))
	}
	return nil
}

// verifier guards what the registry serves: it opens a blob only after
// checking it against the record of verified blobs, or its digest where
// the file changed since. It never writes the record.
type verifier struct {
	dir   string
	mu    sync.Mutex
	known map[v1.Hash]fileID
	locks map[v1.Hash]*sync.Mutex // one check of a blob at a time
}

func newVerifier(dir string) *verifier {
	return &verifier{dir: dir, known: loadRecord(dir), locks: map[v1.Hash]*sync.Mutex{}}
}

// open returns the blob file of desc, positioned at its start, once its
// content is known to be desc's. An error for a missing or corrupt blob
// wraps ErrCorrupt.
func (v *verifier) open(desc v1.Descriptor) (*os.File, error) {
	v.mu.Lock()
	lk := v.locks[desc.Digest]
	if lk == nil {
		lk = &sync.Mutex{}
		v.locks[desc.Digest] = lk
	}
	v.mu.Unlock()
	lk.Lock()
	defer lk.Unlock()

	path := filepath.Join(v.dir, "blobs", desc.Digest.Algorithm, desc.Digest.Hex)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: blob %s is missing; %s", ErrCorrupt, v.dir, desc.Digest, repairHint)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	v.mu.Lock()
	known, ok := v.known[desc.Digest]
	v.mu.Unlock()
	id, why := checkFile(f, desc, known, ok)
	if why != "" {
		f.Close()
		v.mu.Lock()
		delete(v.known, desc.Digest)
		v.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: blob %s: %s; %s", ErrCorrupt, v.dir, desc.Digest, why, repairHint)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	v.mu.Lock()
	v.known[desc.Digest] = id
	v.mu.Unlock()
	return f, nil
}
