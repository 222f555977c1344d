package timings

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// A Named is one target's profile in a run.
type Named struct {
	Name    string
	Profile *Profile
}

// A Summary is a run's profile: its targets, its distinct steps, its
// critical path and the time per category.
type Summary struct {
	// Started is the earliest target's start, Wall the time from it to
	// the end of the last target to finish.
	Started time.Time
	Wall    time.Duration
	// Targets are the targets profiled, in the order given.
	Targets []TargetTime
	// Steps are the run's distinct steps (a step shared by several
	// targets once), longest running first.
	Steps []RunStep
	// CriticalTarget is the target that finished last, and Critical its
	// critical path, in order: the chain of steps that bounded the run's
	// wall time.
	CriticalTarget string
	Critical       []CriticalStep
	// Categories sums the distinct steps per category, in the order of
	// Categories().
	Categories []CategoryTime
}

// A TargetTime is one target in a Summary.
type TargetTime struct {
	Name string
	// Queued is from the run's start to the target's build start
	// (waiting for a parallel slot, or started later by its caller).
	Queued time.Duration
	Wall   time.Duration
	// Steps counts its steps, Cached those found in the cache.
	Steps, Cached int
	// ByCategory sums its steps' running time per category, extraction
	// counted with Pull. Steps shared with other targets count in each.
	ByCategory map[Category]time.Duration
}

// A RunStep is one distinct step of a run.
type RunStep struct {
	ID       string
	Name     string
	Category Category
	// Targets are the targets whose builds include the step.
	Targets []string
	// Start is when it started, after the run's start.
	Start   time.Duration
	Running time.Duration
	// Extract is the part of Running spent extracting image layers.
	Extract time.Duration
	// Cached is set when no target's build ran it.
	Cached bool
}

// A CriticalStep is one link of the critical path.
type CriticalStep struct {
	RunStep
	// Waited is the time between the previous link's end (the run's
	// start, for the first) and this step's start.
	Waited time.Duration
}

// A CategoryTime is the time a run spent on one kind of work.
type CategoryTime struct {
	Category Category
	// Steps counts the distinct steps of the category that ran (not
	// cached).
	Steps int
	// Running sums their running time; for Pull, the extraction time of
	// every step too, which is subtracted from that step's own category.
	Running time.Duration
	// Busy is the wall time during which at least one step of the
	// category was running (extraction inside other steps not included).
	Busy time.Duration
}

// Summarize reads the profiles of a run's targets; targets without a
// profile are left out.
func Summarize(targets []Named) *Summary {
	s := &Summary{}
	var ps []Named
	for _, t := range targets {
		if t.Profile != nil {
			ps = append(ps, t)
			if s.Started.IsZero() || t.Profile.Started.Before(s.Started) {
				s.Started = t.Profile.Started
			}
		}
	}
	if len(ps) == 0 {
		return s
	}
	var end time.Time
	type span struct{ start, end time.Time }
	steps := map[string]*RunStep{}
	spans := map[string]span{}
	var order []string
	for _, t := range ps {
		p := t.Profile
		tt := TargetTime{Name: t.Name, Queued: p.Started.Sub(s.Started), Wall: p.Wall(), ByCategory: map[Category]time.Duration{}}
		if e := p.Started.Add(p.Wall()); e.After(end) {
			end = e
			s.CriticalTarget = t.Name
		}
		for _, st := range p.Steps {
			tt.Steps++
			if st.Cached {
				tt.Cached++
			}
			ex := time.Duration(st.ExtractMS) * time.Millisecond
			tt.ByCategory[st.Category] += st.Running() - ex
			tt.ByCategory[Pull] += ex
			a, b := st.Start(p), st.Start(p).Add(st.Running())
			key := stepKey(t.Name, st)
			rs, ok := steps[key]
			if !ok {
				rs = &RunStep{ID: st.ID, Name: st.Name, Category: st.Category, Cached: true}
				steps[key] = rs
				spans[key] = span{a, b}
				order = append(order, key)
			}
			if !slices.Contains(rs.Targets, t.Name) {
				rs.Targets = append(rs.Targets, t.Name)
			}
			rs.Cached = rs.Cached && st.Cached
			sp := spans[key]
			if a.Before(sp.start) {
				sp.start = a
			}
			if b.After(sp.end) {
				sp.end = b
			}
			spans[key] = sp
			rs.Extract = max(rs.Extract, ex)
		}
		s.Targets = append(s.Targets, tt)
	}
	s.Wall = end.Sub(s.Started)
	busy := map[Category][][2]time.Time{}
	sum := map[Category]*CategoryTime{}
	for _, c := range Categories() {
		sum[c] = &CategoryTime{Category: c}
	}
	for _, id := range order {
		rs, sp := steps[id], spans[id]
		rs.Start, rs.Running = sp.start.Sub(s.Started), sp.end.Sub(sp.start)
		rs.Extract = min(rs.Extract, rs.Running)
		s.Steps = append(s.Steps, *rs)
		ct := sum[rs.Category]
		if ct == nil { // a category this version does not know
			ct = &CategoryTime{Category: rs.Category}
			sum[rs.Category] = ct
		}
		if !rs.Cached {
			ct.Steps++
		}
		ct.Running += rs.Running - rs.Extract
		sum[Pull].Running += rs.Extract
		if rs.Running > 0 {
			busy[rs.Category] = append(busy[rs.Category], [2]time.Time{sp.start, sp.end})
		}
	}
	slices.SortStableFunc(s.Steps, func(a, b RunStep) int {
		return cmp.Or(cmp.Compare(b.Running, a.Running), cmp.Compare(a.Start, b.Start))
	})
	for _, c := range Categories() {
		ct := sum[c]
		ct.Busy = union(busy[c])
		s.Categories = append(s.Categories, *ct)
		delete(sum, c)
	}
	for _, c := range sortedKeys(sum) {
		ct := sum[c]
		ct.Busy = union(busy[c])
		s.Categories = append(s.Categories, *ct)
	}

	// The run's critical path: the one of the target that ended last.
	for _, t := range ps {
		if t.Name != s.CriticalTarget {
			continue
		}
		prev := s.Started
		for _, st := range t.Profile.Steps {
			if !st.Critical {
				continue
			}
			rs := *steps[stepKey(t.Name, st)]
			at := s.Started.Add(rs.Start)
			cs := CriticalStep{RunStep: rs}
			if at.After(prev) {
				cs.Waited = at.Sub(prev)
			}
			prev = later(prev, at.Add(rs.Running))
			s.Critical = append(s.Critical, cs)
		}
		break
	}
	return s
}

// stepKey identifies a step in a run: by its ID, but for exports and
// measurements, which are each target's own (BuildKit names an exporter's
// vertex after the session, which the targets of a run may share).
func stepKey(target string, st Step) string {
	if st.Category == Export || st.Category == Measure {
		return target + "\x00" + st.ID
	}
	return st.ID
}

func sortedKeys(m map[Category]*CategoryTime) []Category {
	var out []Category
	for c := range m {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// WriteTable writes the whole summary for a terminal: every target, the
// top longest steps, the critical path and the categories.
func (s *Summary) WriteTable(w io.Writer, top int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Where the time went: %d targets, %s from the first build's start to the last one's end\n\n", len(s.Targets), fmtDur(s.Wall))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tQUEUED\tWALL\tSTEPS\tCACHED\tPULL\tCOMPILE\tCOPY\tEXPORT\tMEASURE")
	for _, t := range s.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", t.Name, fmtDur(t.Queued), fmtDur(t.Wall), t.Steps, t.Cached,
			fmtDur(t.ByCategory[Pull]), fmtDur(t.ByCategory[Compile]), fmtDur(t.ByCategory[Copy]), fmtDur(t.ByCategory[Export]), fmtDur(t.ByCategory[Measure]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("(QUEUED: after the run's start; per category: the running time of the target's steps, a step shared with other targets counted in each, extraction as PULL)\n\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := s.WriteTop(w, top); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	if err := s.WriteCritical(w); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return s.WriteCategories(w)
}

// WriteTop writes the n steps that ran longest (every step for n <= 0).
func (s *Summary) WriteTop(w io.Writer, n int) error {
	steps := s.Steps
	if n > 0 && len(steps) > n {
		steps = steps[:n]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Top %d steps by running time (%d distinct steps, shared ones once)\n", len(steps), len(s.Steps))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tCATEGORY\tSTARTED\tRUNNING\tEXTRACT\tTARGETS")
	for _, st := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cut(st.Name, 60), catLabel(st), fmtDur(st.Start), fmtDur(st.Running),
			fmtDur(st.Extract), targetsLabel(st.Targets))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCritical writes the run's critical path.
func (s *Summary) WriteCritical(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Critical path: %s, the last target to finish (%s after the run's start)\n", s.CriticalTarget, fmtDur(s.Wall))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tWAITED\tRUNNING\tCATEGORY\tSTEP")
	for _, st := range s.Critical {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", fmtDur(st.Start), fmtDur(st.Waited), fmtDur(st.Running), catLabel(st.RunStep), cut(st.Name, 70))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCategories writes the time per category.
func (s *Summary) WriteCategories(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Time per kind of work (distinct steps)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tSTEPS RUN\tRUNNING (SUM)\tBUSY (WALL)")
	for _, c := range s.Categories {
		if c.Running == 0 && c.Steps == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", c.Category, c.Steps, fmtDur(c.Running), fmtDur(c.Busy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("(RUNNING: the steps' times added up, extraction counted as pull; BUSY: the wall time during which at least one was running)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func catLabel(st RunStep) string {
	if st.Cached {
		return string(st.Category) + " (cached)"
	}
	return string(st.Category)
}

func targetsLabel(ts []string) string {
	switch len(ts) {
	case 0:
		return "-"
	case 1:
		return ts[0]
	}
	return fmt.Sprintf("%s +%d", ts[0], len(ts)-1)
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fmtDur rounds for reading: 1m12.3s, 4.52s, 0.00s; "-" for none.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d >= time.Minute || d <= -time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
