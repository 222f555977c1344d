package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/pkg/report"
)

// report renders a saved `solve --format json` document again: as the
// HTML report, or as the table.
func (a app) report(ctx context.Context, args []string) error {
	fs := a.flags("report", "[--report FILE.html] [--format html|table] RESULTS.json")
	out := fs.String("report", "", "write to `FILE` instead of standard output, as solve --report does")
	fs.StringVar(out, "o", "", "the same as --report `FILE` (its older spelling)")
	format := fs.String("format", "html", "html or table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one RESULTS.json (from 'minikit solve --format json')")
	}
	if *format != "html" && *format != "table" {
		return usagef("--format must be html or table, not %q", *format)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	rep, err := report.ReadJSON(f)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", fs.Arg(0), err)}
	}
	write := func(w io.Writer) error {
		if *format == "table" {
			return report.WriteTable(w, rep)
		}
		return report.WriteHTML(w, rep)
	}
	if *out == "" {
		if *format == "table" {
			return report.WriteTable(a.stdout, rep)
		}
		return report.WriteHTML(a.stdout, rep)
	}
	return atomicfile.Write(*out, 0o644, write)
}
