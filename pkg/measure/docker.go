package measure

import (
	"archive/tar"
	"strings"

	"github.com/minikit/minikit/pkg/imagefs"
)

// dockerLayer reproduces the size a Docker daemon with a graph driver of
// the overlay family (overlay2, fuse-overlayfs) records for a layer it
// loads, the figure whose sum `docker image inspect --format '{{.Size}}'`
// shows. The daemon unpacks the layer's tar stream alone into a directory,
// as its archive package does (an entry replaces what an earlier entry of
// the same stream left at its path, except a directory over a directory;
// a whiteout becomes a 0/0 character device, an opaque whiteout an
// extended attribute), then adds up the Lstat sizes of everything in it
// but directories, each inode once: a regular file counts its length, a
// symbolic link the length of its target, a hard link nothing more, a
// whiteout, device or fifo nothing. Tar headers and padding do not count.
type dockerLayer struct {
	paths  map[string]dockerNode // by absolute, cleaned path
	inodes []int64               // the size of each inode written
}

type dockerNode struct {
	dir   bool
	inode int // index in inodes; -1 for a node that counts nothing
}

func newDockerLayer() *dockerLayer { return &dockerLayer{paths: map[string]dockerNode{}} }

// add applies one tar header.
func (d *dockerLayer) add(hdr *tar.Header) {
	p, change := imagefs.Classify(hdr.Name)
	switch {
	case change == imagefs.Opaque:
		return // an extended attribute of the directory
	case change == imagefs.Remove:
		d.removeAll(p)
		d.paths[p] = dockerNode{inode: -1}
		return
	case p == "/":
		return
	}
	isDir := hdr.Typeflag == tar.TypeDir
	if old, ok := d.paths[p]; ok {
		if old.dir && isDir {
			return // merged: only metadata changes
		}
		d.removeAll(p)
	}
	n := dockerNode{dir: isDir, inode: -1}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		n.inode = d.newInode(hdr.Size)
	case tar.TypeSymlink:
		n.inode = d.newInode(int64(len(hdr.Linkname)))
	case tar.TypeLink:
		if t, ok := d.paths[cleanPath(hdr.Linkname)]; ok && !t.dir {
			n.inode = t.inode
		}
	}
	d.paths[p] = n
}

func (d *dockerLayer) newInode(size int64) int {
	d.inodes = append(d.inodes, size)
	return len(d.inodes) - 1
}

// removeAll removes p and everything under it.
func (d *dockerLayer) removeAll(p string) {
	delete(d.paths, p)
	prefix := p + "/"
	for q := range d.paths {
		if strings.HasPrefix(q, prefix) {
			delete(d.paths, q)
		}
	}
}

// size is what the daemon counts for the unpacked layer.
func (d *dockerLayer) size() int64 {
	seen := make(map[int]bool, len(d.inodes))
	var total int64
	for _, n := range d.paths {
		if n.inode < 0 || seen[n.inode] {
			continue
		}
		seen[n.inode] = true
		total += d.inodes[n.inode]
	}
	return total
}
