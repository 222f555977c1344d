package main

import (
	"context"
	"fmt"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// dockerfile prints the Dockerfile equivalent of one recipe.
func (a app) dockerfile(ctx context.Context, args []string) error {
	fs := a.flags("dockerfile", "NAME")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one recipe name, got %d", fs.NArg())
	}
	name := fs.Arg(0)
	cat := llbdefs.Catalog()
	r, ok := llbdefs.Lookup(cat, name)
	if !ok {
		// Select explains the miss (closest names); a glob matching
		// several recipes is refused: one Dockerfile per call.
		picked, err := llbdefs.Select(cat, name)
		if err != nil {
			return usageError{err}
		}
		names := make([]string, len(picked))
		for i, p := range picked {
			names[i] = p.Name
		}
		if len(picked) != 1 {
			return usagef("%q matches %d recipes (%v); name one", name, len(picked), names)
		}
		r = picked[0]
	}
	text, err := r.RenderDockerfile()
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(a.stdout, text)
	return err
}
