package standin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestServePackageIndex: the registry serves the package index beside
// its layout under /simple/, read only.
func TestServePackageIndex(t *testing.T) {
	dir, _, _, _, _ := testLayout(t)
	index := PyIndexDir(dir)
	wheel := []byte("not really a zip")
	sum := sha256.Sum256(wheel)
	file := "demo-1.0-py3-none-any.whl"
	if err := os.MkdirAll(filepath.Join(index, "files"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(index, "files", file), wheel, 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"version": "1", "projects": {"demo": {"name": "demo", "version": "1.0", "file": %q, "sha256": %q, "size": %d}}}`,
		file, hex.EncodeToString(sum[:]), len(wheel))
	if err := os.WriteFile(filepath.Join(index, "index.json"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, dir, nil)
	base := "http://" + addr
	if resp, body := do(t, http.MethodGet, base+"/simple/", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="demo/"`) {
		t.Errorf("GET /simple/: %s\n%s", resp.Status, body)
	}
	link := fmt.Sprintf(`href="%s#sha256=%s"`, file, hex.EncodeToString(sum[:]))
	if resp, body := do(t, http.MethodGet, base+"/simple/demo/", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), link) {
		t.Errorf("GET /simple/demo/: %s, want %s\n%s", resp.Status, link, body)
	}
	if resp, body := do(t, http.MethodGet, base+"/simple/demo/"+file, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, wheel) {
		t.Errorf("GET the wheel: %s %q", resp.Status, body)
	}
	before := layoutFiles(t, index)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		resp, _ := do(t, m, base+"/simple/demo/"+file, bytes.NewReader([]byte("intruder")), nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s the wheel: %s, want 405", m, resp.Status)
		}
	}
	if after := layoutFiles(t, index); after != before {
		t.Errorf("the index changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A layout reached through a link serves the index beside the real one.
	linked := filepath.Join(t.TempDir(), "standins")
	if err := os.Symlink(dir, linked); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, http.MethodGet, "http://"+startServe(t, linked, nil)+"/simple/demo/", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), link) {
		t.Errorf("GET /simple/demo/ through a linked layout: %s\n%s", resp.Status, body)
	}
	// The registry API is unchanged beside it.
	if resp, _ := do(t, http.MethodGet, base+"/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/: %s", resp.Status)
	}
}

// TestPipFiles: a pip stand-in's layer has no EXTERNALLY-MANAGED marker
// and names the index in /etc/pip.conf; a marker in the parent, which the
// layer cannot remove, is an error.
func TestPipFiles(t *testing.T) {
	upper, lower := t.TempDir(), t.TempDir()
	marker := filepath.Join(upper, externallyManaged)
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("[externally-managed]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &builder{}
	if err := b.pipFiles(upper, lower); err == nil {
		t.Error("pipFiles without an index address: no error")
	}
	b.indexURL = "http://127.0.0.1:5106" + "/simple/"
	if err := b.pipFiles(upper, lower); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(marker); err == nil {
		t.Error("EXTERNALLY-MANAGED still there")
	}
	conf, err := os.ReadFile(filepath.Join(upper, pipConfPath))
	if err != nil || !strings.Contains(string(conf), "[global]\nindex-url = http://127.0.0.1:5106/simple/\n") {
		t.Errorf("pip.conf %q (%v)", conf, err)
	}
	if err := os.MkdirAll(filepath.Join(lower, filepath.Dir(externallyManaged)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, externallyManaged), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.pipFiles(upper, lower); err == nil {
		t.Error("a parent's EXTERNALLY-MANAGED: no error")
	}
	var opts options
	IndexAddr("127.0.0.1:5106")(&opts)
	if opts.indexURL != b.indexURL {
		t.Errorf("IndexAddr: %q, want %q", opts.indexURL, b.indexURL)
	}
	// A python stand-in built for another registry address is rebuilt.
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = setLabel(img, LabelPipIndex, b.indexURL); err != nil {
		t.Fatal(err)
	}
	slim := lookup(Catalog())[pythonSlimName]
	if !b.hasCurrentIndex(img, slim) {
		t.Error("a stand-in built for this index is not current")
	}
	other := &builder{indexURL: "http://127.0.0.1:5000/simple/"}
	if other.hasCurrentIndex(img, slim) {
		t.Error("a stand-in built for another registry address is current")
	}
	if !other.hasCurrentIndex(img, lookup(Catalog())["library/debian:bookworm"]) {
		t.Error("a stand-in without pip depends on the index address")
	}
}
