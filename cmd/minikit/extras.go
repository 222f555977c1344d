package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/minikit/minikit/internal/sourcedate"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
)

// extrasHint adds to a selection error, when --extras was not given and
// the pattern names extra recipes, how to select them.
func extrasHint(err error, extras bool) error {
	var ue *llbdefs.UnknownError
	if extras || !errors.As(err, &ue) {
		return err
	}
	if got, serr := llbdefs.Select(llbdefs.Extras(), ue.Pattern); serr == nil && len(got) > 0 {
		return fmt.Errorf("%q names extra recipe(s) beyond the seed (%s...): add --extras", ue.Pattern, got[0].Name)
	}
	return err
}

// sourceDateEpoch chooses the images' epoch (internal/sourcedate: the
// flag when given, else $SOURCE_DATE_EPOCH, else the last commit touching
// the samples, else the build stamp, else 1970) and returns the runner
// option for it, none when off.
func sourceDateEpoch(ctx context.Context, fs *flag.FlagSet, samplesDir string) (sourcedate.Epoch, []runner.Option, error) {
	l := sourcedate.Lookup{Env: os.Getenv("SOURCE_DATE_EPOCH"), SamplesDir: samplesDir, Stamp: sourcedate.Stamp}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "source-date-epoch" {
			v := f.Value.String()
			l.Flag = &v
		}
	})
	e, err := sourcedate.Resolve(ctx, l)
	if err != nil {
		if ctx.Err() != nil {
			return e, nil, err
		}
		return e, nil, usageError{err}
	}
	if e.Off {
		return e, nil, nil
	}
	return e, []runner.Option{runner.SourceDateEpoch(e.Time)}, nil
}
