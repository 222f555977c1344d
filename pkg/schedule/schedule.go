// Package schedule spreads work over several builders: items that share
// some work (a build stage) are grouped so that the shared work is done
// once, on one builder, and the groups are balanced by weight.
//
// It knows nothing of BuildKit: an item is a name, the keys of the work it
// shares with others, and the keys of all the work it needs.
package schedule

import (
	"cmp"
	"fmt"
	"slices"
)

// An Item is one unit to place (a recipe).
type Item struct {
	Name string
	// Shared are the keys of the work this item may share with others (the
	// digests of its build stages): items with a key in common, directly
	// or through other items, end up in one group.
	Shared []string
	// Work are the keys of every piece of work the item needs (its LLB
	// vertices): a group weighs as many distinct keys as its items need
	// together. Empty: the item weighs 1.
	Work []string
}

// A Group is a set of items that must go to the same builder.
type Group struct {
	// Items are indices into the items given to Groups, ascending.
	Items []int
	// Weight is the number of distinct work keys of the group's items.
	Weight int
}

// Groups partitions items into groups: two items are in the same group
// when they share a key, directly or through a chain of items. Groups come
// in the order of their first item.
func Groups(items []Item) []Group {
	parent := make([]int, len(items))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{} // shared key -> first item holding it
	for i, it := range items {
		for _, k := range it.Shared {
			j, ok := owner[k]
			if !ok {
				owner[k] = i
				continue
			}
			ri, rj := find(i), find(j)
			if ri != rj {
				// The smaller index is the root: groups keep the order of
				// their first item.
				if ri < rj {
					parent[rj] = ri
				} else {
					parent[ri] = rj
				}
			}
		}
	}
	index := map[int]int{} // root -> position in out
	var out []Group
	for i := range items {
		r := find(i)
		g, ok := index[r]
		if !ok {
			g = len(out)
			index[r] = g
			out = append(out, Group{})
		}
		out[g].Items = append(out[g].Items, i)
	}
	for gi := range out {
		out[gi].Weight = weight(items, out[gi].Items)
	}
	return out
}

// Weight is the number of distinct work keys the items at idx need
// together (an item without work keys counts 1).
func Weight(items []Item, idx []int) int { return weight(items, idx) }

func weight(items []Item, idx []int) int {
	seen := map[string]bool{}
	n := 0
	for _, i := range idx {
		if len(items[i].Work) == 0 {
			n++
			continue
		}
		for _, k := range items[i].Work {
			if !seen[k] {
				seen[k] = true
				n++
			}
		}
	}
	return n
}

// Assign places whole groups on builders, heaviest group first, each on
// the builder with the least load so far (ties: the lower index). loads
// gives the builders' initial loads (work already queued on them); its
// length is the number of builders. It returns, per builder, the indices
// of the groups placed on it, ascending.
func Assign(groups []Group, loads []int) ([][]int, error) {
	if len(loads) == 0 {
		return nil, fmt.Errorf("assign %d group(s): no builder", len(groups))
	}
	load := slices.Clone(loads)
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(groups[b].Weight, groups[a].Weight); c != 0 {
			return c
		}
		return cmp.Compare(len(groups[b].Items), len(groups[a].Items))
	})
	out := make([][]int, len(loads))
	for _, g := range order {
		best := 0
		for b := 1; b < len(load); b++ {
			if load[b] < load[best] {
				best = b
			}
		}
		out[best] = append(out[best], g)
		load[best] += max(groups[g].Weight, 1)
	}
	for _, gs := range out {
		slices.Sort(gs)
	}
	return out, nil
}

// Partition groups items and assigns the groups to n builders with no
// load yet: it returns, per builder, the indices of its items, ascending.
func Partition(items []Item, n int) ([][]int, error) {
	groups := Groups(items)
	byBuilder, err := Assign(groups, make([]int, n))
	if err != nil {
		return nil, err
	}
	out := make([][]int, n)
	for b, gs := range byBuilder {
		for _, g := range gs {
			out[b] = append(out[b], groups[g].Items...)
		}
		slices.Sort(out[b])
	}
	return out, nil
}
