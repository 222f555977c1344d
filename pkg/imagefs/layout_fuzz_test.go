package imagefs

import (
	"path"
	"strings"
	"testing"
)

// FuzzLayoutName: an archive entry UnpackLayout writes is oci-layout,
// index.json or blobs/ALG/HEX, a clean relative path that cannot leave
// the directory it is written into, and is its own name again.
func FuzzLayoutName(f *testing.F) {
	for _, s := range []string{"index.json", "./oci-layout", "blobs/sha256/" + strings.Repeat("0", 64), "../../etc/passwd",
		"blobs/../index.json", "/blobs/sha512/" + strings.Repeat("a", 128), "manifest.json", "blobs/sha256/..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := layoutName(s)
		if !ok {
			if n != "" {
				t.Errorf("layoutName(%q) = %q, false", s, n)
			}
			return
		}
		if n != path.Clean(n) || path.IsAbs(n) || strings.HasPrefix(n, "..") || strings.Contains(n, "\x00") {
			t.Fatalf("layoutName(%q) = %q: not a clean relative path", s, n)
		}
		if n != "index.json" && n != "oci-layout" && (!strings.HasPrefix(n, "blobs/") || strings.Count(n, "/") != 2) {
			t.Fatalf("layoutName(%q) = %q: not a layout file", s, n)
		}
		if again, ok := layoutName(n); !ok || again != n {
			t.Errorf("layoutName(%q) = %q, but that gives %q, %v", s, n, again, ok)
		}
	})
}
