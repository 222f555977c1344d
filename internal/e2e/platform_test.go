package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/report"
)

// arm64Rows are the rows built and run for linux/arm64 under emulation,
// with the outcome each must have there (as on linux/amd64).
var arm64Rows = []struct {
	name   string
	code   int
	kind   string
	reason string // a part of the run's reason
}{
	{"hello-c.gcc-static.scratch", 0, "ok", "ok"},
	{"hello-c.gcc.scratch", 127, "missing-loader", "no /lib/ld-linux-aarch64.so.1 (glibc loader)"},
	{"hello-go.golang.scratch", 0, "ok", "ok"},
	{"hello-go.golang-alpine.alpine", 0, "ok", "ok"},
}

// arm64StandIns are the stand-ins those rows pull.
var arm64StandIns = []string{"library/gcc:12-bookworm", "library/golang:1.26-bookworm", "library/golang:1.26-alpine3.22", "library/alpine:3.22"}

// requireARM64 registers qemu-user-static for aarch64 in binfmt_misc
// (scripts/binfmt, idempotent) and checks that the stand-ins of the
// arm64 rows have linux/arm64 images; outside CI it skips when either
// is missing, saying what to run.
func requireARM64(t *testing.T) paths.Home {
	t.Helper()
	home := requireBuildEnv(t)
	need := func(msg string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	script, err := filepath.Abs(filepath.Join(bakeRepoRoot, "scripts", "binfmt"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		need(fmt.Sprintf("linux/arm64 emulation: %s: %v\n%s", script, err, out))
	}
	have, err := standin.LayoutPlatforms(home.StandIns())
	if err != nil {
		need(fmt.Sprintf("linux/arm64 stand-ins: %v", err))
	}
	for _, n := range arm64StandIns {
		if !slices.Contains(have[n], standin.LinuxARM64) {
			need(fmt.Sprintf("no linux/arm64 image of the stand-in %s in %s: run `minikit standins build --platform linux/amd64,linux/arm64` (scripts/setup does with CI=true)", n, home.StandIns()))
		}
	}
	return home
}

// TestARM64Rows builds the four arm64 rows for linux/arm64 and runs them
// inside BuildKit, emulated by qemu-user through binfmt_misc: each ends
// as it does natively, and the dynamic C program on scratch fails with
// 127 naming the aarch64 loader.
func TestARM64Rows(t *testing.T) {
	requireARM64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	args := []string{"--platform", "linux/arm64", "--run-timeout", "10m"}
	for _, r := range arm64Rows {
		args = append(args, r.name)
	}
	start := time.Now()
	code, doc := testJSON(t, ctx, args...)
	t.Logf("the %d linux/arm64 rows built and ran in %s", len(arm64Rows), time.Since(start).Round(time.Second))
	rows := map[string]testRow{}
	for _, r := range doc.Recipes {
		rows[r.Name] = r
	}
	for _, want := range arm64Rows {
		row, ok := rows[want.name]
		switch {
		case !ok:
			t.Errorf("%s: not in the report", want.name)
			continue
		case row.Status != "ok" || row.Run == nil:
			t.Errorf("%s: status %s (%s), no run", want.name, row.Status, row.Error)
			continue
		}
		run := row.Run
		if run.ExitCode != want.code || run.Kind != want.kind || !strings.Contains(run.Reason, want.reason) || !run.Matches {
			t.Errorf("%s on linux/arm64: exit %d, %s, %q (as expected: %v); want exit %d, %s, %q", want.name,
				run.ExitCode, run.Kind, run.Reason, run.Matches, want.code, want.kind, want.reason)
		}
		if want.code == 0 && !slices.ContainsFunc(run.StdoutTail, func(l string) bool { return strings.Contains(l, "Hello") }) {
			t.Errorf("%s: stdout %q, want its greeting", want.name, run.StdoutTail)
		}
		// qemu says it emulated the program: the run was an arm64 one.
		if want.kind == "missing-loader" && !strings.Contains(run.Reason, "emulated as aarch64") {
			t.Errorf("%s: %q does not say it ran emulated as aarch64", want.name, run.Reason)
		}
	}
	if code != 0 {
		t.Errorf("minikit test --platform linux/arm64 exited %d, want 0", code)
	}
}

// TestStandInsServeIndex pulls the arm64 rows' stand-ins from the
// stand-in registry: each is an OCI image index with a linux/amd64 and a
// linux/arm64 image, and each image's config names its platform.
func TestStandInsServeIndex(t *testing.T) {
	requireARM64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if code, _, stderr := minikit(t, ctx, "daemon", "start"); code != 0 {
		t.Fatalf("minikit daemon start: exit %d\n%s", code, stderr)
	}
	for _, n := range arm64StandIns {
		ref, err := name.ParseReference(connect.RegistryAddr()+"/"+n, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("pull %s as an index: %v", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, d := range im.Manifests {
			if d.Platform == nil {
				t.Errorf("%s: a manifest with no platform", n)
				continue
			}
			plats = append(plats, d.Platform.String())
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != d.Platform.OS || cf.Architecture != d.Platform.Architecture {
				t.Errorf("%s: the %s manifest's config says %s/%s", n, d.Platform, cf.OS, cf.Architecture)
			}
		}
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64/v8"}) {
			t.Errorf("%s: platforms %v, want linux/amd64 and linux/arm64/v8", n, plats)
		}
	}
}

// twoPlatformRows are the rows TestTwoPlatformsOneIndex builds for
// linux/amd64 and linux/arm64, and how each platform's run must end:
// the static C program prints its greeting on both; the dynamic one on
// scratch misses each platform's own glibc loader.
var twoPlatformRows = []struct {
	name   string
	code   int
	reason map[string]string // platform -> a part of the run's reason
}{
	{"hello-c.gcc-static.scratch", 0, map[string]string{"linux/amd64": "ok", "linux/arm64": "ok"}},
	{"hello-c.gcc.scratch", 127, map[string]string{"linux/amd64": "/lib64/ld-linux-x86-64.so.2", "linux/arm64": "/lib/ld-linux-aarch64.so.1"}},
}

// TestTwoPlatformsOneIndex: `minikit solve --platform
// linux/amd64,linux/arm64 --test` builds each recipe once for both
// platforms, the arm64 one emulated: its OCI tarball holds one image
// index under the recipe's name listing both platforms, with distinct
// manifests, each image's program an ELF for its platform's machine;
// the report has a row per platform, naming it, with that manifest's
// measurement and the run's outcome on that platform; the metadata file
// has one entry per recipe, the index.
func TestTwoPlatformsOneIndex(t *testing.T) {
	requireARM64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	dir := t.TempDir()
	meta := filepath.Join(dir, "metadata.json")
	args := []string{"solve", "--platform", "linux/amd64,linux/arm64", "--test", "--run-timeout", "10m", "--format", "json", "--progress", "quiet",
		"--output", "oci=" + dir, "--metadata-file", meta}
	for _, r := range twoPlatformRows {
		args = append(args, r.name)
	}
	code, stdout, stderr := minikit(t, ctx, args...)
	t.Logf("stderr (last 2000 bytes):\n%s", tail(stderr, 2000))
	if code != 0 {
		t.Fatalf("minikit %v: exit %d\n%s", args, code, stdout)
	}
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	var rep report.Report
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("solve --format json is not a report (pkg/report/FIELDS.md): %v\n%s", err, stdout)
	}
	if len(rep.Recipes) != 2*len(twoPlatformRows) {
		t.Fatalf("%d rows; want one per recipe and platform (%d)", len(rep.Recipes), 2*len(twoPlatformRows))
	}
	md := readMetadata(t, meta)
	for i, want := range twoPlatformRows {
		rows := rep.Recipes[2*i : 2*i+2]
		manifests := map[string]string{} // platform -> the row's manifest digest
		for k, plat := range []string{"linux/amd64", "linux/arm64"} {
			row := rows[k]
			switch {
			case row.Name != want.name || row.Platform != plat:
				t.Errorf("row %d: %s for %q; want %s for %s", 2*i+k, row.Name, row.Platform, want.name, plat)
				continue
			case row.Status != "ok" || row.Image == nil || row.Run == nil:
				t.Errorf("%s on %s: status %s (%s), image %v, run %v", want.name, plat, row.Status, row.Error, row.Image != nil, row.Run != nil)
				continue
			}
			if row.Image.Platform != plat || !strings.HasPrefix(row.Image.ManifestDigest, "sha256:") {
				t.Errorf("%s on %s: measured the %s manifest %s", want.name, plat, row.Image.Platform, row.Image.ManifestDigest)
			}
			manifests[plat] = row.Image.ManifestDigest
			run := row.Run
			if run.ExitCode != want.code || !run.Expected || !strings.Contains(run.Reason, want.reason[plat]) {
				t.Errorf("%s on %s: exit %d, %q (as expected: %v); want exit %d, %q", want.name, plat, run.ExitCode, run.Reason, run.Expected, want.code, want.reason[plat])
			}
			if want.code == 0 && !slices.ContainsFunc(run.StdoutTail, func(l string) bool { return strings.Contains(l, "Hello") }) {
				t.Errorf("%s on %s: stdout %q, want its greeting", want.name, plat, run.StdoutTail)
			}
		}
		if manifests["linux/amd64"] == manifests["linux/arm64"] {
			t.Errorf("%s: both rows measured the manifest %s", want.name, manifests["linux/amd64"])
		}

		layout := readLayoutTar(t, filepath.Join(dir, want.name+".oci.tar"))
		var top ocispecs.Index
		if err := json.Unmarshal(layout["index.json"], &top); err != nil || len(top.Manifests) != 1 {
			t.Fatalf("%s: index.json %s (%v); want one entry", want.name, layout["index.json"], err)
		}
		idxDesc := top.Manifests[0]
		if idxDesc.MediaType != ocispecs.MediaTypeImageIndex || !strings.HasSuffix(idxDesc.Annotations[ocispecs.AnnotationRefName], want.name) &&
			!strings.Contains(idxDesc.Annotations["io.containerd.image.name"], want.name) {
			t.Errorf("%s: index.json lists %s named %v; want an image index under the recipe's name", want.name, idxDesc.MediaType, idxDesc.Annotations)
		}
		if m := md[want.name]; m.Digest != idxDesc.Digest.String() || m.Descriptor.MediaType != ocispecs.MediaTypeImageIndex {
			t.Errorf("%s: metadata %+v; want the index %s", want.name, m, idxDesc.Digest)
		}
		var idx ocispecs.Index
		if err := json.Unmarshal(layoutBlob(t, layout, idxDesc.Digest), &idx); err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, d := range idx.Manifests {
			if d.Platform == nil || d.Platform.OS == "unknown" {
				continue // an attestation, if any
			}
			plat := d.Platform.OS + "/" + d.Platform.Architecture
			plats = append(plats, plat)
			if d.Digest.String() != manifests[plat] {
				t.Errorf("%s: the index's %s manifest is %s, the %s row measured %s", want.name, plat, d.Digest, plat, manifests[plat])
			}
			var m ocispecs.Manifest
			if err := json.Unmarshal(layoutBlob(t, layout, d.Digest), &m); err != nil {
				t.Fatal(err)
			}
			var cfg ocispecs.Image
			if err := json.Unmarshal(layoutBlob(t, layout, m.Config.Digest), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.OS+"/"+cfg.Architecture != plat {
				t.Errorf("%s: the %s manifest's config is for %s/%s", want.name, plat, cfg.OS, cfg.Architecture)
			}
			machines := elfMachines(t, layout, m)
			wantMachine := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[plat]
			if len(machines) == 0 || slices.ContainsFunc(machines, func(em elf.Machine) bool { return em != wantMachine }) {
				t.Errorf("%s: the %s image's ELF files are for %v; want %v", want.name, plat, machines, wantMachine)
			}
		}
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: the index lists %v; want linux/amd64 then linux/arm64", want.name, plats)
		}
	}
}

// readLayoutTar reads an OCI layout tarball into memory, by entry name.
func readLayoutTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dt, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		out[h.Name] = dt
	}
}

// layoutBlob returns a blob of a layout read by readLayoutTar, checked against
// its digest.
func layoutBlob(t *testing.T, layout map[string][]byte, d digest.Digest) []byte {
	t.Helper()
	dt, ok := layout["blobs/"+d.Algorithm().String()+"/"+d.Encoded()]
	if !ok || digest.FromBytes(dt) != d {
		t.Fatalf("blob %s: missing or corrupt (%d bytes)", d, len(dt))
	}
	return dt
}

// elfMachines returns the machine (e_machine) of every ELF regular file
// in the image's layers.
func elfMachines(t *testing.T, layout map[string][]byte, m ocispecs.Manifest) []elf.Machine {
	t.Helper()
	var out []elf.Machine
	for _, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(layoutBlob(t, layout, l.Digest)))
		if err != nil {
			t.Fatalf("layer %s (%s): %v", l.Digest, l.MediaType, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			dt, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("layer %s: %s: %v", l.Digest, h.Name, err)
			}
			if ef, err := elf.NewFile(bytes.NewReader(dt)); err == nil {
				out = append(out, ef.Machine)
			}
		}
	}
	return out
}

// TestBakePlatforms: the generated bake file's targets build for
// PLATFORMS (none given: the builder's own), and follow PLATFORMS when it is set.
func TestBakePlatforms(t *testing.T) {
	bx := requireBuildx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range []struct {
		env  string
		want []string
	}{{"", nil}, {"linux/amd64,linux/arm64", []string{"linux/amd64", "linux/arm64"}}} {
		run := bx
		run.env = append(slices.Clip(bx.env), bake.PlatformsVariable+"="+c.env)
		stdout, stderr, err := run.run(t, ctx, "bake", "--print", bake.GroupStandIns)
		if err != nil {
			t.Fatalf("bake --print with %s=%q: %v\n%s", bake.PlatformsVariable, c.env, err, stderr)
		}
		var doc struct {
			Target map[string]struct {
				Platforms []string `json:"platforms"`
			} `json:"target"`
		}
		if err := json.Unmarshal(stdout, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Target) == 0 {
			t.Fatal("bake --print: no targets")
		}
		for name, tg := range doc.Target {
			if !slices.Equal(tg.Platforms, c.want) {
				t.Errorf("%s=%q: target %s platforms %v, want %v", bake.PlatformsVariable, c.env, name, tg.Platforms, c.want)
			}
		}
	}
}

// TestWorkersListARM64: with qemu registered, the private buildkitd's
// worker lists linux/arm64 among its platforms (buildctl debug workers),
// no Docker involved.
func TestWorkersListARM64(t *testing.T) {
	home := requireARM64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if code, _, stderr := minikit(t, ctx, "daemon", "start"); code != 0 {
		t.Fatalf("minikit daemon start: exit %d\n%s", code, stderr)
	}
	st, err := daemon.Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	buildctl, err := exec.LookPath("buildctl")
	if err != nil {
		t.Fatalf("buildctl (bin/buildctl, from scripts/setup): %v", err)
	}
	out, err := exec.CommandContext(ctx, buildctl, "--addr", st.Addr, "debug", "workers", "--format", "{{json .}}").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl debug workers: %v\n%s", err, out)
	}
	var workers []struct {
		Platforms []ocispecs.Platform `json:"platforms"`
	}
	if err := json.Unmarshal(out, &workers); err != nil {
		t.Fatalf("buildctl debug workers: %v\n%s", err, out)
	}
	if len(workers) == 0 {
		t.Fatal("no workers")
	}
	var plats []string
	for _, p := range workers[0].Platforms {
		plats = append(plats, p.OS+"/"+p.Architecture)
	}
	if !slices.Contains(plats, "linux/arm64") {
		t.Errorf("worker platforms %v: no linux/arm64 with qemu registered", plats)
	}
}
