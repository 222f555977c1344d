// Package pyindex repackages Debian's builds of Python projects as wheels
// and serves them as a Python package index (the simple repository API,
// PEP 503), so that `pip install` works offline on minikit's python
// stand-ins.
//
// A wheel holds what a python3-* package installs under
// /usr/lib/python3/dist-packages, with that package's own metadata (an
// egg-info directory becomes a .dist-info one), a RECORD and a WHEEL
// file. Its Requires-Dist is kept, so pip resolves the dependency closure
// itself. The shared libraries its extension modules need that the image
// the wheels are for lacks are copied into the wheel (<dist>.libs/) and
// found through an $ORIGIN-relative RPATH set with patchelf, as
// auditwheel makes manylinux wheels.
package pyindex

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/internal/paths"
)

// Version identifies how wheels are made: bump it when that changes, so
// that wheels in an existing index are made again.
const Version = "1"

// manifestFile lists the index's projects, in the index directory.
const manifestFile = "index.json"

// wheelDir holds the wheel files, in the index directory.
const wheelDir = "files"

// Roots are the projects minikit's recipes pip install: the index holds
// them and everything they require.
var Roots = []string{"pyyaml", "numpy", "pandas", "matplotlib"}

// project says how a Python project is made from Debian packages.
type project struct {
	// debs: the package whose dist-packages holds the project, then the
	// packages that complete it (Debian splits some projects).
	debs []string
	// trees maps a directory of those packages to where its files go in
	// the wheel (Debian moves some package data out of dist-packages).
	trees map[string]string
	// edits undo Debian patches that make the project rely on files
	// outside it, with upstream's code.
	edits []edit
	// requires are the project's own Requires-Dist, for Debian builds
	// whose metadata lost them (Debian states them as package
	// dependencies instead). They apply only when the metadata has none.
	requires []string
}

// projects are the projects whose Debian packages are not simply
// python3-<name>, or whose metadata needs its requirements back. The
// requirements are those of the upstream release Debian packages.
var projects = map[string]project{
	"pyyaml":          {debs: []string{"python3-yaml"}},
	"pillow":          {debs: []string{"python3-pil"}},
	"pytz":            {debs: []string{"python3-tz"}},
	"python-dateutil": {debs: []string{"python3-dateutil"}, requires: []string{"six>=1.5"}},
	"pandas": {
		debs:     []string{"python3-pandas", "python3-pandas-lib"},
		requires: []string{"numpy>=1.23.2", "python-dateutil>=2.8.1", "pytz>=2020.1"},
	},
	"matplotlib": {
		debs:  []string{"python3-matplotlib", "python-matplotlib-data"},
		trees: map[string]string{"usr/share/matplotlib/mpl-data": "matplotlib/mpl-data"},
		// Debian reads its matplotlibrc from /etc, upstream from mpl-data.
		edits: []edit{{
			file: "matplotlib/__init__.py",
			old:  "yield '/etc/matplotlibrc'",
			new:  "yield os.path.join(get_data_path(), 'matplotlibrc')",
		}},
		requires: []string{
			"contourpy>=1.0.1", "cycler>=0.10", "fonttools>=4.22.0", "kiwisolver>=1.0.1", "numpy>=1.19",
			"packaging>=20.0", "pillow>=6.2.0", "pyparsing>=2.2.1", "python-dateutil>=2.7",
		},
	},
}

// edit replaces the text old, which must be there once, by new in file
// (relative to the wheel's root).
type edit struct {
	file, old, new string
}

// apply makes the edit in the tree stage.
func (e edit) apply(stage string) error {
	p := filepath.Join(stage, filepath.FromSlash(e.file))
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("edit %s: %w", e.file, err)
	}
	if n := strings.Count(string(data), e.old); n != 1 {
		return fmt.Errorf("edit %s: %q found %d times, want once", e.file, e.old, n)
	}
	return os.WriteFile(p, []byte(strings.Replace(string(data), e.old, e.new, 1)), 0o644)
}

// projectFor returns how the project name (normalized) is made.
func projectFor(name string) project {
	if p, ok := projects[name]; ok {
		return p
	}
	return project{debs: []string{"python3-" + name}}
}

// Fetcher returns local .deb files of Debian packages, one per name, in
// the order asked; each file's name is Debian's (name_version_arch.deb),
// so that a new version has a new name.
type Fetcher func(ctx context.Context, pkgs []string) ([]string, error)

// Base is the image the wheels are installed on.
type Base struct {
	// ID identifies its contents (an image digest): the wheels made for
	// another base are made again.
	ID string
	// Rootfs returns its unpacked filesystem, asked for only when a
	// wheel is made: the libraries found there are not vendored.
	Rootfs func(ctx context.Context) (string, error)
}

// Config says what Build makes and from what.
type Config struct {
	// Roots are the projects to make, with everything they require.
	Roots []string
	Base  Base
	Fetch Fetcher
	// Scratch is a directory for unpacked packages: what Build puts there
	// it removes.
	Scratch string
	// Log prints one line of progress (nil: nowhere).
	Log func(format string, args ...any)
}

// manifest is the index directory's index.json.
type manifest struct {
	Version  string              `json:"version"`
	Projects map[string]*Project `json:"projects"`
}

// Project is one project of the index.
type Project struct {
	// Name is the project's name as its metadata spells it.
	Name    string `json:"name"`
	Version string `json:"version"`
	// File is the wheel's file name, SHA256 its hex digest, Size its bytes.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// RequiresPython is the metadata's Requires-Python ("" when none).
	RequiresPython string `json:"requires_python,omitempty"`
	// Requires are the normalized names of the projects it requires.
	Requires []string `json:"requires,omitempty"`
	// Debs are the .deb files it was made from, LibDebs those its
	// vendored libraries came from, Base the base image's ID.
	Debs    []string `json:"debs"`
	LibDebs []string `json:"lib_debs,omitempty"`
	Base    string   `json:"base"`
	// Vendored are the shared libraries copied into the wheel.
	Vendored []string `json:"vendored,omitempty"`
	// Rebuilt says it was made by this Build (not stored).
	Rebuilt bool `json:"-"`
}

// readManifest reads dir's index.json; a missing one is an empty index.
func readManifest(dir string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &manifest{Version: Version, Projects: map[string]*Project{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the package index: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read the package index %s: %w", filepath.Join(dir, manifestFile), err)
	}
	if m.Projects == nil {
		m.Projects = map[string]*Project{}
	}
	return &m, nil
}

// Build makes the wheels of cfg.Roots and of every project they require
// into the index directory dir, creating it if needed, and returns the
// index's projects sorted by name. A wheel made from the same .deb files
// for the same base by this Version of the package is kept; wheels no
// project needs any more are removed.
func Build(ctx context.Context, dir string, cfg Config) ([]Project, error) {
	if cfg.Fetch == nil || cfg.Base.Rootfs == nil || cfg.Scratch == "" {
		return nil, errors.New("build the package index: incomplete configuration")
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := paths.MkdirPrivate(dir, filepath.Join(dir, wheelDir)); err != nil {
		return nil, fmt.Errorf("build the package index: %w", err)
	}
	old, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	b := &wheelBuilder{cfg: cfg, logf: logf, debs: map[string]string{}}
	if old.Version == Version {
		b.prefetch(ctx, old)
	}
	next := &manifest{Version: Version, Projects: map[string]*Project{}}
	// Breadth first: the packages of one level of requirements are
	// fetched at once.
	queue := slices.Clone(cfg.Roots)
	for len(queue) > 0 {
		var level, pkgs []string
		for _, n := range queue {
			if n = normalize(n); next.Projects[n] == nil && !slices.Contains(level, n) {
				level = append(level, n)
				pkgs = append(pkgs, projectFor(n).debs...)
			}
		}
		if _, err := b.fetch(ctx, pkgs); err != nil {
			return nil, fmt.Errorf("build the package index: %w", err)
		}
		queue = nil
		for _, name := range level {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("build the package index: %w", err)
			}
			p, err := b.project(ctx, dir, name, old.Projects[name], old.Version == Version)
			if err != nil {
				return nil, fmt.Errorf("build the package index: %s: %w", name, err)
			}
			next.Projects[name] = p
			queue = append(queue, p.Requires...)
		}
	}
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("build the package index: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, manifestFile), append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("build the package index: %w", err)
	}
	if err := removeUnlisted(filepath.Join(dir, wheelDir), next); err != nil {
		return nil, fmt.Errorf("build the package index: %w", err)
	}
	out := make([]Project, 0, len(next.Projects))
	for _, p := range next.Projects {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return normalize(out[i].Name) < normalize(out[j].Name) })
	return out, nil
}

// removeUnlisted removes the wheel files m does not list.
func removeUnlisted(files string, m *manifest) error {
	keep := map[string]bool{}
	for _, p := range m.Projects {
		keep[p.File] = true
	}
	ents, err := os.ReadDir(files)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(files, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// wheelBuilder holds one Build's state.
type wheelBuilder struct {
	cfg  Config
	logf func(string, ...any)
	base *baseInfo         // read on first use
	debs map[string]string // package -> .deb file, fetched so far
}

// fetch returns the .deb files of pkgs, asking cfg.Fetch only for those
// not fetched yet.
func (b *wheelBuilder) fetch(ctx context.Context, pkgs []string) ([]string, error) {
	var want []string
	for _, p := range pkgs {
		if _, ok := b.debs[p]; !ok {
			want = append(want, p)
		}
	}
	if len(want) > 0 {
		got, err := b.cfg.Fetch(ctx, want)
		if err != nil {
			return nil, err
		}
		if len(got) != len(want) {
			return nil, fmt.Errorf("fetch %s: got %d .deb files", strings.Join(want, " "), len(got))
		}
		for i, p := range want {
			b.debs[p] = got[i]
		}
	}
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = b.debs[p]
	}
	return out, nil
}

// prefetch fetches, in one go, every package the index old was made
// from: checking whether its wheels are current then asks for nothing
// more. A failure is left for the per-project fetches to report.
func (b *wheelBuilder) prefetch(ctx context.Context, old *manifest) {
	var pkgs []string
	seen := map[string]bool{}
	for _, p := range old.Projects {
		for _, f := range append(slices.Clone(p.Debs), p.LibDebs...) {
			if n := debPackages([]string{f})[0]; !seen[n] {
				seen[n] = true
				pkgs = append(pkgs, n)
			}
		}
	}
	sort.Strings(pkgs)
	if _, err := b.fetch(ctx, pkgs); err != nil {
		b.logf("fetching the packages of the index at once failed (%v): fetching them one project at a time", err)
	}
}

// project returns the index entry of the project name: old when it is
// still current, else a new wheel.
func (b *wheelBuilder) project(ctx context.Context, dir, name string, old *Project, sameVersion bool) (*Project, error) {
	pr := projectFor(name)
	debs, err := b.fetch(ctx, pr.debs)
	if err != nil {
		return nil, err
	}
	if old != nil && sameVersion && b.current(ctx, dir, old, debs) {
		b.logf("%s: wheel %s up to date", name, old.File)
		return old, nil
	}
	p, err := b.makeWheel(ctx, dir, name, pr, debs)
	if err != nil {
		return nil, err
	}
	p.Rebuilt = true
	b.logf("%s: made %s (%d bytes, %d vendored libraries)", name, p.File, p.Size, len(p.Vendored))
	return p, nil
}

// current says whether old was made from debs and the current versions of
// its library packages, for this base, and its wheel is intact.
func (b *wheelBuilder) current(ctx context.Context, dir string, old *Project, debs []string) bool {
	if old.Base != b.cfg.Base.ID || !slices.Equal(old.Debs, baseNames(debs)) {
		return false
	}
	if len(old.LibDebs) > 0 {
		libs, err := b.fetch(ctx, debPackages(old.LibDebs))
		if err != nil || !slices.Equal(old.LibDebs, baseNames(libs)) {
			return false
		}
	}
	sum, size, err := fileSHA256(filepath.Join(dir, wheelDir, old.File))
	return err == nil && sum == old.SHA256 && size == old.Size
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// debPackages returns the package names of .deb file names.
func debPackages(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i], _, _ = strings.Cut(f, "_")
	}
	return out
}

func fileSHA256(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
