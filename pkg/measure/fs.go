package measure

import (
	"sort"
	"strings"
)

// A node is a path of the filesystem that the layers build up.
type node struct {
	children map[string]*node
	file     bool // a regular file (else a directory or another kind)
	size     int64
	layer    int
}

// merged is the final filesystem of a stack of layers, and what the upper
// layers hid of the lower ones.
type merged struct {
	files       int
	fileBytes   int64
	largest     []File // every regular file, largest first
	wasted      []File // every hidden file version, largest first
	wastedBytes int64
}

// mergeLayers applies the layers bottom to top, as a container runtime
// does (OCI image-spec, "Applying Changesets"): a whiteout removes a path
// of the lower layers, an opaque whiteout the contents of a directory, and
// an entry replaces whatever the lower layers had at its path. A regular
// file version that does not survive is wasted.
func mergeLayers(layers []*layerStats) merged {
	root := &node{}
	var m merged
	hide := func(n *node, p string, by int, removed bool) {
		walkFiles(n, p, func(p string, f *node) {
			m.wasted = append(m.wasted, File{Path: p, Size: f.size, Layer: f.layer, ShadowedBy: by, Removed: removed})
			m.wastedBytes += f.size
		})
	}
	for i, l := range layers {
		// Whiteouts apply to the lower layers only: first.
		for _, e := range l.entries {
			switch e.kind {
			case kindWhiteout:
				parent, name := lookupParent(root, e.path)
				if parent == nil {
					continue
				}
				if n := parent.children[name]; n != nil {
					hide(n, e.path, i, true)
					delete(parent.children, name)
				}
			case kindOpaque:
				if n := lookup(root, e.path); n != nil {
					for name, c := range n.children {
						hide(c, joinPath(e.path, name), i, true)
					}
					n.children = nil
				}
			}
		}
		for _, e := range l.entries {
			if e.kind == kindWhiteout || e.kind == kindOpaque {
				continue
			}
			n := create(root, e.path, func(p string, f *node) { hide(f, p, i, false) })
			if n.file {
				hide(n, e.path, i, false)
				n.file = false
			}
			if e.kind != kindDir && len(n.children) > 0 {
				for name, c := range n.children {
					hide(c, joinPath(e.path, name), i, false)
				}
				n.children = nil
			}
			if e.kind == kindFile {
				n.file, n.size, n.layer = true, e.size, i
			}
		}
	}
	walkFiles(root, "/", func(p string, f *node) {
		m.largest = append(m.largest, File{Path: p, Size: f.size, Layer: f.layer})
		m.files++
		m.fileBytes += f.size
	})
	sortFiles(m.largest)
	sortFiles(m.wasted)
	return m
}

func sortFiles(fs []File) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Size != fs[j].Size {
			return fs[i].Size > fs[j].Size
		}
		if fs[i].Path != fs[j].Path {
			return fs[i].Path < fs[j].Path
		}
		return fs[i].Layer < fs[j].Layer
	})
}

func topFiles(fs []File, n int) []File {
	if len(fs) > n {
		fs = fs[:n]
	}
	return append([]File{}, fs...)
}

func components(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// lookup returns the node at p, nil if there is none.
func lookup(root *node, p string) *node {
	n := root
	for _, c := range components(p) {
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

// lookupParent returns the node of p's directory and p's last component;
// nil if the directory does not exist.
func lookupParent(root *node, p string) (*node, string) {
	cs := components(p)
	if len(cs) == 0 {
		return nil, ""
	}
	dir := lookup(root, "/"+strings.Join(cs[:len(cs)-1], "/"))
	return dir, cs[len(cs)-1]
}

// create returns the node at p, creating it and its parent directories; a
// regular file in the way of a parent directory is replaced, and passed to
// replaced first.
func create(root *node, p string, replaced func(string, *node)) *node {
	n := root
	cur := "/"
	for _, c := range components(p) {
		cur = joinPath(cur, c)
		if n.file {
			replaced(strings.TrimSuffix(cur, "/"+c), n)
			n.file = false
		}
		child := n.children[c]
		if child == nil {
			child = &node{}
			if n.children == nil {
				n.children = map[string]*node{}
			}
			n.children[c] = child
		}
		n = child
	}
	return n
}

// walkFiles calls fn for every regular file at or under n, whose path is p.
func walkFiles(n *node, p string, fn func(string, *node)) {
	if n.file {
		fn(p, n)
	}
	for name, c := range n.children {
		walkFiles(c, joinPath(p, name), fn)
	}
}
