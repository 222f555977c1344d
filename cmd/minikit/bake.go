package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/samples"
)

// bake (re)generates docker-bake.hcl and dockerfiles/ from the catalog.
func (a app) bake(ctx context.Context, args []string) error {
	flags := a.flags("bake", "[--dir DIR] [--check]")
	dir := flags.String("dir", ".", "the repository root to write docker-bake.hcl and dockerfiles/ into; given explicitly, any directory (the samples are written too if it has none)")
	check := flags.Bool("check", false, "write nothing; exit 1 if the files are out of date")
	if err := parse(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usagef("unexpected arguments %q", flags.Args())
	}
	explicit := false
	flags.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "dir" })
	root, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("bake: %w", err)
	}
	if !explicit && !isRepoRoot(root) {
		return usagef("%s is not the minikit repository root (no go.mod and samples/ here): run it from the root, or pass --dir", root)
	}
	recipes := llbdefs.Catalog()
	if *check {
		outdated, err := bake.Check(root, recipes)
		if err != nil {
			return err
		}
		if len(outdated) > 0 {
			for _, p := range outdated {
				fmt.Fprintf(a.stderr, "out of date: %s\n", p)
			}
			return outdatedError{unexpectedError{len(outdated)}}
		}
		fmt.Fprintf(a.stdout, "%s and %s/ are up to date (%d recipes)\n", bake.File, bake.DefaultDockerfileDir, len(recipes))
		return nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("bake: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, bake.DefaultContext)); errors.Is(err, fs.ErrNotExist) {
		if _, err := samples.WriteTo(filepath.Join(root, bake.DefaultContext)); err != nil {
			return fmt.Errorf("bake: %w", err)
		}
		fmt.Fprintf(a.stdout, "wrote %s/ (the sample programs, the build context)\n", bake.DefaultContext)
	}
	changed, err := bake.Write(root, recipes)
	for _, p := range changed {
		fmt.Fprintf(a.stdout, "wrote %s\n", p)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s: %d targets, %d file(s) changed\n", filepath.Join(root, bake.File), len(recipes), len(changed))
	return nil
}

// isRepoRoot reports whether dir looks like minikit's repository root.
func isRepoRoot(dir string) bool {
	for _, p := range []string{"go.mod", bake.DefaultContext} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

// outdatedError is a --check that found files to regenerate (exit 1).
type outdatedError struct{ unexpectedError }

func (e outdatedError) Error() string {
	return fmt.Sprintf("%d file(s) out of date: run 'minikit bake'", e.n)
}

func (e outdatedError) Unwrap() error { return e.unexpectedError }
