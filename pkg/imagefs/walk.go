package imagefs

import (
	"encoding/json"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The kinds of blob Walk reports.
const (
	KindIndex    = "index"
	KindManifest = "manifest"
	KindConfig   = "config"
	KindLayer    = "layer"
)

// maxWalkDepth bounds how deep Walk follows nested indexes.
const maxWalkDepth = 8

// IsIndex reports whether a media type is an image index (OCI's, or
// Docker's manifest list).
func IsIndex(mediaType string) bool {
	return mediaType == ocispecs.MediaTypeImageIndex || mediaType == DockerManifestList
}

// IsManifest reports whether a media type is an image manifest (OCI's, or
// Docker's schema 2).
func IsManifest(mediaType string) bool {
	return mediaType == ocispecs.MediaTypeImageManifest || mediaType == DockerManifest
}

// Walk visits root (an index or a manifest) and every blob it refers to,
// depth first, with its kind: an index's manifests and indexes (children
// of other media types are not followed), a manifest's config and layers.
// An index or manifest is followed once per Walk, however often it is
// named; one that fetch cannot read, or that does not parse, is visited
// but not followed: a caller that checks the blobs finds it. Indexes
// nested deeper than a few levels are not followed.
func Walk(root ocispecs.Descriptor, fetch Fetch, visit func(d ocispecs.Descriptor, kind string)) {
	walk(root, fetch, visit, map[string]bool{}, 0)
}

func walk(d ocispecs.Descriptor, fetch Fetch, visit func(ocispecs.Descriptor, string), seen map[string]bool, depth int) {
	index := IsIndex(d.MediaType)
	if index {
		visit(d, KindIndex)
	} else {
		visit(d, KindManifest)
	}
	if seen[d.Digest.String()] || depth > maxWalkDepth {
		return
	}
	seen[d.Digest.String()] = true
	raw, err := fetch(d)
	if err != nil {
		return
	}
	switch {
	case index:
		var idx ocispecs.Index
		if json.Unmarshal(raw, &idx) != nil {
			return
		}
		for _, child := range idx.Manifests {
			if IsIndex(child.MediaType) || IsManifest(child.MediaType) {
				walk(child, fetch, visit, seen, depth+1)
			}
		}
	case IsManifest(d.MediaType):
		var m ocispecs.Manifest
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		visit(m.Config, KindConfig)
		for _, l := range m.Layers {
			visit(l, KindLayer)
		}
	}
}
