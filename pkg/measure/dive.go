package measure

import (
	"path"
	"sort"
	"strings"
)

// dive's figures. dive (github.com/wagoodman/dive) counts waste its own
// way, and CI jobs gate on its numbers, so they are reproduced here as
// dive v0.13 computes them (dive/filetree/efficiency.go and
// dive/image/image.go), from the same layer entries:
//
//   - Each layer is a tree of the paths its tar entries name (the
//     directories on the way are nodes too, with an empty payload; an
//     entry replaces the payload of a node already there). A whiteout
//     ".wh.NAME" is a node of that name; an opaque marker adds only its
//     directory's nodes.
//   - Every leaf of every layer's tree (a node without children: files,
//     links, empty directories, whiteouts) is a copy of its path. A
//     copy's size is its tar header's size; a whiteout's is the total
//     size of what it removes if that was a directory (found in the lower
//     layers stacked as dive stacks them), zero if it was anything else.
//     A whiteout of a path the lower layers lack ends dive's walk of that
//     layer (it walks leaves in name order), and that path then counts
//     with a smallest copy of -1 bytes unless a copy was counted before.
//   - Wasted bytes: the sum of the sizes of every copy of each path with
//     more than one copy, the kept one included. Efficiency: the sum over
//     all paths of their smallest copy, over the sum of all copies (1 with
//     no bytes at all). The user wasted ratio: wasted bytes over the sizes
//     of every layer but the first (0 when those layers hold no bytes,
//     where dive divides by zero).
//
// Minikit's own WastedBytes counts only the copies that do not reach the
// final filesystem.

// A diveNode is a node of one of dive's trees.
type diveNode struct {
	children map[string]*diveNode
	size     int64 // the payload's size
	isDir    bool  // the payload is a directory
}

const diveWhiteout = ".wh."

func (n *diveNode) child(name string) *diveNode {
	c := n.children[name]
	if c == nil {
		c = &diveNode{}
		if n.children == nil {
			n.children = map[string]*diveNode{}
		}
		n.children[name] = c
	}
	return c
}

// addPath is dive's FileTree.AddPath: missing nodes are created with an
// empty payload, the last one gets payload (nil: none, for an opaque
// marker, which dive drops after creating its parents). A name starting
// with ".wh..wh." is never created.
func (n *diveNode) addPath(names []string, payload *diveNode) {
	for i, name := range names {
		if n.children[name] == nil && strings.HasPrefix(name, ".wh..wh.") {
			return
		}
		n = n.child(name)
		if i == len(names)-1 && payload != nil {
			n.size, n.isDir = payload.size, payload.isDir
		}
	}
}

func (n *diveNode) lookup(names []string) *diveNode {
	for _, name := range names {
		if n = n.children[name]; n == nil {
			return nil
		}
	}
	return n
}

func (n *diveNode) remove(names []string) {
	if len(names) == 0 {
		return
	}
	if parent := n.lookup(names[:len(names)-1]); parent != nil {
		delete(parent.children, names[len(names)-1])
	}
}

func (n *diveNode) copyTree() *diveNode {
	c := &diveNode{size: n.size, isDir: n.isDir}
	if len(n.children) > 0 {
		c.children = make(map[string]*diveNode, len(n.children))
		for name, ch := range n.children {
			c.children[name] = ch.copyTree()
		}
	}
	return c
}

// subtreeSize is the sum of the payload sizes of n and everything below.
func (n *diveNode) subtreeSize() int64 {
	s := n.size
	for _, c := range n.children {
		s += c.subtreeSize()
	}
	return s
}

func diveSortedNames(m map[string]*diveNode) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// diveTree builds a layer's tree as dive reads the layer.
func diveTree(l *layerStats) *diveNode {
	root := &diveNode{}
	for _, e := range l.entries {
		switch e.kind {
		case kindOpaque:
			root.addPath(append(components(e.path), ".wh..wh..opq"), nil)
		case kindWhiteout:
			dir, base := path.Split(e.path)
			root.addPath(append(components(dir), diveWhiteout+base), &diveNode{size: e.size})
		default:
			root.addPath(components(e.path), &diveNode{size: e.size, isDir: e.kind == kindDir})
		}
	}
	return root
}

// stack is dive's FileTree.Stack: upper's nodes, children first and in
// name order, are added to lower (a whiteout removes its path instead).
func (n *diveNode) stack(upper *diveNode) {
	var walk func(u *diveNode, names []string)
	walk = func(u *diveNode, names []string) {
		for _, name := range diveSortedNames(u.children) {
			walk(u.children[name], append(names, name))
		}
		if len(names) == 0 {
			return // the root
		}
		last := names[len(names)-1]
		p := append(append([]string{}, names[:len(names)-1]...), strings.TrimPrefix(last, diveWhiteout))
		if strings.HasPrefix(last, diveWhiteout) {
			n.remove(p)
			return
		}
		n.addPath(p, u)
	}
	walk(upper, nil)
}

// A diveLeaf is one copy of a path in one layer.
type diveLeaf struct {
	names    []string // the path, whiteout prefix removed
	node     *diveNode
	whiteout bool
}

// leaves lists a tree's leaves, in dive's walking order when sorted.
func (n *diveNode) leaves(sorted bool) []diveLeaf {
	var out []diveLeaf
	var walk func(n *diveNode, names []string)
	walk = func(n *diveNode, names []string) {
		if len(n.children) == 0 {
			if len(names) == 0 {
				return
			}
			last := names[len(names)-1]
			l := diveLeaf{names: append([]string{}, names...), node: n, whiteout: strings.HasPrefix(last, diveWhiteout)}
			if l.whiteout {
				l.names[len(l.names)-1] = strings.TrimPrefix(last, diveWhiteout)
			}
			out = append(out, l)
			return
		}
		if sorted {
			for _, name := range diveSortedNames(n.children) {
				walk(n.children[name], append(names, name))
			}
			return
		}
		for name, c := range n.children {
			walk(c, append(names, name))
		}
	}
	walk(n, nil)
	return out
}

// diveResult holds dive's figures for an image.
type diveResult struct {
	wasted          int64
	efficiency      float64
	userWastedRatio float64
}

func diveFigures(layers []*layerStats) diveResult {
	if len(layers) == 0 {
		return diveResult{efficiency: 1}
	}
	trees := make([]*diveNode, len(layers))
	for i, l := range layers {
		trees[i] = diveTree(l)
	}
	// stacked is what dive stacks below layer k: a copy of the first
	// layer, then the layers 0 to k-1 on it (StackTreeRange(trees, 0, k-1)).
	var stacked *diveNode
	stackedFor := 0
	below := func(k int) *diveNode {
		if stacked == nil {
			stacked, stackedFor = trees[0].copyTree(), 0
		}
		for ; stackedFor < k; stackedFor++ {
			stacked.stack(trees[stackedFor])
		}
		return stacked
	}
	// size is a copy's size; false for a whiteout of a missing path.
	size := func(k int, l diveLeaf) (int64, bool) {
		if !l.whiteout {
			return l.node.size, true
		}
		prev := below(k).lookup(l.names)
		if prev == nil {
			return 0, false
		}
		if prev.isDir {
			return prev.subtreeSize(), true
		}
		return 0, true
	}

	type pathCopies struct {
		total, smallest int64 // smallest is -1 until a copy is counted
		copies          int
	}
	paths := map[string]*pathCopies{}
	entry := func(l diveLeaf) *pathCopies {
		p := "/" + strings.Join(l.names, "/")
		c := paths[p]
		if c == nil {
			c = &pathCopies{smallest: -1}
			paths[p] = c
		}
		return c
	}
	for k, t := range trees {
		leaves := t.leaves(false)
		sizes := make([]int64, 0, len(leaves))
		for _, l := range leaves {
			s, ok := size(k, l)
			if !ok {
				// dive stops walking this layer at that leaf: walk
				// it again in dive's order, up to there. The leaf's
				// path is in dive's table by then, without a copy
				// (its smallest size stays -1, and counts so).
				leaves, sizes = t.leaves(true), sizes[:0]
				for _, l := range leaves {
					s, ok := size(k, l)
					if !ok {
						entry(l)
						break
					}
					sizes = append(sizes, s)
				}
				break
			}
			sizes = append(sizes, s)
		}
		for i, s := range sizes {
			c := entry(leaves[i])
			c.total += s
			if c.smallest < 0 || s < c.smallest {
				c.smallest = s
			}
			c.copies++
		}
	}
	var res diveResult
	var smallest, total int64
	for _, c := range paths {
		smallest += c.smallest
		total += c.total
		if c.copies > 1 {
			res.wasted += c.total
		}
	}
	res.efficiency = 1
	if total != 0 {
		res.efficiency = float64(smallest) / float64(total)
	}
	var user int64
	for _, l := range layers[1:] {
		for _, e := range l.entries {
			user += e.size
		}
	}
	if user != 0 {
		res.userWastedRatio = float64(res.wasted) / float64(user)
	}
	return res
}
