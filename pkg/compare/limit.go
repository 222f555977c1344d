package compare

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/minikit/minikit/pkg/report"
)

// ErrBadLimit marks a growth limit that cannot be used: it does not
// parse, it repeats another one, or its name or glob matches no recipe of
// either report.
var ErrBadLimit = errors.New("bad growth limit")

// A Metric is the size a growth limit applies to.
type Metric string

// The sizes a growth limit can apply to, named as in the JSON report.
const (
	Uncompressed Metric = "uncompressed" // the layers' tar streams (what --max-size checks)
	Compressed   Metric = "compressed"   // the layer blobs: what a pull transfers
)

// A Limit is how much a recipe's size may grow from the old report to the
// new one: relatively (Percent of the old size) or absolutely (Bytes).
// Growing by exactly the limit is allowed; shrinking always is.
type Limit struct {
	// Pattern is the recipe name or glob (path.Match syntax) the limit
	// applies to; "" for every recipe.
	Pattern string `json:"pattern,omitempty"`
	// Relative says which of Percent and Bytes is the limit.
	Relative bool    `json:"relative"`
	Percent  float64 `json:"percent,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"`
}

// ParseLimit parses a growth limit: "5%" (relative to the old size),
// "200kB" (absolute, in report.ParseBytes's syntax: bytes, or a number
// with an SI or IEC unit), either one prefixed by a recipe name or glob
// and '=' to apply to those recipes only ("hello-go.*=10%",
// "pyds.python=1MiB"). A percentage is a plain decimal number (digits and
// at most one '.') followed by '%'; both kinds may be 0 (no growth at
// all).
func ParseLimit(s string) (Limit, error) {
	var l Limit
	value := s
	if name, v, ok := strings.Cut(s, "="); ok {
		name = strings.TrimSpace(name)
		if name == "" {
			return Limit{}, fmt.Errorf("%w %q: no recipe name or glob before '='", ErrBadLimit, s)
		}
		if _, err := path.Match(name, ""); err != nil {
			return Limit{}, fmt.Errorf("%w %q: bad glob %q: %w", ErrBadLimit, s, name, err)
		}
		l.Pattern, value = name, v
	}
	value = strings.TrimSpace(value)
	if num, ok := strings.CutSuffix(value, "%"); ok {
		num = strings.TrimSpace(num)
		if !decimal(num) {
			return Limit{}, fmt.Errorf("%w %q: want a percentage such as 5%% or 2.5%%", ErrBadLimit, s)
		}
		p, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsInf(p, 0) {
			return Limit{}, fmt.Errorf("%w %q: percentage %q out of range", ErrBadLimit, s, num)
		}
		l.Relative, l.Percent = true, p
		return l, nil
	}
	n, err := report.ParseBytes(value)
	if err != nil {
		return Limit{}, fmt.Errorf("%w %q: want a percentage (5%%) or a size (200kB, 1MiB): %w", ErrBadLimit, s, err)
	}
	l.Bytes = n
	return l, nil
}

// decimal reports whether s is digits with at most one '.', and at least
// one digit.
func decimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// Value is the limit without its pattern, in a form ParseLimit reads
// back exactly: "5%", "200 kB", "1048576".
func (l Limit) Value() string {
	if l.Relative {
		return strconv.FormatFloat(l.Percent, 'f', -1, 64) + "%"
	}
	if f := report.FormatBytes(l.Bytes); exactly(f, l.Bytes) {
		return f
	}
	return strconv.FormatInt(l.Bytes, 10)
}

func exactly(s string, n int64) bool {
	back, err := report.ParseBytes(s)
	return err == nil && back == n
}

// String is the limit as ParseLimit reads it: "5%", "hello-go.*=200 kB".
func (l Limit) String() string {
	if l.Pattern == "" {
		return l.Value()
	}
	return l.Pattern + "=" + l.Value()
}

// applies reports whether the limit applies to the recipe named name: no
// pattern, the name itself, or a glob matching it (a key that is not a
// valid glob matches only itself).
func (l Limit) applies(name string) bool {
	if l.Pattern == "" || l.Pattern == name {
		return true
	}
	ok, err := path.Match(l.Pattern, name)
	return err == nil && ok
}

// exceeded reports whether growing from oldSize to newSize bytes goes
// over the limit.
func (l Limit) exceeded(oldSize, newSize int64) bool {
	growth := newSize - oldSize
	if growth <= 0 {
		return false
	}
	if !l.Relative {
		return growth > l.Bytes
	}
	if oldSize == 0 {
		return true // any growth from nothing is infinitely many percent
	}
	return float64(growth)*100 > l.Percent*float64(oldSize)
}

// rank orders the limits of one kind that apply to a recipe: an exact
// name first, then a glob, then the limit for every recipe. Lower wins.
func (l Limit) rank(name string) int {
	switch l.Pattern {
	case name:
		return 0
	case "":
		return 2
	}
	return 1
}

// tighter reports whether l is a stricter limit than m of the same kind.
func (l Limit) tighter(m Limit) bool {
	if l.Relative {
		return l.Percent < m.Percent
	}
	return l.Bytes < m.Bytes
}

// limitsFor picks, out of limits, the relative and the absolute limit
// that apply to the recipe named name (each may be absent): the one keyed
// by its exact name, else the tightest of the globs that match it, else
// the one for every recipe; ties go to the pattern that sorts first.
func limitsFor(limits []Limit, name string) []Limit {
	var rel, abs *Limit
	for i := range limits {
		l := &limits[i]
		if !l.applies(name) {
			continue
		}
		best := &abs
		if l.Relative {
			best = &rel
		}
		switch b := *best; {
		case b == nil,
			l.rank(name) < b.rank(name),
			l.rank(name) == b.rank(name) && l.tighter(*b),
			l.rank(name) == b.rank(name) && !b.tighter(*l) && l.Pattern < b.Pattern:
			*best = l
		}
	}
	var out []Limit
	for _, l := range []*Limit{rel, abs} {
		if l != nil {
			out = append(out, *l)
		}
	}
	return out
}

// checkLimits reports limits of one metric that repeat another (same
// pattern, same kind), and patterns that match none of names.
func checkLimits(flag string, limits []Limit, names []string) error {
	type key struct {
		pattern  string
		relative bool
	}
	seen := map[key]Limit{}
	var errs []error
	for _, l := range limits {
		k := key{l.Pattern, l.Relative}
		if prev, ok := seen[k]; ok {
			what := "every recipe"
			if l.Pattern != "" {
				what = strconv.Quote(l.Pattern)
			}
			kind := "an absolute"
			if l.Relative {
				kind = "a relative"
			}
			errs = append(errs, fmt.Errorf("%w: %s %s: %s already has %s limit (%s %s); give one", ErrBadLimit, flag, l, what, kind, flag, prev))
			continue
		}
		seen[k] = l
		if l.Pattern == "" {
			continue
		}
		matched := false
		for _, n := range names {
			if l.applies(n) {
				matched = true
				break
			}
		}
		if !matched {
			errs = append(errs, fmt.Errorf("%w: %s %s: %q matches none of the %d recipe(s) of the two reports", ErrBadLimit, flag, l, l.Pattern, len(names)))
		}
	}
	return errors.Join(errs...)
}
