package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/bake"
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

// builder's own), and follow PLATFORMS when it is set.
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
