package imagefs

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// ErrNoLayout is wrapped by UnpackLayout's error for an archive without
// an OCI image layout (an older docker save archive: manifest.json only).
var ErrNoLayout = errors.New("the archive holds no OCI image layout (index.json)")

// UnpackLayout writes the OCI image layout of an image archive (BuildKit's
// docker or OCI exporter's tarball, Docker 25's docker save; plain or
// compressed) into dir: its oci-layout, index.json and blobs/ALG/HEX
// files, nothing else, so that no name in the archive can write outside
// dir. A blob whose name is not a valid digest is skipped.
func UnpackLayout(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(8)
	rc, err := Decompress(br, DetectCompression(head))
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	index := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name, ok := layoutName(h.Name)
		if !ok {
			continue
		}
		index = index || name == "index.json"
		dest := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", archive, h.Name, err)
		}
	}
	if !index {
		return fmt.Errorf("%s: %w", archive, ErrNoLayout)
	}
	return nil
}

// layoutName returns the layout file an archive entry is, cleaned, and
// whether it is one: oci-layout, index.json or blobs/ALG/HEX of a valid
// digest.
func layoutName(name string) (string, bool) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	switch n {
	case "oci-layout", "index.json":
		return n, true
	}
	parts := strings.Split(n, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	if digest.Digest(parts[1]+":"+parts[2]).Validate() != nil {
		return "", false
	}
	return n, true
}
