package pyindex

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// libDirs are where the dynamic loader looks for libraries by default
// (Debian's multiarch directories first).
var libDirs = []string{
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib",
	"usr/local/lib", "usr/local/lib/x86_64-linux-gnu",
}

// baseInfo is what the base image provides: the libraries in its loader
// paths, by file name, and its installed Debian packages.
type baseInfo struct {
	sonames   map[string]bool
	installed map[string]bool
}

// readBase reads the libraries and the dpkg database of the rootfs root.
func readBase(root string) (*baseInfo, error) {
	bi := &baseInfo{sonames: map[string]bool{}, installed: map[string]bool{}}
	for _, d := range libDirs {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("base libraries: %w", err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				bi.sonames[e.Name()] = true
			}
		}
	}
	f, err := os.Open(filepath.Join(root, "var/lib/dpkg/status"))
	if errors.Is(err, fs.ErrNotExist) {
		return bi, nil
	}
	if err != nil {
		return nil, fmt.Errorf("base packages: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var pkg string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Package: "); ok {
			pkg = v
		} else if v, ok := strings.CutPrefix(line, "Status: "); ok && strings.HasSuffix(v, " installed") {
			bi.installed[pkg] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("base packages: %w", err)
	}
	return bi, nil
}

// baseInfo returns the base's libraries and packages, read once.
func (b *wheelBuilder) baseInfo(ctx context.Context) (*baseInfo, error) {
	if b.base != nil {
		return b.base, nil
	}
	root, err := b.cfg.Base.Rootfs(ctx)
	if err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}
	bi, err := readBase(root)
	if err != nil {
		return nil, err
	}
	b.base = bi
	return bi, nil
}

// needed returns the DT_NEEDED entries of the ELF file path.
func needed(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ELF %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if f.Section(".dynamic") == nil {
		return nil, nil // statically linked
	}
	libs, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		return nil, fmt.Errorf("read ELF %s: %w", filepath.Base(path), err)
	}
	return libs, nil
}

// vendor copies into stage/libsDir the libraries that the ELF files elfs
// (and the libraries copied) need and the base lacks, taken from the
// library packages ctls depend on, and sets the RPATH of every file that
// needs one of them to find it there ($ORIGIN-relative). The library
// packages are unpacked under scratch. It returns the
// libraries copied and the .deb files of the library packages it read.
func (b *wheelBuilder) vendor(ctx context.Context, scratch, stage, libsDir string, elfs []string, ctls []control) ([]string, []string, error) {
	base, err := b.baseInfo(ctx)
	if err != nil {
		return nil, nil, err
	}
	own := map[string]bool{}
	for _, e := range elfs {
		own[filepath.Base(e)] = true
	}
	missing := func(lib string) bool { return !base.sonames[lib] && !own[lib] }
	type todo struct {
		file     string
		vendored bool
	}
	queue := make([]todo, 0, len(elfs))
	for _, e := range elfs {
		queue = append(queue, todo{file: e})
	}
	var libs map[string]string // soname -> file in the library packages
	var libDebs []string
	copied := map[string]bool{}
	patch := map[string]bool{} // file -> is a vendored library
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		deps, err := needed(t.file)
		if err != nil {
			return nil, nil, err
		}
		for _, lib := range deps {
			if !missing(lib) {
				continue
			}
			if libs == nil {
				if libs, libDebs, err = b.libraryTree(ctx, filepath.Join(scratch, "libs"), ctls, base); err != nil {
					return nil, nil, err
				}
			}
			patch[t.file] = t.vendored
			if copied[lib] {
				continue
			}
			src, ok := libs[lib]
			if !ok {
				return nil, nil, fmt.Errorf("%s needs %s, which neither the base image nor the library packages %s depends on provide",
					strings.TrimPrefix(t.file, stage+"/"), lib, ctls[0].pkg)
			}
			dst := filepath.Join(stage, libsDir, lib)
			if err := copyFile(src, dst); err != nil {
				return nil, nil, err
			}
			copied[lib] = true
			queue = append(queue, todo{file: dst, vendored: true})
		}
	}
	files := make([]string, 0, len(patch))
	for f := range patch {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		rel, err := filepath.Rel(filepath.Dir(f), filepath.Join(stage, libsDir))
		if err != nil {
			return nil, nil, err
		}
		rpath := "$ORIGIN"
		if rel != "." {
			rpath += "/" + filepath.ToSlash(rel)
		}
		if _, err := run(ctx, "patchelf", "--force-rpath", "--set-rpath", rpath, f); err != nil {
			return nil, nil, err
		}
	}
	out := make([]string, 0, len(copied))
	for l := range copied {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, libDebs, nil
}

// libraryTree unpacks the library packages (lib*) that ctls depend on,
// directly or through other library packages, except those the base has
// installed, and returns their shared libraries by file name, and their
// .deb files. It unpacks them into root.
func (b *wheelBuilder) libraryTree(ctx context.Context, root string, ctls []control, base *baseInfo) (map[string]string, []string, error) {
	seen := map[string]bool{}
	var debFiles []string
	pending := ctls
	for len(pending) > 0 {
		var want []string
		for _, c := range pending {
			for _, dep := range firstAlternatives(c.depends) {
				if strings.HasPrefix(dep, "lib") && !strings.HasPrefix(dep, "libpython") && !base.installed[dep] && !seen[dep] {
					seen[dep] = true
					want = append(want, dep)
				}
			}
		}
		pending = nil
		if len(want) == 0 {
			break
		}
		debs, err := b.fetch(ctx, want)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range debs {
			c, err := readControl(ctx, d)
			if err != nil {
				return nil, nil, err
			}
			if _, err := run(ctx, "dpkg-deb", "-x", d, root); err != nil {
				return nil, nil, err
			}
			pending = append(pending, c)
			debFiles = append(debFiles, filepath.Base(d))
		}
	}
	libs := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".so") {
			return err
		}
		if _, ok := libs[d.Name()]; ok {
			return nil
		}
		real, err := resolveIn(root, p)
		if err != nil {
			return nil // a development link to nowhere
		}
		libs[d.Name()] = real
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(debFiles)
	return libs, debFiles, nil
}
