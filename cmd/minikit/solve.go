package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/pkg/timings"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (a app) solve(ctx context.Context, args []string) error {
	fs := a.flags("solve", "[flags] --all | NAME|GLOB...")
	all := fs.Bool("all", false, "solve every recipe (on stand-ins: every recipe they can reproduce)")
	extras := fs.Bool("extras", false, "include the extra recipes beyond the 51 seed rows (minikit list --extras); alone: the extras only")
	parallel := fs.Int("parallel", runner.DefaultParallel(), "recipes solved at once (on each builder, with several --addr)")
	var outputs multiFlag
	fs.Var(&outputs, "output", "where images go, a `DEST`, repeatable, one export per recipe, buildx's syntax: type=image[,name=TEMPLATE][,push=true] | type=registry,name=TEMPLATE | "+
		"type=oci|docker|tar,dest=DIR|FILE.tar|PATH-WITH-{name} | type=docker (load into Docker) | type=local,dest=DIR [,KEY=VALUE for BuildKit's exporter]; "+
		"TEMPLATE and PATH have {name} (the recipe) and {program}; short forms: image (buildkitd's store as minikit:NAME, the default), oci=DIR, docker=DIR")
	push := fs.Bool("push", false, "also push every image to its name's registry, with the Docker config's credentials (= --output type=image,push=true; choose the name with --output type=registry,name=REGISTRY/REPO/{program}:{name})")
	load := fs.Bool("load", false, "load every image into the local Docker engine through the docker CLI, and say which tag each got (= --output type=docker)")
	noCache := fs.Bool("no-cache", false, "build every step again, nothing from BuildKit's cache, as buildx --no-cache (steps the recipes share still run once)")
	pull := fs.Bool("pull", false, "resolve every base image in its registry again, as buildx --pull")
	metadataFile := fs.String("metadata-file", "", "write buildx's build metadata to `FILE`: per recipe, containerimage.digest, containerimage.config.digest, containerimage.descriptor, image.name")
	format := fs.String("format", "table", "summary format: table or json (fields: pkg/report/FIELDS.md)")
	htmlReport := fs.String("report", "", "also write a self-contained HTML report (size chart, layers, largest files) to `FILE`")
	sizes := fs.Bool("sizes", true, "measure every image (layers, largest files, wasted bytes) from its exported blobs")
	topFiles := fs.Int("files", measure.DefaultTopFiles, "largest files listed per image")
	var budgets multiFlag
	fs.Var(&budgets, "max-size", "budget `NAME=LIMIT[,LIMIT...]`, repeatable: a recipe beyond one fails the run (exit 1). "+report.BudgetSyntax+
		"; an exact NAME beats a glob, else the strictest glob applies; a NAME matching none of the recipes selected is a usage error")
	samplesDir := fs.String("samples", "", "directory of sample programs (default: the ones built into minikit)")
	var cacheTo, cacheFrom multiFlag
	fs.Var(&cacheTo, "cache-to", "export each recipe's build cache to `DEST`, repeatable: type=local,dest=DIR | type=registry,ref=REPO | type=gha | type=inline ... [,mode=max]")
	fs.Var(&cacheFrom, "cache-from", "import each recipe's build cache from `SRC`, repeatable: type=local,src=DIR | type=registry,ref=REPO | type=gha ...")
	bf := addBuilderFlags(fs, true)
	compilerCache := compilerCacheFlag("true")
	fs.Var(&compilerCache, "compiler-cache", "share one Go build cache among the recipes' Go build stages that are not final (a BuildKit cache mount: less work, the same images); "+
		"true: filled first from whatsmyip.golang's image when it is solved too; locked: filled by whichever build gets it first; false: builds each as a Dockerfile would")
	fs.String("source-date-epoch", "", "reproducible images: date the config and what the final stage's COPY and WORKDIR steps create at `T`: unix seconds, "+
		"'git' (the last commit touching samples/), or 'off' (or empty); default $SOURCE_DATE_EPOCH, else the last commit touching samples/ (minikit's checkout, or --samples DIR's repository), "+
		"else the time stamped by scripts/setup, else 0 (1970)")
	rewrite := fs.Bool("rewrite-timestamp", false, "with a source date epoch, also clamp the file times that the final stage's RUN steps write (BuildKit's rewrite-timestamp): "+
		"reproducible images for more recipes, but every export rewrites and recompresses the layers the recipes add (slower warm runs: README, \"How fast?\")")
	showTimings := fs.Bool("timings", false, "where the time went: each recipe's steps, queued, running or cached, by kind (pull and extract, compile, copy, export, measure), "+
		"the steps that ran longest and the critical path, in a table after the summary; with --format json, each recipe's timings (pkg/report/FIELDS.md)")
	history := fs.Bool("history", false, "record every recipe's build in buildkitd's build history (buildctl debug history), as buildx does; off by default, since recording is most of what a cached build costs the daemon")
	testRun := fs.Bool("test", false, "also run each image inside BuildKit and compare its outcome with the expected one (see minikit test)")
	runTimeout := fs.Duration("run-timeout", runner.DefaultRunTimeout, "with --test: time limit of each run")
	platform := platformFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	platformOpt, err := platformOption(*platform)
	if err != nil {
		return err
	}
	if *runTimeout <= 0 {
		return usagef("--run-timeout must be positive, not %s", *runTimeout)
	}
	recipes, err := selectRecipes(*all, *extras, fs.Args())
	if err != nil {
		return err
	}
	limits, err := parseBudgets(budgets, recipes)
	if err != nil {
		return err
	}
	if len(limits) > 0 && !*sizes {
		return usagef("--max-size needs sizes: drop --sizes=false")
	}
	if *topFiles < 0 {
		return usagef("--files must be 0 or more, not %d", *topFiles)
	}
	if *parallel < 1 {
		return usagef("--parallel must be at least 1, not %d", *parallel)
	}
	if *format != "table" && *format != "json" {
		return usagef("--format must be table or json, not %q", *format)
	}
	if err := bf.check(); err != nil {
		return err
	}
	opts := []runner.Option{platformOpt, runner.Parallel(*parallel), bf.runnerProgress(a), runner.BuildHistory(*history),
		runner.Product(llbdefs.Product), runner.NameTemplate(llbdefs.ImageNameTemplate)}
	epoch, epochOpts, err := sourceDateEpoch(ctx, fs, *samplesDir)
	if err != nil {
		return err // says which of the flag, $SOURCE_DATE_EPOCH or the build stamp
	}
	opts = append(opts, epochOpts...)
	if *rewrite {
		if epoch.Off {
			return usagef("--rewrite-timestamp needs a source date epoch; it is off")
		}
		opts = append(opts, runner.RewriteTimestamp(true))
	}
	for _, o := range outputs {
		e, err := runner.ParseOutput(o)
		if err != nil {
			return usageError{err}
		}
		opts = append(opts, runner.Exports(e))
	}
	if *push {
		opts = append(opts, runner.Push())
	}
	if *load {
		opts = append(opts, runner.Load())
	}
	if *noCache {
		opts = append(opts, runner.NoCache())
	}
	if *pull {
		opts = append(opts, runner.Pull())
	}
	for _, list := range []struct {
		vals   multiFlag
		export bool
	}{{cacheTo, true}, {cacheFrom, false}} {
		for _, v := range list.vals {
			e, err := runner.ParseCache(v, list.export)
			if err != nil {
				return usageError{err}
			}
			if list.export {
				opts = append(opts, runner.CacheExports(e))
			} else {
				opts = append(opts, runner.CacheImports(e))
			}
		}
	}

	home, dir, err := homeAndSamples(*samplesDir)
	if err != nil {
		return err
	}
	if *sizes {
		opts = append(opts, runner.Measure(measure.TopFiles(*topFiles)), runner.MeasureCache(home.Measurements()))
	}

	set, err := bf.openAll(ctx, home, a)
	if err != nil {
		return err
	}
	defer set.Close()
	conn := set.first
	rep := &report.Report{Generated: time.Now().UTC(), Machine: machine(set.where()), StandIns: conn.StandIns}
	if *testRun {
		h, err := newTestHarness(home, *runTimeout, conn.StandIns)
		if err != nil {
			return err
		}
		defer h.Close()
		opts = append(opts, h.Option)
		rep.TestServer = h.URL()
	}

	if !epoch.Off {
		t := epoch.Time.Unix()
		rep.SourceDateEpoch, rep.EpochSource, rep.RewriteTimestamp = &t, epoch.Source, *rewrite
	}
	rows := map[string][]report.Recipe{}
	build, skip := splitOffline(recipes, conn.StandIns)
	for _, r := range skip {
		rows[r.Name] = []report.Recipe{report.SkippedRow(r, upstreamOnly(r), conn.StandIns)}
	}
	targets, err := llbdefs.Targets(build, llbdefs.ContextDir(dir), llbdefs.CompilerCache(compilerCache != "false"), llbdefs.CompilerCacheSeed(compilerCache == "true"))
	if err != nil {
		return err
	}
	if conn.StandIns {
		fmt.Fprintf(a.stderr, "docker.io and gcr.io images come from the offline stand-ins (minikit standins list): results are stand-in results\n")
	}
	fmt.Fprintf(a.stderr, "solving %d recipe(s) on %s, %d at a time; source date epoch %s\n", len(build), set.where(), *parallel, epoch)
	start := time.Now()
	results, err := runner.SolveOn(ctx, set.builders, targets, opts...)
	if err != nil {
		return err
	}
	lost := markLost(results, set.conns)
	for i, res := range results {
		if i > 0 && results[i-1].Name == res.Name {
			continue // another platform of the same image index
		}
		for _, n := range res.Pushed {
			fmt.Fprintf(a.stderr, "%s pushed to %s@%s\n", res.Name, n, res.ImageDigest)
		}
		for _, tag := range res.Loaded {
			fmt.Fprintf(a.stderr, "%s loaded into Docker as %s\n", res.Name, tag)
		}
	}
	if *metadataFile != "" {
		if err := runner.WriteMetadata(*metadataFile, results); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "metadata written to %s\n", *metadataFile)
	}
	retried := map[string]int{}
	resultRows(rows, build, results, conn.StandIns, func(row *report.Recipe, res runner.Result) { // platform.go
		if len(set.builders) == 1 { // the builder goes without saying
			row.Builder, row.RetriedFrom = "", nil
		}
		if !*showTimings {
			row.Timings = nil
		}
	})
	for i, res := range results {
		if i > 0 && results[i-1].Name == res.Name {
			continue // another platform of the same build
		}
		for _, b := range res.RetriedFrom {
			retried[b]++
		}
	}
	for _, b := range set.addrs {
		if n := retried[b]; n > 0 {
			fmt.Fprintf(a.stderr, "builder %s was lost: %d recipe(s) retried on the others\n", b, n)
		}
	}
	for _, r := range recipes {
		rep.Recipes = append(rep.Recipes, rows[r.Name]...)
	}
	if *sizes {
		rep.Ranking = report.Rank(rep.Recipes, llbdefs.Floors())
	}
	err = a.finish(ctx, rep, limits, *format, *htmlReport, time.Since(start), lost)
	if *showTimings && *format == "table" {
		if werr := writeTimings(a, rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// writeTimings prints solve --timings' table: where the run's time went.
func writeTimings(a app, rep *report.Report) error {
	var named []timings.Named
	for _, r := range rep.Recipes {
		named = append(named, timings.Named{Name: r.Name, Profile: r.Timings})
	}
	if _, err := fmt.Fprintln(a.stdout); err != nil {
		return err
	}
	return timings.Summarize(named).WriteTable(a.stdout, 10)
}

// compilerCacheFlag is --compiler-cache: true (the default; alone, the
// flag means true), locked or false (llbdefs.CompilerCache,
// llbdefs.CompilerCacheSeed).
type compilerCacheFlag string

func (f *compilerCacheFlag) String() string { return string(*f) }

func (f *compilerCacheFlag) Set(v string) error {
	switch v {
	case "true", "false", "locked":
		*f = compilerCacheFlag(v)
		return nil
	}
	return fmt.Errorf("want true, false or locked, not %q", v)
}

// IsBoolFlag lets --compiler-cache stand alone, as a boolean.
func (f *compilerCacheFlag) IsBoolFlag() bool { return true }

// parseBudgets reads the --max-size values: each must parse, give a name
// and metric one limit only, and apply to at least one of the recipes
// selected, so that a typo cannot switch a budget off.
func parseBudgets(values []string, recipes []llbdefs.Recipe) ([]report.Budget, error) {
	type key struct {
		pattern string
		metric  report.Metric
	}
	var out []report.Budget
	given := map[key]string{} // -> the flag value that set it
	limit := map[key]float64{}
	for _, v := range values {
		budgets, err := report.ParseBudget(v)
		if err != nil {
			return nil, usagef("--max-size %s: %v", v, err)
		}
		for _, b := range budgets {
			k := key{b.Pattern, b.Metric}
			if prev, dup := given[k]; dup {
				if limit[k] != b.Limit {
					return nil, usagef("--max-size %s: %s already has a budget for %s (--max-size %s); give it one", v, b.Pattern, b.Metric, prev)
				}
				continue
			}
			given[k], limit[k] = v, b.Limit
			out = append(out, b)
		}
	}
	names := make([]string, len(recipes))
	for i, r := range recipes {
		names[i] = r.Name
	}
	var msgs []string
	for _, pattern := range report.UnmatchedBudgets(out, names) {
		v := ""
		for k, g := range given {
			if k.pattern == pattern {
				v = g
				break
			}
		}
		msgs = append(msgs, fmt.Sprintf("--max-size %s: %q matches none of the %d recipe(s) selected", v, pattern, len(recipes)))
	}
	if len(msgs) > 0 {
		return nil, usagef("%s ('minikit list NAME|GLOB' shows what a name or glob selects)", strings.Join(msgs, "; "))
	}
	return out, nil
}

// selectRecipes turns --all or names/globs into recipes: the 51 seed rows,
// and with extras the extra recipes too (--all --extras: both; --extras
// alone: the extras only).
func selectRecipes(all, extras bool, names []string) ([]llbdefs.Recipe, error) {
	switch {
	case all && len(names) > 0:
		return nil, usagef("give --all or recipe names, not both")
	case all && extras:
		return llbdefs.All(), nil
	case all:
		return llbdefs.Catalog(), nil
	case extras && len(names) == 0:
		return llbdefs.Extras(), nil
	case len(names) == 0:
		return nil, usagef("name the recipes to solve (NAME or GLOB, e.g. 'hello-go.*'), or --all")
	}
	set := llbdefs.Catalog()
	if extras {
		set = llbdefs.All()
	}
	rs, err := llbdefs.Select(set, names...)
	if err != nil {
		return nil, usageError{extrasHint(err, extras)}
	}
	return rs, nil
}

// splitOffline separates the recipes to build from those to skip: with
// skipUpstream (--all on the stand-ins), the upstream-only (Online) ones
// are skipped; partial ones are built like the faithful ones.
func splitOffline(recipes []llbdefs.Recipe, skipUpstream bool) (build, skip []llbdefs.Recipe) {
	for _, r := range recipes {
		if skipUpstream && !r.BuildsOffline() {
			skip = append(skip, r)
		} else {
			build = append(build, r)
		}
	}
	return build, skip
}

// upstreamOnly is why an upstream-only recipe is skipped on the stand-ins.
func upstreamOnly(r llbdefs.Recipe) string {
	return "upstream only: " + r.Offline
}
