package standin

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]Platform{
		"linux/amd64":    LinuxAMD64,
		"amd64":          LinuxAMD64,
		"linux/x86_64":   LinuxAMD64,
		" Linux/AMD64 ":  LinuxAMD64,
		"linux/arm64":    LinuxARM64,
		"linux/arm64/v8": LinuxARM64,
		"arm64":          LinuxARM64,
		"linux/aarch64":  LinuxARM64,
	} {
		got, err := ParsePlatform(in)
		if err != nil || got != want {
			t.Errorf("ParsePlatform(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "linux/arm/v7", "windows/amd64", "linux/arm64/v9", "linux/amd64/v3", "darwin/arm64", "riscv64"} {
		if p, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) = %q, want an error", bad, p)
		}
	}
	ps, err := ParsePlatforms("linux/amd64, linux/arm64,amd64")
	if err != nil || !slices.Equal(ps, []Platform{LinuxAMD64, LinuxARM64}) {
		t.Errorf("ParsePlatforms = %v, %v", ps, err)
	}
	if _, err := ParsePlatforms(" , "); err == nil {
		t.Error("ParsePlatforms with no platform: want an error")
	}
	if a := LinuxARM64.OCI(); a.OS != "linux" || a.Architecture != "arm64" || a.Variant != "v8" {
		t.Errorf("LinuxARM64.OCI() = %+v", a)
	}
	if a := LinuxAMD64.OCI(); a.Architecture != "amd64" || a.Variant != "" {
		t.Errorf("LinuxAMD64.OCI() = %+v", a)
	}
}

// The stand-ins of the linux/arm64 rows are built for arm64, and so is
// every parent of an arm64 stand-in.
func TestARM64Catalog(t *testing.T) {
	byName := lookup(Catalog())
	for _, n := range []string{
		"library/debian:bookworm", "library/gcc:12-bookworm", "library/golang:1.26-bookworm",
		"library/alpine:3.22", "library/golang:1.26-alpine3.22", "library/busybox:1.37",
	} {
		if !byName[n].builds(LinuxARM64) {
			t.Errorf("%s is not built for linux/arm64", n)
		}
	}
	n := 0
	for _, s := range byName {
		if !s.builds(LinuxAMD64) {
			t.Errorf("%s: not built for linux/amd64", s.Name)
		}
		if !s.builds(LinuxARM64) {
			continue
		}
		n++
		if s.Parent != "" && !byName[s.Parent].builds(LinuxARM64) {
			t.Errorf("%s is built for linux/arm64, its parent %s is not", s.Name, s.Parent)
		}
		if s.pip {
			t.Errorf("%s: a pip stand-in's package index is linux/amd64 only", s.Name)
		}
	}
	if n == len(byName) {
		t.Error("every stand-in is built for arm64: the default build would not stay small")
	}
	golang := byName["library/golang:1.26-bookworm"]
	if got := golang.fromLabel(LinuxARM64); !strings.Contains(got, "linux-arm64") || strings.Contains(got, "linux-amd64") {
		t.Errorf("arm64 From label names the wrong toolchain: %s", got)
	}
	if golang.fromLabel(LinuxAMD64) != golang.From {
		t.Error("the amd64 From label must be From")
	}
}

func TestConfigureARM64(t *testing.T) {
	spec := Spec{Name: "library/test:arm", Version: "2", From: "zip x.linux-amd64", Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}, arm64: true}
	img, err := configure(nil, writeTestLayer(t, testTree(t), treeOptions{}), spec, LinuxARM64, "test")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("platform %s/%s/%s", cf.OS, cf.Architecture, cf.Variant)
	}
	if !strings.Contains(cf.Config.Labels[LabelFrom], "x.linux-arm64") {
		t.Errorf("From label %q", cf.Config.Labels[LabelFrom])
	}
	if !upToDate(img, spec, nil, LinuxARM64) {
		t.Error("fresh arm64 image not up to date for arm64")
	}
	if upToDate(img, spec, nil, LinuxAMD64) {
		t.Error("an arm64 image must not count as the amd64 one")
	}
}

// Two platforms under one name are an OCI image index the registry serves
// by tag, with each manifest by digest; going back to amd64 alone makes
// the name a plain manifest again and collects the arm64 blobs.
func TestStoreIndex(t *testing.T) {
	ctx := context.Background()
	base, _, baseSpec, _ := testImages(t)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "arm"), []byte("arm64 file"), 0o644); err != nil {
		t.Fatal(err)
	}
	arm, err := configure(nil, writeTestLayer(t, other, treeOptions{}), baseSpec, LinuxARM64, "test arm64")
	if err != nil {
		t.Fatal(err)
	}
	lp, err := openLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	stored, err := b.store(ctx, baseSpec, map[Platform]v1.Image{LinuxARM64: arm, LinuxAMD64: base})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || mustDigest(t, stored[LinuxARM64]) != mustDigest(t, arm) {
		t.Fatalf("stored %v", stored)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || !tm.Manifests[0].MediaType.IsIndex() || tm.Manifests[0].Annotations[AnnotationRefName] != baseSpec.Name {
		t.Fatalf("layout index %+v: want one image index named %s", tm.Manifests, baseSpec.Name)
	}
	imgs, err := layoutImages(lp)
	if err != nil {
		t.Fatal(err)
	}
	if got := imgs[baseSpec.Name]; len(got) != 2 || mustDigest(t, got[LinuxAMD64]) != mustDigest(t, base) || mustDigest(t, got[LinuxARM64]) != mustDigest(t, arm) {
		t.Fatalf("layoutImages = %v", got)
	}
	if err := CheckLayout(string(lp)); err != nil {
		t.Fatal(err)
	}
	if n, err := collectGarbage(lp); err != nil || n != 0 {
		t.Errorf("collectGarbage on a fresh index removed %d (%v), want 0", n, err)
	}

	addr := startServe(t, string(lp), nil)
	ref, err := name.ParseReference(addr+"/"+baseSpec.Name, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull the index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		plats = append(plats, d.Platform.String())
	}
	if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64/v8"}) {
		t.Errorf("index platforms %v, want linux/amd64 then linux/arm64/v8", plats)
	}
	for _, want := range []struct {
		p   v1.Platform
		img v1.Image
	}{{LinuxAMD64.OCI(), base}, {LinuxARM64.OCI(), arm}} {
		img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(want.p))
		if err != nil {
			t.Fatalf("pull %s: %v", want.p, err)
		}
		if mustDigest(t, img) != mustDigest(t, want.img) {
			t.Errorf("%s: pulled %s, want %s", want.p, mustDigest(t, img), mustDigest(t, want.img))
		}
		if _, err := img.Layers(); err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatalf("%s: layer: %v", want.p, err)
		}
		rc.Close()
	}

	// amd64 alone again: a plain manifest, the arm64 blobs collected.
	if _, err := b.store(ctx, baseSpec, amd64Only(base)); err != nil {
		t.Fatal(err)
	}
	if tm, err = mustIndexManifest(t, lp); err != nil || len(tm.Manifests) != 1 || !tm.Manifests[0].MediaType.IsImage() {
		t.Fatalf("after storing amd64 alone: %+v", tm)
	}
	n, err := collectGarbage(lp)
	if err != nil {
		t.Fatal(err)
	}
	// The index, the arm64 manifest, its config and its layer.
	if n != 4 {
		t.Errorf("removed %d blobs, want 4", n)
	}
	if err := CheckLayout(string(lp)); err != nil {
		t.Error(err)
	}
}

func mustIndexManifest(t *testing.T, lp interface{ ImageIndex() (v1.ImageIndex, error) }) (*v1.IndexManifest, error) {
	t.Helper()
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	return idx.IndexManifest()
}

func TestCheckEmulation(t *testing.T) {
	if err := checkEmulationIn(t.TempDir(), LinuxAMD64); err != nil {
		t.Errorf("amd64 on an amd64 machine: %v", err)
	}
	dir := t.TempDir()
	entry := filepath.Join(dir, "qemu-aarch64")
	if err := checkEmulationIn(dir, LinuxARM64); !errors.Is(err, ErrNoEmulation) || !strings.Contains(err.Error(), "scripts/binfmt") {
		t.Errorf("nothing registered: %v, want ErrNoEmulation naming scripts/binfmt", err)
	}
	for _, c := range []struct {
		content string
		ok      bool
	}{
		{"enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n", true},
		{"enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OC\noffset 0\n", false},
		{"disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n", false},
	} {
		if err := os.WriteFile(entry, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkEmulationIn(dir, LinuxARM64)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrNoEmulation)) {
			t.Errorf("entry %q: %v, want ok=%v", c.content, err, c.ok)
		}
	}
}

func TestHostApt(t *testing.T) {
	b := &builder{work: t.TempDir()}
	if opts, err := b.hostApt(LinuxAMD64); err != nil || opts != nil {
		t.Errorf("the host's own architecture: %v, %v; want no options", opts, err)
	}
	opts, err := b.hostApt(LinuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(opts, " ")
	for _, want := range []string{"APT::Architecture=arm64", "APT::Architectures=arm64", "Dir::State=" + filepath.Join(b.work, "apt-host-arm64", "state")} {
		if !strings.Contains(joined, want) {
			t.Errorf("options %q lack %q", joined, want)
		}
	}
	src, err := os.ReadFile(filepath.Join(b.work, "apt-host-arm64", "sources.list"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), debianMirror+" bookworm main") || !strings.Contains(string(src), "bookworm-security main") {
		t.Errorf("sources.list:\n%s", src)
	}
	if _, err := os.Stat(filepath.Join(b.work, "apt-host-arm64", "state", "status")); err != nil {
		t.Errorf("no empty dpkg status: %v", err)
	}
}

func TestLayoutPlatforms(t *testing.T) {
	base, _, baseSpec, derivedSpec := testImages(t)
	arm, err := configure(nil, writeTestLayer(t, testTree(t), treeOptions{}), baseSpec, LinuxARM64, "arm")
	if err != nil {
		t.Fatal(err)
	}
	lp, err := openLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	if _, err := b.store(context.Background(), baseSpec, map[Platform]v1.Image{LinuxAMD64: base, LinuxARM64: arm}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store(context.Background(), derivedSpec, amd64Only(base)); err != nil {
		t.Fatal(err)
	}
	got, err := LayoutPlatforms(string(lp))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[baseSpec.Name], []Platform{LinuxAMD64, LinuxARM64}) || !slices.Equal(got[derivedSpec.Name], []Platform{LinuxAMD64}) || len(got) != 2 {
		t.Errorf("LayoutPlatforms = %v", got)
	}
	if _, err := LayoutPlatforms(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("no layout: want an error")
	}
}

// TestIntegrationARM64Busybox builds busybox for linux/amd64 and
// linux/arm64 (Debian's arm64 busybox-static, its applets listed by the
// emulated busybox), serves it and pulls both platforms back.
func TestIntegrationARM64Busybox(t *testing.T) {
	requireBuildEnv(t)
	if err := checkEmulation(LinuxARM64); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	const bb = "library/busybox:1.37"
	var progress safeBuffer
	built, err := Build(ctx, layoutDir, Only(bb), Platforms(LinuxAMD64, LinuxARM64), WorkDir(filepath.Join(dir, "work")), Progress(&progress))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if len(built) != 2 || built[0].Platform != LinuxAMD64 || built[1].Platform != LinuxARM64 || !built[1].Rebuilt || built[1].Label() != bb+" (linux/arm64)" {
		t.Fatalf("built %+v", built)
	}
	// Asking for amd64 alone leaves the arm64 image as it is.
	again, err := Build(ctx, layoutDir, Only(bb), WorkDir(filepath.Join(dir, "work")))
	if err != nil || len(again) != 1 || again[0].Rebuilt {
		t.Fatalf("amd64 alone again: %+v, %v", again, err)
	}
	have, err := LayoutPlatforms(layoutDir)
	if err != nil || !slices.Equal(have[bb], []Platform{LinuxAMD64, LinuxARM64}) {
		t.Fatalf("layout platforms %v, %v", have, err)
	}
	addr := startServe(t, layoutDir, nil)
	ref, err := name.ParseReference(addr+"/"+bb, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p       Platform
		machine string
	}{{LinuxAMD64, "\x3e\x00"}, {LinuxARM64, "\xb7\x00"}} {
		img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(c.p.OCI()))
		if err != nil {
			t.Fatalf("pull %s: %v", c.p, err)
		}
		if d := mustDigest(t, img); d != built[slices.IndexFunc(built, func(b Built) bool { return b.Platform == c.p })].Digest {
			t.Errorf("%s: pulled %s", c.p, d)
		}
		files := imageFiles(t, img)
		if files["bin/sh"] == nil {
			t.Errorf("%s: no applet link bin/sh", c.p)
		}
		// e_machine of /bin/busybox: 0x3e x86-64, 0xb7 AArch64.
		if got := elfMachine(t, img, "bin/busybox"); got != c.machine {
			t.Errorf("%s: /bin/busybox e_machine %q, want %q", c.p, got, c.machine)
		}
	}
}

// elfMachine returns the two e_machine bytes of file in img.
func elfMachine(t *testing.T, img v1.Image, file string) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", file, err)
		}
		if strings.TrimPrefix(h.Name, "./") != file || h.Typeflag != tar.TypeReg {
			continue
		}
		head := make([]byte, 20)
		if _, err := io.ReadFull(tr, head); err != nil {
			t.Fatal(err)
		}
		return string(head[18:20])
	}
}
