// Package runner builds Targets (any program's image, given as an LLB
// graph, its local sources and its image config) against BuildKit
// daemons and exports their images: every target in its own build, in
// parallel, one failure never stopping the others; it measures them
// (Measure) and runs them with their Check (Test).
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
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

	"github.com/minikit/minikit/pkg/measure"
)

// validName is what a target name must look like to be an image tag and a
// file name.
var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Solve builds every target with c, in parallel, and exports the images.
// It returns one Result per target, in the order given; a target built
// for several platforms (Platforms) has one per platform, in their
// order, next to each other. A target that
// fails, expectedly or not, never stops the others; when ctx is canceled
// the running builds stop and every target not built is StatusCanceled.
// When the connection to buildkitd is lost (it does not answer any
// more), every target not finished ends with an error wrapping
// ErrBuilderLost. The error is for setup problems only (options, export
// directories, target names, image names, sources): then nothing is
// built.
func Solve(ctx context.Context, c *client.Client, targets []Target, opts ...Option) ([]Result, error) {
	if c == nil {
		return nil, errors.New("solve: no BuildKit client")
	}
	return solveOn(ctx, []Builder{{Client: c}}, targets, opts)
}

// newSolver checks the options and the targets, prepares the export and
// cache directories, the sources and the credentials, and starts the
// progress display (the caller closes it): what every target's build
// shares. The caller gives each builder its own copy (forBuilder).
func newSolver(targets []Target, opts []Option) (*solver, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	sources := map[string]fsutil.FS{}
	sourceOf := map[string]string{} // source name -> the first target giving it
	for _, t := range targets {
		if err := t.validate(); err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("target %s given twice", t.Name)
		}
		seen[t.Name] = true
		if _, err := cfg.names.For(t); err != nil {
			return nil, err
		}
		for _, src := range t.Sources {
			prev, ok := sources[src.Name]
			switch {
			case !ok:
				sources[src.Name], sourceOf[src.Name] = src.FS, t.Name
			case !sameFS(prev, src.FS):
				return nil, fmt.Errorf("source %q: targets %s and %s give it two different filesystems (a name is one directory in a run)",
					src.Name, sourceOf[src.Name], t.Name)
			}
		}
	}
	if err := prepareExports(cfg.exports, targets, cfg.names); err != nil { // export.go
		return nil, err
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	if err := prepareLocalCaches(cfg.cacheExports, names); err != nil {
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
	return &solver{cfg: cfg, sources: sources, auth: auth, disp: disp, configs: newConfigStore(), ports: newPortLocks()}, nil
}

// forBuilder returns a copy of s that builds with c, with sessions of its
// own on that daemon (the caller closes them once every build on it has
// ended).
func (s *solver) forBuilder(c *client.Client) *solver {
	cp := *s
	cp.c = c
	cp.sessions = newSessions(c, s.sources, s.auth)
	cp.hostNetwork = &entitlementCheck{}
	cp.own = &builderPlatform{list: func(ctx context.Context) ([]*client.WorkerInfo, error) { return c.ListWorkers(ctx) }}
	return &cp
}

// A solver holds what every target's build on one builder shares.
type solver struct {
	c   *client.Client
	cfg *config
	// sources are the run's local directories by name, auth the
	// credentials offered (session.go).
	sources map[string]fsutil.FS
	auth    session.Attachable
	disp    *display
	// sessions are the run's sessions on c (session.go).
	sessions *sessions
	// hostNetwork says whether c grants the network.host entitlement
	// (run.go).
	hostNetwork *entitlementCheck
	// own is c's platform, asked for once needed.
	own *builderPlatform
	// configs are the base images' configs resolved in this run.
	configs *configStore
	// ports has the probes of one port take turns (run.go), across the
	// run's builders.
	ports *portLocks
}

// A builderPlatform is a builder's own platform, learnt from its workers
// the first time a target needs it.
type builderPlatform struct {
	list func(context.Context) ([]*client.WorkerInfo, error)

	mu    sync.Mutex
	known *ocispecs.Platform
}

// get returns the platform of the builder's first worker (the first it
// lists); a failure is not remembered.
func (b *builderPlatform) get(ctx context.Context) (ocispecs.Platform, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known != nil {
		return *b.known, nil
	}
	ws, err := b.list(ctx)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("the builder's platform: list its workers: %w", err)
	}
	for _, w := range ws {
		if len(w.Platforms) > 0 {
			p := w.Platforms[0]
			b.known = &p
			return p, nil
		}
	}
	return ocispecs.Platform{}, errors.New("the builder's platform: it lists no worker with a platform")
}

// platforms are what t is built for: its own Platforms, else the
// Platforms option, else the builder's.
func (s *solver) platforms(ctx context.Context, t Target) ([]ocispecs.Platform, error) {
	if ps := s.cfg.targetPlatforms(t); len(ps) > 0 {
		return ps, nil
	}
	p, err := s.own.get(ctx)
	if err != nil {
		return nil, err
	}
	return []ocispecs.Platform{p}, nil
}

// formatPlatform is os/arch[/variant].
func formatPlatform(p ocispecs.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// built is what a build function learns, read once the build is over.
type built struct {
	mu    sync.Mutex
	steps stepKinds // status.go; every platform's graph's
	err   error     // the build function's own error, with its context
	built bool      // the image was solved (a later error is the hook's)
	// plats are what each platform's build learns, in the target's
	// platform order.
	plats []*platformBuilt
}

// platformBuilt is what one platform's build learns.
type platformBuilt struct {
	bases []BaseImage // the target's images, as resolved
	run   *RunOutcome // the Test option's run (run.go)
	// baseDiffIDs are the Base image's layers, for Measure (read by the
	// exporter's output callback, on another goroutine).
	baseDiffIDs atomic.Pointer[[]string]
}

func newBuilt(n int) *built {
	b := &built{plats: make([]*platformBuilt, n)}
	for i := range b.plats {
		b.plats[i] = &platformBuilt{}
	}
	return b
}

// addSteps adds a platform's graph's steps.
func (b *built) addSteps(steps stepKinds) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.steps == nil {
		b.steps = stepKinds{}
	}
	maps.Copy(b.steps, steps)
}

// baseLayers returns the Base image's diff IDs, once the build resolved it.
func (b *platformBuilt) baseLayers() []string {
	if ids := b.baseDiffIDs.Load(); ids != nil {
		return *ids
	}
	return nil
}

// solve builds one target and never fails: the outcome is in the Result.
func (s *solver) solve(ctx context.Context, t Target) Result {
	start := time.Now()
	res := Result{Name: t.Name}
	fail := func(err error) Result {
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		if ctx.Err() != nil {
			res.Status = StatusCanceled
		}
		res.Duration = time.Since(start)
		return res
	}
	if err := s.hostNetworkRefused(ctx, t); err != nil { // run.go: not worth building
		return fail(err)
	}
	ps, err := s.platforms(ctx, t)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", t.Name, err))
	}
	image, err := s.cfg.names.For(t)
	if err != nil {
		return fail(err) // checked by newSolver: not reached
	}

	exports, err := exportsFor(ctx, s.cfg.exports, t, s.cfg.names) // export.go
	if err != nil {
		return fail(err) // checked by newSolver: not reached
	}
	entries := exports.entries
	info := newBuilt(len(ps))
	var meter *meter
	// With a measurement cache, the image is measured in a second pass,
	// only when its digest is not in the cache (measureLater); not with
	// NoCache, whose second pass would build the image again.
	measureLater := s.cfg.measure && s.cfg.measureCache != "" && len(entries) > 0 && !s.cfg.noCache
	if s.cfg.measure && !measureLater {
		meter = newMeter(image, s.cfg.measureOpts, ps, info)
		// First: BuildKit merges the exporters' responses in order, so
		// the digests reported are the targets' own exports'.
		entries = append([]client.ExportEntry{meter.entry}, entries...)
	}
	opt := client.SolveOpt{
		Exports: entries,
		// network.host, for the Test option's runs that need it (run.go).
		AllowedEntitlements: s.entitlements(t),
		// Each target's own cache entries (cache.go).
		CacheExports: recipeCache(s.cfg.cacheExports, t.Name, true, s.cfg.cachePrefix()),
		CacheImports: recipeCache(s.cfg.cacheImports, t.Name, false, s.cfg.cachePrefix()),
		// Not nil: BuildKit's client copies the cache imports into it.
		// The platforms asked for, as buildx passes them: BuildKit checks
		// the result's against them (exporter/verifier) and warns when
		// they differ.
		FrontendAttrs: map[string]string{"platform": platformList(ps)},
		// Not in buildkitd's build history unless asked (options.go).
		Internal: !s.cfg.history,
	}
	s.cfg.stampEpoch(opt.Exports)
	sess, err := s.sessions.forBuild(opt)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", t.Name, err))
	}
	opt.SharedSession, opt.SessionPreInitialized = sess, true

	statusCh := make(chan *client.SolveStatus)
	tr := newTracker()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ss := range statusCh {
			tr.add(ss)
			labelExport(ss, t.Name)
			s.disp.send(ss)
		}
	}()

	resp, err := s.c.Build(ctx, opt, s.cfg.product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		res, err := s.build(ctx, gw, t, ps, info, true)
		info.err = err
		return res, err
	}, statusCh)
	<-drained // Build closed statusCh

	var images []*measure.Image // one per platform
	if meter != nil {
		imgs, merr := meter.finish(err)
		if err == nil && merr != nil {
			err = fmt.Errorf("measure %s: %w", t.Name, merr)
		}
		images = imgs
		if err == nil {
			for i, img := range imgs {
				s.storeMeasure(resp.ExporterResponse[exptypes.ExporterImageDigestKey], measuredPlatform(ps, i), img)
			}
		}
	}
	if err == nil && measureLater {
		m0 := time.Now()
		images, err = s.measureAgain(ctx, t, ps, image, opt, resp.ExporterResponse[exptypes.ExporterImageDigestKey])
		tr.measured(t.Name, m0) // timings.go
	}
	if err == nil {
		for _, e := range opt.CacheExports {
			if e.Type == "local" {
				if err = publishLocalCache(filepath.Dir(filepath.Dir(e.Attrs["dest"])), t.Name); err != nil {
					break
				}
			}
		}
	}
	// Tarballs committed, loads into Docker waited for (export.go).
	res.Outputs, res.Loaded, err = exports.finish(ctx, err)
	if err != nil {
		images = nil
	}

	res.Status = classify(t, err, ctx.Err() != nil)
	if res.Status == StatusExpectedFailure && info.built {
		// The image built; what failed is the AfterSolve hook or the
		// export, which no target expects.
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
			res.ImageName = image
		}
		if len(exports.names) > 0 {
			res.ImageName, res.ImageNames = exports.names[0], exports.names
		}
		res.Pushed = exports.pushed
		res.ImageDigest = resp.ExporterResponse[exptypes.ExporterImageDigestKey]
		res.ConfigDigest = resp.ExporterResponse[exptypes.ExporterImageConfigDigestKey]
		res.ImageDescriptor, _ = imageDescriptor(resp.ExporterResponse) // export.go; nil if unreadable
	}
	res.platformResults = make([]Result, len(ps))
	for i, pb := range info.plats {
		pr := &res.platformResults[i]
		pr.Run, pr.Bases = pb.run, pb.bases
		if i < len(images) {
			pr.Image = images[i]
		}
	}
	if len(ps) == 1 {
		res.Image, res.Run, res.Bases = res.platformResults[0].Image, res.platformResults[0].Run, res.platformResults[0].Bases
		res.platformResults = nil
	}
	if info.steps != nil {
		res.Vertices, res.Cached = tr.counts(info.steps)
	}
	res.Profile = tr.profile(start, info.steps) // timings.go
	res.Duration = time.Since(start)
	return res
}

// measuredPlatform is the platform the i-th measurement of a build for
// ps is chosen by in its image index: "" for a single image.
func measuredPlatform(ps []ocispecs.Platform, i int) string {
	if len(ps) < 2 {
		return ""
	}
	return formatPlatform(ps[i])
}

// A buildError is a build's failure as its build function saw it, with
// what it was doing, and as BuildKit's client returned it: the message is
// the first's, and both are wrapped.
type buildError struct{ fn, daemon error }

func (e *buildError) Error() string   { return e.fn.Error() }
func (e *buildError) Unwrap() []error { return []error{e.fn, e.daemon} }

// build is the gateway build function of one target: for each of its
// platforms ps, at once, it resolves the base images and solves the
// target's graph; then it runs the AfterSolve hook and the Check on
// each platform's image, and returns the images with their configs
// (imageResult: one image, or one per platform for an image index).
func (s *solver) build(ctx context.Context, gw gateway.Client, t Target, ps []ocispecs.Platform, info *built, hooks bool) (*gateway.Result, error) {
	resolver := newConfigCache(gw, s.configs)
	// With Pull, base images are resolved with force-pull (cold.go).
	resolver.cfg = s.cfg
	var imports []gateway.CacheOptionsEntry
	if len(s.cfg.cacheImports) > 0 {
		var err error
		if imports, err = gatewayCacheImports(gw); err != nil {
			return nil, err
		}
	}
	images := make([]platformImage, len(ps))
	err := eachPlatform(ctx, ps, func(ctx context.Context, i int) error {
		im, err := s.solvePlatform(ctx, gw, resolver, imports, t, ps[i], info, info.plats[i])
		images[i] = im
		return err
	})
	if err != nil {
		return nil, err
	}

	info.built = true
	err = eachPlatform(ctx, ps, func(ctx context.Context, i int) error {
		im := images[i]
		if hooks && s.cfg.afterSolve != nil {
			if err := s.cfg.afterSolve(ctx, gw, im.ref, t, im.config); err != nil {
				return fmt.Errorf("after solving %s: %w", t.Name, err)
			}
		}
		if hooks && s.cfg.test != nil && t.Check != nil {
			info.plats[i].run = s.runCheck(ctx, gw, im.ref, im.config, im.platform, *t.Check) // run.go
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := imageResult(images) // platforms.go
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	return out, nil
}

// solvePlatform resolves t's base images for platform p and solves its
// graph for p: the image's root filesystem, its config and its Base's.
func (s *solver) solvePlatform(ctx context.Context, gw gateway.Client, resolver *configCache, imports []gateway.CacheOptionsEntry,
	t Target, p ocispecs.Platform, info *built, pb *platformBuilt) (platformImage, error) {
	im := platformImage{platform: p} // scratch's base config is empty
	refs := t.Images
	if t.Base != "" && !slices.Contains(refs, t.Base) {
		refs = append(slices.Clone(refs), t.Base)
	}
	for _, ref := range refs {
		img, dgst, err := resolver.image(ctx, ref, p)
		if err != nil {
			return im, err
		}
		pb.bases = append(pb.bases, BaseImage{Ref: ref, Digest: dgst.String(), Labels: maps.Clone(img.Config.Labels)})
		if ref == t.Base {
			im.base = img
			ids := make([]string, 0, len(img.RootFS.DiffIDs))
			for _, d := range img.RootFS.DiffIDs {
				ids = append(ids, d.String())
			}
			pb.baseDiffIDs.Store(&ids)
		}
	}

	in := BuildInput{Resolver: resolver, Platform: p}
	if s.cfg.epoch != nil {
		e := *s.cfg.epoch
		in.Epoch = &e
	}
	st, err := t.graph(ctx, in)
	if err != nil {
		return im, fmt.Errorf("the graph of %s: %w", t.Name, err)
	}
	def, err := s.cfg.marshal(ctx, st, p) // cold.go: NoCache, Pull
	if err != nil {
		return im, fmt.Errorf("marshal %s: %w", t.Name, err)
	}
	info.addSteps(definitionSteps(def.Def))

	res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true, CacheImports: imports})
	if err != nil {
		return im, err
	}
	if im.ref, err = res.SingleRef(); err != nil {
		return im, fmt.Errorf("solve %s: %w", t.Name, err)
	}
	im.config = t.Config.Apply(im.base, t.Base == "", p)
	return im, nil
}

// graph calls t's LLB function; a panic in it is its error.
func (t Target) graph(ctx context.Context, in BuildInput) (st llb.State, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the LLB function panicked: %v", p)
		}
	}()
	return t.LLB(ctx, in)
}

// A configCache resolves image configs through a build's gateway, each
// image once per run and platform: the configs reported in Result.Bases
// and the Base's are the ones the graph is marshalled with, and every
// target of a run sees the same digest for a tag (a configStore shared by
// the run's builds), which also spares a registry round trip per base
// image and target.
type configCache struct {
	gw    gateway.Client
	store *configStore
	cfg   *config // the run's options (Pull); nil: none
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
	if opt.ImageOpt != nil {
		iopt := *opt.ImageOpt
		iopt.ResolveMode = c.cfg.resolveMode(iopt.ResolveMode) // cold.go
		opt.ImageOpt = &iopt
	}
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

// image returns ref's config for platform p, and the digest ref resolved
// to.
func (c *configCache) image(ctx context.Context, ref string, p ocispecs.Platform) (ocispecs.Image, digest.Digest, error) {
	_, dgst, dt, err := c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName:  "[internal] load metadata for " + ref,
		ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: llb.ResolveModeDefault.String()},
	})
	if err != nil {
		return ocispecs.Image{}, "", err
	}
	var img ocispecs.Image
	if err := json.Unmarshal(dt, &img); err != nil {
		return ocispecs.Image{}, "", fmt.Errorf("config of %s: %w", ref, err)
	}
	return img, dgst, nil
}
