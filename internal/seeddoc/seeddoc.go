// Package seeddoc renders docs/seed-rows.md: for every row of the seed
// matrix, its expected outcome, whether the offline stand-ins reproduce it,
// and what each of its base images was on the stand-ins (the stand-in's
// own account of what it was made from), or why the row is upstream only.
// The file is generated from the recipe catalog and the stand-in table, so
// it cannot drift from them: a test fails when the checked-in copy is
// stale (go test ./internal/seeddoc -update rewrites it).
package seeddoc

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/llbdefs"
)

// Path is where the rendered file lives, relative to the repository root.
const Path = "docs/seed-rows.md"

// Render returns the document for recipes (the seed rows, in catalog
// order) and the stand-in table specs.
func Render(recipes []llbdefs.Recipe, specs []standin.Spec) []byte {
	from := make(map[string]string, len(specs))
	for _, s := range specs {
		from[s.Name] = s.From
	}
	var b bytes.Buffer
	b.WriteString(`# The seed rows on the offline stand-ins

Generated from the recipe catalog (pkg/llbdefs) and the stand-in table
(internal/standin) by internal/seeddoc; do not edit by hand. For each of
the 51 seed rows: the outcome the original experiment observed, whether the
offline stand-ins reproduce it (yes; partial: built and run on a stand-in
that differs from upstream in the stated respect; no: upstream only, and
why), and what each base image was on the stand-ins. Results obtained on
these stand-ins are stand-in results, not upstream figures.

| row | outcome | offline | base images on the stand-ins |
|---|---|---|---|
`)
	for _, r := range recipes {
		if r.Extra {
			continue
		}
		offline := string(r.StandIn)
		if r.StandIn != llbdefs.Offline && r.Offline != "" {
			offline += ": " + r.Offline
		}
		var bases []string
		for _, ref := range r.Images() {
			short := llbdefs.ShortRef(ref)
			switch {
			case !r.BuildsOffline():
				bases = append(bases, "`"+short+"`")
			case from[specName(ref)] != "":
				bases = append(bases, "`"+short+"`: "+from[specName(ref)])
			default:
				bases = append(bases, "`"+short+"`: no stand-in")
			}
		}
		if len(bases) == 0 {
			bases = []string{"scratch only"}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, r.Expect, cell(offline), cell(strings.Join(bases, "; ")))
	}
	return b.Bytes()
}

// specName is the stand-in table's name for an image reference: the
// repository and tag without the registry host, as buildkitd asks its
// mirror for it.
func specName(ref string) string {
	for _, host := range []string{"docker.io/", "index.docker.io/", "gcr.io/"} {
		ref = strings.TrimPrefix(ref, host)
	}
	if !strings.Contains(ref, "/") {
		ref = "library/" + ref
	}
	return ref
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
