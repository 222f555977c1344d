package standin

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// requireBuildEnv skips (or, with CI=true, fails) when the cheap stand-ins
// cannot be built here.
func requireBuildEnv(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (dpkg-deb -x must keep file owners)")
	}
	for _, tool := range []string{"dpkg-deb", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "stand-in integration test needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// TestIntegrationCheapStandIns builds alpine, busybox and busybox-glibc
// (no debootstrap), serves them and pulls them back.
func TestIntegrationCheapStandIns(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	names := []string{"library/alpine:3.22", "library/busybox:1.37", "library/busybox:1.37-glibc"}
	var progress safeBuffer
	built, err := Build(ctx, layoutDir, Only(names...), WorkDir(filepath.Join(dir, "work")), Progress(&progress))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if len(built) != len(names) {
		t.Fatalf("built %d images, want %d: %+v", len(built), len(names), built)
	}
	for _, b := range built {
		if !b.Rebuilt || b.Size == 0 {
			t.Errorf("%s: %+v", b.Name, b)
		}
	}
	if !strings.Contains(progress.String(), "done in") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}

	// Second run: nothing to do.
	again, err := Build(ctx, layoutDir, Only(names...), WorkDir(filepath.Join(dir, "work")))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range again {
		if b.Rebuilt || b.Digest != built[i].Digest {
			t.Errorf("%s rebuilt on the second run", b.Name)
		}
	}

	// Damage: busybox's layer truncated, alpine's config edited at the
	// same size. The next build finds both, says so and rebuilds them.
	imgs, err := layoutImages(mustLayout(t, layoutDir))
	if err != nil {
		t.Fatal(err)
	}
	bl, err := imgs["library/busybox:1.37"][LinuxAMD64].Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := bl[0].Digest()
	truncateBlob(t, layoutDir, layer)
	cfg, _ := imgs["library/alpine:3.22"][LinuxAMD64].ConfigName()
	editSameSize(t, layoutDir, cfg)
	if err := CheckLayout(layoutDir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged layout: %v, want ErrCorrupt", err)
	}
	repaired, err := Build(ctx, layoutDir, Only(names...), WorkDir(filepath.Join(dir, "work")))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range repaired {
		damaged := b.Name != "library/busybox:1.37-glibc"
		if b.Rebuilt != damaged || (b.Repaired != "") != damaged {
			t.Errorf("%s: rebuilt %v, repaired %q; want damaged=%v", b.Name, b.Rebuilt, b.Repaired, damaged)
		}
	}
	if err := CheckLayout(layoutDir); err != nil {
		t.Errorf("after the repair: %v", err)
	}

	addr := startServe(t, layoutDir, nil)
	want := map[string]struct{ has, hasNot []string }{
		"library/alpine:3.22": {
			has:    []string{"bin/sh", "bin/busybox", "lib/ld-musl-x86_64.so.1", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group", "tmp/", "var/tmp/", "root/"},
			hasNot: []string{"lib64/ld-linux-x86-64.so.2"},
		},
		"library/busybox:1.37": {
			has:    []string{"bin/sh", "bin/busybox", "etc/passwd", "tmp/"},
			hasNot: []string{"lib64/ld-linux-x86-64.so.2", "lib/ld-musl-x86_64.so.1"},
		},
		"library/busybox:1.37-glibc": {
			has:    []string{"bin/sh", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6", "tmp/"},
			hasNot: []string{"lib/x86_64-linux-gnu/libgcc_s.so.1"},
		},
	}
	for n, w := range want {
		ref, err := name.ParseReference(addr+"/"+n, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "amd64" || cf.OS != "linux" {
			t.Errorf("%s: platform %s/%s", n, cf.OS, cf.Architecture)
		}
		if cf.Config.Labels[LabelStandIn] != "true" || cf.Config.Labels[LabelFrom] == "" || cf.Config.Labels[LabelVersion] == "" {
			t.Errorf("%s: labels %v", n, cf.Config.Labels)
		}
		files := imageFiles(t, img)
		for _, f := range w.has {
			if _, ok := files[f]; !ok {
				t.Errorf("%s: %s missing", n, f)
			}
		}
		for _, f := range w.hasNot {
			if _, ok := files[f]; ok {
				t.Errorf("%s: %s must not be there", n, f)
			}
		}
		for _, d := range []string{"tmp/", "var/tmp/"} {
			if h := files[d]; h != nil && h.Mode&0o7777 != 0o1777 {
				t.Errorf("%s: %s mode %o, want 1777", n, d, h.Mode)
			}
		}
		if n == "library/alpine:3.22" {
			if h := files["etc/ssl/certs/ca-certificates.crt"]; h != nil && h.Size < 100_000 {
				t.Errorf("alpine: CA bundle only %d bytes", h.Size)
			}
		}
	}
}

// imageFiles lists the flattened filesystem of img.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(n, "/") {
			n += "/"
		}
		out[n] = h
		if h.Typeflag == tar.TypeReg && n == "etc/passwd" {
			var b bytes.Buffer
			_, _ = io.Copy(&b, tr)
			if !strings.HasPrefix(b.String(), "root:x:0:0:") {
				t.Errorf("etc/passwd = %q", b.String())
			}
		}
	}
}

func mustLayout(t *testing.T, dir string) layout.Path {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return lp
}
