package standin

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/minikit/minikit/pkg/imagefs"
)

// fixedTime is the modification time of the files minikit generates itself.
var fixedTime = time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)

// The whiteout names, as minikit's one image reader (pkg/imagefs) reads them.
const (
	whiteoutPrefix = imagefs.WhiteoutPrefix
	whiteoutOpaque = imagefs.WhiteoutOpaque
)

// layerWriter writes a gzipped layer tar, entries in the order given.
type layerWriter struct {
	f   *os.File
	bw  *bufio.Writer
	gz  *gzip.Writer
	tw  *tar.Writer
	raw int64 // uncompressed bytes of file contents written
}

func newLayerWriter(file string) (*layerWriter, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("create layer file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &layerWriter{f: f, bw: bw, gz: gz, tw: tar.NewWriter(gz)}, nil
}

func (w *layerWriter) header(h *tar.Header) error {
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("tar header %s: %w", h.Name, err)
	}
	return nil
}

func (w *layerWriter) file(h *tar.Header, r io.Reader) error {
	if err := w.header(h); err != nil {
		return err
	}
	n, err := io.Copy(w.tw, r)
	w.raw += n
	if err != nil {
		return fmt.Errorf("tar contents %s: %w", h.Name, err)
	}
	return nil
}

// Close finishes the layer and reports the first error.
func (w *layerWriter) Close() error {
	err := w.tw.Close()
	if e := w.gz.Close(); err == nil {
		err = e
	}
	if e := w.bw.Flush(); err == nil {
		err = e
	}
	if e := w.f.Sync(); err == nil {
		err = e
	}
	if e := w.f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("finish layer %s: %w", w.f.Name(), err)
	}
	return nil
}

// abort closes without caring about errors and removes the file.
func (w *layerWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

// treeOptions tunes how a directory tree becomes layer entries.
type treeOptions struct {
	// skipContents lists directories (slash paths relative to the root)
	// whose contents are left out; the directory itself is kept.
	skipContents []string
	// overlay: the tree is an overlayfs upper dir. Character devices 0/0
	// become whiteouts and opaque directories get a .wh..wh..opq entry.
	overlay bool
	// isWhiteout and isOpaque override the overlayfs checks (tests).
	isWhiteout func(full string, fi fs.FileInfo) bool
	isOpaque   func(full string) bool
	// lower, when set, is the tree under the overlay: opaque markers on
	// directories it does not have hide nothing and are left out.
	lower string
}

func (o treeOptions) hidesLower(rel string) bool {
	if o.lower == "" {
		return true
	}
	_, err := os.Lstat(filepath.Join(o.lower, filepath.FromSlash(rel)))
	return err == nil
}

func overlayWhiteout(_ string, fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

func overlayOpaque(full string) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		n, err := unix.Lgetxattr(full, attr, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// writeTree adds every entry under root (not root itself) to w, sorted by
// path, with numeric owners, hard links as links, and whiteouts if asked.
func writeTree(w *layerWriter, root string, o treeOptions) error {
	if o.overlay {
		if o.isWhiteout == nil {
			o.isWhiteout = overlayWhiteout
		}
		if o.isOpaque == nil {
			o.isOpaque = overlayOpaque
		}
	}
	skip := map[string]bool{}
	for _, s := range o.skipContents {
		skip[strings.Trim(s, "/")] = true
	}
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}

	return filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", full, err)
		}
		if full == root {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return fmt.Errorf("walk %s: %w", full, err)
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", full, err)
		}
		if o.isWhiteout != nil && o.isWhiteout(full, fi) {
			dir, base := path.Split(rel)
			return w.header(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     dir + whiteoutPrefix + base,
				Mode:     0o644,
				ModTime:  fixedTime,
				Format:   tar.FormatPAX,
			})
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil // sockets do not belong in images
		}
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(full); err != nil {
				return fmt.Errorf("readlink %s: %w", full, err)
			}
		}
		h, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("tar header for %s: %w", full, err)
		}
		h.Name = rel
		h.Uname, h.Gname = "", ""
		h.ModTime = fi.ModTime().Truncate(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, seen := links[key]; seen {
					h.Typeflag = tar.TypeLink
					h.Linkname = first
					h.Size = 0
					return w.header(h)
				}
				links[key] = rel
			}
		}
		switch {
		case fi.IsDir():
			h.Name = rel + "/"
			if err := w.header(h); err != nil {
				return err
			}
			if o.isOpaque != nil && o.isOpaque(full) && o.hidesLower(rel) {
				if err := w.header(&tar.Header{
					Typeflag: tar.TypeReg,
					Name:     rel + "/" + whiteoutOpaque,
					Mode:     0o644,
					ModTime:  fixedTime,
					Format:   tar.FormatPAX,
				}); err != nil {
					return err
				}
			}
			if skip[rel] {
				return fs.SkipDir
			}
			return nil
		case fi.Mode().IsRegular():
			f, err := os.Open(full)
			if err != nil {
				return fmt.Errorf("open %s: %w", full, err)
			}
			defer f.Close()
			return w.file(h, f)
		default:
			return w.header(h)
		}
	})
}

// genEntry is one entry minikit generates (not read from a tree).
type genEntry struct {
	hdr  tar.Header
	open func() (io.ReadCloser, error) // regular files only
}

// writeEntries writes entries sorted by name, adding missing parent
// directories (mode 0755, root) so the layer stands on its own.
func writeEntries(w *layerWriter, entries []genEntry) error {
	have := map[string]bool{}
	for _, e := range entries {
		have[strings.TrimSuffix(e.hdr.Name, "/")] = true
	}
	for _, e := range entries {
		for dir := path.Dir(strings.TrimSuffix(e.hdr.Name, "/")); dir != "." && dir != "/" && !have[dir]; dir = path.Dir(dir) {
			have[dir] = true
			entries = append(entries, dirEntry(dir, 0o755))
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		return strings.TrimSuffix(entries[i].hdr.Name, "/") < strings.TrimSuffix(entries[j].hdr.Name, "/")
	})
	for i := range entries {
		e := &entries[i]
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = fixedTime
		}
		h.Format = tar.FormatPAX
		if h.Typeflag != tar.TypeReg || e.open == nil {
			if err := w.header(&h); err != nil {
				return err
			}
			continue
		}
		rc, err := e.open()
		if err != nil {
			return fmt.Errorf("open %s: %w", h.Name, err)
		}
		err = w.file(&h, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func dirEntry(name string, mode int64) genEntry {
	return genEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/", Mode: mode}}
}

// extractLayer applies one (uncompressed) layer tar onto dir, honouring
// whiteouts. It refuses entries that would land outside dir.
func extractLayer(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	safeDirs := map[string]bool{".": true}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		rel, err := cleanRel(h.Name)
		if err != nil {
			return err
		}
		if rel == "." {
			continue
		}
		parent := path.Dir(rel)
		if err := checkNoSymlinks(dir, parent, safeDirs); err != nil {
			return err
		}
		full := filepath.Join(dir, filepath.FromSlash(rel))
		target, change := imagefs.Classify(rel) // a whiteout's victim, an opaque marker's directory
		targetFull := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(target, "/")))
		if change == imagefs.Opaque {
			pd := targetFull
			ents, err := os.ReadDir(pd)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("opaque %s: %w", rel, err)
			}
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(pd, e.Name())); err != nil {
					return fmt.Errorf("opaque %s: %w", rel, err)
				}
			}
			continue
		}
		if change == imagefs.Remove {
			victim := targetFull
			if err := os.RemoveAll(victim); err != nil {
				return fmt.Errorf("whiteout %s: %w", rel, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("extract %s: %w", rel, err)
		}
		if h.Typeflag != tar.TypeDir {
			if err := os.RemoveAll(full); err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(full); err == nil && !fi.IsDir() {
				if err := os.Remove(full); err != nil {
					return fmt.Errorf("extract %s: %w", rel, err)
				}
			}
			if err := os.Mkdir(full, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
			safeDirs[rel] = true
		case tar.TypeReg:
			f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
			_, err = io.Copy(f, tr)
			if e := f.Close(); err == nil {
				err = e
			}
			if err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, full); err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
		case tar.TypeLink:
			lrel, err := cleanRel(h.Linkname)
			if err != nil {
				return err
			}
			if err := checkNoSymlinks(dir, path.Dir(lrel), safeDirs); err != nil {
				return err
			}
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(lrel)), full); err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
			continue // the link shares the target's owner and mode
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			m := uint32(mode)
			switch h.Typeflag {
			case tar.TypeChar:
				m |= unix.S_IFCHR
			case tar.TypeBlock:
				m |= unix.S_IFBLK
			default:
				m |= unix.S_IFIFO
			}
			if err := unix.Mknod(full, m, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				return fmt.Errorf("extract %s: %w", rel, err)
			}
		default:
			continue // unknown types are skipped
		}
		if err := os.Lchown(full, h.Uid, h.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("chown %s: %w", rel, err)
		}
		if h.Typeflag == tar.TypeSymlink {
			continue
		}
		// chmod after chown: chown clears setuid bits.
		if err := os.Chmod(full, tarMode(h.Mode)); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
		if h.Typeflag == tar.TypeReg {
			if err := os.Chtimes(full, h.ModTime, h.ModTime); err != nil {
				return fmt.Errorf("chtimes %s: %w", rel, err)
			}
		}
	}
}

// tarMode converts a tar header mode (with Unix special bits) to fs.FileMode.
func tarMode(m int64) fs.FileMode {
	mode := fs.FileMode(m).Perm()
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// cleanRel turns a tar entry name into a clean slash path inside the root.
func cleanRel(name string) (string, error) {
	rel := path.Clean("/" + name)[1:]
	if rel == "" {
		return ".", nil
	}
	if strings.Contains(name, "..") {
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				return "", fmt.Errorf("layer entry %q escapes the root", name)
			}
		}
	}
	return rel, nil
}

// checkNoSymlinks makes sure no component of rel (a directory) is a
// symlink, so extraction cannot be redirected outside root.
func checkNoSymlinks(root, rel string, safe map[string]bool) error {
	if safe[rel] {
		return nil
	}
	if err := checkNoSymlinks(root, path.Dir(rel), safe); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // will be created as a plain directory
	case err != nil:
		return fmt.Errorf("extract: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("layer entry under %q goes through a symlink", rel)
	}
	safe[rel] = true
	return nil
}
