// Package runner solves minikit's recipes against a BuildKit daemon and
// exports their images: every recipe in its own build, in parallel, one
// failure never stopping the others.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// product identifies minikit's builds to buildkitd.
const product = "minikit"

// validName is what a recipe name must look like to be an image tag and a
// file name.
var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Solve builds every recipe with c, in parallel, and exports the images.
// It returns one Result per recipe, in the order given. A recipe that
// fails, expectedly or not, never stops the others; when ctx is canceled
// the running builds stop and every recipe not built is StatusCanceled.
// When the connection to buildkitd is lost (it does not answer any
// more), every recipe not finished ends with an error wrapping
// ErrBuilderLost. The error is for setup problems only (options, samples
// directory, export directories, recipe names): then nothing is built.
func Solve(ctx context.Context, c *client.Client, recipes []llbdefs.Recipe, opts ...Option) ([]Result, error) {
	if c == nil {
		return nil, errors.New("solve: no BuildKit client")
	}
	return solveOn(ctx, []Builder{{Client: c}}, recipes, opts)
}

// newSolver checks the options and the recipes' names, prepares the
// export and cache directories, the samples and the credentials, and
// starts the progress display (the caller closes it): what every
// recipe's build shares. The caller gives each builder its own copy
// (forBuilder).
func newSolver(recipes []llbdefs.Recipe, opts []Option) (*solver, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, r := range recipes {
		if !validName.MatchString(r.Name) {
			return nil, fmt.Errorf("recipe %q: the name must be a valid image tag", r.Name)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("recipe %s given twice", r.Name)
		}
		seen[r.Name] = true
	}
	for _, e := range cfg.exports {
		if e.Dir == "" {
			continue
		}
		if err := os.MkdirAll(e.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("export %s: %w", e, err)
		}
		if err := removeStaleTemps(e.Dir); err != nil { // export.go
			return nil, fmt.Errorf("export %s: %w", e, err)
		}
	}
	names := make([]string, len(recipes))
	for i, r := range recipes {
		names[i] = r.Name
	}
	if err := prepareLocalCaches(cfg.cacheExports, names); err != nil {
		return nil, err
	}
	samples, err := samplesFS(cfg.samplesDir)
	if err != nil {
		return nil, err
	}
	auth, err := registryAuth()
	if err != nil {
		return nil, err
	}
	disp, err := startDisplay(cfg.progressOut, cfg.progressMode)
	if err != nil {
		return nil, err
	}
	return &solver{cfg: cfg, samples: samples, auth: auth, disp: disp, configs: newConfigStore()}, nil
}

// forBuilder returns a copy of s that builds with c, with sessions of its
// own on that daemon (the caller closes them once every build on it has
// ended).
func (s *solver) forBuilder(c *client.Client) *solver {
	cp := *s
	cp.c = c
	cp.sessions = newSessions(c, s.samples, s.auth)
	cp.hostNetwork = &entitlementCheck{}
	return &cp
}

// A solver holds what every recipe's build on one builder shares.
type solver struct {
	c   *client.Client
	cfg *config
	// samples is the samples directory as sent to buildkitd, auth the
	// credentials offered (session.go).
	samples fsutil.FS
	auth    session.Attachable
	disp    *display
	// sessions are the run's sessions on c (session.go).
	sessions *sessions
	// hostNetwork says whether c grants the network.host entitlement
	// (run.go).
	hostNetwork *entitlementCheck
	// configs are the base images' configs resolved in this run.
	configs *configStore
}

// built is what a build function learns, read once the build is over.
type built struct {
	standIns []string
	steps    map[digest.Digest]bool
	err      error       // the build function's own error, with its context
	built    bool        // the image was solved (a later error is the hook's)
	run      *RunOutcome // the Test option's run (run.go)
	// baseDiffIDs are the run image's layers, for Measure (read by the
	// exporter's output callback, on another goroutine).
	baseDiffIDs atomic.Pointer[[]string]
}

// bases returns the run image's diff IDs, once the build resolved it.
func (b *built) bases() []string {
	if ids := b.baseDiffIDs.Load(); ids != nil {
		return *ids
	}
	return nil
}

// solve builds one recipe and never fails: the outcome is in the Result.
func (s *solver) solve(ctx context.Context, r llbdefs.Recipe) Result {
	start := time.Now()
	res := Result{Name: r.Name}
	if err := s.hostNetworkRefused(ctx, r); err != nil { // run.go: not worth building
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		res.Duration = time.Since(start)
		return res
	}

	entries, files := exportEntries(s.cfg.exports, r.Name)
	var info built
	var meter *meter
	// With a measurement cache, the image is measured in a second pass,
	// only when its digest is not in the cache (measureLater).
	measureLater := s.cfg.measure && s.cfg.measureCache != "" && len(entries) > 0
	if s.cfg.measure && !measureLater {
		meter = newMeter(r.Name, s.cfg.measureOpts, info.bases)
		entries = append(entries, meter.entry)
	}
	opt := client.SolveOpt{
		Exports: entries,
		// network.host, for the Test option's runs that need it (run.go).
		AllowedEntitlements: s.entitlements(r),
		// Each recipe's own cache entries (cache.go).
		CacheExports: recipeCache(s.cfg.cacheExports, r.Name, true),
		CacheImports: recipeCache(s.cfg.cacheImports, r.Name, false),
		// Not nil: BuildKit's client copies the cache imports into it.
		FrontendAttrs: map[string]string{},
		// Not in buildkitd's build history unless asked (options.go).
		Internal: !s.cfg.history,
	}
	s.cfg.stampEpoch(opt.Exports)
	sess, err := s.sessions.forBuild(opt)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.Name, err)
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		res.Duration = time.Since(start)
		return res
	}
	opt.SharedSession, opt.SessionPreInitialized = sess, true

	statusCh := make(chan *client.SolveStatus)
	tr := newTracker()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ss := range statusCh {
			tr.add(ss)
			labelExport(ss, r.Name)
			s.disp.send(ss)
		}
	}()

	resp, err := s.c.Build(ctx, opt, product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		res, err := s.build(ctx, gw, r, &info, true)
		info.err = err
		return res, err
	}, statusCh)
	<-drained // Build closed statusCh

	if meter != nil {
		img, merr := meter.finish(err)
		if err == nil && merr != nil {
			err = fmt.Errorf("measure %s: %w", r.Name, merr)
		}
		res.Image = img
		if err == nil {
			s.storeMeasure(resp.ExporterResponse[exptypes.ExporterImageDigestKey], img)
		}
	}
	if err == nil && measureLater {
		res.Image, err = s.measureAgain(ctx, r, opt, resp.ExporterResponse[exptypes.ExporterImageDigestKey])
	}
	if err == nil {
		for _, e := range opt.CacheExports {
			if e.Type == "local" {
				if err = publishLocalCache(filepath.Dir(filepath.Dir(e.Attrs["dest"])), r.Name); err != nil {
					break
				}
			}
		}
	}
	if err == nil {
		for _, f := range files {
			if cerr := f.commit(); cerr != nil {
				err = cerr
				break
			}
			res.Outputs = append(res.Outputs, f.path)
		}
	}
	if err != nil {
		for _, f := range files {
			f.discard()
		}
		res.Outputs = nil
		res.Image = nil
	}

	res.Status = classify(r, err, ctx.Err() != nil)
	if res.Status == StatusExpectedFailure && info.built {
		// The image built; what failed is the AfterSolve hook or the
		// export, which no recipe expects.
		res.Status = StatusFailed
	}
	if err != nil {
		// The build function's error says what it was doing; the one
		// Build returns is the daemon's copy, without that context, but
		// with the gRPC status of a lost connection: both are kept.
		if info.err != nil && info.err != err {
			err = &buildError{fn: info.err, daemon: err}
		}
		res.Err, res.Error = err, err.Error()
		if res.Status != StatusCanceled {
			// After a cancellation, steps fail in all sorts of ways
			// (an exporter's blob "locked", a session gone): none of
			// them is the cause.
			res.FailedVertex, res.FailedLog = tr.failure()
		}
	} else {
		if len(s.cfg.exports) > 0 {
			res.ImageName = ImageName(r.Name)
		}
		res.ImageDigest = resp.ExporterResponse[exptypes.ExporterImageDigestKey]
		res.ConfigDigest = resp.ExporterResponse[exptypes.ExporterImageConfigDigestKey]
	}
	res.Run = info.run
	res.StandInImages = info.standIns
	res.StandIn = len(info.standIns) > 0
	if info.steps != nil {
		res.Vertices, res.Cached = tr.counts(info.steps)
	}
	res.Duration = time.Since(start)
	return res
}

// A buildError is a build's failure as its build function saw it, with
// what it was doing, and as BuildKit's client returned it: the message is
// the first's, and both are wrapped.
type buildError struct{ fn, daemon error }

func (e *buildError) Error() string   { return e.fn.Error() }
func (e *buildError) Unwrap() []error { return []error{e.fn, e.daemon} }

// build is the gateway build function of one recipe: it resolves the base
// images, solves the recipe's graph, runs the AfterSolve hook and returns
// the image with its config.
func (s *solver) build(ctx context.Context, gw gateway.Client, r llbdefs.Recipe, info *built, hooks bool) (*gateway.Result, error) {
	resolver := newConfigCache(gw, s.configs)
	var base ocispecs.Image // scratch's config is empty
	for _, ref := range r.Images() {
		img, err := resolver.image(ctx, ref)
		if err != nil {
			return nil, err
		}
		if img.Config.Labels[StandInLabel] == "true" {
			info.standIns = append(info.standIns, ref)
		}
		if ref == r.RunImage() {
			base = img
			ids := make([]string, 0, len(img.RootFS.DiffIDs))
			for _, d := range img.RootFS.DiffIDs {
				ids = append(ids, d.String())
			}
			info.baseDiffIDs.Store(&ids)
		}
	}

	def, err := r.Definition(ctx, llbdefs.Sources{Samples: llbdefs.SamplesSource(), Resolver: resolver, CompilerCache: s.cfg.compilerCache, Epoch: s.cfg.epoch})
	if err != nil {
		return nil, err
	}
	info.steps = definitionSteps(def.Def)

	var imports []gateway.CacheOptionsEntry
	if len(s.cfg.cacheImports) > 0 {
		if imports, err = gatewayCacheImports(gw); err != nil {
			return nil, err
		}
	}
	res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true, CacheImports: imports})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, fmt.Errorf("solve %s: %w", r.Name, err)
	}

	info.built = true
	img := r.ImageConfig(base)
	if hooks && s.cfg.afterSolve != nil {
		if err := s.cfg.afterSolve(ctx, gw, ref, r, img); err != nil {
			return nil, fmt.Errorf("after solving %s: %w", r.Name, err)
		}
	}
	if hooks && s.cfg.test != nil {
		info.run = RunImage(ctx, gw, ref, r, img, *s.cfg.test)
	}
	cfg, err := json.Marshal(img)
	if err != nil {
		return nil, fmt.Errorf("image config of %s: %w", r.Name, err)
	}
	out := gateway.NewResult()
	out.SetRef(ref)
	out.AddMeta(exptypes.ExporterImageConfigKey, cfg)
	if err := markBaseLayers(out, base); err != nil { // epoch.go
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	return out, nil
}

// A configCache resolves image configs through a build's gateway, each
// image once per run: the configs read for the stand-in labels and the run
// image are the ones the graph is marshalled with, and every recipe of a
// run sees the same digest for a tag (a configStore shared by the run's
// builds), which also spares a registry round trip per base image and
// recipe.
type configCache struct {
	gw    gateway.Client
	store *configStore
}

// A configStore holds the image configs resolved in one run.
type configStore struct {
	mu   sync.Mutex
	seen map[string]resolved
}

type resolved struct {
	ref    string
	digest digest.Digest
	config []byte
}

func newConfigStore() *configStore {
	return &configStore{seen: map[string]resolved{}}
}

func newConfigCache(gw gateway.Client, store *configStore) *configCache {
	if store == nil {
		store = newConfigStore() // the build's own
	}
	return &configCache{gw: gw, store: store}
}

// ResolveImageConfig implements llb.ImageMetaResolver.
func (c *configCache) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	key := ref
	if opt.ImageOpt != nil {
		key += "|" + opt.ImageOpt.ResolveMode
		if p := opt.ImageOpt.Platform; p != nil {
			key += "|" + p.OS + "/" + p.Architecture + "/" + p.Variant
		}
	}
	c.store.mu.Lock()
	r, ok := c.store.seen[key]
	c.store.mu.Unlock()
	if ok {
		return r.ref, r.digest, r.config, nil
	}
	name, dgst, dt, err := c.gw.ResolveImageConfig(ctx, ref, opt)
	if err != nil {
		return "", "", nil, fmt.Errorf("resolve base image %s: %w", ref, err)
	}
	c.store.mu.Lock()
	c.store.seen[key] = resolved{name, dgst, dt}
	c.store.mu.Unlock()
	return name, dgst, dt, nil
}

// image returns ref's config for the recipes' platform.
func (c *configCache) image(ctx context.Context, ref string) (ocispecs.Image, error) {
	p := llbdefs.Platform()
	_, _, dt, err := c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName:  "[internal] load metadata for " + ref,
		ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: llb.ResolveModeDefault.String()},
	})
	if err != nil {
		return ocispecs.Image{}, err
	}
	var img ocispecs.Image
	if err := json.Unmarshal(dt, &img); err != nil {
		return ocispecs.Image{}, fmt.Errorf("config of %s: %w", ref, err)
	}
	return img, nil
}
