package diagnose

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"path"
	"strings"
)

// Binary is what an executable's ELF headers say it needs to start.
type Binary struct {
	// Interp is the ELF interpreter (PT_INTERP), the dynamic loader;
	// "" for a static binary.
	Interp string
	// Needed are the shared libraries it links (DT_NEEDED), in order.
	Needed []string
	// RunPath is DT_RUNPATH, else DT_RPATH, split on ':'.
	RunPath []string
	Machine elf.Machine
	// Path is where the file is in the image, symbolic links resolved
	// (set by InspectELF): the loader expands $ORIGIN in RunPath to its
	// directory.
	Path string
}

// Static reports whether the binary starts with no loader.
func (b Binary) Static() bool { return b.Interp == "" }

// Arch is the binary's architecture, from its ELF header's e_machine; ok
// is false for a machine this package knows no paths of.
func (b Binary) Arch() (Arch, bool) { return ArchOf(b.Machine) }

// Arch is what a Linux loader's paths depend on: the machine a binary is
// for. Its values are those of Debian's toolchains, glibc's and musl's.
type Arch struct {
	Machine elf.Machine
	// Name is the machine as `uname -m` and musl spell it: "x86_64",
	// "aarch64".
	Name string
	// Platform is the OCI platform of the machine: "linux/amd64".
	Platform string
	// Triplet is Debian's multiarch directory: "x86_64-linux-gnu".
	Triplet string
	// GlibcLoader and MuslLoader are the ELF interpreters a binary for
	// the machine names: "/lib64/ld-linux-x86-64.so.2",
	// "/lib/ld-musl-x86_64.so.1".
	GlibcLoader, MuslLoader string
}

// ArchOf returns the Arch of an ELF machine; ok is false for a machine
// this package knows no paths of (x86-64 and AArch64 it knows).
func ArchOf(m elf.Machine) (a Arch, ok bool) {
	switch m {
	case elf.EM_X86_64:
		return Arch{Machine: m, Name: "x86_64", Platform: "linux/amd64", Triplet: "x86_64-linux-gnu",
			GlibcLoader: "/lib64/ld-linux-x86-64.so.2", MuslLoader: "/lib/ld-musl-x86_64.so.1"}, true
	case elf.EM_AARCH64:
		return Arch{Machine: m, Name: "aarch64", Platform: "linux/arm64", Triplet: "aarch64-linux-gnu",
			GlibcLoader: "/lib/ld-linux-aarch64.so.1", MuslLoader: "/lib/ld-musl-aarch64.so.1"}, true
	}
	return Arch{Machine: m}, false
}

// ArchOfPlatform returns the Arch of an OCI platform ("linux/arm64",
// "linux/arm64/v8", "linux/amd64"); ok is false for one this package
// knows no paths of.
func ArchOfPlatform(platform string) (Arch, bool) {
	p := strings.ToLower(platform)
	switch {
	case p == "linux/amd64" || strings.HasPrefix(p, "linux/amd64/"):
		return ArchOf(elf.EM_X86_64)
	case p == "linux/arm64" || strings.HasPrefix(p, "linux/arm64/"):
		return ArchOf(elf.EM_AARCH64)
	}
	return Arch{}, false
}

// glibcDirs are the default library directories of a glibc loader for
// the architecture, after DT_RUNPATH and ld.so.conf: Debian's multiarch
// ones first, then the lib64 and lib ones.
func (a Arch) glibcDirs() []string {
	dirs := []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	if a.Triplet == "" {
		return dirs
	}
	return append([]string{"/lib/" + a.Triplet, "/usr/lib/" + a.Triplet}, dirs...)
}

// LoaderKind names the C library a loader path belongs to.
func LoaderKind(interp string) string {
	base := path.Base(interp)
	switch {
	case strings.HasPrefix(base, "ld-musl-"):
		return "musl loader"
	case strings.HasPrefix(base, "ld-linux"):
		return "glibc loader"
	}
	return "dynamic loader"
}

// ParseELF reads an ELF file's loader and libraries. A file that is not
// ELF is an error.
func ParseELF(r io.ReaderAt) (Binary, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Binary{}, err
	}
	defer f.Close()
	b := Binary{Machine: f.Machine}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return Binary{}, fmt.Errorf("read PT_INTERP: %w", err)
		}
		b.Interp = string(bytes.TrimRight(data, "\x00"))
	}
	if b.Needed, err = f.ImportedLibraries(); err != nil {
		return Binary{}, fmt.Errorf("read DT_NEEDED: %w", err)
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, err := f.DynString(tag)
		if err != nil || len(vals) == 0 {
			continue
		}
		for _, v := range vals {
			b.RunPath = append(b.RunPath, strings.Split(v, ":")...)
		}
		break
	}
	return b, nil
}

// InspectELF parses the ELF file at name in the image. ok is false when
// the file is not ELF (a script, say).
func InspectELF(ctx context.Context, fsys FS, name string) (b Binary, ok bool, err error) {
	real, st, err := Resolve(ctx, fsys, name)
	if err != nil {
		return Binary{}, false, err
	}
	head, err := fsys.ReadFile(ctx, real, 0, 4)
	if err != nil {
		return Binary{}, false, err
	}
	if !bytes.Equal(head, []byte(elf.ELFMAG)) {
		return Binary{}, false, nil
	}
	b, err = ParseELF(&readerAt{ctx: ctx, fsys: fsys, name: real, size: st.Size, blocks: map[int64][]byte{}})
	if err != nil {
		return Binary{}, false, fmt.Errorf("%s: %w", name, err)
	}
	b.Path = real
	return b, true, nil
}

// muslDirs are musl's default library directories, on every machine.
func muslDirs() []string { return []string{"/lib", "/usr/local/lib", "/usr/lib"} }

// MissingLibraries returns the libraries b needs that its loader would
// not find in the image, in DT_NEEDED order, looking (not recursively)
// where the loader for b's machine (its ELF e_machine) would: DT_RUNPATH,
// the directories of /etc/ld.so.conf (glibc) or of musl's path file
// (/etc/ld-musl-x86_64.path, /etc/ld-musl-aarch64.path), then the default
// ones (/lib/x86_64-linux-gnu or /lib/aarch64-linux-gnu first for glibc).
// The loader's own name (ld-linux-*.so.*) counts as found when the loader
// is.
func MissingLibraries(ctx context.Context, fsys FS, b Binary) []string {
	dirs := b.runPath()
	arch, _ := b.Arch()
	if LoaderKind(b.Interp) == "musl loader" {
		dirs = append(dirs, muslPath(ctx, fsys, muslPathFile(b.Interp, arch))...)
		dirs = append(dirs, muslDirs()...)
	} else {
		dirs = append(dirs, ldSoConf(ctx, fsys, "/etc/ld.so.conf", 0)...)
		dirs = append(dirs, arch.glibcDirs()...)
	}
	var missing []string
	for _, lib := range b.Needed {
		if strings.Contains(lib, "/") {
			if !exists(ctx, fsys, lib) {
				missing = append(missing, lib)
			}
			continue
		}
		if b.Interp != "" && path.Base(b.Interp) == lib && exists(ctx, fsys, b.Interp) {
			continue
		}
		found := false
		for _, d := range dirs {
			if strings.HasPrefix(d, "/") && exists(ctx, fsys, path.Join(d, lib)) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, lib)
		}
	}
	return missing
}

// runPath returns RunPath with $ORIGIN (or ${ORIGIN}) expanded to the
// binary's directory, as the loader does; entries that still are not
// absolute (no Path known, another token) are dropped.
func (b Binary) runPath() []string {
	var out []string
	for _, d := range b.RunPath {
		if b.Path != "" {
			origin := path.Dir(b.Path)
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
		}
		if strings.HasPrefix(d, "/") && !strings.Contains(d, "$") {
			out = append(out, path.Clean(d))
		}
	}
	return out
}

// ldSoConf reads the directories of a glibc ld.so.conf, following its
// include lines (with a * glob in the last component only).
func ldSoConf(ctx context.Context, fsys FS, file string, depth int) []string {
	if depth > 4 {
		return nil
	}
	real, _, err := Resolve(ctx, fsys, file)
	if err != nil {
		return nil
	}
	data, err := fsys.ReadFile(ctx, real, 0, 0)
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case fields[0] == "include":
			for _, pat := range fields[1:] {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(file), pat)
				}
				for _, f := range glob(ctx, fsys, pat) {
					dirs = append(dirs, ldSoConf(ctx, fsys, f, depth+1)...)
				}
			}
		default:
			dirs = append(dirs, fields...)
		}
	}
	return dirs
}

func glob(ctx context.Context, fsys FS, pat string) []string {
	dir, base := path.Split(pat)
	if !strings.ContainsAny(base, "*?[") {
		return []string{pat}
	}
	real, _, err := Resolve(ctx, fsys, dir)
	if err != nil {
		return nil
	}
	names, err := fsys.ReadDir(ctx, real)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if ok, _ := path.Match(base, n); ok {
			out = append(out, path.Join(dir, n))
		}
	}
	return out
}

// muslPathFile is the file musl's loader reads its library path from:
// /etc/ld-musl-ARCH.path, ARCH as the loader's own name spells it
// (ld-musl-aarch64.so.1), else as the binary's machine does; "" when
// neither says.
func muslPathFile(interp string, arch Arch) string {
	name := arch.Name
	if base := path.Base(interp); strings.HasPrefix(base, "ld-musl-") && strings.HasSuffix(base, ".so.1") {
		name = strings.TrimSuffix(strings.TrimPrefix(base, "ld-musl-"), ".so.1")
	}
	if name == "" {
		return ""
	}
	return "/etc/ld-musl-" + name + ".path"
}

func muslPath(ctx context.Context, fsys FS, file string) []string {
	if file == "" {
		return nil
	}
	real, _, err := Resolve(ctx, fsys, file)
	if err != nil {
		return nil
	}
	data, err := fsys.ReadFile(ctx, real, 0, 0)
	if err != nil {
		return nil
	}
	return strings.FieldsFunc(string(data), func(r rune) bool { return r == ':' || r == '\n' || r == ' ' })
}
