package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// listRow is one recipe as `minikit list --format json` prints it.
type listRow struct {
	Name       string `json:"name"`
	Program    string `json:"program"`
	BuildImage string `json:"build_image"`
	RunImage   string `json:"run_image"`
	Cmd        string `json:"cmd"`
	Expect     string `json:"expect"`
	StandIn    string `json:"stand_in"`
	Why        string `json:"why,omitempty"`
	Note       string `json:"note,omitempty"`
	// Offline is, for a partial row, how its stand-in differs from
	// upstream; for an upstream-only row, why it has no stand-in.
	Offline string `json:"offline,omitempty"`
	Extra   bool   `json:"extra,omitempty"`
}

func (a app) list(ctx context.Context, args []string) error {
	fs := a.flags("list", "[--format table|json] [--extras] [NAME|GLOB...]")
	format := fs.String("format", "table", "output: table or json")
	asJSON := fs.Bool("json", false, "the same as --format json")
	extras := fs.Bool("extras", false, "also list the extra recipes beyond the 51 seed rows")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *format {
	case "table", "json":
	default:
		return usagef("--format must be table or json, not %q", *format)
	}
	if *asJSON {
		formatSet := false
		fs.Visit(func(f *flag.Flag) { formatSet = formatSet || f.Name == "format" })
		if formatSet && *format != "json" {
			return usagef("--json is --format json: not with --format %s", *format)
		}
		*format = "json"
	}
	recipes := llbdefs.Catalog()
	if *extras {
		recipes = llbdefs.All()
	}
	if fs.NArg() > 0 {
		var err error
		if recipes, err = llbdefs.Select(recipes, fs.Args()...); err != nil {
			return usageError{extrasHint(err, *extras)}
		}
	}
	rows := make([]listRow, 0, len(recipes))
	for _, r := range recipes {
		rows = append(rows, listRow{
			Name:       r.Name,
			Program:    r.Program(),
			BuildImage: llbdefs.ShortRef(r.BuildImage()),
			RunImage:   runImage(r),
			Cmd:        r.Cmd.String(),
			Expect:     string(r.Expect),
			StandIn:    string(r.StandIn),
			Why:        r.Why,
			Note:       r.Note,
			Offline:    r.Offline,
			Extra:      r.Extra,
		})
	}
	if *format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROGRAM\tBUILD IMAGE\tRUN IMAGE\tEXPECT\tSTAND-IN")
	for _, r := range rows {
		name := r.Name
		if r.Extra {
			name += " (extra)"
		}
		standIn := r.StandIn
		if r.Offline != "" {
			standIn += ": " + r.Offline
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, r.Program, r.BuildImage, r.RunImage, r.Expect, standIn)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d recipes\n", len(rows))
	return nil
}

// runImage names the final stage's base: "(same)" for single-stage images.
func runImage(r llbdefs.Recipe) string {
	switch {
	case r.SingleStage():
		return "(same)"
	case r.RunImage() == "":
		return "scratch"
	}
	return llbdefs.ShortRef(r.RunImage())
}
