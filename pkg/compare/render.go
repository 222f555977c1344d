package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/pkg/report"
)

// A WriteOption configures WriteTable and WriteMarkdown.
type WriteOption func(*view)

type view struct{ all bool }

// AllRecipes lists the unchanged recipes too; by default the table and
// the Markdown list only the recipes that changed, were added or were
// removed, and count the others.
func AllRecipes() WriteOption { return func(v *view) { v.all = true } }

func viewOf(opts []WriteOption) view {
	var v view
	for _, o := range opts {
		o(&v)
	}
	return v
}

func checkComparison(c *Comparison) error {
	if c == nil {
		return errors.New("no comparison")
	}
	return nil
}

// WriteJSON writes the comparison as one indented JSON document (the
// field names are those of Comparison's json tags).
func WriteJSON(w io.Writer, c *Comparison) error {
	if err := checkComparison(c); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("writing the comparison as JSON: %w", err)
	}
	return nil
}

// WriteTable writes the comparison as text: the two reports, one line per
// recipe (name, kind of change, outcome, uncompressed and compressed
// sizes old -> new with their change), a summary line and the
// violations.
func WriteTable(w io.Writer, c *Comparison, opts ...WriteOption) error {
	if err := checkComparison(c); err != nil {
		return err
	}
	v := viewOf(opts)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "old:\t%s\n", describe(c.Old))
	fmt.Fprintf(tw, "new:\t%s\n", describe(c.New))
	for _, n := range c.Notes {
		fmt.Fprintf(tw, "note:\t%s\n", n)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the comparison: %w", err)
	}
	fmt.Fprintln(w)
	rows := shown(c, v)
	if len(rows) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tOUTCOME\tUNCOMPRESSED\tCHANGE\tCOMPRESSED\tCHANGE\tNOTES")
		for _, e := range rows {
			var notes []string
			for _, x := range c.Violations {
				if x.Recipe == e.Name {
					notes = append(notes, fmt.Sprintf("%s over %s", x.Metric, x.Limit))
				}
			}
			if e.Regressed {
				notes = append(notes, "regressed")
			}
			if e.Reason != "" {
				notes = append(notes, firstLine(e.Reason, 70))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, outcome(e, " -> "),
				sizes(e.Uncompressed, " -> "), change(e.Uncompressed), sizes(e.Compressed, " -> "), change(e.Compressed),
				strings.Join(notes, "; "))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing the comparison: %w", err)
		}
	}
	fmt.Fprintln(w, summaryLine(c, " -> "))
	for _, x := range c.Violations {
		fmt.Fprintf(w, "over its growth limit: %s\n", x)
	}
	return nil
}

// WriteMarkdown writes the comparison as GitHub-flavoured Markdown, fit
// for a CI job summary ($GITHUB_STEP_SUMMARY): the violations first, the
// two reports, a summary line and a table of the recipes.
func WriteMarkdown(w io.Writer, c *Comparison, opts ...WriteOption) error {
	if err := checkComparison(c); err != nil {
		return err
	}
	v := viewOf(opts)
	var b strings.Builder
	b.WriteString("## minikit compare\n\n")
	switch n := len(c.Violations); {
	case n > 0:
		fmt.Fprintf(&b, "**%d over the growth limit:**\n\n", n)
		for _, x := range c.Violations {
			fmt.Fprintf(&b, "- **%s**: %s %s → %s, %s, over its growth limit of %s\n", md(x.Recipe), x.Metric,
				report.FormatBytes(x.Old), report.FormatBytes(x.New), growth(x.Growth, x.Percent), md(x.Limit))
		}
		b.WriteString("\n")
	case len(c.Limits) > 0:
		b.WriteString("No recipe over its growth limit.\n\n")
	}
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "> **Note:** %s\n\n", md(n))
	}
	b.WriteString("| | old | new |\n|---|---|---|\n")
	row := func(label, o, n string) { fmt.Fprintf(&b, "| %s | %s | %s |\n", label, md(o), md(n)) }
	if c.Old.File != "" || c.New.File != "" {
		row("report", c.Old.File, c.New.File)
	}
	row("generated", stamp(c.Old.Generated), stamp(c.New.Generated))
	if c.Old.Machine != "" || c.New.Machine != "" {
		row("machine", c.Old.Machine, c.New.Machine)
	}
	row("base images", where(c.Old.StandIns), where(c.New.StandIns))
	row("recipes", fmt.Sprint(c.Old.Recipes), fmt.Sprint(c.New.Recipes))
	fmt.Fprintf(&b, "\n%s\n\n", md(summaryLine(c, " → ")))
	rows := shown(c, v)
	if len(rows) > 0 {
		b.WriteString("| recipe | kind | outcome | uncompressed | change | compressed | change |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|\n")
		for _, e := range rows {
			name := md(e.Name)
			if e.Regressed {
				name += " (regressed)"
			}
			out := md(outcome(e, " → "))
			if e.Reason != "" {
				out += ": " + md(firstLine(e.Reason, 120))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, e.Kind, out,
				md(sizes(e.Uncompressed, " → ")), mdChange(c, e, Uncompressed), md(sizes(e.Compressed, " → ")), mdChange(c, e, Compressed))
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the comparison as Markdown: %w", err)
	}
	return nil
}

// mdChange is a change cell, bold when the recipe is over its limit on
// that metric.
func mdChange(c *Comparison, e Entry, m Metric) string {
	d := e.Uncompressed
	if m == Compressed {
		d = e.Compressed
	}
	s := md(change(d))
	for _, x := range c.Violations {
		if x.Recipe == e.Name && x.Metric == m {
			return "**" + s + "**"
		}
	}
	return s
}

// shown returns the entries to list: the changed, added and removed ones,
// or all of them.
func shown(c *Comparison, v view) []Entry {
	var out []Entry
	for _, e := range c.Recipes {
		if v.all || e.Kind != Unchanged {
			out = append(out, e)
		}
	}
	return out
}

func describe(s Source) string {
	var parts []string
	if s.File != "" {
		parts = append(parts, s.File)
	}
	parts = append(parts, stamp(s.Generated), where(s.StandIns), fmt.Sprintf("%d recipe(s)", s.Recipes))
	return strings.Join(parts, ", ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func summaryLine(c *Comparison, arrow string) string {
	s := c.Summary
	line := fmt.Sprintf("%d changed, %d added, %d removed, %d unchanged; %d outcome change(s), %d regression(s)",
		s.Changed, s.Added, s.Removed, s.Unchanged, s.OutcomeChanges, s.Regressions)
	if d := s.Uncompressed; d.Both() {
		line += fmt.Sprintf("; built in both, uncompressed %s%s%s, %s", report.FormatBytes(*d.Old), arrow, report.FormatBytes(*d.New), change(d))
	}
	if d := s.Compressed; d.Both() {
		line += fmt.Sprintf(", compressed %s%s%s, %s", report.FormatBytes(*d.Old), arrow, report.FormatBytes(*d.New), change(d))
	}
	return line
}

// outcome is the outcome cell: the outcome when it did not change, else
// old -> new.
func outcome(e Entry, arrow string) string {
	switch {
	case e.Kind == Added:
		return e.NewOutcome
	case e.Kind == Removed:
		return e.OldOutcome
	case e.OutcomeChanged:
		return e.OldOutcome + arrow + e.NewOutcome
	}
	return e.NewOutcome
}

// sizes is a size cell: "2.40 MB", "2.40 MB -> 2.60 MB", "- -> 2.60 MB".
func sizes(d *Delta, arrow string) string {
	if d == nil {
		return "-"
	}
	if d.Both() && *d.Change == 0 {
		return report.FormatBytes(*d.New)
	}
	return size(d.Old) + arrow + size(d.New)
}

func size(n *int64) string {
	if n == nil {
		return "-"
	}
	return report.FormatBytes(*n)
}

// change is a change cell: "+200 kB (+8.33%)", "0 B", or "-" when a side
// is unknown.
func change(d *Delta) string {
	if !d.Both() {
		return "-"
	}
	return growth(*d.Change, d.Percent)
}

// growth writes a change in bytes and, when known, percent.
func growth(n int64, pct *float64) string {
	if n == 0 {
		return "0 B"
	}
	s := report.FormatBytes(n)
	if n > 0 {
		s = "+" + s
	}
	if pct == nil {
		return s
	}
	return s + " (" + percent(*pct) + ")"
}

// percent writes a percentage with a sign: two decimals under 1 %, one
// above.
func percent(p float64) string {
	if math.Abs(p) < 1 {
		return fmt.Sprintf("%+.2f%%", p)
	}
	return fmt.Sprintf("%+.1f%%", p)
}

// md escapes text for a Markdown table cell: the characters that would
// start emphasis, code, links or HTML, and the cell separator; line
// breaks become spaces.
func md(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '#', '&':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// firstLine shortens a message to its first line, at most n runes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
