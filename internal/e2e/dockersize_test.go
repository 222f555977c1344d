package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// The docker_size minikit reports is, to the byte, the Size Docker shows
// for the image once `docker load` has read minikit's docker tarball:
// several images, among them stand-ins whose layers shadow files of their
// parents' (hello-go.golang's golang on gcc on debian), with symbolic links
// (Debian's /bin, /lib... and busybox's applets).
func TestDockerSizeMatchesDocker(t *testing.T) {
	requireBuildEnv(t)
	requireDockerEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	names := []string{"hello-go.golang", "hello-rust.rust.debian", "whatsmyip.golang.busybox-glibc", "hello-c.gcc-static.scratch"}
	out := t.TempDir()
	code, stdout, stderr := minikit(t, ctx, append([]string{"solve", "--format", "json", "--progress", "quiet", "--output", "docker=" + out}, names...)...)
	if code != 0 {
		t.Fatalf("solve --output docker: exit %d\n%s", code, tail(stderr, 3000))
	}
	doc, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, stdout)
	}
	shadowed := false
	for _, row := range doc.Recipes {
		if row.Image == nil {
			t.Errorf("%s: not measured: %s", row.Name, row.Error)
			continue
		}
		shadowed = shadowed || row.Image.WastedFiles > 0
		if c, o, e, err := dockerCLI(ctx, nil, "load", "-i", filepath.Join(out, row.Name+".docker.tar")); c != 0 || err != nil {
			t.Errorf("%s: docker load: %d %v %s %s", row.Name, c, err, o, e)
			continue
		}
		image := runner.ImageNames(llbdefs.ImageNameTemplate).Expand(row.Name, "")
		t.Cleanup(func() { _, _, _, _ = dockerCLI(context.Background(), nil, "rmi", "-f", image) })
		c, o, e, err := dockerCLI(ctx, nil, "image", "inspect", "--format", "{{.Size}}", image)
		if c != 0 || err != nil {
			t.Errorf("%s: docker image inspect: %d %v %s", row.Name, c, err, e)
			continue
		}
		size, err := strconv.ParseInt(strings.TrimSpace(o), 10, 64)
		if err != nil {
			t.Errorf("%s: docker image inspect printed %q", row.Name, o)
			continue
		}
		t.Logf("%-34s docker %12d  minikit docker_size %12d  uncompressed %12d  file_bytes %12d", row.Name, size, row.Image.DockerSize, row.Image.Uncompressed, row.Image.FileBytes)
		if size != row.Image.DockerSize {
			t.Errorf("%s: docker image inspect says %d bytes, minikit's docker_size %d (off by %d)", row.Name, size, row.Image.DockerSize, row.Image.DockerSize-size)
		}
	}
	if !shadowed {
		t.Error("no image with shadowed file versions among those compared")
	}
}
