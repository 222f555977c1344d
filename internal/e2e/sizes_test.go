package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/minikit/minikit/pkg/report"
)

// TestSizesMatchAnIndependentReading solves a few stand-in recipes,
// exports them as OCI layouts, and reads those layouts again with
// go-containerregistry: minikit's manifest digest and per-layer sizes must
// be the same to the byte, and known facts about the images must hold.
func TestSizesMatchAnIndependentReading(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	out := t.TempDir()
	names := []string{"hello-c.gcc-static.scratch", "hello-go.golang", "hello-go.golang.scratch", "whatsmyip.golang-nocgo.scratch"}
	page := filepath.Join(out, "report.html")
	args := append([]string{"solve", "--format", "json", "--progress", "quiet", "--output", "oci=" + out, "--report", page}, names...)
	code, stdout, stderr := minikit(t, ctx, args...)
	if code != 0 {
		t.Fatalf("solve exited %d\n%s", code, tail(stderr, 3000))
	}
	rep, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]report.Recipe{}
	for _, r := range rep.Recipes {
		rows[r.Name] = r
	}
	for _, name := range names {
		row := rows[name]
		if row.Image == nil {
			t.Fatalf("%s: no sizes: %+v", name, row)
		}
		img := readOCITar(t, filepath.Join(out, name+".oci.tar"))
		dgst, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if row.Image.ManifestDigest != dgst.String() {
			t.Errorf("%s: manifest digest %s, go-containerregistry reads %s", name, row.Image.ManifestDigest, dgst)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != len(row.Image.Layers) {
			t.Fatalf("%s: %d layers, go-containerregistry reads %d", name, len(row.Image.Layers), len(layers))
		}
		var compressed, uncompressed int64
		for i, l := range layers {
			size, _ := l.Size()
			diffID, _ := l.DiffID()
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := row.Image.Layers[i]
			if got.Compressed != size || got.Uncompressed != n || got.DiffID != diffID.String() {
				t.Errorf("%s layer %d: minikit %d/%d %s, go-containerregistry %d/%d %s",
					name, i, got.Compressed, got.Uncompressed, got.DiffID, size, n, diffID)
			}
			compressed += size
			uncompressed += n
		}
		if row.Image.Compressed != compressed || row.Image.Uncompressed != uncompressed {
			t.Errorf("%s: totals %d/%d, layers add up to %d/%d", name, row.Image.Compressed, row.Image.Uncompressed, compressed, uncompressed)
		}
	}

	// The HTML report of this run, rendered by a real browser: one bar per
	// built recipe.
	checkReportInBrowser(t, page, len(names))

	// A static binary copied into scratch: one layer, the binary plus tar
	// headers and padding (a few kB at most).
	static := rows["hello-c.gcc-static.scratch"].Image
	if len(static.Layers) != 1 || len(static.Largest) == 0 || static.Largest[0].Path != "/hello" {
		t.Fatalf("static scratch image: %+v", static)
	}
	if over := static.Uncompressed - static.Largest[0].Size; over < 1024 || over > 8192 {
		t.Errorf("static scratch image: %d bytes beyond the %d-byte binary", over, static.Largest[0].Size)
	}
	if static.BaseUncompressed != 0 || static.AddedUncompressed != static.Uncompressed {
		t.Errorf("scratch has no base: base %d, added %d", static.BaseUncompressed, static.AddedUncompressed)
	}
	// The single-stage golang image is larger than the same program on
	// scratch by at least its base image.
	single, scratch := rows["hello-go.golang"].Image, rows["hello-go.golang.scratch"].Image
	if single.BaseUncompressed < 100e6 || single.Uncompressed-scratch.Uncompressed < single.BaseUncompressed {
		t.Errorf("golang %d (base %d) vs scratch %d", single.Uncompressed, single.BaseUncompressed, scratch.Uncompressed)
	}
}

// readOCITar unpacks an OCI layout tarball and opens its one image.
func readOCITar(t *testing.T, path string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "..") {
			continue
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("%s: index %v %v", path, m, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkReportInBrowser renders an HTML report in headless Chromium and
// counts its bars in the rendered DOM.
func checkReportInBrowser(t *testing.T, page string, bars int) {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH (scripts/setup installs it)")
		}
		t.Log("no chromium on PATH: the report was not rendered")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	got := regexp.MustCompile(`<[^>]*class="[^"]*\bbar\b[^"]*"[^>]*data-recipe=|<[^>]*data-recipe=[^>]*class="[^"]*\bbar\b`).FindAll(dom, -1)
	if len(got) != bars {
		t.Errorf("the rendered report has %d bars, want %d", len(got), bars)
	}
}
