package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
)

// inspectJSON runs minikit inspect --format json (with extra environment)
// and returns its one row's image.
func inspectJSON(t *testing.T, ctx context.Context, env []string, args ...string) *measure.Image {
	t.Helper()
	code, stdout, stderr := minikitEnv(t, ctx, env, append([]string{"inspect", "--format", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("inspect %v exited %d\n%s\n%s", args, code, stdout, tail(stderr, 3000))
	}
	doc, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatalf("inspect --format json: %v\n%s", err, stdout)
	}
	if len(doc.Recipes) != 1 || doc.Recipes[0].Status != report.StatusOK || doc.Recipes[0].Image == nil {
		t.Fatalf("inspect %v: want one measured image, got %+v", args, doc.Recipes)
	}
	return doc.Recipes[0].Image
}

// sameFiles checks that two measurements of one image's layers agree on
// everything the layers' content decides: diff IDs, uncompressed sizes,
// files, wasted bytes, dive's figures. (Blobs, compressed sizes and the
// manifest depend on how the image was packaged.)
func sameFiles(t *testing.T, what string, got, want *measure.Image) {
	t.Helper()
	type content struct {
		DiffIDs                  []string
		Uncompressed, DockerSize int64
		Files                    int
		FileBytes, WastedBytes   int64
		WastedFiles              int
		Largest, Wasted          []measure.File
		DiveWasted               int64
		DiveEfficiency, DiveUser float64
	}
	of := func(img *measure.Image) content {
		c := content{Uncompressed: img.Uncompressed, DockerSize: img.DockerSize, Files: img.Files, FileBytes: img.FileBytes,
			WastedBytes: img.WastedBytes, WastedFiles: img.WastedFiles, Largest: img.Largest, Wasted: img.Wasted,
			DiveWasted: img.DiveWastedBytes, DiveEfficiency: img.DiveEfficiency, DiveUser: img.DiveUserWastedRatio}
		for _, l := range img.Layers {
			c.DiffIDs = append(c.DiffIDs, l.DiffID)
		}
		return c
	}
	a, _ := json.Marshal(of(got))
	b, _ := json.Marshal(of(want))
	if !bytes.Equal(a, b) {
		t.Errorf("%s:\n got %s\nwant %s", what, a, b)
	}
}

// TestInspect measures, with minikit inspect, images a solve exported
// (an OCI and a docker tarball), the same image after docker load and
// docker save, and an image in a registry that requires credentials, and
// compares with what solve measured and with what dive says.
func TestInspect(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const recipe = "hello-c.gcc-static.alpine" // two layers: alpine and the program
	out := t.TempDir()
	code, stdout, stderr := minikit(t, ctx, "solve", recipe, "hello-go.golang", "--format", "json", "--progress", "plain",
		"--output", "image", "--output", "oci="+out, "--output", "docker="+out)
	if code != 0 {
		t.Fatalf("solve exited %d\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	doc, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	solved := map[string]*measure.Image{}
	for _, r := range doc.Recipes {
		if r.Image == nil {
			t.Fatalf("%s was not measured: %+v", r.Name, r)
		}
		solved[r.Name] = r.Image
	}

	t.Run("tarballs", func(t *testing.T) {
		for _, name := range []string{recipe, "hello-go.golang"} {
			oci := inspectJSON(t, ctx, nil, filepath.Join(out, name+".oci.tar"))
			if a, b := mustJSON(t, oci), mustJSON(t, solved[name]); a != b {
				t.Errorf("%s: inspect of the OCI tarball differs from solve's measurement:\n%s\n%s", name, a, b)
			}
			docker := inspectJSON(t, ctx, nil, filepath.Join(out, name+".docker.tar"))
			sameFiles(t, name+": the docker tarball", docker, solved[name])
			// Warm: every layer from the layer cache, the same result.
			again := inspectJSON(t, ctx, nil, filepath.Join(out, name+".docker.tar"))
			if a, b := mustJSON(t, again), mustJSON(t, docker); a != b {
				t.Errorf("%s: a second inspect (layer cache warm) differs:\n%s\n%s", name, a, b)
			}
			t.Logf("%s: wasted_bytes %d, dive_wasted_bytes %d, dive_efficiency %.6f",
				name, docker.WastedBytes, docker.DiveWastedBytes, docker.DiveEfficiency)
		}
	})

	t.Run("dive", func(t *testing.T) {
		dive := lookDive(t)
		for _, name := range []string{recipe, "hello-go.golang"} {
			tarball := filepath.Join(out, name+".docker.tar")
			rep := runDive(t, ctx, dive, tarball)
			img := solved[name]
			if uint64(img.DiveWastedBytes) != rep.Image.InefficientBytes || img.DiveEfficiency != rep.Image.EfficiencyScore {
				t.Errorf("%s: dive_wasted_bytes %d, dive_efficiency %v; dive says %d, %v",
					name, img.DiveWastedBytes, img.DiveEfficiency, rep.Image.InefficientBytes, rep.Image.EfficiencyScore)
			}
			t.Logf("%s (stand-ins): dive wastedBytes %d, efficiency %.4f %%; minikit wasted_bytes %d",
				name, rep.Image.InefficientBytes, rep.Image.EfficiencyScore*100, img.WastedBytes)
		}
	})

	t.Run("docker save", func(t *testing.T) {
		requireDockerEngine(t)
		data, err := os.ReadFile(filepath.Join(out, recipe+".docker.tar"))
		if err != nil {
			t.Fatal(err)
		}
		code, o, e, err := dockerCLI(ctx, data, "load")
		if err != nil || code != 0 {
			t.Fatalf("docker load: %d %v\n%s%s", code, err, o, e)
		}
		tag := "docker.io/library/minikit:" + recipe
		t.Cleanup(func() { _, _, _, _ = dockerCLI(context.Background(), nil, "rmi", "--no-prune", tag) })
		saved := filepath.Join(t.TempDir(), "saved.tar")
		if code, o, e, err := dockerCLI(ctx, nil, "save", "-o", saved, tag); err != nil || code != 0 {
			t.Fatalf("docker save: %d %v\n%s%s", code, err, o, e)
		}
		img := inspectJSON(t, ctx, nil, saved)
		sameFiles(t, "docker save of the loaded image", img, solved[recipe])
	})

	t.Run("registry with credentials", func(t *testing.T) {
		const user, pass = "minikit", "s3cret"
		reg := httptest.NewServer(basicAuth(user, pass, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
		defer reg.Close()
		host := strings.TrimPrefix(reg.URL, "http://")
		ref, err := name.ParseReference(host+"/minikit/inspect:1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		l, err := layout.ImageIndexFromPath(unpackOCI(t, filepath.Join(out, recipe+".oci.tar")))
		if err != nil {
			t.Fatal(err)
		}
		im, err := l.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		img, err := l.Image(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		cfgDir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		// Without the credentials: refused.
		code, stdout, stderr := minikitEnv(t, ctx, []string{"DOCKER_CONFIG=" + t.TempDir()}, "inspect", "--format", "json", ref.String())
		if code == 0 || !strings.Contains(string(stderr)+string(stdout), "401") && !strings.Contains(strings.ToLower(string(stderr)), "unauthorized") {
			t.Errorf("inspect without credentials: exit %d\n%s\n%s", code, stdout, tail(stderr, 2000))
		}
		got := inspectJSON(t, ctx, []string{"DOCKER_CONFIG=" + cfgDir}, ref.String())
		if a, b := mustJSON(t, got), mustJSON(t, solved[recipe]); a != b {
			t.Errorf("inspect of the pushed image differs from solve's measurement:\n%s\n%s", a, b)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// basicAuth lets through requests with the user and password only.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="minikit test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// unpackOCI extracts an OCI layout tarball into a directory.
func unpackOCI(t *testing.T, tarball string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", tarball, err, out)
	}
	return dir
}

// lookDive finds dive ($DIVE, else on PATH): skipped outside CI when
// absent, a failure in CI, where scripts/setup installs it.
func lookDive(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DIVE"); p != "" {
		return p
	}
	p, err := exec.LookPath("dive")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("dive is not installed (scripts/setup installs it): %v", err)
	}
	t.Skip("dive is not installed (go install github.com/wagoodman/dive@v0.13.1, or set DIVE): not comparing with dive")
	return ""
}

type diveReport struct {
	Image struct {
		InefficientBytes uint64  `json:"inefficientBytes"`
		EfficiencyScore  float64 `json:"efficiencyScore"`
	} `json:"image"`
}

func runDive(t *testing.T, ctx context.Context, dive, archive string) diveReport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dive.json")
	cmd := exec.CommandContext(ctx, dive, "--json", out, "docker-archive://"+archive)
	cmd.Dir = t.TempDir()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dive %s: %v\n%s", archive, err, tail(b, 2000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep diveReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("dive's JSON: %v", err)
	}
	return rep
}

// TestInspectTest: inspect --test runs an image it did not build inside
// BuildKit: a docker tarball of a static program works (exit 0), one of
// the dynamic program on scratch fails (exit 1) with diagnose's reason,
// the missing loader; the OCI layout directory of the static one, run
// with an executable it lacks after --, fails naming it.
func TestInspectTest(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const works, fails = "hello-c.gcc-static.scratch", "hello-c.gcc.scratch"
	out := t.TempDir()
	code, stdout, stderr := minikit(t, ctx, "solve", works, fails, "--progress", "quiet", "--output", "docker="+out, "--output", "oci="+out)
	if code != 0 {
		t.Fatalf("solve exited %d\n%s\n%s", code, stdout, tail(stderr, 3000))
	}
	inspect := func(args ...string) (int, *report.Recipe, string) {
		t.Helper()
		code, stdout, stderr := minikit(t, ctx, append([]string{"inspect", "--test", "--format", "json"}, args...)...)
		doc, err := report.ReadJSON(bytes.NewReader(stdout))
		if err != nil || len(doc.Recipes) != 1 {
			t.Fatalf("inspect --test %v: exit %d, %v\n%s\n%s", args, code, err, stdout, tail(stderr, 3000))
		}
		return code, &doc.Recipes[0], string(stderr)
	}

	code, row, errs := inspect(filepath.Join(out, works+".docker.tar"))
	if code != 0 || row.Run == nil || !row.Run.Expected || row.Run.ExitCode != 0 || !strings.Contains(errs, "works (exit 0)") {
		t.Errorf("%s: exit %d, run %+v, want it to work\n%s", works, code, row.Run, tail([]byte(errs), 2000))
	}
	code, row, errs = inspect(filepath.Join(out, fails+".docker.tar"))
	if code != 1 || row.Run == nil || row.Run.Expected || row.Run.ExitCode != 127 || !strings.Contains(row.Run.Reason, "loader") ||
		!strings.Contains(errs, row.Run.Reason) {
		t.Errorf("%s: exit %d, run %+v, want exit 1 and the missing loader\n%s", fails, code, row.Run, tail([]byte(errs), 2000))
	}
	dir := unpackOCI(t, filepath.Join(out, works+".oci.tar"))
	code, row, errs = inspect(dir, "--", "/no/such/program")
	if code != 1 || row.Run == nil || row.Run.ExitCode != 127 || !strings.Contains(row.Run.Reason, "/no/such/program") {
		t.Errorf("the layout directory with -- /no/such/program: exit %d, run %+v\n%s", code, row.Run, tail([]byte(errs), 2000))
	}
}
