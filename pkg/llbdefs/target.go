package llbdefs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/moby/buildkit/client/llb"
	"github.com/tonistiigi/fsutil"

	"github.com/minikit/minikit/pkg/runner"
)

// Recipes as runner targets.
//
// A Recipe is one producer of runner.Target values: Targets turns each
// into a target that the runner builds like any other. What is
// minikit's lives here, not in the runner: the context directory the
// recipes copy from (the samples), the shared Go compiler cache, the
// image names (ImageNameTemplate) and the product name (Product).

// ImageNameTemplate is how minikit names the recipes' images
// (runner.NameTemplate): docker.io/library/minikit:NAME.
const ImageNameTemplate = "docker.io/library/minikit:{name}"

// Product is the name minikit's builds give buildkitd (runner.Product).
const Product = "minikit"

// A TargetOption configures Targets.
type TargetOption func(*targetConfig) error

type targetConfig struct {
	context       *runner.Source
	compilerCache bool
	noSeed        bool   // CompilerCacheSeed(false) (cache.go)
	goSeed        *Stage // the seed of the shared Go build cache (cache.go)
	buildArgs     map[string]string
}

// ContextDir is the directory the recipes' Copy steps read (the samples
// directory for the catalog), sent to buildkitd as the source
// SamplesName, every file owned by root. Context or ContextDir is
// required.
func ContextDir(dir string) TargetOption {
	return func(c *targetConfig) error {
		if dir == "" {
			return errors.New("context directory: empty path")
		}
		src, err := runner.DirSource(SamplesName, dir)
		if err != nil {
			return fmt.Errorf("context directory: %w", err)
		}
		c.context = &src
		return nil
	}
}

// Context is ContextDir for a filesystem: fs is sent as it is.
func Context(fs fsutil.FS) TargetOption {
	return func(c *targetConfig) error {
		if fs == nil {
			return errors.New("context: no filesystem")
		}
		c.context = &runner.Source{Name: SamplesName, FS: fs}
		return nil
	}
}

// CompilerCache shares one Go build cache among the Go build stages of
// every recipe, through a BuildKit cache mount, in the stages that are
// not the final one (see Sources.CompilerCache): the images stay the
// same, the compiles do less work. Off by default.
func CompilerCache(on bool) TargetOption {
	return func(c *targetConfig) error {
		c.compilerCache = on
		return nil
	}
}

// BuildArgs gives the recipes' build arguments (Stage.Arg) their values,
// by name (Sources.BuildArgs).
func BuildArgs(args map[string]string) TargetOption {
	return func(c *targetConfig) error {
		for k := range args {
			if k == "" {
				return errors.New("build args: an empty name")
			}
		}
		c.buildArgs = args
		return nil
	}
}

// Targets turns recipes into runner targets, in order: each named after
// its recipe, building its Program, its final stage's image (RunImage)
// as Base and every image it pulls (Images), reading the context
// directory, its image config what the final stage and the Cmd set
// (Recipe.Config), expecting a build failure for the recipes kept to
// show one, and otherwise checked by running it: its expected exit code
// (Expect), on the host network for a recipe that declares Network. The
// error is for options, and for a recipe that does not validate or
// whose Expect is not an exit code.
func Targets(recipes []Recipe, opts ...TargetOption) ([]runner.Target, error) {
	var cfg targetConfig
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.context == nil {
		return nil, errors.New("targets: no context directory: the ContextDir or Context option is required")
	}
	if cfg.compilerCache && !cfg.noSeed {
		cfg.goSeed = compilerCacheSeed(recipes) // cache.go
	}
	out := make([]runner.Target, 0, len(recipes))
	for _, r := range recipes {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		t := runner.Target{
			Name:               r.Name,
			Program:            r.Program(),
			Base:               r.RunImage(),
			Images:             r.Images(),
			Sources:            []runner.Source{*cfg.context},
			LLB:                recipeLLB(r, cfg),
			Config:             r.Config(),
			ExpectBuildFailure: r.ExpectBuildFailure(),
		}
		if !r.ExpectBuildFailure() {
			code, err := strconv.Atoi(string(r.Expect))
			if err != nil {
				return nil, fmt.Errorf("recipe %s: expected outcome %q is not an exit code", r.Name, r.Expect)
			}
			t.Check = &runner.Check{ExpectExit: code, Network: r.Network}
		}
		out = append(out, t)
	}
	return out, nil
}

// recipeLLB is r's graph as a target's LLB function.
func recipeLLB(r Recipe, cfg targetConfig) func(context.Context, runner.BuildInput) (llb.State, error) {
	return func(_ context.Context, in runner.BuildInput) (llb.State, error) {
		return r.State(Sources{
			Context:       SamplesSource(),
			Platform:      in.Platform,
			BuildArgs:     cfg.buildArgs,
			Resolver:      in.Resolver,
			CompilerCache: cfg.compilerCache,
			Epoch:         in.Epoch,
			goSeed:        cfg.goSeed,
		}), nil
	}
}
