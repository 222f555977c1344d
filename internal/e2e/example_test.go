package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// TestLibraryExample builds and runs examples/hello, a program that uses
// package runner alone to build a C program that is not one of the
// samples, against the private daemon (on the stand-ins): the image is
// built on scratch, exported under the example's own name, measured, and
// its run passes its output check.
func TestLibraryExample(t *testing.T) {
	home := requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Setenv("BUILDKIT_HOST", "")
	conn, err := connect.Open(ctx, connect.Options{Home: home, Self: minikitBin})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/minikit/minikit/examples/hello")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-addr", conn.Addr, "-json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var res runner.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("the example's result: %v\n%s", err, stdout.String())
	}
	t.Logf("%s: %s, image %s, run %+v", res.Name, res.Status, res.ImageName, res.Run)
	if res.Status != runner.StatusOK || res.ImageName != "docker.io/library/runner-example:liftoff.static.scratch" ||
		!strings.HasPrefix(res.ImageDigest, "sha256:") {
		t.Errorf("build: %s %q %q: %s", res.Status, res.ImageName, res.ImageDigest, res.Error)
	}
	// A static binary alone: one layer, well under a megabyte.
	if res.Image == nil || len(res.Image.Layers) != 1 || res.Image.Uncompressed <= 0 || res.Image.Uncompressed > 2_000_000 {
		t.Errorf("image %+v", res.Image)
	}
	if o := res.Run; o == nil || !o.Matches || o.ExitCode != 0 || o.Network != "none" ||
		!strings.Contains(strings.Join(o.StdoutTail, "\n"), "3... 2... 1... liftoff") || !strings.Contains(o.Expected, "liftoff") {
		t.Errorf("run %+v", o)
	}
	// The gcc image is a stand-in here: its label says so.
	if len(res.Bases) != 1 || !strings.Contains(res.Bases[0].Ref, "gcc") || len(report.StandInImages(res.Bases)) != 1 {
		t.Errorf("bases %+v", res.Bases)
	}

	// Without -json: one line, exit 0.
	out, err := exec.CommandContext(ctx, bin, "-addr", conn.Addr).Output()
	if err != nil || !strings.Contains(string(out), "liftoff.static.scratch: ok") || !strings.Contains(string(out), "(passed)") {
		t.Errorf("the example, text: %v\n%s", err, out)
	}
	// Bad usage: exit 2.
	if err := exec.CommandContext(ctx, bin, "-addr", "").Run(); err == nil || err.(*exec.ExitError).ExitCode() != 2 {
		t.Errorf("no address: %v, want exit 2", err)
	}
}
