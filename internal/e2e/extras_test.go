package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/imagediff"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// requireDistroless skips (in CI: fails) when the distroless-style
// stand-ins are not in home's layout: a layout built before they were
// added to the catalog lacks them until `minikit standins build` runs.
func requireDistroless(t *testing.T, home paths.Home) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(home.StandIns(), "index.json"))
	if err == nil && strings.Contains(string(data), "minikit/distroless-cc:debian12") {
		return
	}
	msg := "the distroless-style stand-ins are not built in " + home.StandIns() + " (run minikit standins build)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// The extra recipes build and run as expected on the stand-ins, and the
// ranking compares every program with its floor.
func TestExtrasSolveAndRank(t *testing.T) {
	home := requireBuildEnv(t)
	requireDistroless(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	code, stdout, stderr := minikit(t, ctx, "solve", "--extras", "--test", "--progress", "quiet", "--format", "json")
	if code != 0 {
		t.Fatalf("solve --extras --test: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rep, err := report.ReadJSON(strings.NewReader(string(stdout)))
	if err != nil {
		t.Fatal(err)
	}
	extras := llbdefs.Extras()
	if len(rep.Recipes) != len(extras) {
		t.Fatalf("%d recipes in the report, want the %d extras", len(rep.Recipes), len(extras))
	}
	for _, r := range rep.Recipes {
		if !r.Extra || r.Status != report.StatusOK || r.Run == nil || !r.Run.Expected || r.Image == nil {
			t.Errorf("%s: extra=%v status=%s run=%+v", r.Name, r.Extra, r.Status, r.Run)
		}
	}
	ranked := map[string]report.Ranking{}
	for _, rk := range rep.Ranking {
		ranked[rk.Program] = rk
	}
	for prog, floor := range llbdefs.Floors() {
		rk, ok := ranked[prog]
		if !ok {
			t.Errorf("%s: not ranked", prog)
			continue
		}
		e, _ := rk.Entry(floor)
		t.Logf("%s: floor %s = %d bytes; smallest %s, %d bytes, %.3fx (files %.3fx)",
			prog, floor, rk.FloorBytes, rk.Smallest, e.Uncompressed, e.Ratio, e.FileRatio)
		if rk.FloorRecipe != floor || rk.FloorBytes <= 0 || rk.Smallest != floor {
			t.Errorf("%s: floor %s (%d bytes), smallest %s", prog, rk.FloorRecipe, rk.FloorBytes, rk.Smallest)
		}
		// The floor image is its executable (and for whatsmyip the CA
		// bundle): its files weigh the floor, plus at most the bundle.
		if e.FileRatio < 1 || e.FileRatio > 1.1 || !e.Verified {
			t.Errorf("%s: the floor image's files are %.3fx the floor", prog, e.FileRatio)
		}
	}
	if c := ranked["hello-c"]; c.FloorBytes >= 20_000 {
		t.Errorf("hello-c: musl static executable is %d bytes, want < 20 kB", c.FloorBytes)
	}
}

// minikit diff compares two recipes' files and configs.
func TestDiff(t *testing.T) {
	home := requireBuildEnv(t)
	requireDistroless(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	code, _, stderr := minikit(t, ctx, "diff", "hello-c.musl-static.scrach", "hello-c.gcc")
	if code != 2 || !strings.Contains(string(stderr), "did you mean hello-c.musl-static.scratch") {
		t.Errorf("unknown name: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := minikit(t, ctx, "diff", "--format", "json", "hello-c.musl-static.scratch", "hello-c.musl-static.distroless-static")
	if code != 0 {
		t.Fatalf("diff: exit %d\n%s", code, stderr)
	}
	var d imagediff.Diff
	if err := json.Unmarshal(stdout, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.OnlyA) != 0 || len(d.Changed) != 0 || d.OnlyBBytes < 100_000 {
		t.Errorf("only in a %d, changed %d, only in b %d bytes", len(d.OnlyA), len(d.Changed), d.OnlyBBytes)
	}
	found := false
	for _, c := range d.OnlyB {
		found = found || c.Path == "/etc/ssl/certs/ca-certificates.crt"
	}
	if !found {
		t.Error("the distroless CA bundle is not listed as only in b")
	}
	fields := map[string]imagediff.ConfigChange{}
	for _, c := range d.Config {
		fields[c.Field] = c
	}
	if c := fields["Base"]; c.A != "scratch" || c.B != "minikit/distroless-static:debian12" {
		t.Errorf("base: %+v", d.Config)
	}
	// A recipe that cannot build: exit 1, saying so.
	code, _, stderr = minikit(t, ctx, "diff", "hello-go.golang.ubuntu-noworkdir.err", "hello-go.golang.ubuntu-workdir")
	if code != 1 || !strings.Contains(string(stderr), "hello-go.golang.ubuntu-noworkdir.err did not build") {
		t.Errorf("failing recipe: exit %d, %s", code, stderr)
	}
}

// Two cold solves of the C, Go and Rust floors, each on a fresh private
// daemon (its own home, state and registry), with the same
// --source-date-epoch, give the same manifest digests.
func TestReproducibleExtras(t *testing.T) {
	home := requireBuildEnv(t)
	if testing.Short() {
		t.Skip("two cold builds: not with -short")
	}
	var names []string
	for _, prog := range []string{"hello-c", "hello-go", "hello-rust"} {
		name, _ := llbdefs.FloorRecipe(prog)
		names = append(names, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	var digests [2]map[string]string
	for i := range digests {
		fresh := t.TempDir()
		// The stand-ins and buildkitd are shared, read-only; the daemon's
		// state (its cache) is new.
		for _, d := range []string{filepath.Base(home.StandIns()), filepath.Base(home.Bin())} {
			if _, err := os.Stat(filepath.Join(string(home), d)); err == nil {
				if err := os.Symlink(filepath.Join(string(home), d), filepath.Join(fresh, d)); err != nil {
					t.Fatal(err)
				}
			}
		}
		env := []string{"MINIKIT_HOME=" + fresh, fmt.Sprintf("MINIKIT_REGISTRY=127.0.0.1:%d", freePort(t)), "BUILDKIT_HOST="}
		if bin, err := filepath.Abs("../../bin"); err == nil { // scripts/setup's buildkitd
			env = append(env, "PATH="+os.Getenv("PATH")+string(os.PathListSeparator)+bin)
		}
		t.Cleanup(func() { minikitEnv(t, context.Background(), env, "daemon", "stop") })
		args := append([]string{"solve", "--extras", "--source-date-epoch", "1700000000", "--progress", "quiet", "--format", "json"}, names...)
		code, stdout, stderr := minikitEnv(t, ctx, env, args...)
		if code != 0 {
			t.Fatalf("cold solve %d: exit %d\n%s", i+1, code, stderr)
		}
		rep, err := report.ReadJSON(strings.NewReader(string(stdout)))
		if err != nil {
			t.Fatal(err)
		}
		digests[i] = map[string]string{}
		for _, r := range rep.Recipes {
			if r.Image == nil || r.CachedVertices == r.Vertices {
				t.Fatalf("solve %d, %s: not built cold (%d of %d steps cached)", i+1, r.Name, r.CachedVertices, r.Vertices)
			}
			digests[i][r.Name] = r.Image.ManifestDigest
		}
	}
	for _, n := range names {
		t.Logf("%s: %s, %s", n, digests[0][n], digests[1][n])
		if digests[0][n] == "" || digests[0][n] != digests[1][n] {
			t.Errorf("%s: two cold builds differ: %s vs %s", n, digests[0][n], digests[1][n])
		}
	}
}

// minikitEnv runs the binary with extra environment variables.
func minikitEnv(t *testing.T, ctx context.Context, env []string, args ...string) (code int, stdout, stderr []byte) {
	t.Helper()
	cmd := exec.CommandContext(ctx, minikitBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	t.Logf("%v minikit %v: %s", env, args, time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.Bytes(), errb.Bytes()
	case err != nil:
		t.Fatalf("minikit %v: %v", args, err)
	}
	return 0, out.Bytes(), errb.Bytes()
}
