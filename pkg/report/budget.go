package report

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// A Violation is a built recipe whose image is larger than its budget.
type Violation struct {
	Recipe string `json:"recipe"`
	// Pattern is the budget's key (a recipe name or a glob), "" for the
	// recipe's own Budget.
	Pattern      string `json:"pattern,omitempty"`
	Budget       int64  `json:"budget"`
	Uncompressed int64  `json:"uncompressed"`
}

func (v Violation) String() string {
	from := ""
	if v.Pattern != "" && v.Pattern != v.Recipe {
		from = " (" + v.Pattern + ")"
	}
	return fmt.Sprintf("%s: %s uncompressed, over its budget of %s%s by %s",
		v.Recipe, FormatBytes(v.Uncompressed), FormatBytes(v.Budget), from, FormatBytes(v.Uncompressed-v.Budget))
}

// CheckBudgets returns the built recipes whose uncompressed size exceeds
// their budget, in the report's order. A recipe's budget is the one keyed
// by its exact name, else the smallest of those whose glob (path.Match
// syntax: 'hello-go.*') matches it, else its own Recipe.Budget. A key that
// is not a valid glob matches only itself; budgets of 0 or less are none.
func CheckBudgets(rep *Report, budgets map[string]int64) []Violation {
	if rep == nil {
		return nil
	}
	var out []Violation
	for _, r := range rep.Recipes {
		if r.Image == nil {
			continue
		}
		pattern, budget := budgetFor(r, budgets)
		if budget > 0 && r.Image.Uncompressed > budget {
			out = append(out, Violation{Recipe: r.Name, Pattern: pattern, Budget: budget, Uncompressed: r.Image.Uncompressed})
		}
	}
	return out
}

func budgetFor(r Recipe, budgets map[string]int64) (string, int64) {
	if b, ok := budgets[r.Name]; ok && b > 0 {
		return r.Name, b
	}
	pattern, budget := "", int64(0)
	for p, b := range budgets {
		if b <= 0 || !budgetApplies(p, r.Name) {
			continue
		}
		if budget == 0 || b < budget || (b == budget && p < pattern) {
			pattern, budget = p, b
		}
	}
	if budget > 0 {
		return pattern, budget
	}
	return "", r.Budget
}

// budgetApplies reports whether the budget keyed by key (a recipe name or a
// glob) applies to the recipe named name. A key that is not a valid glob
// matches only itself.
func budgetApplies(key, name string) bool {
	if key == name {
		return true
	}
	ok, err := path.Match(key, name)
	return err == nil && ok
}

// UnmatchedBudgets returns, sorted, the keys of budgets that apply to none
// of the recipes named: a misspelt name or glob that would otherwise leave
// its budget silently unchecked.
func UnmatchedBudgets(budgets map[string]int64, names []string) []string {
	var out []string
	for key := range budgets {
		if !slices.ContainsFunc(names, func(n string) bool { return budgetApplies(key, n) }) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// ParseBudget parses "NAME=SIZE", NAME a recipe name or glob and SIZE as
// ParseBytes reads it: "hello-go.*=2MiB".
func ParseBudget(s string) (string, int64, error) {
	name, size, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok {
		return "", 0, fmt.Errorf("budget %q: want NAME=SIZE, as in 'hello-go.*=2MB'", s)
	}
	if name == "" {
		return "", 0, fmt.Errorf("budget %q: no recipe name or glob before '='", s)
	}
	if _, err := path.Match(name, ""); err != nil {
		return "", 0, fmt.Errorf("budget %q: bad glob %q: %w", s, name, err)
	}
	n, err := ParseBytes(size)
	if err != nil {
		return "", 0, fmt.Errorf("budget %q: %w", s, err)
	}
	if n <= 0 {
		return "", 0, fmt.Errorf("budget %q: the size must be more than 0", s)
	}
	return name, n, nil
}

var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15, "e": 1e18, "eb": 1e18,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
	"pi": 1 << 50, "pib": 1 << 50, "ei": 1 << 60, "eib": 1 << 60,
}

// ParseBytes parses a size: plain bytes ("1500000"), or a number with an
// SI ("20kB", "1.5MB", "2GB": powers of 1000) or IEC ("2MiB": powers of
// 1024) unit, case-insensitive, a space allowed before the unit: what
// FormatBytes writes reads back. A fractional result is rounded to the
// nearest byte.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size: want bytes, or a number with a unit (20kB, 1.5MB, 2MiB)")
	}
	i := strings.IndexFunc(t, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.'
	})
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q; want B, kB, MB, GB, TB, PB, EB or KiB, MiB, GiB, TiB, PiB, EiB", s, t[i:])
	}
	if mult == 1 && !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("size %q: %w", s, err)
		}
		return n, nil
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: bad number %q", s, num)
	}
	v = math.Round(v * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}
