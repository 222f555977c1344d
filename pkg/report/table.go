package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes one line per recipe, the built ones sorted by
// uncompressed size, then the others (failed, skipped...) with no size:
// name, outcome, uncompressed and compressed size, layers, the bytes the
// recipe adds on top of its base image, and notes (stand-in, over budget,
// the error).
func WriteTable(w io.Writer, rep *Report) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOUTCOME\tUNCOMPRESSED\tCOMPRESSED\tLAYERS\tADDED\tNOTES")
	for _, i := range sortedBySize(rep.Recipes) {
		r := rep.Recipes[i]
		uncomp, comp, layers, added := "-", "-", "-", "-"
		if img := r.Image; img != nil {
			uncomp, comp = FormatBytes(img.Uncompressed), FormatBytes(img.Compressed)
			layers = fmt.Sprint(len(img.Layers))
			added = "?"
			if img.BaseKnown {
				added = "+" + FormatBytes(img.AddedUncompressed)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Outcome(), uncomp, comp, layers, added, notes(r))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// notes are the remarks of a table line.
func notes(r Recipe) string {
	var ns []string
	if r.StandIn {
		ns = append(ns, "stand-in")
	}
	if r.OverBudget() {
		ns = append(ns, "over budget ("+FormatBytes(r.Budget)+")")
	}
	if r.Error != "" {
		ns = append(ns, firstLine(r.Error, 70))
	} else if r.Run != nil && r.Run.Reason != "" && r.Run.ExitCode != 0 {
		ns = append(ns, firstLine(r.Run.Reason, 70))
	}
	return strings.Join(ns, "; ")
}
