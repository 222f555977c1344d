package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// FS is read access to an image's root filesystem: a BuildKit reference
// through the gateway, or a directory on the host (DirFS). Names are
// absolute slash-separated paths in the image; nothing follows symlinks
// (Resolve does, inside the image).
type FS interface {
	// Lstat describes name without following a final symlink.
	Lstat(ctx context.Context, name string) (Stat, error)
	// ReadFile reads length bytes of name from off; length 0 reads to
	// the end. Reading past the end returns what there is.
	ReadFile(ctx context.Context, name string, off, length int64) ([]byte, error)
	// ReadDir lists the names in dir.
	ReadDir(ctx context.Context, dir string) ([]string, error)
}

// Stat is what Lstat says about a file.
type Stat struct {
	Mode     fs.FileMode
	Size     int64
	Linkname string // a symlink's target
}

// ErrNotExist is returned (wrapped) for a path that is not in the image.
var ErrNotExist = fs.ErrNotExist

// maxLinks bounds symlink resolution, as Linux's ELOOP does.
const maxLinks = 40

// Resolve follows symlinks in name, within the image (an absolute target
// starts at the image's root, as it would inside the container), and
// returns the final path and what is there. A missing component is an
// error wrapping ErrNotExist.
func Resolve(ctx context.Context, fsys FS, name string) (string, Stat, error) {
	links := 0
	var walk func(p string) (string, Stat, error)
	walk = func(p string) (string, Stat, error) {
		p = path.Clean("/" + p)
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := "/"
		st := Stat{Mode: fs.ModeDir | 0o755}
		for i, part := range parts {
			if part == "" {
				continue
			}
			next := path.Join(cur, part)
			s, err := fsys.Lstat(ctx, next)
			if err != nil {
				return next, Stat{}, err
			}
			if s.Mode&fs.ModeSymlink != 0 {
				links++
				if links > maxLinks {
					return next, Stat{}, fmt.Errorf("%s: too many levels of symbolic links", p)
				}
				target := s.Linkname
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				rest := path.Join(append([]string{target}, parts[i+1:]...)...)
				return walk(rest)
			}
			if i < len(parts)-1 && !s.Mode.IsDir() {
				return next, Stat{}, fmt.Errorf("%s: not a directory: %w", next, ErrNotExist)
			}
			cur, st = next, s
		}
		return cur, st, nil
	}
	return walk(name)
}

// exists reports whether name resolves to something in the image.
func exists(ctx context.Context, fsys FS, name string) bool {
	_, _, err := Resolve(ctx, fsys, name)
	return err == nil
}

// readerAt adapts a file of an FS to io.ReaderAt for debug/elf, reading
// it in blocks and keeping the blocks read.
type readerAt struct {
	ctx    context.Context
	fsys   FS
	name   string
	size   int64
	blocks map[int64][]byte
}

const blockSize = 256 << 10

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		start := pos - pos%blockSize
		b, ok := r.blocks[start]
		if !ok {
			var err error
			b, err = r.fsys.ReadFile(r.ctx, r.name, start, blockSize)
			if err != nil {
				return n, err
			}
			if len(b) == 0 {
				return n, io.EOF
			}
			r.blocks[start] = b
		}
		i := pos - start
		if i >= int64(len(b)) {
			return n, io.EOF
		}
		n += copy(p[n:], b[i:])
	}
	return n, nil
}

// DirFS is an FS over a directory of the host holding an image's root
// filesystem (an unpacked layer, a test tree).
type DirFS string

func (d DirFS) host(name string) string {
	return filepath.Join(string(d), filepath.FromSlash(path.Clean("/"+name)))
}

// Lstat implements FS.
func (d DirFS) Lstat(_ context.Context, name string) (Stat, error) {
	fi, err := os.Lstat(d.host(name))
	if err != nil {
		return Stat{}, err
	}
	st := Stat{Mode: fi.Mode(), Size: fi.Size()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.Linkname, err = os.Readlink(d.host(name)); err != nil {
			return Stat{}, err
		}
	}
	return st, nil
}

// ReadFile implements FS.
func (d DirFS) ReadFile(_ context.Context, name string, off, length int64) ([]byte, error) {
	f, err := os.Open(d.host(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	var rd io.Reader = f
	if length > 0 {
		rd = io.LimitReader(f, length)
	}
	data, err := io.ReadAll(rd)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// ReadDir implements FS.
func (d DirFS) ReadDir(_ context.Context, dir string) ([]string, error) {
	ents, err := os.ReadDir(d.host(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}
