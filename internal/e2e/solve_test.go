package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"

	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// TestSolveAllOnStandIns is the README's main command: every
// stand-in-reproducible row builds in parallel on the private daemon, the
// expected build failure fails with the missing-path error without
// affecting the others, and the rest are reported as skipped.
func TestSolveAllOnStandIns(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	out := t.TempDir()
	code, stdout, stderr := minikit(t, ctx, "solve", "--all", "--format", "json", "--progress", "plain",
		"--output", "image", "--output", "oci="+out)
	t.Logf("stderr (last 3000 bytes):\n%s", tail(stderr, 3000))
	if code != 0 {
		t.Fatalf("solve --all exited %d\n%s", code, stdout)
	}
	doc, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, stdout)
	}
	if !doc.StandIns {
		t.Error("the private daemon did not use the stand-ins")
	}
	cat := llbdefs.Catalog()
	if len(doc.Recipes) != len(cat) {
		t.Fatalf("%d rows, want %d", len(doc.Recipes), len(cat))
	}
	built := 0
	for _, row := range doc.Recipes {
		r, ok := llbdefs.Lookup(cat, row.Name)
		if !ok {
			t.Errorf("unknown row %s", row.Name)
			continue
		}
		switch {
		case !r.BuildsOffline():
			if row.Status != report.StatusSkipped || !strings.Contains(row.Error, r.Offline) {
				t.Errorf("%s: upstream only, want skipped with its reason %q; got %+v", r.Name, r.Offline, row)
			}
		case r.ExpectBuildFailure():
			if row.Status != report.StatusExpectedFailure || !strings.Contains(row.Error, "not found") || !strings.Contains(row.FailedVertex, "COPY") {
				t.Errorf("%s: want a failed COPY (not found); got %+v", r.Name, row)
			}
			if _, err := os.Stat(filepath.Join(out, r.Name+".oci.tar")); !os.IsNotExist(err) {
				t.Errorf("%s: a tarball was written for a failed build (%v)", r.Name, err)
			}
		default:
			built++
			if row.Status != report.StatusOK || row.Image == nil || !strings.HasPrefix(row.Image.ManifestDigest, "sha256:") || !row.StandIn {
				t.Errorf("%s: want ok, measured, on stand-ins; got %+v", r.Name, row)
				continue
			}
			checkOCITarball(t, filepath.Join(out, r.Name+".oci.tar"), row.Image.ManifestDigest)
			if row.ImageName != "docker.io/library/minikit:"+r.Name || len(row.StandInImages) == 0 {
				t.Errorf("%s: image name %q, stand-in images %v", r.Name, row.ImageName, row.StandInImages)
			}
			if want := map[bool]string{true: r.Offline}[r.StandIn == llbdefs.Partial]; row.StandInDiffers != want {
				t.Errorf("%s: stand_in_differs %q, want %q", r.Name, row.StandInDiffers, want)
			}
		}
	}
	if built < 25 {
		t.Errorf("only %d stand-in rows built", built)
	}
	leftovers, _ := filepath.Glob(filepath.Join(out, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left in the output directory: %v", leftovers)
	}
}

// checkOCITarball checks that a tarball is an OCI layout whose index
// names the manifest digest minikit reported.
func checkOCITarball(t *testing.T, path, digest string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var layout, index bool
	blob := "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
	var hasManifest bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		switch h.Name {
		case "oci-layout":
			layout = true
		case "index.json":
			index = true
		case blob:
			hasManifest = true
		}
	}
	if !layout || !index || !hasManifest {
		t.Errorf("%s: oci-layout %v, index.json %v, manifest %s %v", path, layout, index, digest, hasManifest)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Builds stay out of buildkitd's build history unless --history asks for
// them: count the history records that exported the recipe's image.
func TestBuildHistory(t *testing.T) {
	home := requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const name = "hello-c.gcc.scratch"
	solve := func(args ...string) {
		t.Helper()
		args = append([]string{"solve", "--progress", "quiet", "--sizes=false"}, append(args, name)...)
		if code, _, stderr := minikit(t, ctx, args...); code != 0 {
			t.Fatalf("minikit %v: exit %d\n%s", args, code, stderr)
		}
	}
	solve() // the daemon is up, the image built
	c, err := client.New(ctx, "unix://"+daemon.SocketPath(home))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	records := func() int {
		t.Helper()
		cl, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{EarlyExit: true})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			ev, err := cl.Recv()
			if errors.Is(err, io.EOF) {
				return n
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Record == nil {
				continue
			}
			for _, e := range ev.Record.Exporters {
				if strings.HasSuffix(e.Attrs["name"], "/minikit:"+name) || e.Attrs["name"] == "minikit:"+name {
					n++
				}
			}
		}
	}
	before := records()
	solve()
	if got := records(); got != before {
		t.Errorf("without --history: %d history records for %s, were %d", got, name, before)
	}
	solve("--history")
	if got := records(); got != before+1 {
		t.Errorf("with --history: %d history records for %s, want %d", got, name, before+1)
	}
}
