package report

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/minikit/minikit/pkg/measure"
)

// A Metric is the figure of an image that a Budget limits.
type Metric string

// The metrics a budget can limit. Sizes are bytes; DiveEfficiency and
// DiveUserWasted are ratios (dive's figures, pkg/measure's
// DiveEfficiency and DiveUserWastedRatio). DiveEfficiency is a floor (an
// image below it fails, dive's lowestEfficiency), the others ceilings (an
// image above fails; dive's highestWastedBytes and highestUserWastedPercent
// are DiveWasted and DiveUserWasted).
const (
	Uncompressed   Metric = "uncompressed"     // the layers' tar streams; a bare SIZE in a budget
	Compressed     Metric = "compressed"       // the layer blobs
	Wasted         Metric = "wasted"           // minikit's wasted bytes: file versions a later layer hides
	DiveWasted     Metric = "dive-wasted"      // dive's wasted bytes
	DiveEfficiency Metric = "dive-efficiency"  // dive's efficiency, a ratio from 0 to 1: the lowest allowed
	DiveUserWasted Metric = "dive-user-wasted" // dive's user wasted ratio: the highest allowed
)

// Metrics lists every metric, in the order budgets are checked.
var Metrics = []Metric{Uncompressed, Compressed, Wasted, DiveWasted, DiveEfficiency, DiveUserWasted}

// IsRatio reports whether m's limits are ratios (else bytes).
func (m Metric) IsRatio() bool { return m == DiveEfficiency || m == DiveUserWasted }

// isFloor reports whether an image fails by going below m's limit (else above).
func (m Metric) isFloor() bool { return m == DiveEfficiency }

// value is m's figure for img.
func (m Metric) value(img *measure.Image) float64 {
	switch m {
	case Compressed:
		return float64(img.Compressed)
	case Wasted:
		return float64(img.WastedBytes)
	case DiveWasted:
		return float64(img.DiveWastedBytes)
	case DiveEfficiency:
		return img.DiveEfficiency
	case DiveUserWasted:
		return img.DiveUserWastedRatio
	}
	return float64(img.Uncompressed)
}

// format writes a figure or limit of m: bytes, or a ratio as dive prints it.
func (m Metric) format(v float64) string {
	if m.IsRatio() {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return FormatBytes(int64(v))
}

// A Budget is one limit on one metric of the images of the recipes that
// Pattern (a recipe name or a path.Match glob) names.
type Budget struct {
	Pattern string
	Metric  Metric
	// Limit is bytes for a size metric, a ratio for the others.
	Limit float64
}

// A Violation is a built recipe whose image is beyond one of its budgets.
type Violation struct {
	Recipe string `json:"recipe"`
	// Pattern is the budget's key (a recipe name or a glob), "" for the
	// recipe's own Budget.
	Pattern string `json:"pattern,omitempty"`
	Metric  Metric `json:"metric"`
	// Limit and Value are the budget and the image's figure: bytes, or a
	// ratio for dive-efficiency and dive-user-wasted.
	Limit float64 `json:"limit"`
	Value float64 `json:"value"`
}

func (v Violation) String() string {
	from := ""
	if v.Pattern != "" && v.Pattern != v.Recipe {
		from = " (" + v.Pattern + ")"
	}
	m := v.Metric
	if m.isFloor() {
		return fmt.Sprintf("%s: %s %s, under its budget's lowest of %s%s",
			v.Recipe, m, m.format(v.Value), m.format(v.Limit), from)
	}
	by := m.format(v.Value - v.Limit)
	if m.IsRatio() {
		by = strconv.FormatFloat(v.Value-v.Limit, 'g', 3, 64)
	}
	return fmt.Sprintf("%s: %s %s, over its budget of %s%s by %s",
		v.Recipe, m, m.format(v.Value), m.format(v.Limit), from, by)
}

// CheckBudgets returns, in the report's order and for each recipe in the
// order of Metrics, the built recipes whose image is beyond a budget. For
// each metric a recipe's budget is the one keyed by its exact name, else
// the strictest of those whose glob (path.Match syntax: 'hello-go.*')
// matches it, else, for Uncompressed, its own Recipe.Budget. A key that is
// not a valid glob matches only itself.
func CheckBudgets(rep *Report, budgets []Budget) []Violation {
	if rep == nil {
		return nil
	}
	var out []Violation
	for _, r := range rep.Recipes {
		if r.Image == nil {
			continue
		}
		for _, m := range Metrics {
			b, ok := budgetFor(r, m, budgets)
			if !ok {
				continue
			}
			v := m.value(r.Image)
			if (m.isFloor() && v < b.Limit) || (!m.isFloor() && v > b.Limit) {
				out = append(out, Violation{Recipe: r.Name, Pattern: b.Pattern, Metric: m, Limit: b.Limit, Value: v})
			}
		}
	}
	return out
}

// stricter reports whether limit a is stricter than b for m.
func stricter(m Metric, a, b float64) bool {
	if m.isFloor() {
		return a > b
	}
	return a < b
}

func budgetFor(r Recipe, m Metric, budgets []Budget) (Budget, bool) {
	var best Budget
	found, exact := false, false
	for _, b := range budgets {
		if b.Metric != m || !budgetApplies(b.Pattern, r.Name) {
			continue
		}
		isExact := b.Pattern == r.Name
		switch {
		case !found, isExact && !exact,
			isExact == exact && (stricter(m, b.Limit, best.Limit) || (b.Limit == best.Limit && b.Pattern < best.Pattern)):
			best, found, exact = b, true, isExact
		}
	}
	if !found && m == Uncompressed && r.Budget > 0 {
		return Budget{Metric: m, Limit: float64(r.Budget)}, true
	}
	return best, found
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

// UnmatchedBudgets returns, sorted and once each, the patterns of budgets
// that apply to none of the recipes named: a misspelt name or glob that
// would otherwise leave its budget silently unchecked.
func UnmatchedBudgets(budgets []Budget, names []string) []string {
	var out []string
	for _, b := range budgets {
		if !slices.ContainsFunc(names, func(n string) bool { return budgetApplies(b.Pattern, n) }) {
			out = append(out, b.Pattern)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// BudgetSyntax describes what ParseBudget reads, for help texts.
const BudgetSyntax = "NAME=LIMIT[,LIMIT...], NAME a recipe name or glob, each LIMIT SIZE (uncompressed) or METRIC=VALUE: " +
	"uncompressed=SIZE, compressed=SIZE, wasted=SIZE (bytes a later layer hides), and dive's CI rules " +
	"dive-wasted=SIZE (highestWastedBytes), dive-efficiency=RATIO (lowestEfficiency: the image fails below it), " +
	"dive-user-wasted=RATIO (highestUserWastedPercent); SIZE as 20kB, 1.5MB, 2MiB; RATIO from 0 to 1, as 0.95 or 95%"

// ParseBudget parses NAME=LIMIT[,LIMIT...] (BudgetSyntax) into one Budget
// per LIMIT: "hello-go.*=2MiB,compressed=1MB,dive-efficiency=0.95". Sizes
// of uncompressed and compressed must be more than 0; the wasted sizes and
// the ratios are from 0 to 1, as dive has them. A metric given twice is an
// error.
func ParseBudget(s string) ([]Budget, error) {
	name, limits, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok {
		return nil, fmt.Errorf("budget %q: want NAME=LIMIT, as in 'hello-go.*=2MB' or 'hello-go.*=compressed=1MB,dive-efficiency=0.95'", s)
	}
	if name == "" {
		return nil, fmt.Errorf("budget %q: no recipe name or glob before '='", s)
	}
	if _, err := path.Match(name, ""); err != nil {
		return nil, fmt.Errorf("budget %q: bad glob %q: %w", s, name, err)
	}
	var out []Budget
	for _, item := range strings.Split(limits, ",") {
		m, val := Uncompressed, item
		if k, v, ok := strings.Cut(item, "="); ok {
			m, val = Metric(strings.TrimSpace(k)), v
			if !slices.Contains(Metrics, m) {
				return nil, fmt.Errorf("budget %q: unknown metric %q; want one of %s", s, k, metricList())
			}
		}
		if slices.ContainsFunc(out, func(b Budget) bool { return b.Metric == m }) {
			return nil, fmt.Errorf("budget %q: %s given twice", s, m)
		}
		limit, err := parseLimit(m, val)
		if err != nil {
			return nil, fmt.Errorf("budget %q: %s: %w", s, m, err)
		}
		out = append(out, Budget{Pattern: name, Metric: m, Limit: limit})
	}
	return out, nil
}

func metricList() string {
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// parseLimit reads one limit of metric m.
func parseLimit(m Metric, s string) (float64, error) {
	if !m.IsRatio() {
		n, err := ParseBytes(s)
		if err != nil {
			return 0, err
		}
		if n <= 0 && (m == Uncompressed || m == Compressed) {
			return 0, errors.New("the size must be more than 0")
		}
		if n > 1<<53 {
			return 0, fmt.Errorf("size %q: too large for a budget", s)
		}
		return float64(n), nil
	}
	return ParseRatio(s)
}

// ParseRatio parses a ratio from 0 to 1, as a fraction ("0.95") or a
// percentage ("95%"): the range dive allows its ratio rules.
func ParseRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, pct := strings.CutSuffix(t, "%")
	num = strings.TrimSpace(num)
	if num == "" || strings.ContainsFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) {
		return 0, fmt.Errorf("ratio %q: want a fraction (0.95) or a percentage (95%%)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("ratio %q: bad number %q", s, num)
	}
	if pct {
		v /= 100
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("ratio %q: too large", s)
	}
	if v > 1 {
		return 0, fmt.Errorf("ratio %q: at most 1 (100%%)", s)
	}
	return v, nil
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
