package pyindex

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/atomicfile"
)

// sitePackages is where Debian's python3-* packages install their modules.
const sitePackages = "usr/lib/python3/dist-packages"

// Wheel tags: Debian's extension modules are built for its CPython 3.11
// on x86_64 (their names end in .cpython-311-x86_64-linux-gnu.so).
const (
	tagPlatform = "cp311-cp311-linux_x86_64"
	tagPure     = "py3-none-any"
)

// zipTime is the time of every wheel entry, so a wheel made again from
// the same files is the same file.
var zipTime = time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)

// control is what Build reads of a .deb's control file.
type control struct {
	pkg, version string
	depends      string // Pre-Depends and Depends
}

// readControl reads deb's package name, version and dependencies.
func readControl(ctx context.Context, deb string) (control, error) {
	out, err := run(ctx, "dpkg-deb", "-f", deb, "Package", "Version", "Pre-Depends", "Depends")
	if err != nil {
		return control{}, err
	}
	var c control
	var deps []string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			c.pkg = v
		case "Version":
			c.version = v
		case "Pre-Depends", "Depends":
			deps = append(deps, v)
		}
	}
	if c.pkg == "" || c.version == "" {
		return control{}, fmt.Errorf("%s: no Package or Version in its control file", deb)
	}
	c.depends = strings.Join(deps, ", ")
	return c, nil
}

// firstAlternatives returns, for each dependency of a Depends field, the
// name of its first alternative ("libblas3 | libblas.so.3" is libblas3).
func firstAlternatives(depends string) []string {
	var out []string
	for _, group := range strings.Split(depends, ",") {
		alt, _, _ := strings.Cut(group, "|")
		name := strings.Fields(strings.TrimSpace(alt))
		if len(name) == 0 {
			continue
		}
		n, _, _ := strings.Cut(name[0], ":") // python3:any
		out = append(out, n)
	}
	return out
}

// upstreamVersion is the upstream part of a Debian version:
// 1:1.4.4-1+b1 is 1.4.4, 1.5.3+dfsg-2 is 1.5.3.
func upstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	for _, sep := range []string{"+", "~"} {
		v, _, _ = strings.Cut(v, sep)
	}
	return v
}

// run runs a command, its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// makeWheel unpacks debs and makes the project's wheel in dir.
func (b *wheelBuilder) makeWheel(ctx context.Context, dir, name string, pr project, debs []string) (*Project, error) {
	scratch, err := os.MkdirTemp(b.cfg.Scratch, "wheel-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	root := filepath.Join(scratch, "root")
	stage := filepath.Join(scratch, "stage")
	var ctls []control
	for _, d := range debs {
		c, err := readControl(ctx, d)
		if err != nil {
			return nil, err
		}
		ctls = append(ctls, c)
		if _, err := run(ctx, "dpkg-deb", "-x", d, root); err != nil {
			return nil, err
		}
	}
	sp := filepath.Join(root, sitePackages)
	meta, err := findMetadata(sp, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ctls[0].pkg, err)
	}
	skip := func(rel string, d fs.DirEntry) bool {
		top := !strings.Contains(rel, string(filepath.Separator))
		return d.Name() == "__pycache__" || strings.HasSuffix(rel, ".pyc") ||
			(top && (strings.HasSuffix(rel, ".dist-info") || strings.HasSuffix(rel, ".egg-info")))
	}
	if err := copyTree(root, sp, stage, skip, b.logf); err != nil {
		return nil, err
	}
	for src, dst := range pr.trees {
		if err := copyTree(root, filepath.Join(root, filepath.FromSlash(src)), filepath.Join(stage, filepath.FromSlash(dst)), nil, b.logf); err != nil {
			return nil, err
		}
	}
	for _, e := range pr.edits {
		if err := e.apply(stage); err != nil {
			return nil, err
		}
	}
	md, err := readMetadata(filepath.Join(sp, meta))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", meta, err)
	}
	if md.version == "" || md.version == "0.0.0" {
		md.version = upstreamVersion(ctls[0].version) // Debian's build lost it
	}
	reqs, err := md.neededRequires()
	if err != nil {
		return nil, err
	}
	if len(reqs) == 0 && len(pr.requires) > 0 {
		md.requires = append(md.requires, pr.requires...)
		if reqs, err = md.neededRequires(); err != nil {
			return nil, err
		}
	}
	dist := distName(md.name)
	distInfo := dist + "-" + md.version + ".dist-info"
	elfs, err := findELF(stage)
	if err != nil {
		return nil, err
	}
	tag := tagPure
	var vendored, libDebs []string
	if len(elfs) > 0 {
		tag = tagPlatform
		if vendored, libDebs, err = b.vendor(ctx, scratch, stage, dist+".libs", elfs, ctls); err != nil {
			return nil, err
		}
	}
	generator := "minikit pyindex " + Version + " from Debian"
	for _, c := range ctls {
		generator += " " + c.pkg + " " + c.version
	}
	if err := md.writeDistInfo(filepath.Join(stage, distInfo), tag, generator); err != nil {
		return nil, err
	}
	file := dist + "-" + md.version + "-" + tag + ".whl"
	dest := filepath.Join(dir, wheelDir, file)
	if err := atomicfile.Write(dest, 0o600, func(w io.Writer) error { return writeWheel(w, stage, distInfo) }); err != nil {
		return nil, fmt.Errorf("write %s: %w", file, err)
	}
	sum, size, err := fileSHA256(dest)
	if err != nil {
		return nil, err
	}
	return &Project{
		Name:           md.name,
		Version:        md.version,
		File:           file,
		SHA256:         sum,
		Size:           size,
		RequiresPython: md.requiresPython,
		Requires:       reqs,
		Debs:           baseNames(debs),
		LibDebs:        libDebs,
		Base:           b.cfg.Base.ID,
		Vendored:       vendored,
	}, nil
}

// findMetadata returns the name of the .dist-info or .egg-info entry of
// project name in site-packages dir sp.
func findMetadata(sp, name string) (string, error) {
	ents, err := os.ReadDir(sp)
	if err != nil {
		return "", fmt.Errorf("no %s: %w", sitePackages, err)
	}
	for _, e := range ents {
		stem, ok := strings.CutSuffix(e.Name(), ".dist-info")
		if !ok {
			stem, ok = strings.CutSuffix(e.Name(), ".egg-info")
		}
		project, _, _ := strings.Cut(stem, "-")
		if ok && normalize(project) == name {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no .dist-info or .egg-info of %s in %s", name, sitePackages)
}

// copyTree copies the tree src into dst, leaving out what skip says
// (rel is relative to src). A symbolic link is replaced by what it points
// to inside root; one pointing outside root or nowhere is left out.
func copyTree(root, src, dst string, skip func(rel string, d fs.DirEntry) bool, logf func(string, ...any)) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if rel == "." {
			return os.MkdirAll(out, 0o755)
		}
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := resolveIn(root, p)
			if err != nil {
				logf("left out %s: %v", strings.TrimPrefix(p, root), err)
				return nil
			}
			fi, err := os.Stat(target)
			if err != nil {
				return err
			}
			if fi.IsDir() {
				return copyTree(root, target, out, nil, logf)
			}
			return copyFile(target, out)
		case d.Type().IsRegular():
			return copyFile(p, out)
		}
		return nil
	})
}

// resolveIn follows the symbolic link p as if root were "/", and fails
// when it leads outside root or to nothing.
func resolveIn(root, p string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("dangling link (to %s)", strings.TrimPrefix(p, root))
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(t) {
			p = filepath.Join(root, t)
		} else {
			p = filepath.Join(filepath.Dir(p), t)
		}
		if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("link leads outside the packages (to %s)", t)
		}
	}
	return "", errors.New("too many levels of symbolic links")
}

func copyFile(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, fi.Mode().Perm()|0o200)
}

// metadata is a project's core metadata (METADATA or PKG-INFO).
type metadata struct {
	name, version  string
	requiresPython string
	// headers are the other header fields, each with its continuation
	// lines, in order; body is the description after them.
	headers []string
	body    string
	// requires are the Requires-Dist values.
	requires []string
	// extra are the metadata directory's other files to keep, by name.
	extra map[string][]byte
}

// distInfoDropped are the .dist-info files a new wheel does not carry:
// the installer writes its own, or this package does.
var distInfoDropped = map[string]bool{"RECORD": true, "INSTALLER": true, "REQUESTED": true, "direct_url.json": true, "WHEEL": true, "METADATA": true}

// eggInfoKept are the egg-info files that mean the same in a .dist-info.
var eggInfoKept = map[string]bool{"entry_points.txt": true, "top_level.txt": true}

// readMetadata reads a .dist-info directory, an egg-info directory
// (PKG-INFO and requires.txt) or an egg-info file.
func readMetadata(path string) (*metadata, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	md := &metadata{extra: map[string][]byte{}}
	var core []byte
	switch {
	case !fi.IsDir():
		core, err = os.ReadFile(path)
	case strings.HasSuffix(path, ".dist-info"):
		core, err = os.ReadFile(filepath.Join(path, "METADATA"))
	default:
		core, err = os.ReadFile(filepath.Join(path, "PKG-INFO"))
	}
	if err != nil {
		return nil, err
	}
	if err := md.parse(string(core)); err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return md, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	dist := strings.HasSuffix(path, ".dist-info")
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() && !(dist && e.IsDir()) {
			continue
		}
		if !dist && n == "requires.txt" {
			data, err := os.ReadFile(filepath.Join(path, n))
			if err != nil {
				return nil, err
			}
			md.requires = append(md.requires, eggRequires(string(data))...)
			continue
		}
		if (dist && !distInfoDropped[n] && !e.IsDir()) || (!dist && eggInfoKept[n]) {
			data, err := os.ReadFile(filepath.Join(path, n))
			if err != nil {
				return nil, err
			}
			md.extra[n] = data
		}
	}
	return md, nil
}

// parse reads the header fields and the body of core metadata.
func (md *metadata) parse(core string) error {
	head, body, _ := strings.Cut(strings.ReplaceAll(core, "\r\n", "\n"), "\n\n")
	md.body = body
	for _, line := range strings.Split(head, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(md.headers) > 0 {
			md.headers[len(md.headers)-1] += "\n" + line
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("metadata line %q is not a header field", line)
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			md.name = v
		case "Version":
			md.version = v
		case "Requires-Dist":
			md.requires = append(md.requires, v)
			continue
		case "Requires-Python":
			md.requiresPython = v
		case "Metadata-Version":
			if compareVersions(v, "2.1") < 0 {
				line = "Metadata-Version: 2.1" // Requires-Dist needs 1.2; 2.1 for the rest
			}
		}
		md.headers = append(md.headers, line)
	}
	if md.name == "" {
		return errors.New("metadata without a Name")
	}
	return nil
}

// neededRequires returns the normalized names of the projects md
// requires on the target interpreter, with no extra.
func (md *metadata) neededRequires() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range md.requires {
		r, err := parseRequirement(s)
		if err != nil {
			return nil, err
		}
		ok, err := r.needed()
		if err != nil {
			return nil, err
		}
		if n := normalize(r.name); ok && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// writeDistInfo writes the .dist-info directory dir: METADATA (the
// version set, every Requires-Dist), WHEEL and the kept files.
func (md *metadata) writeDistInfo(dir, tag, generator string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var buf strings.Builder
	for _, h := range md.headers {
		if strings.HasPrefix(h, "Version:") {
			h = "Version: " + md.version
		}
		buf.WriteString(h + "\n")
	}
	for _, r := range md.requires {
		buf.WriteString("Requires-Dist: " + r + "\n")
	}
	if md.body != "" {
		buf.WriteString("\n" + md.body)
	}
	files := map[string][]byte{
		"METADATA": []byte(buf.String()),
		"WHEEL": []byte("Wheel-Version: 1.0\nGenerator: " + generator + "\nRoot-Is-Purelib: " +
			fmt.Sprint(tag == tagPure) + "\nTag: " + tag + "\n"),
	}
	for n, data := range md.extra {
		files[n] = data
	}
	for n, data := range files {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// findELF returns the ELF files under dir.
func findELF(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		magic := make([]byte, 4)
		if _, err := io.ReadFull(f, magic); err == nil && string(magic) == "\x7fELF" {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// writeWheel zips the tree stage as a wheel: files in name order, the
// .dist-info directory last, and its RECORD (every file's SHA-256 and
// size) at the very end.
func writeWheel(w io.Writer, stage, distInfo string) error {
	var files []string
	err := filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(stage, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return err
	}
	inDistInfo := func(f string) bool { return strings.HasPrefix(f, distInfo+"/") }
	sort.Slice(files, func(i, j int) bool {
		if a, b := inDistInfo(files[i]), inDistInfo(files[j]); a != b {
			return b
		}
		return files[i] < files[j]
	})
	zw := zip.NewWriter(w)
	var record bytes.Buffer
	cw := csv.NewWriter(&record)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(stage, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		fi, err := os.Stat(filepath.Join(stage, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if err := addZipFile(zw, rel, fi.Mode().Perm(), data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if err := cw.Write([]string{rel, "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]), fmt.Sprint(len(data))}); err != nil {
			return err
		}
	}
	recordName := distInfo + "/RECORD"
	if err := cw.Write([]string{recordName, "", ""}); err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := addZipFile(zw, recordName, 0o644, record.Bytes()); err != nil {
		return err
	}
	return zw.Close()
}

func addZipFile(zw *zip.Writer, name string, perm fs.FileMode, data []byte) error {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipTime}
	h.SetMode(perm)
	f, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return err
}
