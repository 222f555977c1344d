package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/imagediff"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// requireDistroless skips (in CI: fails) when a distroless-style stand-in
// an extra runs on is not in home's layout: a layout built before it was
// added to the catalog lacks it until `minikit standins build` runs.
func requireDistroless(t *testing.T, home paths.Home) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(home.StandIns(), "index.json"))
	var missing []string
	for _, r := range llbdefs.Extras() {
		for _, img := range r.Images() {
			// The layout names a gcr.io image by its path on the mirror.
			if path, ok := strings.CutPrefix(img, "gcr.io/"); ok && !strings.Contains(string(data), `"`+path+`"`) && !slices.Contains(missing, path) {
				missing = append(missing, path)
			}
		}
	}
	if err == nil && len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("distroless-style stand-ins not built in %s (run minikit standins build): %v (%v)", home.StandIns(), missing, err)
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
	// Java and Python have no floor: ranked by size, no ratio, their
	// smallest image an extra that ran.
	for _, prog := range []string{"hello-java", "hello-py"} {
		rk, ok := ranked[prog]
		if !ok || len(rk.Entries) == 0 {
			t.Errorf("%s: not ranked", prog)
			continue
		}
		e := rk.Entries[0]
		t.Logf("%s: smallest %s, %d bytes uncompressed (%d of files)", prog, rk.Smallest, e.Uncompressed, e.FileBytes)
		if rk.FloorRecipe != "" || rk.FloorBytes != 0 || e.Ratio != 0 || !e.Extra || !e.Verified || rk.Smallest != e.Recipe {
			t.Errorf("%s: %+v", prog, rk)
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
	if c := fields["Base"]; c.A != "scratch" || c.B != "gcr.io/distroless/static-debian12:latest" {
		t.Errorf("base: %+v", d.Config)
	}
	// A recipe that cannot build: exit 1, saying so.
	code, _, stderr = minikit(t, ctx, "diff", "hello-go.golang.ubuntu-noworkdir.err", "hello-go.golang.ubuntu-workdir")
	if code != 1 || !strings.Contains(string(stderr), "hello-go.golang.ubuntu-noworkdir.err did not build") {
		t.Errorf("failing recipe: exit %d, %s", code, stderr)
	}
}

// Reproducible by default: with no --source-date-epoch and no
// $SOURCE_DATE_EPOCH, two cold solves on two fresh daemons give the same
// manifest digests for the C, Go and Rust floor recipes and their
// distroless-static variants (a run image with layers, which BuildKit must
// leave alone). Recipes whose final stage runs a toolchain are solved too
// and reported, reproducible or not, with what differs.
func TestReproducibleExtras(t *testing.T) {
	home := requireBuildEnv(t)
	if testing.Short() {
		t.Skip("two cold builds: not with -short")
	}
	requireDistroless(t, home)
	var must []string
	for _, prog := range []string{"hello-c", "hello-go", "hello-rust"} {
		name, _ := llbdefs.FloorRecipe(prog)
		must = append(must, name)
	}
	must = append(must, "hello-c.musl-static.distroless-static", "hello-go.golang-static.distroless-static")
	// Reported only: the final stage is the build stage, whose RUN steps
	// write files dated by the build's clock, and the compiler's
	// by-products (Go's build cache) stay in the image.
	reported := []string{"hello-go.golang", "hello-c.gcc"}
	names := append(slices.Clone(must), reported...)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	var digests [2]map[string]string
	var outDirs [2]string
	var envs [2][]string
	for i := range digests {
		fresh := t.TempDir()
		outDirs[i] = t.TempDir()
		// The stand-ins and buildkitd are shared, read-only; the daemon's
		// state (its cache) is new.
		for _, d := range []string{filepath.Base(home.StandIns()), filepath.Base(home.Bin())} {
			if _, err := os.Stat(filepath.Join(string(home), d)); err == nil {
				if err := os.Symlink(filepath.Join(string(home), d), filepath.Join(fresh, d)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// SOURCE_DATE_EPOCH empty: unset, the default chain applies.
		env := []string{"MINIKIT_HOME=" + fresh, fmt.Sprintf("MINIKIT_REGISTRY=127.0.0.1:%d", freePort(t)), "BUILDKIT_HOST=", "SOURCE_DATE_EPOCH="}
		if bin, err := filepath.Abs("../../bin"); err == nil { // scripts/setup's buildkitd
			env = append(env, "PATH="+os.Getenv("PATH")+string(os.PathListSeparator)+bin)
		}
		envs[i] = env
		t.Cleanup(func() { minikitEnv(t, context.Background(), env, "daemon", "stop") })
		args := append([]string{"solve", "--extras", "--output", "oci=" + outDirs[i], "--progress", "quiet", "--format", "json"}, names...)
		code, stdout, stderr := minikitEnv(t, ctx, env, args...)
		if code != 0 {
			t.Fatalf("cold solve %d: exit %d\n%s", i+1, code, stderr)
		}
		if !strings.Contains(string(stderr), "source date epoch ") || strings.Contains(string(stderr), "source date epoch off") {
			t.Fatalf("cold solve %d: no source date epoch by default:\n%s", i+1, stderr)
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
		if digests[0][n] == "" {
			t.Errorf("%s: no digest", n)
			continue
		}
		if digests[0][n] == digests[1][n] {
			t.Logf("reproducible:     %s %s", n, digests[0][n])
			continue
		}
		why := whyDifferent(t, filepath.Join(outDirs[0], n+".oci.tar"), filepath.Join(outDirs[1], n+".oci.tar"))
		if slices.Contains(must, n) {
			t.Errorf("NOT reproducible: %s: %s vs %s: %s", n, digests[0][n], digests[1][n], why)
		} else {
			t.Logf("NOT reproducible: %s: %s", n, why)
		}
	}
	// hello-c.gcc's final stage runs gcc, whose output is deterministic
	// but dated by the build's clock: --rewrite-timestamp clamps those
	// times at export, and the two daemons' builds (made cold above) then
	// export the same image.
	var rewritten [2]string
	for i, env := range envs {
		code, stdout, stderr := minikitEnv(t, ctx, env, "solve", "--rewrite-timestamp", "--progress", "quiet", "--format", "json", "hello-c.gcc")
		if code != 0 {
			t.Fatalf("solve %d with --rewrite-timestamp: exit %d\n%s", i+1, code, stderr)
		}
		rep, err := report.ReadJSON(strings.NewReader(string(stdout)))
		if err != nil || len(rep.Recipes) != 1 || rep.Recipes[0].Image == nil {
			t.Fatalf("solve %d with --rewrite-timestamp: %v\n%s", i+1, err, stdout)
		}
		rewritten[i] = rep.Recipes[0].Image.ManifestDigest
	}
	if rewritten[0] != rewritten[1] {
		t.Errorf("hello-c.gcc with --rewrite-timestamp: %s vs %s", rewritten[0], rewritten[1])
	} else {
		t.Logf("reproducible with --rewrite-timestamp: hello-c.gcc %s", rewritten[0])
	}
}

// whyDifferent says what differs between two builds of an image.
func whyDifferent(t *testing.T, a, b string) string {
	t.Helper()
	ia, err := imagediff.ReadOCIFile(a)
	if err != nil {
		return err.Error()
	}
	ib, err := imagediff.ReadOCIFile(b)
	if err != nil {
		return err.Error()
	}
	d := imagediff.Compare(ia, ib)
	// Where the differing paths are, by their first three elements
	// (/root/.cache/go-build), largest groups first.
	groups := map[string]int{}
	n := 0
	for _, cs := range [][]imagediff.Change{d.Changed, d.OnlyA, d.OnlyB} {
		for _, c := range cs {
			parts := strings.SplitN(strings.TrimPrefix(c.Path, "/"), "/", 4)
			groups["/"+strings.Join(parts[:min(len(parts), 3)], "/")]++
			n++
		}
	}
	if n > 0 {
		var where []string
		for g, k := range groups {
			where = append(where, fmt.Sprintf("%s (%d)", g, k))
		}
		slices.SortFunc(where, func(a, b string) int { return strings.Compare(a, b) })
		return fmt.Sprintf("%d path(s) differ in content, mode or presence: %s", n, strings.Join(where, ", "))
	}
	ca, cb := ia.Config.Created, ib.Config.Created
	if (ca == nil) != (cb == nil) || ca != nil && !ca.Equal(*cb) || len(ia.Config.History) != len(ib.Config.History) {
		return fmt.Sprintf("same files; config created %v vs %v, %d vs %d history entries", ca, cb, len(ia.Config.History), len(ib.Config.History))
	}
	return "same files, contents and config: layer metadata differs (file times not clamped, owners, or entry order)"
}
