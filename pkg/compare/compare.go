// Package compare compares two solve reports (pkg/report's JSON, `minikit
// solve --format json`): per recipe, the change of the uncompressed and
// compressed sizes in bytes and percent, the change of outcome (build
// status, run exit code), the recipes only in the new report and those
// only in the old one; and it checks growth limits ("5%", "200kB",
// "hello-go.*=10%"), for a CI job that compares a run with the previous
// one. It renders the comparison as a table, JSON or Markdown (for a CI
// job summary).
//
//	old, err := compare.ReadFile("old.json")
//	...
//	c, err := compare.Reports(old, new, compare.MaxGrowth(compare.Uncompressed, limits...))
//	if len(c.Violations) > 0 { ... }
package compare

import (
	"fmt"
	"slices"
	"time"

	"github.com/minikit/minikit/pkg/report"
)

// Kinds of Entry: how a recipe differs between the two reports.
const (
	Added     = "added"     // only in the new report
	Removed   = "removed"   // only in the old report
	Changed   = "changed"   // in both: a size or the outcome changed
	Unchanged = "unchanged" // in both, the same sizes and outcome
)

// A Comparison is what differs between an old and a new solve report.
type Comparison struct {
	Old Source `json:"old"`
	New Source `json:"new"`
	// Recipes are every recipe of either report: the new report's in its
	// order, then those only in the old one, in its order.
	Recipes []Entry `json:"recipes"`
	// Violations are the recipes over a growth limit, in Recipes' order.
	Violations []Violation `json:"violations"`
	// Limits are the growth limits checked, by metric.
	Limits map[Metric][]Limit `json:"limits,omitempty"`
	// Notes say what makes the two reports hard to compare (one built on
	// stand-ins, the other on upstream images).
	Notes   []string `json:"notes,omitempty"`
	Summary Summary  `json:"summary"`
}

// A Source describes one of the two reports.
type Source struct {
	// File is the name given with the Files option, if any.
	File      string    `json:"file,omitempty"`
	Generated time.Time `json:"generated"`
	Machine   string    `json:"machine,omitempty"`
	StandIns  bool      `json:"stand_ins"`
	Recipes   int       `json:"recipes"`
}

// A Summary counts the entries by kind and sums the sizes of the recipes
// built in both reports.
type Summary struct {
	Changed        int `json:"changed"`
	Added          int `json:"added"`
	Removed        int `json:"removed"`
	Unchanged      int `json:"unchanged"`
	OutcomeChanges int `json:"outcome_changes"`
	Regressions    int `json:"regressions"`
	Violations     int `json:"violations"`
	// Uncompressed and Compressed sum the sizes of the recipes built in
	// both reports (absent when there are none).
	Uncompressed *Delta `json:"uncompressed,omitempty"`
	Compressed   *Delta `json:"compressed,omitempty"`
}

// An Entry is one recipe in either report, or both.
type Entry struct {
	// Name is the recipe's name; for a recipe listed once per platform,
	// "NAME [os/arch]".
	Name string `json:"name"`
	// Kind is Added, Removed, Changed or Unchanged.
	Kind string `json:"kind"`
	// OldStatus and NewStatus are the build statuses (report.Status*);
	// OldOutcome and NewOutcome the outcomes in words, exit code included
	// (report.Recipe.Outcome); each absent on the side the recipe is not
	// in.
	OldStatus  string `json:"old_status,omitempty"`
	NewStatus  string `json:"new_status,omitempty"`
	OldOutcome string `json:"old_outcome,omitempty"`
	NewOutcome string `json:"new_outcome,omitempty"`
	// OutcomeChanged: in both reports, with another build status or,
	// run in both, another exit code or verdict.
	OutcomeChanged bool `json:"outcome_changed,omitempty"`
	// Regressed: the recipe did as expected in the old report, or was
	// not in it, and does not in the new one (report.Recipe.Unexpected).
	Regressed bool `json:"regressed,omitempty"`
	// Uncompressed and Compressed are the image's sizes; absent when
	// neither report has an image of the recipe.
	Uncompressed *Delta `json:"uncompressed,omitempty"`
	Compressed   *Delta `json:"compressed,omitempty"`
	// Reason is why the recipe does not work in the new report (its
	// error, or its run's reason), when it does not.
	Reason string `json:"reason,omitempty"`
}

// A Delta is a size in the old and the new report, in bytes. Old or New
// is nil when that report has no image of the recipe; Change and Percent
// are set only when both have one (Percent not when Old is 0).
type Delta struct {
	Old     *int64   `json:"old,omitempty"`
	New     *int64   `json:"new,omitempty"`
	Change  *int64   `json:"change,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func newDelta(o, n *int64) *Delta {
	if o == nil && n == nil {
		return nil
	}
	d := &Delta{Old: o, New: n}
	if o != nil && n != nil {
		c := *n - *o
		d.Change = &c
		if *o != 0 {
			p := float64(c) * 100 / float64(*o)
			d.Percent = &p
		}
	}
	return d
}

// Both reports whether both sizes are known.
func (d *Delta) Both() bool { return d != nil && d.Old != nil && d.New != nil }

// A Violation is a recipe whose size grew by more than its limit.
type Violation struct {
	Recipe string `json:"recipe"`
	Metric Metric `json:"metric"`
	// Limit is the limit exceeded, as ParseLimit reads it ("5%",
	// "hello-go.*=200 kB").
	Limit string `json:"limit"`
	Old   int64  `json:"old"`
	New   int64  `json:"new"`
	// Growth is New - Old, Percent the same relative to Old (absent when
	// Old is 0).
	Growth  int64    `json:"growth"`
	Percent *float64 `json:"percent,omitempty"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s %s -> %s, %s, over its growth limit of %s",
		v.Recipe, v.Metric, report.FormatBytes(v.Old), report.FormatBytes(v.New), growth(v.Growth, v.Percent), v.Limit)
}

// An Option configures Reports.
type Option func(*config)

type config struct {
	oldFile, newFile string
	limits           map[Metric][]Limit
	flags            map[Metric]string
}

// MaxGrowth adds growth limits on a metric. Per recipe and metric, the
// relative and the absolute limit that apply are each chosen as for
// --max-size budgets: the one keyed by the recipe's exact name, else the
// tightest glob that matches it, else the limit without a name; the
// recipe violates the limits when its growth exceeds either of the two.
// Only recipes built in both reports are checked. A pattern that matches
// no recipe of either report, or two limits with the same pattern and
// kind on one metric, make Reports fail with ErrBadLimit.
func MaxGrowth(m Metric, limits ...Limit) Option {
	return func(c *config) {
		if c.limits == nil {
			c.limits = map[Metric][]Limit{}
		}
		c.limits[m] = append(c.limits[m], limits...)
	}
}

// LimitFlag names, in ErrBadLimit messages, the command-line flag the
// limits on metric m came from ("--max-growth"); default: the metric.
func LimitFlag(m Metric, flag string) Option {
	return func(c *config) {
		if c.flags == nil {
			c.flags = map[Metric]string{}
		}
		c.flags[m] = flag
	}
}

// Files names the two reports in the comparison (Source.File).
func Files(old, new string) Option {
	return func(c *config) { c.oldFile, c.newFile = old, new }
}

// Reports compares an old and a new solve report. Its errors are
// ErrNotReport (a nil report, a recipe without a name or listed twice)
// and ErrBadLimit.
func Reports(oldRep, newRep *report.Report, opts ...Option) (*Comparison, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if err := check(oldRep); err != nil {
		return nil, fmt.Errorf("the old report: %w", err)
	}
	if err := check(newRep); err != nil {
		return nil, fmt.Errorf("the new report: %w", err)
	}
	oldKeys, newKeys := keysOf(oldRep), keysOf(newRep)
	oldAt := make(map[string]int, len(oldKeys))
	for i, k := range oldKeys {
		oldAt[k] = i
	}
	newAt := make(map[string]int, len(newKeys))
	for i, k := range newKeys {
		newAt[k] = i
	}
	var names []string
	names = append(names, newKeys...)
	for _, k := range oldKeys {
		if _, ok := newAt[k]; !ok {
			names = append(names, k)
		}
	}
	for _, m := range []Metric{Uncompressed, Compressed} {
		flag := cfg.flags[m]
		if flag == "" {
			flag = string(m)
		}
		if err := checkLimits(flag, cfg.limits[m], names); err != nil {
			return nil, err
		}
	}
	for m := range cfg.limits {
		if m != Uncompressed && m != Compressed {
			return nil, fmt.Errorf("%w: unknown metric %q", ErrBadLimit, m)
		}
	}

	c := &Comparison{
		Old:        source(oldRep, cfg.oldFile),
		New:        source(newRep, cfg.newFile),
		Violations: []Violation{},
	}
	for m, ls := range cfg.limits {
		if len(ls) > 0 {
			if c.Limits == nil {
				c.Limits = map[Metric][]Limit{}
			}
			c.Limits[m] = slices.Clone(ls)
		}
	}
	if oldRep.StandIns != newRep.StandIns {
		c.Notes = append(c.Notes, fmt.Sprintf("the old report was built on %s, the new one on %s: their sizes are not comparable",
			where(oldRep.StandIns), where(newRep.StandIns)))
	}
	for _, side := range []struct {
		name string
		rep  *report.Report
	}{{"old", oldRep}, {"new", newRep}} {
		if len(side.rep.Recipes) > 0 && !measured(side.rep) {
			c.Notes = append(c.Notes, fmt.Sprintf("the %s report has no image sizes ('minikit test', or 'solve --sizes=false'): only outcomes compare", side.name))
		}
	}
	var sumOld, sumNew [2]int64
	common := false
	for _, k := range names {
		var o, n *report.Recipe
		if i, ok := oldAt[k]; ok {
			o = &oldRep.Recipes[i]
		}
		if i, ok := newAt[k]; ok {
			n = &newRep.Recipes[i]
		}
		e := entry(k, o, n)
		c.Recipes = append(c.Recipes, e)
		switch e.Kind {
		case Added:
			c.Summary.Added++
		case Removed:
			c.Summary.Removed++
		case Changed:
			c.Summary.Changed++
		default:
			c.Summary.Unchanged++
		}
		if e.OutcomeChanged {
			c.Summary.OutcomeChanges++
		}
		if e.Regressed {
			c.Summary.Regressions++
		}
		if !e.Uncompressed.Both() {
			continue
		}
		common = true
		sumOld[0] += *e.Uncompressed.Old
		sumNew[0] += *e.Uncompressed.New
		sumOld[1] += *e.Compressed.Old
		sumNew[1] += *e.Compressed.New
		for _, m := range []Metric{Uncompressed, Compressed} {
			d := e.Uncompressed
			if m == Compressed {
				d = e.Compressed
			}
			for _, l := range limitsFor(cfg.limits[m], k) {
				if l.exceeded(*d.Old, *d.New) {
					c.Violations = append(c.Violations, Violation{
						Recipe: k, Metric: m, Limit: l.String(),
						Old: *d.Old, New: *d.New, Growth: *d.Change, Percent: d.Percent,
					})
				}
			}
		}
	}
	if common {
		c.Summary.Uncompressed = newDelta(ptr(sumOld[0]), ptr(sumNew[0]))
		c.Summary.Compressed = newDelta(ptr(sumOld[1]), ptr(sumNew[1]))
	}
	c.Summary.Violations = len(c.Violations)
	return c, nil
}

// measured reports whether any recipe of the report has a measured image.
func measured(rep *report.Report) bool {
	for _, r := range rep.Recipes {
		if r.Image != nil {
			return true
		}
	}
	return false
}

func source(rep *report.Report, file string) Source {
	return Source{File: file, Generated: rep.Generated, Machine: rep.Machine, StandIns: rep.StandIns, Recipes: len(rep.Recipes)}
}

func where(standIns bool) string {
	if standIns {
		return "stand-ins"
	}
	return "upstream images"
}

// entry compares one recipe; o or n is nil when the recipe is only in the
// other report.
func entry(key string, o, n *report.Recipe) Entry {
	e := Entry{Name: key}
	// Copies: the comparison shares no memory with the reports.
	var ou, oc, nu, nc *int64
	if o != nil {
		e.OldStatus, e.OldOutcome = o.Status, o.Outcome()
		if o.Image != nil {
			ou, oc = ptr(o.Image.Uncompressed), ptr(o.Image.Compressed)
		}
	}
	if n != nil {
		e.NewStatus, e.NewOutcome = n.Status, n.Outcome()
		if n.Image != nil {
			nu, nc = ptr(n.Image.Uncompressed), ptr(n.Image.Compressed)
		}
		e.Regressed = n.Unexpected() && (o == nil || !o.Unexpected())
		if n.Failing() || n.Unexpected() {
			e.Reason = reason(*n)
		}
	}
	e.Uncompressed, e.Compressed = newDelta(ou, nu), newDelta(oc, nc)
	switch {
	case o == nil:
		e.Kind = Added
	case n == nil:
		e.Kind = Removed
	default:
		e.OutcomeChanged = outcomeChanged(*o, *n)
		e.Kind = Unchanged
		if e.OutcomeChanged || sizeChanged(e.Uncompressed) || sizeChanged(e.Compressed) {
			e.Kind = Changed
		}
	}
	return e
}

// outcomeChanged reports whether a recipe ended differently: another
// build status, or, run in both reports, another exit code or verdict. A
// recipe run in one report only has not changed outcome for it.
func outcomeChanged(o, n report.Recipe) bool {
	if o.Status != n.Status {
		return true
	}
	if o.Run == nil || n.Run == nil {
		return false
	}
	return o.Run.ExitCode != n.Run.ExitCode || o.Run.Expected != n.Run.Expected
}

// sizeChanged reports whether a size differs, or is known on one side
// only.
func sizeChanged(d *Delta) bool {
	switch {
	case d == nil:
		return false
	case d.Both():
		return *d.Change != 0
	}
	return true
}

func reason(r report.Recipe) string {
	if r.Error != "" {
		return firstLine(r.Error, 200)
	}
	if r.Run != nil && r.Run.Reason != "" {
		return firstLine(r.Run.Reason, 200)
	}
	return ""
}
