package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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
		"or '@' (alpine:3.22, registry.example/app@sha256:...), read with the Docker config's credentials")
	format := fs.String("format", "table", "summary format: table or json (fields: pkg/report/FIELDS.md)")
	htmlReport := fs.String("report", "", "also write a self-contained HTML report to `FILE`")
	topFiles := fs.Int("files", measure.DefaultTopFiles, "largest files listed per image")
	platform := fs.String("platform", "", "the image to measure when a reference or an archive holds several platforms (os/arch[/variant]); default "+imagefs.DefaultPlatform())
	ref := fs.String("ref", "", "the image to measure in an archive or a layout holding several: its reference name (or tag)")
	layerCache := fs.Bool("layer-cache", true, "reuse minikit's per-layer measurements, and add to them")
	addr := fs.String("addr", "", "buildkitd address, for recipe names; default $BUILDKIT_HOST, else minikit's private daemon")
	samplesDir := fs.String("samples", "", "directory of sample programs, for recipe names (default: the ones built into minikit)")
	progress := fs.String("progress", "quiet", "progress display while recipes are solved: auto, tty, plain, quiet, rawjson")
	fs.String("source-date-epoch", "", "for recipe names: as minikit solve's flag (the default matches solve's, so that the image is solve's)")
	if err := parse(fs, args); err != nil {
		return err
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
	if len(recipes) > 0 {
		conn, err := connect.Open(ctx, connect.Options{Addr: *addr, Home: home, Log: a.stderr})
		if err != nil {
			return err
		}
		defer conn.Close()
		rep.Machine, rep.StandIns = machine(conn.Addr), conn.StandIns
		ropts := []runner.Option{runner.Progress(a.stderr, *progress), runner.Product(llbdefs.Product),
			runner.NameTemplate(llbdefs.ImageNameTemplate),
			runner.Measure(measure.TopFiles(*topFiles)), runner.MeasureCache(home.Measurements())}
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
