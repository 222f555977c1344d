package measure

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// FromArchive measures the image of an image archive stream, in one pass
// and in any entry order: an OCI image layout tar (what FromOCITar reads;
// BuildKit's docker exporter and Docker 25's `docker save` write one too),
// or else a `docker save` archive of the older format (manifest.json, the
// config and one tar per layer, as Docker before 25 writes it).
//
// A docker save archive of the older format has no image manifest: the
// Image's ManifestDigest is then that of the Docker image manifest
// describing the archive's own blobs (the config, and each layer file as
// it is, with its media type), the manifest a registry would serve for
// those blobs; Ref chooses among several images by their RepoTags.
func FromArchive(r io.Reader, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	st, err := readTar(r, o.layers, true)
	if err != nil {
		return nil, err
	}
	if st.indexJSON != nil {
		return resolveLayout(st, o)
	}
	return resolveDockerArchive(st, o)
}

// FromArchiveFile measures the image of an image archive file (see
// FromArchive): `docker save` output, or `minikit solve --output
// oci=DIR` and `docker=DIR` tarballs.
func FromArchiveFile(path string, opts ...Option) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := FromArchive(f, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// dockerArchiveImage is one image of a docker save archive's manifest.json.
type dockerArchiveImage struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// file returns an archive file, following symbolic links (docker save
// links a layer that two images share).
func (s *tarStore) file(name string) (*blob, error) {
	for range 8 {
		if b, ok := s.files[name]; ok {
			return b, nil
		}
		if d, ok := blobDigest(name); ok { // an OCI blob named by a docker manifest
			if b, ok := s.blobs[d]; ok {
				return b, nil
			}
		}
		target, ok := s.links[name]
		if !ok {
			break
		}
		name = target
	}
	return nil, fmt.Errorf("%s is not in the archive", name)
}

func resolveDockerArchive(st *tarStore, o options) (*Image, error) {
	mf, ok := st.files["manifest.json"]
	if !ok {
		return nil, errors.New("the archive has neither index.json (an OCI layout) nor manifest.json (docker save)")
	}
	if mf.comp != compJSON || mf.data == nil {
		return nil, errors.New("manifest.json is not a JSON document")
	}
	var images []dockerArchiveImage
	if err := json.Unmarshal(mf.data, &images); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var chosen []dockerArchiveImage
	for _, im := range images {
		if o.ref == "" || anyRefMatches(im.RepoTags, o.ref) {
			chosen = append(chosen, im)
		}
	}
	switch len(chosen) {
	case 0:
		return nil, fmt.Errorf("manifest.json: no image for ref %q", o.ref)
	case 1:
	default:
		var names []string
		for _, im := range chosen {
			names = append(names, strings.Join(im.RepoTags, ",")+" "+im.Config)
		}
		return nil, fmt.Errorf("manifest.json holds %d images (%s): choose one with Ref", len(chosen), strings.Join(names, "; "))
	}
	im := chosen[0]
	cfg, err := st.file(im.Config)
	if err != nil {
		return nil, fmt.Errorf("manifest.json: config: %w", err)
	}
	if cfg.comp != compJSON || cfg.data == nil {
		return nil, fmt.Errorf("config %s is not a JSON document", im.Config)
	}
	m := ocispecs.Manifest{
		MediaType: dockerManifest,
		Config:    ocispecs.Descriptor{MediaType: dockerConfig, Digest: cfg.sum, Size: cfg.size},
	}
	m.SchemaVersion = 2
	byDigest := map[digest.Digest]*blob{cfg.sum: cfg}
	for i, name := range im.Layers {
		b, err := st.file(name)
		if err != nil {
			return nil, fmt.Errorf("manifest.json: layer %d: %w", i, err)
		}
		mt := "application/vnd.docker.image.rootfs.diff.tar"
		switch b.comp {
		case compGzip:
			mt += ".gzip"
		case compZstd:
			mt += ".zstd"
		case compJSON:
			return nil, fmt.Errorf("layer %d (%s) is a JSON document", i, name)
		}
		m.Layers = append(m.Layers, ocispecs.Descriptor{MediaType: mt, Digest: b.sum, Size: b.size})
		byDigest[b.sum] = b
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return resolveManifest(mapStore(byDigest), digest.FromBytes(raw), dockerManifest, raw, o)
}

func anyRefMatches(tags []string, want string) bool {
	for _, t := range tags {
		if t == want || strings.HasSuffix(t, ":"+want) || strings.HasSuffix(t, "/"+want) {
			return true
		}
	}
	return false
}

// mapStore is a store of blobs already read.
type mapStore map[digest.Digest]*blob

func (m mapStore) index() ([]byte, error) { return nil, errors.New("no index") }

func (m mapStore) blob(d digest.Digest) (*blob, error) {
	if b, ok := m[d]; ok {
		return b, nil
	}
	return nil, errMissing
}
