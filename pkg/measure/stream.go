package measure

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarStore holds what one pass over a layout tar stream found.
type tarStore struct {
	indexJSON []byte
	blobs     map[digest.Digest]*blob
	// With other files (a docker save archive): the files outside
	// blobs/, by their cleaned name, and the symbolic links among them
	// (name to the name they point to).
	files map[string]*blob
	links map[string]string
}

func (s *tarStore) index() ([]byte, error) {
	if s.indexJSON == nil {
		return nil, errors.New("the stream has no index.json")
	}
	return s.indexJSON, nil
}

func (s *tarStore) blob(d digest.Digest) (*blob, error) {
	b, ok := s.blobs[d]
	if !ok {
		return nil, errMissing
	}
	return b, nil
}

// readTar reads a layout tar stream to its end, analysing every blob but
// the layers that layers (if not nil) holds: those are skipped unread.
// With otherFiles, the regular files outside blobs/ are analysed too and
// the symbolic links recorded (a docker save archive's layout).
func readTar(r io.Reader, layers *LayerCache, otherFiles bool) (*tarStore, error) {
	st := &tarStore{blobs: map[digest.Digest]*blob{}, files: map[string]*blob{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the layout stream after %d blobs: %w", len(st.blobs), err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if otherFiles && hdr.Typeflag == tar.TypeSymlink {
			st.links[name] = strings.TrimPrefix(path.Clean(path.Join("/", path.Dir(name), hdr.Linkname)), "/")
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		switch {
		case name == "index.json":
			if hdr.Size > maxJSON {
				return nil, fmt.Errorf("index.json is %d bytes, more than %d", hdr.Size, maxJSON)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading index.json: %w", err)
			}
			st.indexJSON = b
		case strings.HasPrefix(name, "blobs/"):
			d, ok := blobDigest(name)
			if !ok {
				continue // not a blob of the layout (e.g. a stray file): skipped
			}
			if rec := layers.lookup(d, hdr.Size); rec != nil {
				st.blobs[d] = rec.blob() // tr.Next skips its bytes
				continue
			}
			b, err := analyze(tr, d, hdr.Size)
			if err != nil {
				return nil, fmt.Errorf("%s%w", st.describe(d), err)
			}
			layers.store(b)
			st.blobs[d] = b
		case otherFiles:
			b, err := analyze(tr, "", hdr.Size)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			b.digest = b.sum
			layers.store(b)
			st.files[name] = b
		}
	}
	// Read to the very end: a tar writer may pad the archive past its
	// end-of-archive blocks, and a pipe's writer must not block on it.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("reading the layout stream past its end: %w", err)
	}
	return st, nil
}

// blobDigest parses "blobs/ALG/HEX".
func blobDigest(name string) (digest.Digest, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return "", false
	}
	return d, true
}

// describe names a blob by its role, as far as the manifests read so far
// tell: "layer 2 (sha256:...) of manifest sha256:...: ". It is used for
// errors met while the stream is read, before the image is resolved.
func (s *tarStore) describe(d digest.Digest) string {
	var found []string
	for md, b := range s.blobs {
		if b.comp != compJSON {
			continue
		}
		var m ocispecs.Manifest
		if json.Unmarshal(b.data, &m) != nil || m.Config.Digest == "" {
			continue
		}
		for i, l := range m.Layers {
			if l.Digest == d {
				found = append(found, fmt.Sprintf("layer %d of manifest %s", i, md))
			}
		}
		if m.Config.Digest == d {
			found = append(found, "config of manifest "+md.String())
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Strings(found)
	return strings.Join(found, ", ") + ": "
}
