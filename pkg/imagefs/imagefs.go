// Package imagefs is minikit's one reader of container images: how a
// layer's compression is told (by media type and by its first bytes),
// how it is decompressed, what a layer's tar entries mean (whiteouts and
// opaque directories, OCI image-spec "Representing Changes"), and which
// image manifest an index or a layout's index.json names for a platform,
// which blobs an index or manifest refers to (Walk), and an archive's OCI
// layout (UnpackLayout). pkg/measure, pkg/imagediff, the stand-in
// registry's layout check (internal/standin) and `minikit inspect` read
// images through it, so that they agree on every one of these points.
package imagefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	"github.com/containerd/platforms"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how a layer blob is compressed.
type Compression int

const (
	Uncompressed Compression = iota // a plain tar stream
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// Docker's media types, besides the OCI ones of image-spec.
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// MediaTypeCompression is the compression a layer media type says; false
// for a media type that is not a layer this package reads.
func MediaTypeCompression(mt string) (Compression, bool) {
	switch mt {
	case ocispecs.MediaTypeImageLayer,
		ocispecs.MediaTypeImageLayerNonDistributable, //nolint:staticcheck // still met in the wild
		"application/vnd.docker.image.rootfs.diff.tar":
		return Uncompressed, true
	case ocispecs.MediaTypeImageLayerGzip,
		ocispecs.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
		return Gzip, true
	case ocispecs.MediaTypeImageLayerZstd,
		ocispecs.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		"application/vnd.docker.image.rootfs.diff.tar.zstd":
		return Zstd, true
	}
	return 0, false
}

// DetectCompression tells a blob's compression by its first bytes (at
// least 4 of them when there are): gzip and zstd by their magic numbers,
// anything else is taken for a plain tar stream.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the tar stream of a layer blob compressed with c.
// Closing it releases the decompressor, not r.
func Decompress(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdCloser{zr}, nil
	}
	return io.NopCloser(r), nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error {
	z.Decoder.Close()
	return nil
}

// Whiteout names, as OCI image-spec defines them.
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// Change is what a layer's tar entry does to the filesystem below.
type Change int

const (
	// Add: the entry is added at its path, replacing what was there.
	Add Change = iota
	// Remove: a whiteout; the path, and all below it, is removed.
	Remove
	// Opaque: the directory's contents from the lower layers are hidden.
	Opaque
)

// Classify reads a tar entry's name: the absolute, cleaned path it
// concerns ("./usr/bin/" is /usr/bin; for a whiteout, the path it
// removes; for an opaque marker, its directory) and what it does there.
func Classify(name string) (string, Change) {
	p := CleanPath(name)
	dir, base := path.Split(p)
	switch {
	case base == WhiteoutOpaque:
		return path.Clean(dir), Opaque
	case strings.HasPrefix(base, WhiteoutPrefix):
		return path.Join(dir, base[len(WhiteoutPrefix):]), Remove
	}
	return p, Add
}

// CleanPath makes a tar entry's name absolute and clean.
func CleanPath(name string) string { return path.Clean("/" + name) }

// DefaultPlatform is the platform chosen when an index holds images for
// several platforms and none was asked for: linux on this machine's
// architecture (with its variant).
func DefaultPlatform() string {
	p := platforms.DefaultSpec()
	p.OS = "linux"
	if runtime.GOOS != "linux" {
		p.OSVersion, p.OSFeatures = "", nil
	}
	return platforms.Format(p)
}

// A Selector says which image of an index to choose: the one for
// Platform (os/arch[/variant]; "" for any) and whose reference name
// annotation (org.opencontainers.image.ref.name, or
// io.containerd.image.name) is Ref or ends in ":"+Ref or "/"+Ref ("" for
// any).
type Selector struct {
	Platform string
	Ref      string
}

// A Fetch reads a small JSON blob (an index or a manifest) that a
// descriptor names, checked against it.
type Fetch func(ocispecs.Descriptor) ([]byte, error)

// Candidates lists the image manifests of descs, following nested indexes
// (through fetch), that sel selects; attestation manifests (BuildKit's
// provenance and SBOMs) and platform "unknown/unknown" are skipped. A
// manifest reached through an index without a reference name of its own
// gets the index's.
func Candidates(descs []ocispecs.Descriptor, fetch Fetch, sel Selector) ([]ocispecs.Descriptor, error) {
	var want platforms.Matcher // nil: any
	if sel.Platform != "" {
		p, err := platforms.Parse(sel.Platform)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", sel.Platform, err)
		}
		want = platforms.NewMatcher(p)
	}
	var out []ocispecs.Descriptor
	if err := candidates(descs, fetch, sel, want, "", 0, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func candidates(descs []ocispecs.Descriptor, fetch Fetch, sel Selector, want platforms.Matcher, parentRef string, depth int, out *[]ocispecs.Descriptor) error {
	if depth > 4 {
		return errors.New("indexes nested too deep")
	}
	for _, d := range descs {
		ref := RefName(d)
		if ref == "" {
			ref = parentRef
		}
		switch d.MediaType {
		case ocispecs.MediaTypeImageIndex, DockerManifestList:
			if sel.Ref != "" && !refMatches(ref, sel.Ref) {
				continue
			}
			raw, err := fetch(d)
			if err != nil {
				return err
			}
			var idx ocispecs.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if err := candidates(idx.Manifests, fetch, sel, want, ref, depth+1, out); err != nil {
				return err
			}
		case ocispecs.MediaTypeImageManifest, DockerManifest:
			if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
				continue
			}
			if p := d.Platform; p != nil {
				if p.OS == "unknown" {
					continue
				}
				if want != nil && !want.Match(*p) {
					continue
				}
			}
			if sel.Ref != "" && !refMatches(ref, sel.Ref) {
				continue
			}
			if d.Annotations == nil && ref != "" {
				d.Annotations = map[string]string{ocispecs.AnnotationRefName: ref}
			}
			*out = append(*out, d)
		}
	}
	return nil
}

// Choose returns the one image manifest of descs that sel selects. When
// several remain and sel names no platform, the one for DefaultPlatform
// is chosen if it is the only one; what names descs' index in errors.
func Choose(descs []ocispecs.Descriptor, fetch Fetch, sel Selector, what string) (ocispecs.Descriptor, error) {
	found, err := Candidates(descs, fetch, sel)
	if err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	if len(found) > 1 && sel.Platform == "" {
		def, err := Candidates(descs, fetch, Selector{Platform: DefaultPlatform(), Ref: sel.Ref})
		if err == nil && len(def) == 1 && allHavePlatforms(found) {
			found = def
		}
	}
	switch len(found) {
	case 0:
		none := "no image manifest"
		if sel.Ref != "" || sel.Platform != "" {
			none += fmt.Sprintf(" for ref %q, platform %q", sel.Ref, sel.Platform)
		}
		return ocispecs.Descriptor{}, fmt.Errorf("%s: %s", what, none)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, d := range found {
		names = append(names, Describe(d))
	}
	return ocispecs.Descriptor{}, fmt.Errorf("%s holds %d images (%s): choose one with a ref or a platform",
		what, len(found), strings.Join(names, "; "))
}

// allHavePlatforms: the default platform decides only between images
// that say their platform.
func allHavePlatforms(descs []ocispecs.Descriptor) bool {
	for _, d := range descs {
		if d.Platform == nil {
			return false
		}
	}
	return true
}

// Describe names a manifest descriptor in messages: its reference name,
// digest and platform.
func Describe(d ocispecs.Descriptor) string {
	s := d.Digest.String()
	if ref := RefName(d); ref != "" {
		s = ref + " " + s
	}
	if d.Platform != nil {
		s += " " + platforms.Format(*d.Platform)
	}
	return s
}

// RefName is a descriptor's reference name annotation, if any.
func RefName(d ocispecs.Descriptor) string {
	if r := d.Annotations[ocispecs.AnnotationRefName]; r != "" {
		return r
	}
	return d.Annotations["io.containerd.image.name"]
}

// refMatches: want is the whole reference name, its tag, or its end
// after a slash (alpine:3.22 for library/alpine:3.22).
func refMatches(ref, want string) bool {
	return ref != "" && (ref == want || strings.HasSuffix(ref, ":"+want) || strings.HasSuffix(ref, "/"+want))
}
