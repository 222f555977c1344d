package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/pkg/imagefs"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// inspect measures images, whoever built them, with solve's table, JSON
// and HTML: a tarball or an OCI layout directory, a recipe's image (built
// in buildkitd, from its cache when it was built before) or a registry
// reference. Layers measured before, by inspect or solve, are not read
// again: a registry's are not even downloaded.
func (a app) inspect(ctx context.Context, args []string) error {
	fs := a.flags("inspect", "[flags] TARBALL|DIR|NAME|GLOB|REF...\n\n"+
		"Each argument is, in this order: a file or directory that exists (a docker save archive, an OCI\n"+
		"or docker tarball of minikit solve --output, an OCI layout directory); a recipe name or glob of\n"+
		"the catalog (minikit list --extras); else a registry reference, which must then hold a '/', ':'\n"+
		"or '@' (alpine:3.22, registry.example/app@sha256:...), read with the Docker config's credentials.\n\n"+
		"With --test, each image is also run inside BuildKit, as solve --test runs a recipe's: its own Entrypoint and Cmd,\n"+
		"or with 'minikit inspect --test IMAGE -- ARGS...' ARGS as its Cmd; it must exit 0, and a failure is explained\n"+
		"(exit 1); a recipe runs its own check")
	format := fs.String("format", "table", "summary format: table or json (fields: pkg/report/FIELDS.md)")
	htmlReport := fs.String("report", "", "also write a self-contained HTML report to `FILE`")
	topFiles := fs.Int("files", measure.DefaultTopFiles, "largest files listed per image")
	platform := fs.String("platform", "", "the image to measure when a reference or an archive holds several platforms (os/arch[/variant]); default "+imagefs.DefaultPlatform())
	ref := fs.String("ref", "", "the image to measure in an archive or a layout holding several: its reference name (or tag)")
	layerCache := fs.Bool("layer-cache", true, "reuse minikit's per-layer measurements, and add to them")
	samplesDir := fs.String("samples", "", "directory of sample programs, for recipe names (default: the ones built into minikit)")
	bf := addBuilderFlags(fs, false) // for recipe names and --test
	fs.String("source-date-epoch", "", "for recipe names: as minikit solve's flag (the default matches solve's, so that the image is solve's)")
	testRun := fs.Bool("test", false, "also run each image inside BuildKit (its Entrypoint and Cmd, or the ARGS after --) and explain a failure")
	runTimeout := fs.Duration("run-timeout", runner.DefaultRunTimeout, "with --test: time limit of each run")
	var runArgs []string // after "--": the Cmd of --test's runs
	if i := slices.Index(args, "--"); i >= 0 {
		args, runArgs = args[:i], slices.Clone(args[i+1:])
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if runArgs != nil && !*testRun {
		return usagef("arguments after -- are the Cmd of --test's runs: give --test")
	}
	if err := bf.check(); err != nil {
		return err
	}
	if *runTimeout <= 0 {
		return usagef("--run-timeout must be positive, not %s", *runTimeout)
	}
	switch {
	case fs.NArg() == 0:
		return usagef("name what to inspect: a tarball, a layout directory, a recipe, or a registry reference")
	case *format != "table" && *format != "json":
		return usagef("--format must be table or json, not %q", *format)
	case *topFiles < 0:
		return usagef("--files must be 0 or more, not %d", *topFiles)
	}
	plat := *platform
	if plat == "" {
		plat = imagefs.DefaultPlatform()
	}
	v1plat, err := v1.ParsePlatform(plat)
	if err != nil {
		return usagef("--platform %q: %v", plat, err)
	}

	home, dir, err := homeAndSamples(*samplesDir)
	if err != nil {
		return err
	}
	opts := []measure.Option{measure.TopFiles(*topFiles), measure.Platform(plat), measure.Ref(*ref)}
	if *layerCache {
		lc, err := measure.OpenLayerCache(runner.LayerCacheDir(home.Measurements()))
		if err != nil {
			return err
		}
		opts = append(opts, measure.WithLayerCache(lc))
	}

	// What each argument is.
	type item struct {
		arg    string
		file   bool
		ref    name.Reference
		recipe int // index in recipes, -1 for none
	}
	var items []item
	var recipes []llbdefs.Recipe
	seen := map[string]bool{}
	for _, arg := range fs.Args() {
		if _, err := os.Stat(arg); err == nil {
			items = append(items, item{arg: arg, file: true, recipe: -1})
			continue
		}
		if strings.ContainsAny(arg, "/:@") {
			ref, err := name.ParseReference(arg)
			if err != nil {
				return usagef("%q is no file, recipe or image reference: %v", arg, err)
			}
			items = append(items, item{arg: arg, ref: ref, recipe: -1})
			continue
		}
		rs, err := llbdefs.Select(llbdefs.All(), arg)
		if err != nil {
			return usageError{fmt.Errorf("%w (a registry image needs a tag or a registry: %s:latest)", err, arg)}
		}
		for _, r := range rs {
			if !seen[r.Name] {
				seen[r.Name] = true
				items = append(items, item{arg: r.Name, recipe: len(recipes)})
				recipes = append(recipes, r)
			}
		}
	}

	start := time.Now()
	rep := &report.Report{Generated: time.Now().UTC(), Machine: machine("-")}
	var built []runner.Result
	var conn *connect.Conn
	if len(recipes) > 0 || *testRun {
		conn, err = bf.open(ctx, home, a)
		if err != nil {
			return err
		}
		defer conn.Close()
		rep.Machine, rep.StandIns = machine(conn.Addr), conn.StandIns
	}
	testOpts := runner.TestOptions{Timeout: *runTimeout}
	if len(recipes) > 0 {
		ropts := []runner.Option{bf.runnerProgress(a), runner.Product(llbdefs.Product),
			runner.NameTemplate(llbdefs.ImageNameTemplate),
			runner.Measure(measure.TopFiles(*topFiles)), runner.MeasureCache(home.Measurements())}
		if *testRun {
			h, err := newTestHarness(home, *runTimeout, conn.StandIns)
			if err != nil {
				return err
			}
			defer h.Close()
			ropts = append(ropts, h.Option)
			rep.TestServer = h.URL()
		}
		_, epochOpts, err := sourceDateEpoch(ctx, fs, *samplesDir)
		if err != nil {
			return err
		}
		targets, err := llbdefs.Targets(recipes, llbdefs.ContextDir(dir), llbdefs.CompilerCache(true))
		if err != nil {
			return err
		}
		if built, err = runner.Solve(ctx, conn.Client, targets, append(ropts, epochOpts...)...); err != nil {
			return err
		}
	}
	runPlat := ocispecs.Platform{OS: v1plat.OS, Architecture: v1plat.Architecture, Variant: v1plat.Variant}
	for _, it := range items {
		if it.recipe >= 0 {
			rep.Recipes = append(rep.Recipes, report.RecipeRow(recipes[it.recipe], built[it.recipe], rep.StandIns))
			continue
		}
		row := report.Recipe{Name: it.arg, Status: report.StatusOK}
		var img *measure.Image
		var err error
		if it.file {
			img, err = measureFile(it.arg, opts)
		} else {
			row.ImageName = it.ref.Name()
			img, err = measureRemote(ctx, it.ref, v1plat, opts)
		}
		if err != nil {
			row.Status, row.Error = report.StatusFailed, err.Error()
			fmt.Fprintf(a.stderr, "inspect %s: %v\n", it.arg, err)
		}
		row.Image = img
		if *testRun && err == nil {
			row.Run = a.testImage(ctx, conn, it.arg, it.ref, img, runPlat, runner.Check{Args: runArgs}, testOpts)
		}
		rep.Recipes = append(rep.Recipes, row)
		if ctx.Err() != nil {
			break
		}
	}
	return a.finish(ctx, rep, nil, *format, *htmlReport, time.Since(start), nil)
}

// measureFile measures an archive file or an OCI layout directory.
func measureFile(p string, opts []measure.Option) (*measure.Image, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return measure.FromOCILayoutDir(p, opts...)
	}
	return measure.FromArchiveFile(p, opts...)
}

// measureRemote measures an image of a registry, with the credentials of
// the Docker config (as docker and buildx use them).
func measureRemote(ctx context.Context, ref name.Reference, plat *v1.Platform, opts []measure.Option) (*measure.Image, error) {
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(*plat))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return measure.FromImage(img, opts...)
}

// testImage runs an inspected image inside BuildKit (inspect --test): a
// registry reference by name, a file through an OCI layout of it (a
// directory as it is, an archive unpacked into a temporary one). It prints
// the outcome; an image it cannot run is an outcome too, of kind error.
func (a app) testImage(ctx context.Context, conn *connect.Conn, arg string, ref name.Reference, img *measure.Image, p ocispecs.Platform, check runner.Check, o runner.TestOptions) *report.RunOutcome {
	src := runner.ImageSource{}
	var out *runner.RunOutcome
	err := func() error {
		if ref != nil {
			src.Ref = ref.Context().Name() + "@" + img.ManifestDigest // what was measured
		} else {
			src.LayoutDir, src.Manifest = arg, digest.Digest(img.ManifestDigest)
			if fi, err := os.Stat(arg); err != nil {
				return err
			} else if !fi.IsDir() {
				tmp, err := os.MkdirTemp("", "minikit-inspect-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				if err := imagefs.UnpackLayout(arg, tmp); err != nil {
					return err
				}
				src.LayoutDir = tmp
			}
		}
		var err error
		out, err = runner.TestImage(ctx, conn.Client, src, p, check, o, llbdefs.Product)
		return err
	}()
	if err != nil {
		fmt.Fprintf(a.stderr, "test %s: %v\n", arg, err)
		return &report.RunOutcome{ExitCode: -1, Kind: string(runner.KindError), Reason: err.Error(), Want: "0"}
	}
	if out.Matches {
		fmt.Fprintf(a.stderr, "test %s: works (exit %d)\n", arg, out.ExitCode)
	} else {
		fmt.Fprintf(a.stderr, "test %s: fails (exit %d): %s\n", arg, out.ExitCode, out.Reason)
	}
	return report.RunOutcomeOf(out)
}
