package measure

import (
	"encoding/json"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/imagefs"
)

// Media types read besides the OCI ones of image-spec.
const (
	dockerManifest     = imagefs.DockerManifest
	dockerManifestList = imagefs.DockerManifestList
	dockerConfig       = imagefs.DockerConfig
)

// RecipeHistoryComment, as the comment of a config history entry, marks a
// layer added by the recipe rather than by its base image. It is used to
// tell the base layers apart when neither BaseLayers nor BaseDiffIDs is
// given, along with BuildKit's own comment for layers that had no history
// entry ("buildkit.exporter.image.v0").
const RecipeHistoryComment = "minikit.recipe"

const buildkitExporterComment = "buildkit.exporter.image.v0"

// layerCompression is the compression a layer media type says, false for
// a media type that is not a supported layer.
func layerCompression(mt string) (compression, bool) {
	c, ok := imagefs.MediaTypeCompression(mt)
	return compression(c), ok
}

// A store gives the blobs of a layout, each verified by the caller.
type store interface {
	index() ([]byte, error)
	blob(digest.Digest) (*blob, error) // errMissing if absent
}

// jsonBlob returns a small JSON blob, checked against its descriptor.
func jsonBlob(st store, what string, d digest.Digest, size int64) ([]byte, error) {
	b, err := st.blob(d)
	if errors.Is(err, errMissing) {
		return nil, fmt.Errorf("%s %s is not in the layout", what, d)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d, err)
	}
	if err := b.check(size); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d, err)
	}
	if b.comp != compJSON || b.data == nil {
		return nil, fmt.Errorf("%s %s: not a JSON document of at most %d bytes", what, d, maxJSON)
	}
	return b.data, nil
}

// chooseManifest returns the one image manifest of descs (and of the
// indexes they name) that the options select (imagefs.Choose); what names
// descs' index in errors.
func chooseManifest(st store, descs []ocispecs.Descriptor, o options, what string) (ocispecs.Descriptor, error) {
	fetch := func(d ocispecs.Descriptor) ([]byte, error) { return jsonBlob(st, "index", d.Digest, d.Size) }
	return imagefs.Choose(descs, fetch, imagefs.Selector{Platform: o.platform, Ref: o.ref}, what)
}

// resolveLayout finds the image in the layout's index.json and measures it.
func resolveLayout(st store, o options) (*Image, error) {
	raw, err := st.index()
	if err != nil {
		return nil, err
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	d, err := chooseManifest(st, idx.Manifests, o, "index.json")
	if err != nil {
		return nil, err
	}
	mraw, err := jsonBlob(st, "manifest", d.Digest, d.Size)
	if err != nil {
		return nil, err
	}
	return resolveManifest(st, d.Digest, d.MediaType, mraw, o)
}

func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// resolveManifest measures the image of a manifest: its config and layers
// come from the store.
func resolveManifest(st store, md digest.Digest, mediaType string, raw []byte, o options) (*Image, error) {
	var m ocispecs.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", md, err)
	}
	if mediaType == "" {
		mediaType = m.MediaType
	}
	if mediaType == "" && m.Config.MediaType == ocispecs.MediaTypeImageConfig {
		mediaType = ocispecs.MediaTypeImageManifest // media type is optional in an OCI manifest
	}
	if mediaType != ocispecs.MediaTypeImageManifest && mediaType != dockerManifest {
		return nil, fmt.Errorf("manifest %s: unsupported media type %q", md, mediaType)
	}
	if m.Config.MediaType != ocispecs.MediaTypeImageConfig && m.Config.MediaType != dockerConfig {
		return nil, fmt.Errorf("manifest %s: config media type %q is not an image config", md, m.Config.MediaType)
	}
	craw, err := jsonBlob(st, "config", m.Config.Digest, m.Config.Size)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", md, err)
	}
	var cfg ocispecs.Image
	if err := json.Unmarshal(craw, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers, its config %s has %d diff IDs",
			md, len(m.Layers), m.Config.Digest, len(cfg.RootFS.DiffIDs))
	}

	img := &Image{
		ManifestDigest: md.String(),
		ConfigDigest:   m.Config.Digest.String(),
		MediaType:      mediaType,
		Layers:         make([]Layer, 0, len(m.Layers)),
	}
	if cfg.OS != "" {
		img.Platform = platformString(cfg.OS, cfg.Architecture, cfg.Variant)
	}
	var nonEmpty []ocispecs.History
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty = append(nonEmpty, h)
		}
	}
	stats := make([]*layerStats, len(m.Layers))
	for i, d := range m.Layers {
		st, err := readLayer(st, d, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, d.Digest, err)
		}
		stats[i] = st
		l := Layer{
			Index:        i,
			Digest:       d.Digest.String(),
			DiffID:       st.diffID.String(),
			MediaType:    d.MediaType,
			Compressed:   d.Size,
			Uncompressed: st.uncompressed,
			Entries:      len(st.entries),
			Files:        st.files,
			FileBytes:    st.fileBytes,
			DockerSize:   st.dockerSize,
		}
		if i < len(nonEmpty) {
			l.CreatedBy = nonEmpty[i].CreatedBy
		}
		img.Layers = append(img.Layers, l)
		img.Compressed += l.Compressed
		img.Uncompressed += l.Uncompressed
		img.DockerSize += l.DockerSize
	}

	img.BaseLayers, img.BaseKnown = baseLayers(o, img.Layers, nonEmpty)
	for i := range img.Layers {
		l := &img.Layers[i]
		if i < img.BaseLayers {
			l.FromBase = true
			img.BaseCompressed += l.Compressed
			img.BaseUncompressed += l.Uncompressed
		} else {
			img.AddedCompressed += l.Compressed
			img.AddedUncompressed += l.Uncompressed
		}
	}

	fs := mergeLayers(stats)
	img.Files, img.FileBytes = fs.files, fs.fileBytes
	img.Largest = topFiles(fs.largest, o.top)
	img.WastedBytes, img.WastedFiles = fs.wastedBytes, len(fs.wasted)
	img.Wasted = topFiles(fs.wasted, o.top)
	dive := diveFigures(stats)
	img.DiveWastedBytes, img.DiveEfficiency, img.DiveUserWastedRatio = dive.wasted, dive.efficiency, dive.userWastedRatio
	return img, nil
}

// readLayer returns the verified stats of a layer blob.
func readLayer(st store, d ocispecs.Descriptor, diffID digest.Digest) (*layerStats, error) {
	want, ok := layerCompression(d.MediaType)
	if !ok {
		return nil, fmt.Errorf("unsupported layer media type %q", d.MediaType)
	}
	b, err := st.blob(d.Digest)
	if errors.Is(err, errMissing) {
		return nil, errors.New("the blob is not in the layout")
	}
	if err != nil {
		return nil, err
	}
	if err := b.check(d.Size); err != nil {
		return nil, err
	}
	if b.comp != want {
		return nil, fmt.Errorf("media type %s says %s, the content is %s", d.MediaType, want, b.comp)
	}
	if b.err != nil {
		return nil, b.err
	}
	if b.layer.diffID != diffID {
		return nil, fmt.Errorf("uncompressed content digest is %s, the config's diff ID is %s", b.layer.diffID, diffID)
	}
	return b.layer, nil
}

// baseLayers tells how many leading layers belong to the base image, and
// whether that is known.
func baseLayers(o options, layers []Layer, history []ocispecs.History) (int, bool) {
	switch {
	case o.baseLayers >= 0:
		return min(o.baseLayers, len(layers)), true
	case o.baseDiffIDs != nil:
		n := 0
		for n < len(layers) && n < len(o.baseDiffIDs) && layers[n].DiffID == o.baseDiffIDs[n] {
			n++
		}
		return n, true
	}
	// From the history: the trailing entries marked as the recipe's.
	if len(history) != len(layers) {
		return 0, false
	}
	n := len(history)
	for n > 0 && (history[n-1].Comment == RecipeHistoryComment || history[n-1].Comment == buildkitExporterComment) {
		n--
	}
	if n == len(history) {
		return 0, false
	}
	return n, true
}
