package main

import (
	"flag"
	"strings"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// platformFlag adds --platform to fs: what the recipes are built and run
// for, as `docker buildx build --platform` takes it.
func platformFlag(fs *flag.FlagSet) *string {
	return fs.String("platform", "", "platforms to build (and run) the recipes for, comma-separated os/arch[/variant] as buildx takes them: linux/amd64, linux/arm64 "+
		"(another machine's runs emulated: scripts/binfmt registers qemu for arm64); with several, each recipe's image is an OCI image index under its name, "+
		"measured and run on each platform, one row per platform; default the builder's own")
}

// platformOption is the runner option of --platform's value: nil (the
// builder's own platform) when it is empty; a list that does not parse
// (an empty item, a platform without os/arch, one given twice) is a
// usage error.
func platformOption(v string) (runner.Option, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	ps, err := runner.ParsePlatforms(v)
	if err != nil {
		return nil, usagef("--platform %q: %v", v, err)
	}
	return runner.Platforms(ps...), nil
}

// resultRows turns a run's results into report rows by recipe name, in
// the results' order: one row per recipe, or one per platform for a
// recipe built for several (Result.Platform). The recipes are those the
// results are of, found by name; row, if not nil, adjusts each row.
func resultRows(rows map[string][]report.Recipe, recipes []llbdefs.Recipe, results []runner.Result, standIns bool, row func(*report.Recipe, runner.Result)) {
	byName := make(map[string]llbdefs.Recipe, len(recipes))
	for _, r := range recipes {
		byName[r.Name] = r
	}
	built := map[string]bool{} // the rows of a recipe this run replaces
	for _, res := range results {
		if !built[res.Name] {
			built[res.Name] = true
			rows[res.Name] = nil
		}
		rw := report.RecipeRow(byName[res.Name], res, standIns)
		if row != nil {
			row(&rw, res)
		}
		rows[res.Name] = append(rows[res.Name], rw)
	}
}
