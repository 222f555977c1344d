// Package measure reads an exported image and reports its sizes: the
// manifest digest, the compressed and uncompressed size of every layer and
// of the whole image, the part added on top of the base image, the largest
// files and the bytes wasted by files that a later layer removes or
// overwrites.
//
// Every number comes from the real blobs: compressed sizes are the bytes of
// the layer blobs, uncompressed sizes the length of the decompressed layer
// tar streams, both verified against the manifest's digests and the
// config's diff IDs. An unreadable, truncated or mismatching layer is an
// error naming the layer, never a wrong number.
//
// FromOCITar reads the OCI image layout tar stream that BuildKit's oci
// exporter writes, once, without seeking and without writing anything to
// disk, so it can be fed from the exporter through an io.Pipe.
// FromOCILayoutDir reads a layout on disk and FromImage a
// go-containerregistry image.
package measure

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// DefaultTopFiles is how many of the largest files an Image lists unless
// TopFiles says otherwise.
const DefaultTopFiles = 10

// An Image is what measuring one image found. Its JSON names are stable
// (documented in pkg/report/FIELDS.md).
type Image struct {
	// ManifestDigest is the digest of the image manifest (what a registry
	// and `docker images --digests` show), ConfigDigest the config's.
	ManifestDigest string `json:"manifest_digest"`
	ConfigDigest   string `json:"config_digest"`
	MediaType      string `json:"media_type"`
	Platform       string `json:"platform,omitempty"` // os/arch[/variant], from the config

	// Compressed is the sum of the layer blobs' sizes (as stored in a
	// registry), Uncompressed the sum of the layers' tar stream lengths.
	Compressed   int64 `json:"compressed"`
	Uncompressed int64 `json:"uncompressed"`
	// DockerSize is the figure `docker image inspect --format '{{.Size}}'`
	// (and `docker images`) shows once the image is loaded into a Docker
	// daemon with an overlay-family graph driver: the sum of the layers'
	// DockerSize.
	DockerSize int64 `json:"docker_size"`

	// BaseLayers is how many leading layers belong to the base image
	// (the run image); BaseKnown is false when that could not be
	// determined, and then every layer counts as added.
	BaseLayers int  `json:"base_layers"`
	BaseKnown  bool `json:"base_known"`
	// Base* sum the base image's layers, Added* the others: what the
	// recipe adds on top of its base.
	BaseCompressed    int64 `json:"base_compressed"`
	BaseUncompressed  int64 `json:"base_uncompressed"`
	AddedCompressed   int64 `json:"added_compressed"`
	AddedUncompressed int64 `json:"added_uncompressed"`

	Layers []Layer `json:"layers"`

	// Files counts the regular files of the final filesystem, FileBytes
	// their sizes.
	Files     int   `json:"files"`
	FileBytes int64 `json:"file_bytes"`
	// Largest lists the largest regular files of the final filesystem,
	// largest first, each with the layer it comes from.
	Largest []File `json:"largest"`
	// WastedBytes is the size of the file versions that a layer adds and a
	// later layer removes (whiteout) or overwrites: bytes carried by the
	// layers that never reach the final filesystem. WastedFiles counts
	// them; Wasted lists the largest ones.
	WastedBytes int64  `json:"wasted_bytes"`
	WastedFiles int    `json:"wasted_files"`
	Wasted      []File `json:"wasted"`

	// DiveWastedBytes, DiveEfficiency and DiveUserWastedRatio are the
	// figures dive (github.com/wagoodman/dive, v0.13) reports for the
	// image and gates CI on, computed as dive does: its wasted bytes count
	// every copy of a path that appears in more than one layer, the copy
	// that is kept included (WastedBytes counts only the hidden ones);
	// its efficiency is the sum over all paths of their smallest copy over
	// the sum of every copy (1 for an image without bytes); its user
	// wasted ratio (dive's "highestUserWastedPercent", a ratio) is
	// DiveWastedBytes over the bytes of every layer but the first (0 when
	// those hold none).
	DiveWastedBytes     int64   `json:"dive_wasted_bytes"`
	DiveEfficiency      float64 `json:"dive_efficiency"`
	DiveUserWastedRatio float64 `json:"dive_user_wasted_ratio"`
}

// A Layer is one layer of an image, in the manifest's order.
type Layer struct {
	Index     int    `json:"index"` // 0 is the bottom layer
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	MediaType string `json:"media_type"`
	// Compressed is the blob's size, Uncompressed the length of its
	// decompressed tar stream (equal for an uncompressed layer).
	Compressed   int64 `json:"compressed"`
	Uncompressed int64 `json:"uncompressed"`
	// Entries counts the tar entries (files, directories, links,
	// whiteouts), Files the regular files and FileBytes their sizes.
	Entries   int   `json:"entries"`
	Files     int   `json:"files"`
	FileBytes int64 `json:"file_bytes"`
	// DockerSize is what Docker counts for the layer once unpacked: the
	// sizes of its regular files and the lengths of its symbolic links'
	// targets, each hard-linked file once; no tar headers, no directories,
	// no whiteouts, and files of the layer shadowed by later layers too.
	DockerSize int64 `json:"docker_size"`
	// FromBase is set for the base image's layers.
	FromBase bool `json:"from_base"`
	// CreatedBy is the config history's created_by for this layer
	// (history entries marked empty_layer are skipped).
	CreatedBy string `json:"created_by,omitempty"`
}

// A File is a regular file of an image.
type File struct {
	Path  string `json:"path"` // absolute, cleaned: /usr/bin/python3.11
	Size  int64  `json:"size"`
	Layer int    `json:"layer"` // the index of the layer that adds it
	// For a wasted file: the layer that removes (Removed) or overwrites
	// it. Zero otherwise.
	ShadowedBy int  `json:"shadowed_by,omitempty"`
	Removed    bool `json:"removed,omitempty"`
}

// An Option changes how an image is measured.
type Option func(*options)

type options struct {
	top         int
	baseLayers  int // -1: unknown
	baseDiffIDs []string
	platform    string
	ref         string
	layers      *LayerCache
}

func newOptions(opts []Option) options {
	o := options{top: DefaultTopFiles, baseLayers: -1}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// TopFiles sets how many of the largest files (and of the largest wasted
// files) are listed; 0 lists none. The totals count every file.
func TopFiles(n int) Option {
	return func(o *options) {
		if n < 0 {
			n = 0
		}
		o.top = n
	}
}

// BaseLayers says that the first n layers belong to the base (run) image.
// It wins over BaseDiffIDs. Larger than the number of layers means all.
func BaseLayers(n int) Option {
	return func(o *options) {
		if n < 0 {
			n = -1
		}
		o.baseLayers = n
	}
}

// BaseDiffIDs gives the base image's diff IDs (its config's
// rootfs.diff_ids): the leading layers that match them belong to the base.
// An empty list is a base with no layers (scratch).
func BaseDiffIDs(ids []string) Option {
	return func(o *options) {
		o.baseDiffIDs = append([]string{}, ids...)
	}
}

// Platform picks the image for os/arch[/variant] when the layout holds
// several.
func Platform(p string) Option { return func(o *options) { o.platform = p } }

// Ref picks the image whose org.opencontainers.image.ref.name (or
// io.containerd.image.name) annotation in the layout's index is name, or
// ends in ":"+name.
func Ref(name string) Option { return func(o *options) { o.ref = name } }

// FromOCITar reads an OCI image layout as a tar stream (BuildKit's oci
// exporter output: oci-layout, index.json, blobs/sha256/...), in any entry
// order, and measures the image it holds. Every blob is hashed, and every
// layer decompressed and walked, as it streams past; only small JSON blobs
// are kept in memory. It reads r to its end, and never seeks.
//
// On error it may return before the end of r: a caller feeding it through
// an io.Pipe should close the reader with the error (PipeReader.CloseWithError)
// so that the writer does not block.
func FromOCITar(r io.Reader, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	st, err := readTar(r, o.layers, false)
	if err != nil {
		return nil, err
	}
	return resolveLayout(st, o)
}

// FromOCILayoutFile measures the image in an OCI layout tar file (as
// written by `minikit solve --output oci=DIR`).
func FromOCILayoutFile(path string, opts ...Option) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := FromOCITar(f, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// FromOCILayoutDir measures an image of the OCI image layout in dir. Only
// the blobs of the chosen image are read (see Ref and Platform when the
// layout holds several images).
func FromOCILayoutDir(dir string, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	st := &dirStore{dir: dir, cache: map[digest.Digest]*blob{}, layers: o.layers}
	img, err := resolveLayout(st, o)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	return img, nil
}

// FromImage measures a go-containerregistry image (a remote one, a
// tarball, one in a layout...), reading each of its layer blobs once.
func FromImage(img v1.Image, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	st := &imageStore{img: img, cache: map[digest.Digest]*blob{}, layers: o.layers}
	return resolveManifest(st, digest.FromBytes(raw), string(mt), raw, o)
}

// dirStore reads blobs from an OCI layout directory, on demand.
type dirStore struct {
	dir    string
	cache  map[digest.Digest]*blob
	layers *LayerCache
}

func (s *dirStore) index() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	return b, nil
}

func (s *dirStore) blob(d digest.Digest) (*blob, error) {
	if b, ok := s.cache[d]; ok {
		return b, nil
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	f, err := os.Open(filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded()))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errMissing
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if r := s.layers.lookup(d, fi.Size()); r != nil {
		b := r.blob()
		s.cache[d] = b
		return b, nil
	}
	b, err := analyze(f, d, fi.Size())
	if err != nil {
		return nil, err
	}
	s.layers.store(b)
	s.cache[d] = b
	return b, nil
}

// imageStore reads the blobs of a go-containerregistry image.
type imageStore struct {
	img    v1.Image
	cache  map[digest.Digest]*blob
	layers *LayerCache
}

func (s *imageStore) index() ([]byte, error) {
	return nil, fmt.Errorf("an image has no index")
}

func (s *imageStore) blob(d digest.Digest) (*blob, error) {
	if b, ok := s.cache[d]; ok {
		return b, nil
	}
	cfgName, err := s.img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("reading the config name: %w", err)
	}
	var b *blob
	if cfgName.String() == d.String() {
		raw, err := s.img.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config: %w", err)
		}
		b, err = analyze(strings.NewReader(string(raw)), d, int64(len(raw)))
		if err != nil {
			return nil, err
		}
	} else {
		h, err := v1.NewHash(d.String())
		if err != nil {
			return nil, err
		}
		l, err := s.img.LayerByDigest(h)
		if err != nil {
			return nil, errMissing
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		if r := s.layers.lookup(d, size); r != nil {
			b = r.blob()
			s.cache[d] = b
			return b, nil
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		b, err = analyze(rc, d, size)
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		s.layers.store(b)
	}
	s.cache[d] = b
	return b, nil
}
