package llbdefs

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/minikit/minikit/internal/editdist"
)

// Lookup finds a recipe by exact name.
func Lookup(recipes []Recipe, name string) (Recipe, bool) {
	for _, r := range recipes {
		if r.Name == name {
			return r, true
		}
	}
	return Recipe{}, false
}

// UnknownError is returned by Select for a name or pattern that matches no
// recipe; it carries the closest names.
type UnknownError struct {
	Pattern    string
	Suggestion []string
}

func (e *UnknownError) Error() string {
	msg := fmt.Sprintf("no recipe matches %q", e.Pattern)
	if len(e.Suggestion) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestion, ", ") + "?"
	}
	return msg + " ('minikit list' shows every name)"
}

// Select returns the recipes matching any of the names or glob patterns
// ('hello-go.*'), in catalog order, each once. A pattern that matches
// nothing is an *UnknownError: nothing is selected.
func Select(recipes []Recipe, patterns ...string) ([]Recipe, error) {
	picked := make([]bool, len(recipes))
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", p, err)
		}
		n := 0
		for i, r := range recipes {
			if ok, _ := path.Match(p, r.Name); ok {
				picked[i] = true
				n++
			}
		}
		if n == 0 {
			return nil, &UnknownError{Pattern: p, Suggestion: closest(recipes, p, 3)}
		}
	}
	var out []Recipe
	for i, r := range recipes {
		if picked[i] {
			out = append(out, r)
		}
	}
	return out, nil
}

// closest returns up to n recipe names nearest to s by edit distance,
// preferring names that contain s.
func closest(recipes []Recipe, s string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, r := range recipes {
		d := editdist.Levenshtein(s, r.Name)
		if strings.Contains(r.Name, s) {
			d = min(d, abs(len(r.Name)-len(s))/4)
		}
		cs = append(cs, cand{r.Name, d})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	limit := max(3, len(s)/2)
	var out []string
	for _, c := range cs {
		if len(out) == n || c.d > limit {
			break
		}
		out = append(out, c.name)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
