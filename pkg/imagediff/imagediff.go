// Package imagediff compares two container images: the files only in one
// of them, the files in both whose content or kind differs (with the size
// delta), sorted by the bytes involved, and the difference of their
// configs (Cmd, Entrypoint, Env, WorkingDir, User, the base image).
//
// An image is read from an OCI image layout tar stream (BuildKit's oci
// exporter output), in one pass and in any entry order: every layer is
// decompressed and listed as it streams past, and the layers are then
// applied bottom to top, whiteouts included, into the final filesystem.
package imagediff

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/imagefs"
)

// maxJSON bounds the JSON blobs (index, manifests, configs) kept in memory.
const maxJSON = 8 << 20

// An Image is an image's final filesystem and its config.
type Image struct {
	// Name is how the image is called in a Diff (a recipe name).
	Name string `json:"name"`
	// Base is the image's base (run) image, "scratch" for none; set by the
	// caller, since an image config does not record it.
	Base           string         `json:"base,omitempty"`
	ManifestDigest string         `json:"manifest_digest"`
	Config         ocispecs.Image `json:"-"`
	// Files maps every path of the final filesystem (absolute, cleaned)
	// to what is there.
	Files map[string]Entry `json:"-"`
}

// Kind is what a path is.
type Kind string

const (
	KindFile    Kind = "file"
	KindDir     Kind = "dir"
	KindSymlink Kind = "symlink"
	KindOther   Kind = "other" // device, fifo, hard link
)

// An Entry is one path of an image's filesystem.
type Entry struct {
	Kind Kind   `json:"kind"`
	Size int64  `json:"size,omitempty"` // regular files
	Mode int64  `json:"mode"`
	Link string `json:"link,omitempty"` // symlink and hard link target
	// SHA256 is the content's digest, for regular files.
	SHA256 string `json:"sha256,omitempty"`
}

// An Option changes how an image is read.
type Option func(*options)

type options struct{ platform string }

// Platform chooses the image for os/arch[/variant] when the layout holds
// an index of several; by default, imagefs.DefaultPlatform's.
func Platform(p string) Option { return func(o *options) { o.platform = p } }

// ReadOCIFile reads the image of an OCI layout tar file.
func ReadOCIFile(file string, opts ...Option) (*Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := ReadOCITar(f, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return img, nil
}

// ReadOCITar reads an OCI image layout tar stream holding one image, or
// an index of images for several platforms (see Platform).
func ReadOCITar(r io.Reader, opts ...Option) (*Image, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	jsons := map[string][]byte{}
	layers := map[string][]layerEntry{}
	var index []byte
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the layout: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch {
		case name == "index.json":
			if index, err = readSmall(tr, hdr.Size); err != nil {
				return nil, fmt.Errorf("index.json: %w", err)
			}
		case strings.HasPrefix(name, "blobs/sha256/"):
			d := "sha256:" + strings.TrimPrefix(name, "blobs/sha256/")
			br := bufio.NewReader(tr)
			head, _ := br.Peek(1)
			if len(head) == 1 && head[0] == '{' && hdr.Size <= maxJSON {
				b, err := io.ReadAll(br)
				if err != nil {
					return nil, fmt.Errorf("blob %s: %w", d, err)
				}
				jsons[d] = b
				continue
			}
			es, err := listLayer(br)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", d, err)
			}
			layers[d] = es
		}
	}
	if index == nil {
		return nil, errors.New("the layout has no index.json")
	}
	mf, md, err := pickManifest(index, jsons, o.platform)
	if err != nil {
		return nil, err
	}
	img := &Image{ManifestDigest: md, Files: map[string]Entry{}}
	cfg, ok := jsons[mf.Config.Digest.String()]
	if !ok {
		return nil, fmt.Errorf("config %s missing from the layout", mf.Config.Digest)
	}
	if err := json.Unmarshal(cfg, &img.Config); err != nil {
		return nil, fmt.Errorf("config %s: %w", mf.Config.Digest, err)
	}
	for i, l := range mf.Layers {
		es, ok := layers[l.Digest.String()]
		if !ok {
			return nil, fmt.Errorf("layer %d (%s) missing from the layout", i, l.Digest)
		}
		apply(img.Files, es)
	}
	return img, nil
}

func readSmall(r io.Reader, size int64) ([]byte, error) {
	if size > maxJSON {
		return nil, fmt.Errorf("%d bytes, more than %d", size, maxJSON)
	}
	return io.ReadAll(r)
}

// pickManifest follows index.json (and nested indexes) to the image for
// platform (imagefs.Choose).
func pickManifest(index []byte, jsons map[string][]byte, platform string) (ocispecs.Manifest, string, error) {
	var idx ocispecs.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return ocispecs.Manifest{}, "", fmt.Errorf("index: %w", err)
	}
	fetch := func(d ocispecs.Descriptor) ([]byte, error) {
		b, ok := jsons[d.Digest.String()]
		if !ok {
			return nil, fmt.Errorf("%s missing from the layout", d.Digest)
		}
		return b, nil
	}
	desc, err := imagefs.Choose(idx.Manifests, fetch, imagefs.Selector{Platform: platform}, "index.json")
	if err != nil {
		return ocispecs.Manifest{}, "", err
	}
	b, err := fetch(desc)
	if err != nil {
		return ocispecs.Manifest{}, "", err
	}
	var mf ocispecs.Manifest
	if err := json.Unmarshal(b, &mf); err != nil {
		return ocispecs.Manifest{}, "", fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return mf, desc.Digest.String(), nil
}

// layerEntry is one tar entry of a layer.
type layerEntry struct {
	path     string
	whiteout bool // path is removed
	opaque   bool // path's contents from lower layers are removed
	entry    Entry
}

// listLayer lists a layer blob's entries, decompressing gzip or zstd.
func listLayer(br *bufio.Reader) ([]layerEntry, error) {
	head, _ := br.Peek(4)
	r, err := imagefs.Decompress(br, imagefs.DetectCompression(head))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []layerEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p, change := imagefs.Classify(hdr.Name)
		switch change {
		case imagefs.Opaque:
			out = append(out, layerEntry{path: p, opaque: true})
			continue
		case imagefs.Remove:
			out = append(out, layerEntry{path: p, whiteout: true})
			continue
		}
		e := Entry{Mode: hdr.Mode & 0o7777}
		switch hdr.Typeflag {
		case tar.TypeReg:
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			e.Kind, e.Size, e.SHA256 = KindFile, n, hex.EncodeToString(h.Sum(nil))
		case tar.TypeDir:
			e.Kind = KindDir
		case tar.TypeSymlink:
			e.Kind, e.Link = KindSymlink, hdr.Linkname
		case tar.TypeLink:
			e.Kind, e.Link = KindOther, path.Clean("/"+hdr.Linkname)
		default:
			e.Kind = KindOther
		}
		out = append(out, layerEntry{path: p, entry: e})
	}
	// Drain the rest (tar padding) so that the outer reader moves on.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return out, nil
}

// apply applies one layer to files, as a container runtime does: the
// whiteouts first (they remove what the lower layers have), then every
// entry replaces whatever was at its path (a non-directory also removes
// what was below it).
func apply(files map[string]Entry, es []layerEntry) {
	removeTree := func(p string, keepRoot bool) {
		prefix := strings.TrimSuffix(p, "/") + "/"
		for q := range files {
			if strings.HasPrefix(q, prefix) || (!keepRoot && q == p) {
				delete(files, q)
			}
		}
	}
	for _, e := range es {
		switch {
		case e.whiteout:
			removeTree(e.path, false)
		case e.opaque:
			removeTree(e.path, true)
		}
	}
	for _, e := range es {
		if e.whiteout || e.opaque || e.path == "/" {
			continue
		}
		if old, ok := files[e.path]; ok && old.Kind == KindDir && e.entry.Kind != KindDir {
			removeTree(e.path, true)
		}
		if e.entry.Kind == KindOther && e.entry.Link != "" { // hard link: the target's content
			if t, ok := files[e.entry.Link]; ok && t.Kind == KindFile {
				linked := t
				linked.Mode = e.entry.Mode
				files[e.path] = linked
				continue
			}
		}
		files[e.path] = e.entry
	}
}

// A Change is a path that differs between two images.
type Change struct {
	Path string `json:"path"`
	// A and B are the path in each image; nil where it is absent.
	A *Entry `json:"a,omitempty"`
	B *Entry `json:"b,omitempty"`
	// Delta is B's size minus A's (regular files; 0 for the others).
	Delta int64 `json:"delta"`
}

// bytes is what a change weighs, for sorting: the size that appears,
// disappears or changes.
func (c Change) bytes() int64 {
	switch {
	case c.A == nil:
		return c.B.Size
	case c.B == nil:
		return c.A.Size
	}
	return max(c.A.Size, c.B.Size)
}

// A ConfigChange is one config field that differs.
type ConfigChange struct {
	Field string `json:"field"` // Cmd, Entrypoint, Env, WorkingDir, User, Base
	A     string `json:"a"`
	B     string `json:"b"`
}

// A Diff is what differs between images A and B.
type Diff struct {
	A string `json:"a"` // the images' names
	B string `json:"b"`
	// ADigest and BDigest are the manifest digests.
	ADigest string `json:"a_digest"`
	BDigest string `json:"b_digest"`
	// OnlyA lists the paths only in A, OnlyB those only in B, Changed the
	// paths in both whose kind, content, link or mode differ; each sorted by
	// the bytes involved, largest first, then by path. A directory is left
	// out of OnlyA and OnlyB when a path below it exists in either image.
	OnlyA   []Change `json:"only_a"`
	OnlyB   []Change `json:"only_b"`
	Changed []Change `json:"changed"`
	// OnlyABytes, OnlyBBytes sum the regular files only in each image;
	// DeltaBytes is B's total file size minus A's.
	OnlyABytes int64 `json:"only_a_bytes"`
	OnlyBBytes int64 `json:"only_b_bytes"`
	DeltaBytes int64 `json:"delta_bytes"`
	// Config lists the config fields that differ.
	Config []ConfigChange `json:"config"`
}

// Same reports whether nothing differs.
func (d *Diff) Same() bool {
	return len(d.OnlyA)+len(d.OnlyB)+len(d.Changed)+len(d.Config) == 0
}

// Compare compares image a with image b.
func Compare(a, b *Image) *Diff {
	d := &Diff{A: a.Name, B: b.Name, ADigest: a.ManifestDigest, BDigest: b.ManifestDigest,
		OnlyA: []Change{}, OnlyB: []Change{}, Changed: []Change{}, Config: []ConfigChange{}}
	// A directory absent from one image is left out when a path below it
	// exists in either: it is implied there, or its contents are listed.
	pa, pb := parents(a.Files), parents(b.Files)
	for p, ea := range a.Files {
		ea := ea
		eb, ok := b.Files[p]
		if !ok {
			if ea.Kind == KindDir && (pa[p] || pb[p]) {
				continue
			}
			d.OnlyA = append(d.OnlyA, Change{Path: p, A: &ea, Delta: -ea.Size})
			d.OnlyABytes += ea.Size
			continue
		}
		if ea != eb {
			eb := eb
			d.Changed = append(d.Changed, Change{Path: p, A: &ea, B: &eb, Delta: eb.Size - ea.Size})
		}
	}
	for p, eb := range b.Files {
		eb := eb
		if _, ok := a.Files[p]; ok {
			continue
		}
		if eb.Kind == KindDir && (pa[p] || pb[p]) {
			continue
		}
		d.OnlyB = append(d.OnlyB, Change{Path: p, B: &eb, Delta: eb.Size})
		d.OnlyBBytes += eb.Size
	}
	d.DeltaBytes = totalBytes(b.Files) - totalBytes(a.Files)
	for _, cs := range [][]Change{d.OnlyA, d.OnlyB, d.Changed} {
		sort.Slice(cs, func(i, j int) bool {
			if bi, bj := cs[i].bytes(), cs[j].bytes(); bi != bj {
				return bi > bj
			}
			return cs[i].Path < cs[j].Path
		})
	}
	ca, cb := a.Config.Config, b.Config.Config
	for _, f := range []struct {
		field string
		a, b  string
	}{
		{"Base", a.Base, b.Base},
		{"Cmd", jsonList(ca.Cmd), jsonList(cb.Cmd)},
		{"Entrypoint", jsonList(ca.Entrypoint), jsonList(cb.Entrypoint)},
		{"Env", jsonList(ca.Env), jsonList(cb.Env)},
		{"WorkingDir", ca.WorkingDir, cb.WorkingDir},
		{"User", ca.User, cb.User},
	} {
		if f.a != f.b {
			d.Config = append(d.Config, ConfigChange{Field: f.field, A: f.a, B: f.b})
		}
	}
	return d
}

// parents is the set of directories that have a path below them.
func parents(files map[string]Entry) map[string]bool {
	out := map[string]bool{}
	for p := range files {
		for d := path.Dir(p); d != "/" && !out[d]; d = path.Dir(d) {
			out[d] = true
		}
	}
	return out
}

func totalBytes(files map[string]Entry) int64 {
	var n int64
	for _, e := range files {
		n += e.Size
	}
	return n
}

func jsonList(v []string) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
