package imagediff

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/minikit/minikit/pkg/report"
)

// WriteText writes the diff for a terminal: the config changes, then the
// paths only in A, only in B and changed, each list cut to limit lines
// (0: no limit), largest first.
func WriteText(w io.Writer, d *Diff, limit int) error {
	fmt.Fprintf(w, "a: %s (%s)\nb: %s (%s)\n", d.A, short(d.ADigest), d.B, short(d.BDigest))
	if d.Same() {
		_, err := fmt.Fprintln(w, "no difference")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(d.Config) > 0 {
		fmt.Fprintln(tw, "\nconfig:")
		for _, c := range d.Config {
			fmt.Fprintf(tw, "  %s\t%s\t->\t%s\n", c.Field, orNone(c.A), orNone(c.B))
		}
	}
	section := func(title string, cs []Change, total int64, line func(Change)) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(tw, "\n%s: %d path(s), %s\n", title, len(cs), signed(total))
		for i, c := range cs {
			if limit > 0 && i == limit {
				fmt.Fprintf(tw, "  ... %d more\n", len(cs)-limit)
				break
			}
			line(c)
		}
	}
	section("only in a", d.OnlyA, -d.OnlyABytes, func(c Change) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", report.FormatBytes(c.A.Size), c.A.Kind, c.Path+linkSuffix(c.A))
	})
	section("only in b", d.OnlyB, d.OnlyBBytes, func(c Change) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", report.FormatBytes(c.B.Size), c.B.Kind, c.Path+linkSuffix(c.B))
	})
	var delta int64
	for _, c := range d.Changed {
		delta += c.Delta
	}
	section("changed", d.Changed, delta, func(c Change) {
		what := fmt.Sprintf("%s -> %s", report.FormatBytes(c.A.Size), report.FormatBytes(c.B.Size))
		switch {
		case c.A.Kind != c.B.Kind:
			what = fmt.Sprintf("%s -> %s", c.A.Kind, c.B.Kind)
		case c.A.Link != c.B.Link:
			what = fmt.Sprintf("-> %s, was -> %s", c.B.Link, c.A.Link)
		case c.A.SHA256 == c.B.SHA256 && c.A.Mode != c.B.Mode:
			what = fmt.Sprintf("mode %o -> %o", c.A.Mode, c.B.Mode)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", signed(c.Delta), c.Path, what)
	})
	fmt.Fprintf(tw, "\nfiles: %s in total\n", signed(d.DeltaBytes))
	return tw.Flush()
}

func signed(n int64) string {
	if n > 0 {
		return "+" + report.FormatBytes(n)
	}
	return report.FormatBytes(n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func linkSuffix(e *Entry) string {
	if e.Kind == KindSymlink {
		return " -> " + e.Link
	}
	return ""
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
