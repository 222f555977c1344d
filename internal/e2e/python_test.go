package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestPythonWheelsLoadInSlim builds the pip rows on python:slim and runs
// Python in their images: the extension modules of the wheels minikit's
// package index repackaged from Debian load there, with the shared
// libraries the slim image lacks (libyaml for PyYAML's C loader, BLAS,
// LAPACK and gfortran for numpy, freetype for matplotlib) found in the
// wheels themselves, not in the image's system directories.
func TestPythonWheelsLoadInSlim(t *testing.T) {
	requireBuildEnv(t)
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Fatal("no chroot on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	out := t.TempDir()
	rows := []string{"pyyaml.python-slim", "pyds.python-slim"}
	code, _, stderr := minikit(t, ctx, append([]string{"solve", "--progress", "quiet", "--output", "oci=" + out}, rows...)...)
	if code != 0 {
		t.Fatalf("minikit solve %v exited %d:\n%s", rows, code, tail(stderr, 4000))
	}
	checks := []struct {
		row, script, want string
		vendored          []string // sonames that must come from the wheels
	}{
		{
			row:      "pyyaml.python-slim",
			script:   `import yaml; print(yaml.__with_libyaml__, yaml.CLoader.__module__, yaml.load("a: [1, 2]", Loader=yaml.CLoader))`,
			want:     "True yaml.cyaml {'a': [1, 2]}",
			vendored: []string{"libyaml-0.so.2"},
		},
		{
			row: "pyds.python-slim",
			script: `import numpy, matplotlib.ft2font, pandas; ` +
				`print(numpy.dot([[1, 2], [3, 4]], [[5, 6], [7, 8]]).tolist(), round(float(numpy.linalg.det([[1.0, 2.0], [3.0, 4.0]])), 6), ` +
				`pandas.Series([1, 2, 3]).sum())`,
			want:     "[[19, 22], [43, 50]] -2.0 6",
			vendored: []string{"libblas.so.3", "liblapack.so.3", "libgfortran.so.5", "libfreetype.so.6"},
		},
	}
	for _, c := range checks {
		root := unpackImage(t, readOCITar(t, filepath.Join(out, c.row+".oci.tar")))
		for _, lib := range c.vendored {
			for _, dir := range []string{"usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"} {
				if _, err := os.Lstat(filepath.Join(root, dir, lib)); err == nil {
					t.Errorf("%s: %s is in /%s: the image has it, so this test cannot tell whether the wheel's copy loads", c.row, lib, dir)
				}
			}
			found, err := filepath.Glob(filepath.Join(root, "usr/local/lib/python3*/dist-packages/*.libs", lib))
			if err != nil || len(found) == 0 {
				t.Errorf("%s: no wheel-vendored %s under /usr/local/lib/python3*/dist-packages/*.libs", c.row, lib)
			}
		}
		cmd := exec.CommandContext(ctx, "chroot", root, "/usr/bin/env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/root",
			"python3", "-c", c.script)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: python3 -c %q: %v\n%s", c.row, c.script, err, got)
			continue
		}
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s: python3 -c %q printed %q, want %q", c.row, c.script, got, c.want)
		}
	}
}

// unpackImage writes img's filesystem (its layers flattened) into a new
// directory and returns it.
func unpackImage(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean("/" + h.Name)
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			err = os.Link(filepath.Join(root, filepath.Clean("/"+h.Linkname)), p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	}
	return root
}
