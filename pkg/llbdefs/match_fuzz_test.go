package llbdefs

import (
	"errors"
	"path"
	"slices"
	"testing"
)

// FuzzSelect: a name or glob selects exactly the recipes it matches, in
// catalog order, each once; one that matches none is an *UnknownError
// naming it, whose suggestions are recipe names; a malformed glob is an
// error. Nothing panics. Seeds: testdata/fuzz/FuzzSelect.
func FuzzSelect(f *testing.F) {
	all := All()
	names := make([]string, len(all))
	for i, r := range all {
		names[i] = r.Name
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := Select(all, pattern)
		var matching []string
		_, badGlob := path.Match(pattern, "")
		if badGlob == nil {
			for _, n := range names {
				if ok, _ := path.Match(pattern, n); ok {
					matching = append(matching, n)
				}
			}
		}
		var unknown *UnknownError
		switch {
		case badGlob != nil:
			if err == nil || errors.As(err, &unknown) {
				t.Fatalf("Select(%q), a malformed glob: %v, %v", pattern, nameList(got), err)
			}
		case len(matching) == 0:
			if !errors.As(err, &unknown) || unknown.Pattern != pattern || got != nil {
				t.Fatalf("Select(%q), matching nothing: %v, %v; want an *UnknownError naming it", pattern, nameList(got), err)
			}
			if len(unknown.Suggestion) > 3 {
				t.Errorf("Select(%q): %d suggestions", pattern, len(unknown.Suggestion))
			}
			for _, s := range unknown.Suggestion {
				if !slices.Contains(names, s) {
					t.Errorf("Select(%q) suggests %q, no recipe", pattern, s)
				}
			}
		default:
			if err != nil || !slices.Equal(nameList(got), matching) {
				t.Fatalf("Select(%q) = %v, %v; want %v", pattern, nameList(got), err, matching)
			}
		}
	})
}

func nameList(rs []Recipe) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}
