package standin

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/minikit/minikit/pkg/llbdefs"
)

func TestCatalog(t *testing.T) {
	specs := Catalog()
	if len(specs) != 29 {
		t.Errorf("catalog has %d stand-ins, want 29", len(specs))
	}
	seen := map[string]int{}
	for i, s := range specs {
		if _, dup := seen[s.Name]; dup {
			t.Errorf("duplicate name %s", s.Name)
		}
		seen[s.Name] = i
		if !(strings.HasPrefix(s.Name, "library/") || strings.HasPrefix(s.Name, "distroless/") && strings.HasSuffix(s.Repository(), "-debian12")) || s.Tag() == "" {
			t.Errorf("%s: want library/NAME:TAG (or distroless/NAME-debian12:TAG)", s.Name)
		}
		// Distroless images have no CMD, as upstream.
		if s.Version == "" || s.From == "" || (len(s.Cmd) == 0 && s.recipe != recipeDistroless) {
			t.Errorf("%s: version, from and cmd must be set: %+v", s.Name, s)
		}
		if !strings.HasPrefix(envValue(s.Env, "PATH"), "/") {
			t.Errorf("%s: no PATH in Env %v", s.Name, s.Env)
		}
		if s.Parent != "" {
			pi, ok := seen[s.Parent]
			if !ok {
				t.Errorf("%s: parent %s missing or listed after it", s.Name, s.Parent)
			} else if pi >= i {
				t.Errorf("%s: parent listed after it", s.Name)
			}
		}
		if s.recipe == 0 {
			t.Errorf("%s: no recipe", s.Name)
		}
	}
	// Catalog returns a fresh copy: changing it changes nothing.
	specs[0].Name = "changed"
	if Catalog()[0].Name == "changed" {
		t.Error("Catalog shares state between calls")
	}
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestClosure(t *testing.T) {
	got, err := closure(Catalog(), []string{"golang:1.26-bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	want := "library/debian:bookworm library/gcc:12-bookworm library/golang:1.26-bookworm"
	if strings.Join(names, " ") != want {
		t.Errorf("closure = %v, want %s", names, want)
	}
	got, err = closure(Catalog(), []string{"golang:1.27-bookworm"})
	names = nil
	for _, s := range got {
		names = append(names, s.Name)
	}
	if want := "library/debian:bookworm library/gcc:12-bookworm library/golang:1.27-bookworm"; err != nil || strings.Join(names, " ") != want {
		t.Errorf("closure(golang:1.27-bookworm) = %v, %v; want %s", names, err, want)
	}
	if _, err := closure(Catalog(), []string{"library/nope:1"}); err == nil || !strings.Contains(err.Error(), "unknown stand-in") {
		t.Errorf("unknown name: err = %v", err)
	}
	all, err := closure(Catalog(), nil)
	if err != nil || len(all) != len(Catalog()) {
		t.Errorf("closure(all) = %d specs, %v", len(all), err)
	}
	for in, want := range map[string]string{
		"gcc:12-bookworm":                   "library/gcc:12-bookworm",
		"docker.io/library/alpine:3.22":     "library/alpine:3.22",
		" library/busybox:1.37 ":            "library/busybox:1.37",
		"index.docker.io/library/rust:1.91": "library/rust:1.91",
	} {
		if got := normalizeName(in); got != want {
			t.Errorf("normalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// tarEntries reads a gzipped layer file into name -> header (+ contents).
func tarEntries(t *testing.T, layer v1.Layer) ([]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var hdrs []*tar.Header
	data := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
		b, _ := io.ReadAll(tr)
		data[h.Name] = string(b)
	}
	return hdrs, data
}

func byName(hdrs []*tar.Header) map[string]*tar.Header {
	m := map[string]*tar.Header{}
	for _, h := range hdrs {
		m[h.Name] = h
	}
	return m
}

// testTree makes a small rootfs: modes, symlink, hard link, sticky /tmp,
// a device directory whose contents must be skipped.
func testTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/data"), []byte("data"), 0o600))
	must(os.Chmod(filepath.Join(root, "usr/bin/data"), 0o640))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.MkdirAll(filepath.Join(root, "dev/shm"), 0o755))
	must(os.WriteFile(filepath.Join(root, "dev/null-ish"), nil, 0o644))
	must(ensureSkeleton(root, skeletonFiles{busybox: true, osRelease: "ID=test\n"}))
	return root
}

func writeTestLayer(t *testing.T, root string, o treeOptions) v1.Layer {
	t.Helper()
	file := filepath.Join(t.TempDir(), "layer.tar.gz")
	w, err := newLayerWriter(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTree(w, root, o); err != nil {
		w.abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := layerFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWriteTree(t *testing.T) {
	root := testTree(t)
	l := writeTestLayer(t, root, treeOptions{skipContents: []string{"dev"}})
	hdrs, data := tarEntries(t, l)
	m := byName(hdrs)

	for i := 1; i < len(hdrs); i++ {
		if strings.TrimSuffix(hdrs[i-1].Name, "/") >= strings.TrimSuffix(hdrs[i].Name, "/") {
			t.Errorf("entries not sorted: %s before %s", hdrs[i-1].Name, hdrs[i].Name)
		}
	}
	for _, d := range []string{"tmp/", "var/tmp/"} {
		h := m[d]
		if h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o1777 {
			t.Errorf("%s: want dir mode 1777, got %+v", d, h)
		}
	}
	if h := m["root/"]; h == nil || h.Mode&0o777 != 0o700 {
		t.Errorf("root/: want mode 0700, got %+v", h)
	}
	if h := m["usr/bin/tool"]; h == nil || h.Mode&0o777 != 0o755 || data["usr/bin/tool"] != "#!/bin/sh\n" {
		t.Errorf("usr/bin/tool: %+v %q", h, data["usr/bin/tool"])
	}
	if h := m["usr/bin/data"]; h == nil || h.Mode&0o777 != 0o640 {
		t.Errorf("usr/bin/data: want 0640, got %+v", h)
	}
	if h := m["usr/bin/tool2"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/tool" {
		t.Errorf("usr/bin/tool2: want hard link to usr/bin/tool, got %+v", h)
	}
	if h := m["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin: want symlink to usr/bin, got %+v", h)
	}
	if m["dev/"] == nil {
		t.Error("dev/ itself must be in the layer")
	}
	for n := range m {
		if strings.HasPrefix(n, "dev/") && n != "dev/" {
			t.Errorf("%s: contents of dev/ must be skipped", n)
		}
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/os-release"} {
		if data[f] == "" {
			t.Errorf("%s missing or empty", f)
		}
	}
	if !strings.HasPrefix(data["etc/passwd"], "root:x:0:0:") {
		t.Errorf("etc/passwd = %q", data["etc/passwd"])
	}
	for _, h := range hdrs {
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() {
			t.Errorf("%s: names/atime leak into the layer: %+v", h.Name, h)
		}
	}
	// Same tree, same bytes.
	l2 := writeTestLayer(t, root, treeOptions{skipContents: []string{"dev"}})
	d1, _ := l.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("layer not deterministic: %s != %s", d1, d2)
	}
}

func TestWriteTreeWhiteouts(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/opaque"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etc/gone", "etc/kept", "etc/opaque/new"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := writeTestLayer(t, root, treeOptions{
		isWhiteout: func(full string, _ fs.FileInfo) bool { return filepath.Base(full) == "gone" },
		isOpaque:   func(full string) bool { return filepath.Base(full) == "opaque" },
	})
	hdrs, _ := tarEntries(t, l)
	m := byName(hdrs)
	if m["etc/.wh.gone"] == nil || m["etc/gone"] != nil {
		t.Errorf("want whiteout etc/.wh.gone instead of etc/gone, got %v", keys(m))
	}
	if m["etc/opaque/.wh..wh..opq"] == nil || m["etc/opaque/new"] == nil || m["etc/kept"] == nil {
		t.Errorf("want opaque marker and kept files, got %v", keys(m))
	}

	// Applying the layer on a lower tree removes what it whites out.
	lower := t.TempDir()
	for _, f := range []string{"etc/gone", "etc/opaque/old", "etc/other"} {
		p := filepath.Join(lower, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := extractLayer(rc, lower); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{"etc/gone": false, "etc/opaque/old": false, "etc/opaque/new": true, "etc/other": true, "etc/kept": true, "etc/.wh.gone": false} {
		_, err := os.Lstat(filepath.Join(lower, f))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", f, got, want)
		}
	}
}

func TestOverlayWhiteoutDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a 0/0 character device (overlayfs whiteout)")
	}
	root := t.TempDir()
	if err := mknodWhiteout(filepath.Join(root, "gone")); err != nil {
		t.Skipf("mknod: %v", err)
	}
	hdrs, _ := tarEntries(t, writeTestLayer(t, root, treeOptions{overlay: true}))
	if len(hdrs) != 1 || hdrs[0].Name != ".wh.gone" {
		t.Errorf("want only .wh.gone, got %v", keys(byName(hdrs)))
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestExtractRoundTrip(t *testing.T) {
	root := testTree(t)
	l := writeTestLayer(t, root, treeOptions{skipContents: []string{"dev"}})
	dst := t.TempDir()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := extractLayer(rc, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "tmp"))
	if err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin symlink: %q %v", target, err)
	}
	a, _ := os.Stat(filepath.Join(dst, "usr/bin/tool"))
	b, _ := os.Stat(filepath.Join(dst, "usr/bin/tool2"))
	if a == nil || b == nil || !os.SameFile(a, b) || a.Mode().Perm() != 0o755 {
		t.Errorf("hard link not restored: %v %v", a, b)
	}
}

func TestExtractRejectsEscapes(t *testing.T) {
	for _, bad := range []string{"../evil", "a/../../evil"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: bad, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		if err := extractLayer(&buf, t.TempDir()); err == nil {
			t.Errorf("%s: extracted, want error", bad)
		}
	}
	// An entry through a symlink pointing outside is refused.
	dst := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: t.TempDir()})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "link/file", Mode: 0o644})
	tw.Close()
	if err := extractLayer(&buf, dst); err == nil {
		t.Error("write through a symlink: want error")
	}
}

func TestToolchainEntries(t *testing.T) {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	prefix := "golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64/"
	for _, f := range []string{"bin/go", "pkg/tool/linux_amd64/compile", "src/fmt/print.go", "go.env"} {
		w, err := zw.Create(prefix + f)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f)
	}
	w, _ := zw.Create("other/file")
	io.WriteString(w, "x")
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := toolchainEntries(zr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "go.tar.gz")
	lw, err := newLayerWriter(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeEntries(lw, entries); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := layerFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, data := tarEntries(t, l)
	m := byName(hdrs)
	for n, mode := range map[string]int64{
		"usr/local/go/bin/go":                       0o755,
		"usr/local/go/pkg/tool/linux_amd64/compile": 0o755,
		"usr/local/go/src/fmt/print.go":             0o644,
		"usr/local/go/go.env":                       0o644,
		"go/":                                       0o1777,
		"go/src/":                                   0o1777,
		"go/bin/":                                   0o1777,
		"usr/":                                      0o755,
		"usr/local/go/pkg/tool/":                    0o755,
	} {
		h := m[n]
		if h == nil {
			t.Errorf("%s missing (have %v)", n, keys(m))
			continue
		}
		if h.Mode&0o7777 != mode {
			t.Errorf("%s: mode %o, want %o", n, h.Mode, mode)
		}
	}
	if data["usr/local/go/bin/go"] != "bin/go" {
		t.Errorf("bin/go contents %q", data["usr/local/go/bin/go"])
	}
	if m["other/file"] != nil || m["usr/local/go/other/file"] != nil {
		t.Error("files outside the prefix must be ignored")
	}
}

func TestParsePrintURIs(t *testing.T) {
	out := []byte(`'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1%3a1.35.0-4%2bb1_amd64.deb' busybox-static_1%3a1.35.0-4+b1_amd64.deb 928188 SHA256:3D3F
'http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.3-1_amd64.deb' musl_1.2.3-1_amd64.deb 406200 SHA256:4fc1
`)
	got, err := parsePrintURIs(out, []string{"musl", "busybox-static"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].pkg != "musl" || got[1].file != "busybox-static_1%3a1.35.0-4+b1_amd64.deb" || got[1].sha256 != "3d3f" {
		t.Errorf("got %+v", got)
	}
	if _, err := parsePrintURIs(out, []string{"libc6"}); err == nil {
		t.Error("missing package: want error")
	}
}

func TestLoopbackAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000": "127.0.0.1:5000",
		"localhost:5055": "127.0.0.1:5055",
		"[::1]:5000":     "[::1]:5000",
		"127.0.0.2:0":    "127.0.0.2:0",
	} {
		got, err := loopbackAddr(in)
		if err != nil || got != want {
			t.Errorf("loopbackAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{":5000", "0.0.0.0:5000", "10.1.2.3:5000", "example.com:5000", "127.0.0.1", ""} {
		if _, err := loopbackAddr(bad); err == nil {
			t.Errorf("loopbackAddr(%q): want error", bad)
		}
	}
}

// testImages builds a base image and one derived from it, like the
// catalog does, from small trees (no root needed).
func testImages(t *testing.T) (base, derived v1.Image, baseSpec, derivedSpec Spec) {
	t.Helper()
	baseSpec = Spec{Name: "library/test:base", Version: "7", From: "a test tree", Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}
	derivedSpec = Spec{Name: "library/test:derived", Parent: baseSpec.Name, Version: "3", From: "base + more", Env: []string{"PATH=/usr/bin:/bin"}, Cmd: []string{"bash"}, WorkingDir: "/go"}
	var err error
	base, err = configure(nil, writeTestLayer(t, testTree(t), treeOptions{}), baseSpec, LinuxAMD64, "test base")
	if err != nil {
		t.Fatal(err)
	}
	more := t.TempDir()
	if err := os.WriteFile(filepath.Join(more, "extra"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	derived, err = configure(base, writeTestLayer(t, more, treeOptions{}), derivedSpec, LinuxAMD64, "test derived")
	if err != nil {
		t.Fatal(err)
	}
	return base, derived, baseSpec, derivedSpec
}

func TestConfigure(t *testing.T) {
	base, derived, baseSpec, derivedSpec := testImages(t)
	for _, c := range []struct {
		img  v1.Image
		spec Spec
		n    int
	}{{base, baseSpec, 1}, {derived, derivedSpec, 2}} {
		cf, err := c.img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "amd64" || cf.OS != "linux" {
			t.Errorf("%s: platform %s/%s", c.spec.Name, cf.OS, cf.Architecture)
		}
		l := cf.Config.Labels
		if l[LabelStandIn] != "true" || l[LabelFrom] != c.spec.From || l[LabelVersion] != c.spec.Version {
			t.Errorf("%s: labels %v", c.spec.Name, l)
		}
		if strings.Join(cf.Config.Cmd, " ") != strings.Join(c.spec.Cmd, " ") || cf.Config.WorkingDir != c.spec.WorkingDir ||
			strings.Join(cf.Config.Env, " ") != strings.Join(c.spec.Env, " ") {
			t.Errorf("%s: config %+v", c.spec.Name, cf.Config)
		}
		if len(cf.RootFS.DiffIDs) != c.n || len(cf.History) != c.n {
			t.Errorf("%s: %d diff ids, %d history, want %d", c.spec.Name, len(cf.RootFS.DiffIDs), len(cf.History), c.n)
		}
	}
	bm, _ := base.Manifest()
	dm, _ := derived.Manifest()
	if dm.Layers[0].Digest != bm.Layers[0].Digest {
		t.Error("derived image does not share its parent's layer")
	}
	if !upToDate(derived, derivedSpec, base, LinuxAMD64) || !upToDate(base, baseSpec, nil, LinuxAMD64) {
		t.Error("fresh images must be up to date")
	}
	bumped := derivedSpec
	bumped.Version = "4"
	if upToDate(derived, bumped, base, LinuxAMD64) {
		t.Error("version bump must rebuild")
	}
	alias, err := configure(base, nil, Spec{Name: "library/test:alias", Version: "1", Cmd: []string{"/bin/bash"}}, LinuxAMD64, "")
	if err != nil {
		t.Fatal(err)
	}
	am, _ := alias.Manifest()
	if len(am.Layers) != 1 || am.Layers[0].Digest != bm.Layers[0].Digest {
		t.Error("alias must keep exactly its parent's layers")
	}
	if mustDigest(t, alias) == mustDigest(t, base) {
		t.Error("alias must have its own config")
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUpToDateParentChanged(t *testing.T) {
	base, derived, _, derivedSpec := testImages(t)
	otherTree := t.TempDir()
	if err := os.WriteFile(filepath.Join(otherTree, "different"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	newBase, err := configure(nil, writeTestLayer(t, otherTree, treeOptions{}), Spec{Name: "library/test:base", Version: "7", Cmd: []string{"sh"}}, LinuxAMD64, "")
	if err != nil {
		t.Fatal(err)
	}
	if !upToDate(derived, derivedSpec, base, LinuxAMD64) {
		t.Error("derived on its own parent must be up to date")
	}
	if upToDate(derived, derivedSpec, newBase, LinuxAMD64) {
		t.Error("derived on a rebuilt parent must be rebuilt")
	}
}

func TestStoreReplacesAndCollectsGarbage(t *testing.T) {
	base, derived, baseSpec, _ := testImages(t)
	lp, err := openLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	if _, err := b.store(context.Background(), baseSpec, amd64Only(derived)); err != nil {
		t.Fatal(err)
	}
	// A newer recipe replaces the image of the same name.
	if _, err := b.store(context.Background(), baseSpec, amd64Only(base)); err != nil {
		t.Fatal(err)
	}
	imgs, err := layoutImages(lp)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || mustDigest(t, imgs[baseSpec.Name][LinuxAMD64]) != mustDigest(t, base) {
		t.Fatalf("layout images = %v", imgs)
	}
	n, err := collectGarbage(lp)
	if err != nil {
		t.Fatal(err)
	}
	// The derived image's manifest, config and own layer go; the shared layer stays.
	if n != 3 {
		t.Errorf("removed %d blobs, want 3", n)
	}
	if _, err := imgs[baseSpec.Name][LinuxAMD64].Layers(); err != nil {
		t.Fatal(err)
	}
	bm, _ := base.Manifest()
	if _, err := os.Stat(filepath.Join(string(lp), "blobs", "sha256", bm.Layers[0].Digest.Hex)); err != nil {
		t.Errorf("shared layer removed: %v", err)
	}
}

// Every image a recipe built offline (seed or extra, Offline or Partial)
// starts from has a stand-in: those recipes must build with no registry.
func TestOfflineRecipesHaveStandIns(t *testing.T) {
	byName := lookup(Catalog())
	n := 0
	for _, r := range llbdefs.All() {
		if !r.BuildsOffline() {
			continue
		}
		for _, img := range r.Images() {
			n++
			if _, ok := byName[normalizeName(img)]; !ok {
				t.Errorf("%s: no stand-in for %s", r.Name, img)
			}
		}
	}
	if n == 0 {
		t.Error("no offline recipe names an image")
	}
}

// Each golang stand-in carries the Go of its tag (1.26.x for golang:1.26-*,
// 1.27.x for golang:1.27-*), says so in its Env and From, and the Go
// version is the only thing the 1.26 and 1.27 bookworm recipes differ in.
func TestGolangStandInVersions(t *testing.T) {
	golang := map[string]Spec{}
	for _, s := range Catalog() {
		if (s.recipe == recipeGo) != strings.HasPrefix(s.Name, "library/golang:") {
			t.Errorf("%s: recipe %d", s.Name, s.recipe)
		}
		if s.recipe != recipeGo {
			if s.goVersion != "" {
				t.Errorf("%s: Go version %s on a recipe that installs no Go", s.Name, s.goVersion)
			}
			continue
		}
		golang[s.Name] = s
		if !strings.HasPrefix(s.goVersion, strings.SplitN(s.Tag(), "-", 2)[0]+".") {
			t.Errorf("%s: Go %q does not match the tag", s.Name, s.goVersion)
		}
		if v := envValue(s.Env, "GOLANG_VERSION"); v != s.goVersion {
			t.Errorf("%s: GOLANG_VERSION=%s, Go %s", s.Name, v, s.goVersion)
		}
		if zip := goToolchainMod + "@v0.0.1-go" + s.goVersion + ".linux-amd64"; !strings.Contains(s.From, zip) {
			t.Errorf("%s: From does not name %s: %s", s.Name, zip, s.From)
		}
	}
	old, cur := golang["library/golang:1.26-bookworm"], golang["library/golang:1.27-bookworm"]
	if old.goVersion != go126 || cur.goVersion != go127 || golang["library/golang:1.26-alpine3.22"].goVersion != go126 {
		t.Fatalf("golang stand-ins: %v", golang)
	}
	// Apart from the Go version, the two bookworm stand-ins are one recipe.
	strip := func(s Spec) string {
		v := s.goVersion
		// Only golang:1.26-bookworm is also built for linux/arm64.
		s.Name, s.goVersion, s.arm64 = "", "", false
		return strings.ReplaceAll(fmt.Sprintf("%+v", s), v, "X")
	}
	o, c := strip(old), strip(cur)
	if o != c {
		t.Errorf("golang:1.26-bookworm and golang:1.27-bookworm differ beyond the Go version:\n%s\n%s", o, c)
	}
	if v := goToolchainVersion("1.27.3", "arm64"); v != "v0.0.1-go1.27.3.linux-arm64" {
		t.Errorf("goToolchainVersion(1.27.3, arm64) = %s", v)
	}
}

// buildGo adds the toolchain layer of the stand-in's Go version, made once
// per version: the golang stand-ins of one Go share their layer, those of
// another Go get theirs.
func TestBuildGoLayerPerVersion(t *testing.T) {
	l126, err := random.Layer(64, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	l127, err := random.Layer(64, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	// Filled in: buildGo must take them rather than fetch a toolchain.
	b := &builder{goLayers: map[string]v1.Layer{goLayerKey(go126, "amd64"): l126, goLayerKey(go127, "amd64"): l127}}
	byName := lookup(Catalog())
	for name, want := range map[string]v1.Layer{
		"library/golang:1.26-bookworm":   l126,
		"library/golang:1.26-alpine3.22": l126,
		"library/golang:1.27-bookworm":   l127,
	} {
		img, err := b.buildGo(context.Background(), byName[name], nil, LinuxAMD64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: %d layers, %v", name, len(layers), err)
		}
		got, _ := layers[0].Digest()
		wantD, _ := want.Digest()
		if got != wantD {
			t.Errorf("%s: toolchain layer %s, want %s", name, got, wantD)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if by := cf.History[len(cf.History)-1].CreatedBy; !strings.Contains(by, goToolchainVersion(byName[name].goVersion, "amd64")) {
			t.Errorf("%s: history %q does not name its toolchain", name, by)
		}
	}
	noGo := byName["library/golang:1.27-bookworm"]
	noGo.goVersion = ""
	if _, err := b.buildGo(context.Background(), noGo, nil, LinuxAMD64); err == nil || !strings.Contains(err.Error(), "Go version") {
		t.Errorf("golang stand-in without a Go version: err = %v", err)
	}
}
