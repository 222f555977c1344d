package runner

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/atomicfile"
)

// TargetMetadata is one target's entry in a metadata file, in the shape
// `docker buildx build --metadata-file` writes (and `docker buildx bake`,
// keyed by target), so that tools reading buildx's metadata read
// minikit's: the keys are BuildKit's exporter response keys.
type TargetMetadata struct {
	// ConfigDigest is the image config's digest.
	ConfigDigest string `json:"containerimage.config.digest,omitempty"`
	// Descriptor is the image manifest's (or index's) descriptor.
	Descriptor *ocispecs.Descriptor `json:"containerimage.descriptor,omitempty"`
	// Digest is the manifest's (or index's) digest.
	Digest string `json:"containerimage.digest,omitempty"`
	// ImageName is the image's names, comma-separated, as BuildKit's
	// image exporter reports them.
	ImageName string `json:"image.name,omitempty"`
}

// Metadata returns the metadata of every target that built an image
// (a digest in its Result), keyed by target name: for a target built for
// several platforms, one entry, its image index's, as buildx writes it.
func Metadata(results []Result) map[string]TargetMetadata {
	out := map[string]TargetMetadata{}
	for _, r := range results {
		if r.ImageDigest == "" {
			continue // failed, canceled, or built without an export
		}
		if _, ok := out[r.Name]; ok {
			continue // another platform's Result: the same index
		}
		names := r.ImageNames
		if len(names) == 0 && r.ImageName != "" {
			names = []string{r.ImageName}
		}
		out[r.Name] = TargetMetadata{
			ConfigDigest: r.ConfigDigest,
			Descriptor:   r.ImageDescriptor,
			Digest:       r.ImageDigest,
			ImageName:    strings.Join(names, ","),
		}
	}
	return out
}

// WriteMetadata writes Metadata(results) to path as indented JSON, as
// buildx does, atomically: a reader sees the old file or the new one.
func WriteMetadata(path string, results []Result) error {
	dt, err := json.MarshalIndent(Metadata(results), "", "  ")
	if err != nil {
		return fmt.Errorf("metadata file: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(dt, '\n'), 0o644); err != nil {
		return fmt.Errorf("metadata file: %w", err)
	}
	return nil
}
