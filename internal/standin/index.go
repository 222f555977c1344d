package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/minikit/minikit/internal/atomicfile"
)

// The layout's index.json is only ever replaced whole (a temporary file
// renamed into place), never rewritten in place as go-containerregistry's
// layout.Path does: a build stopped halfway leaves the old index or the
// new one, never a truncated file, and a layout copied with hard links
// (cp -al) is not changed through the copy.

// putNamed writes img's blobs into lp and makes it the layout's image
// named name (the ref.name annotation), in place of any other of that name.
func putNamed(lp layout.Path, name string, img v1.Image) error {
	if err := lp.WriteImage(img); err != nil {
		return err
	}
	return setNamed(lp, name, img)
}

// putNamedIndex is putNamed for an image index of images.
func putNamedIndex(lp layout.Path, name string, idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := lp.WriteImage(img); err != nil {
			return err
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := lp.WriteBlob(d, io.NopCloser(bytes.NewReader(raw))); err != nil {
		return err
	}
	return setNamed(lp, name, idx)
}

// describable is an image or an image index, as the layout index lists it.
type describable interface {
	MediaType() (types.MediaType, error)
	Size() (int64, error)
	Digest() (v1.Hash, error)
}

// setNamed points the layout index's entry for name at m.
func setNamed(lp layout.Path, name string, m describable) error {
	mt, err := m.MediaType()
	if err != nil {
		return err
	}
	size, err := m.Size()
	if err != nil {
		return err
	}
	d, err := m.Digest()
	if err != nil {
		return err
	}
	return editIndex(lp, func(ds []v1.Descriptor) []v1.Descriptor {
		kept := dropDescriptors(ds, func(x v1.Descriptor) bool { return x.Annotations[AnnotationRefName] == name })
		return append(kept, v1.Descriptor{MediaType: mt, Size: size, Digest: d,
			Annotations: map[string]string{AnnotationRefName: name}})
	})
}

// removeDescriptors drops the layout index's entries that drop selects.
func removeDescriptors(lp layout.Path, drop func(v1.Descriptor) bool) error {
	return editIndex(lp, func(ds []v1.Descriptor) []v1.Descriptor { return dropDescriptors(ds, drop) })
}

// dropDescriptors returns ds without those drop selects, in order.
func dropDescriptors(ds []v1.Descriptor, drop func(v1.Descriptor) bool) []v1.Descriptor {
	var out []v1.Descriptor
	for _, x := range ds {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}

// editIndex replaces the layout's index.json by one whose manifests are
// edit's result, atomically.
func editIndex(lp layout.Path, edit func([]v1.Descriptor) []v1.Descriptor) error {
	top, err := lp.ImageIndex()
	if err != nil {
		return fmt.Errorf("read the layout index: %w", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return fmt.Errorf("read the layout index: %w", err)
	}
	next := *im
	next.SchemaVersion = 2
	if next.MediaType == "" {
		next.MediaType = types.OCIImageIndex
	}
	next.Manifests = edit(im.Manifests)
	if next.Manifests == nil {
		next.Manifests = []v1.Descriptor{}
	}
	raw, err := json.MarshalIndent(next, "", "   ")
	if err != nil {
		return fmt.Errorf("write the layout index: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(string(lp), "index.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write the layout index: %w", err)
	}
	return nil
}
