package standin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/minikit/minikit/internal/pyindex"
)

// The python stand-ins: Debian's Python 3.11 with pip, whose pip finds
// minikit's package index (see internal/pyindex) through /etc/pip.conf.
const (
	pythonSlimName = "library/python:3.11-slim-bookworm"
	pythonFullName = "library/python:3.11-bookworm"
	// pipConfPath is pip's site-wide configuration file.
	pipConfPath = "etc/pip.conf"
	// externallyManaged is the PEP 668 marker Debian's Python ships and
	// the official python images do not have.
	externallyManaged = "usr/lib/python3.11/EXTERNALLY-MANAGED"
	pipConfFrom       = "/etc/pip.conf sets index-url to minikit's package index (label " + LabelPipIndex + "), wheels repackaged from Debian bookworm's python3-* packages"
)

// pythonSlimSpec is python:3.11-slim-bookworm: as slim as Debian allows
// (Python, pip, CA certificates; no compiler).
func pythonSlimSpec(debianEnv []string) Spec {
	pkgs := []string{"python3", "python-is-python3", "python3-pip", "ca-certificates"}
	return Spec{
		Name:     pythonSlimName,
		Parent:   "library/debian:bookworm",
		Version:  "1",
		From:     "library/debian:bookworm stand-in (debootstrap bookworm minbase) + apt-get install --no-install-recommends " + strings.Join(pkgs, " ") + " (Debian's Python 3.11 and pip 23, no compiler); EXTERNALLY-MANAGED removed; " + pipConfFrom,
		Packages: pkgs,
		Env:      append([]string{"LANG=C.UTF-8"}, debianEnv...),
		Cmd:      []string{"python3"},
		recipe:   recipeApt,
		pip:      true,
	}
}

// pythonFullSpec is python:3.11-bookworm: the slim stand-in plus what
// the full image has for building extensions (a C compiler, Python's
// headers).
func pythonFullSpec(debianEnv []string) Spec {
	pkgs := []string{"gcc", "libc6-dev", "python3-dev"}
	return Spec{
		Name:     pythonFullName,
		Parent:   pythonSlimName,
		Version:  "2",
		From:     pythonSlimName + " stand-in (Debian's Python 3.11 and pip, no EXTERNALLY-MANAGED) + apt-get install --no-install-recommends " + strings.Join(pkgs, " ") + " (a C compiler and Python's headers, as the full image has); " + pipConfFrom,
		Packages: pkgs,
		Env:      append([]string{"LANG=C.UTF-8"}, debianEnv...),
		Cmd:      []string{"python3"},
		recipe:   recipeApt,
		pip:      true,
	}
}

// pipConf is /etc/pip.conf for the index at indexURL.
func pipConf(indexURL string) string {
	return "# minikit stand-in: pip installs from minikit's package index\n[global]\nindex-url = " + indexURL + "\n"
}

// pipFiles makes the apt layer upper (over lower) a pip stand-in's: no
// EXTERNALLY-MANAGED marker, /etc/pip.conf naming minikit's index.
func (b *builder) pipFiles(upper, lower string) error {
	if b.indexURL == "" {
		return errors.New("python stand-in: no package index address (standin.IndexAddr)")
	}
	if _, err := os.Lstat(filepath.Join(lower, externallyManaged)); err == nil {
		return fmt.Errorf("python stand-in: the parent has %s, which this layer cannot remove", externallyManaged)
	}
	if err := os.Remove(filepath.Join(upper, externallyManaged)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("python stand-in: %w", err)
	}
	return writeFile(filepath.Join(upper, pipConfPath), pipConf(b.indexURL), 0o644)
}

// PyIndexDir is the directory of the package index built beside the
// stand-in layout layoutDir, and served with it.
func PyIndexDir(layoutDir string) string { return layoutDir + ".pyindex" }

// hasCurrentIndex says whether img, if spec is a pip stand-in, names the
// package index this build is for.
func (b *builder) hasCurrentIndex(img v1.Image, spec Spec) bool {
	if !spec.pip {
		return true
	}
	cf, err := img.ConfigFile()
	return err == nil && cf.Config.Labels[LabelPipIndex] == b.indexURL
}

// buildIndex builds the package index beside the layout, with wheels for
// the python slim stand-in, when this build has that stand-in.
func (b *builder) buildIndex(ctx context.Context, layoutDir string) error {
	slim := b.images[key{pythonSlimName, LinuxAMD64}]
	if slim == nil {
		return nil
	}
	d, err := slim.Digest()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(b.tmp, "pyindex-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	dir := PyIndexDir(layoutDir)
	return b.prog.step(ctx, "package index "+dir, func(ctx context.Context) error {
		projects, err := pyindex.Build(ctx, dir, pyindex.Config{
			Roots: pyindex.Roots,
			Base: pyindex.Base{
				ID:     d.String(),
				Rootfs: func(ctx context.Context) (string, error) { return b.rootfsFor(ctx, key{pythonSlimName, LinuxAMD64}) },
			},
			Fetch:   b.fetchDebs,
			Scratch: scratch,
			Log:     b.prog.printf,
		})
		if err != nil {
			return err
		}
		var size int64
		made := 0
		for _, p := range projects {
			size += p.Size
			if p.Rebuilt {
				made++
			}
		}
		b.prog.printf("package index: %d wheels (%d made now), %d bytes", len(projects), made, size)
		return nil
	})
}
