package standin

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// extractLayer reads whiteouts as pkg/imagefs does: a whiteout removes its
// path, an opaque marker empties its directory, before the layer's own
// entries land.
func TestExtractWhiteouts(t *testing.T) {
	dst := t.TempDir()
	for _, p := range []string{"a/x", "a/keep", "d/y", "d/sub/z"} {
		full := filepath.Join(dst, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []tar.Header{
		{Name: "a/.wh.x", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "d/new", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	if err := extractLayer(&buf, dst); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/x": false, "a/keep": true, "a/.wh.x": false, "d/y": false, "d/sub": false, "d/new": true, "d/.wh..wh..opq": false} {
		if _, err := os.Lstat(filepath.Join(dst, p)); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", p, err == nil, want)
		}
	}
}
