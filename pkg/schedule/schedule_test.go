package schedule

import (
	"reflect"
	"testing"
)

func TestGroupsTransitive(t *testing.T) {
	items := []Item{
		{Name: "a", Shared: []string{"s1"}},
		{Name: "b", Shared: []string{"s2"}},
		{Name: "c", Shared: []string{"s1", "s3"}}, // joins a
		{Name: "d", Shared: []string{"s3"}},       // joins a through c
		{Name: "e"},                               // alone
		{Name: "f", Shared: []string{"s2"}},       // joins b
	}
	got := Groups(items)
	var idx [][]int
	for _, g := range got {
		idx = append(idx, g.Items)
	}
	want := [][]int{{0, 2, 3}, {1, 5}, {4}}
	if !reflect.DeepEqual(idx, want) {
		t.Fatalf("groups %v, want %v", idx, want)
	}
}

func TestGroupsJoinLaterRoots(t *testing.T) {
	// d links two groups formed earlier: the merged group keeps the
	// order of its first item.
	items := []Item{
		{Name: "a", Shared: []string{"x"}},
		{Name: "b", Shared: []string{"y"}},
		{Name: "c", Shared: []string{"y"}},
		{Name: "d", Shared: []string{"y", "x"}},
	}
	got := Groups(items)
	if len(got) != 1 || !reflect.DeepEqual(got[0].Items, []int{0, 1, 2, 3}) {
		t.Fatalf("groups %+v, want one of all four", got)
	}
}

func TestWeightCountsSharedWorkOnce(t *testing.T) {
	items := []Item{
		{Name: "a", Shared: []string{"build"}, Work: []string{"pull-gcc", "compile", "copy-a"}},
		{Name: "b", Shared: []string{"build"}, Work: []string{"pull-gcc", "compile", "copy-b"}},
		{Name: "c"},
	}
	gs := Groups(items)
	if len(gs) != 2 || gs[0].Weight != 4 || gs[1].Weight != 1 {
		t.Fatalf("groups %+v, want weights 4 (pull, compile, two copies) and 1", gs)
	}
}

func TestAssignBalances(t *testing.T) {
	groups := []Group{
		{Items: []int{0}, Weight: 5},
		{Items: []int{1}, Weight: 4},
		{Items: []int{2}, Weight: 3},
		{Items: []int{3}, Weight: 3},
		{Items: []int{4}, Weight: 1},
	}
	got, err := Assign(groups, []int{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	// 5 -> b0, 4 -> b1, 3 -> b1 (4 < 5), 3 -> b0 (5 < 7), 1 -> b1 (7 < 8).
	want := [][]int{{0, 3}, {1, 2, 4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assign %v, want %v", got, want)
	}
}

func TestAssignInitialLoads(t *testing.T) {
	groups := []Group{{Items: []int{0}, Weight: 2}, {Items: []int{1}, Weight: 2}}
	got, err := Assign(groups, []int{10, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{nil, {0}, {1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assign %v, want %v", got, want)
	}
}

func TestAssignNoBuilder(t *testing.T) {
	if _, err := Assign([]Group{{Items: []int{0}, Weight: 1}}, nil); err == nil {
		t.Fatal("no error without builders")
	}
}

func TestPartition(t *testing.T) {
	items := []Item{
		{Name: "gcc.a", Shared: []string{"gcc"}, Work: []string{"g", "1"}},
		{Name: "go.a", Shared: []string{"go"}, Work: []string{"o", "2"}},
		{Name: "gcc.b", Shared: []string{"gcc"}, Work: []string{"g", "3"}},
		{Name: "go.b", Shared: []string{"go"}, Work: []string{"o", "4"}},
		{Name: "py", Work: []string{"p"}},
	}
	got, err := Partition(items, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{0, 2, 4}, {1, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("partition %v, want %v", got, want)
	}
	one, err := Partition(items, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, [][]int{{0, 1, 2, 3, 4}}) {
		t.Fatalf("one builder: %v", one)
	}
}
