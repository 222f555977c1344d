package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes one line per recipe, the built ones sorted by
// uncompressed size, then the others (failed, skipped...) with no size:
// name, outcome, uncompressed and compressed size, the size Docker shows
// once the image is loaded (docker image inspect), layers, the bytes the
// recipe adds on top of its base image, and notes (stand-in, over budget,
// the error).
func WriteTable(w io.Writer, rep *Report) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOUTCOME\tUNCOMPRESSED\tCOMPRESSED\tDOCKER SIZE\tLAYERS\tADDED\tNOTES")
	for _, i := range sortedBySize(rep.Recipes) {
		r := rep.Recipes[i]
		uncomp, comp, docker, layers, added := "-", "-", "-", "-", "-"
		if img := r.Image; img != nil {
			uncomp, comp, docker = FormatBytes(img.Uncompressed), FormatBytes(img.Compressed), FormatBytes(img.DockerSize)
			layers = fmt.Sprint(len(img.Layers))
			added = "?"
			if img.BaseKnown {
				added = "+" + FormatBytes(img.AddedUncompressed)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Label(), r.Outcome(), uncomp, comp, docker, layers, added, notes(r))
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
	if r.StandInDiffers != "" {
		ns = append(ns, "partial: "+firstLine(r.StandInDiffers, 400))
	}
	if r.OverBudget() {
		ns = append(ns, "over budget ("+FormatBytes(r.Budget)+")")
	}
	switch {
	case r.Status == StatusSkipped && r.Error != "":
		ns = append(ns, firstLine(r.Error, 400)) // why: the row's own reason, whole
	case r.Error != "":
		ns = append(ns, firstLine(r.Error, 70))
	case r.Run != nil && r.Run.Reason != "" && r.Run.ExitCode != 0:
		ns = append(ns, firstLine(r.Run.Reason, 70))
	}
	return strings.Join(ns, "; ")
}
