package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/measure"
)

// An Option configures Solve.
type Option func(*config) error

// AfterSolveFunc runs inside a target's build session once its image is
// solved, before it is exported: ref is the image's root filesystem and img
// its config. It can start containers on ref through c. A non-nil error
// fails the target (its image is then not exported), so a hook that tests
// the image should record the test's outcome itself and return an error
// only when it could not run at all.
type AfterSolveFunc func(ctx context.Context, c gateway.Client, ref gateway.Reference, t Target, img ocispecs.Image) error

type config struct {
	product      string
	platforms    []ocispecs.Platform // nil: each builder's own
	names        ImageNames
	parallel     int
	exports      []Export
	exportsSet   bool // an export option was given, even NoExport
	progressOut  io.Writer
	progressMode progressui.DisplayMode
	afterSolve   AfterSolveFunc
	test         *TestOptions // run each image once solved (run.go)
	measure      bool
	measureOpts  []measure.Option
	measureCache string
	cacheExports []client.CacheOptionsEntry // see cache.go
	cacheImports []client.CacheOptionsEntry
	epoch        *time.Time // SourceDateEpoch (epoch.go)
	history      bool       // BuildHistory
	// rewriteTimestamp: RewriteTimestamp (epoch.go)
	rewriteTimestamp bool
	noCache          bool // NoCache (cold.go)
	pull             bool // Pull (cold.go)
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{parallel: DefaultParallel(), progressMode: progressui.QuietMode, names: DefaultImageNames}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.exportsSet {
		cfg.exports = []Export{{Kind: ExportImage}}
	}
	for i, e := range cfg.exports {
		if slices.ContainsFunc(cfg.exports[:i], e.Equal) {
			return nil, fmt.Errorf("export %s given twice", e)
		}
	}
	return cfg, nil
}

// Product names the client to buildkitd (the gateway's product, shown in
// its build history); default BuildKit's own.
func Product(name string) Option {
	return func(c *config) error {
		c.product = name
		return nil
	}
}

// cachePrefix names the run's cache entries in a shared backend (gha,
// s3, azblob) unless the entry names them: the product, else "runner".
func (c *config) cachePrefix() string {
	if c.product == "" {
		return "runner"
	}
	return c.product
}

// Platforms builds every target whose Platforms is empty for ps, in
// that order; by default for each builder's own platform (its first
// worker's first platform). With two platforms or more, each target is
// one build whose image is an OCI image index, one manifest per
// platform, under the target's name, and Solve returns one Result per
// target and platform (Result.Platform). Each platform needs an OS and an
// architecture, and may be given once.
func Platforms(ps ...ocispecs.Platform) Option {
	return func(c *config) error {
		if len(ps) == 0 {
			return errors.New("platforms: none given")
		}
		if err := checkPlatforms(ps); err != nil {
			return err
		}
		c.platforms = slices.Clone(ps)
		return nil
	}
}

// NameTemplate names every target's image, in every export (see
// ImageNames): "docker.io/library/minikit:{name}", say. The default is
// DefaultImageNames.
func NameTemplate(tmpl string) Option {
	return func(c *config) error {
		n := ImageNames(tmpl)
		if err := n.validate(); err != nil {
			return err
		}
		c.names = n
		return nil
	}
}

// DefaultParallel is how many targets are solved at once unless Parallel
// says otherwise: twice the number of CPUs, and at least 16. The limit is
// the client's, not the daemon's: buildkitd schedules the compilers
// itself, so a cold run is CPU-bound whatever it is, while a warm run
// (every step cached) is a chain of round trips per target that only
// overlap when many targets are in flight.
func DefaultParallel() int {
	return max(16, 2*runtime.NumCPU())
}

// Parallel sets how many targets are solved at once (default
// DefaultParallel). BuildKit de-duplicates the steps the targets share
// whatever the limit.
func Parallel(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("parallel: %d is not a positive number", n)
		}
		c.parallel = n
		return nil
	}
}

// BuildHistory records each target's build in buildkitd's build history
// (`buildctl debug history`, Docker Desktop's Builds view), as buildx
// does. Off by default: a matrix run is dozens of short builds, and
// recording one means a history record, its progress log and trace
// written to buildkitd's content store, which is most of what a cached
// build costs the daemon.
func BuildHistory(on bool) Option {
	return func(c *config) error {
		c.history = on
		return nil
	}
}

// Progress shows BuildKit's progress display on w, every target's steps in
// one display. mode is one of buildctl's --progress modes: auto, tty,
// plain, quiet, rawjson ("" is auto). A nil w shows nothing.
func Progress(w io.Writer, mode string) Option {
	return func(c *config) error {
		m := progressui.DisplayMode(mode)
		switch m {
		case progressui.DefaultMode, progressui.AutoMode, progressui.TtyMode,
			progressui.PlainMode, progressui.QuietMode, progressui.RawJSONMode:
		default:
			return fmt.Errorf("progress mode %q: want auto, tty, plain, quiet or rawjson", mode)
		}
		c.progressOut, c.progressMode = w, m
		return nil
	}
}

// Exports adds where each target's image goes (see ParseOutput). Without
// any export option, images go to buildkitd's image store (ExportImage).
func Exports(es ...Export) Option {
	return func(c *config) error {
		for _, e := range es {
			if err := e.validate(); err != nil {
				return err
			}
		}
		c.exports = append(c.exports, es...)
		c.exportsSet = c.exportsSet || len(es) > 0
		return nil
	}
}

// Image keeps each image in buildkitd's image store, under its name
// (NameTemplate).
func Image() Option { return Exports(Export{Kind: ExportImage}) }

// Push keeps each image in buildkitd's image store and pushes it to the
// registry its name names (NameTemplate), with the credentials of the
// Docker config (DOCKER_CONFIG, else ~/.docker): buildx's --push.
// Result.Pushed lists the names pushed.
func Push() Option { return Exports(Export{Kind: ExportImage, Push: true}) }

// Load loads each image into the local Docker engine through `docker
// load` (the docker CLI must be on PATH), its tarball streamed, never
// written to disk: buildx's --load. Result.Loaded says which tag each
// image got.
func Load() Option { return Exports(Export{Kind: ExportDocker, Load: true}) }

// OCI writes each image as an OCI layout tarball DIR/NAME.oci.tar.
func OCI(dir string) Option { return Exports(Export{Kind: ExportOCI, Dest: dir}) }

// Docker writes each image as a `docker load` tarball DIR/NAME.docker.tar.
func Docker(dir string) Option { return Exports(Export{Kind: ExportDocker, Dest: dir}) }

// NoCache builds every step again, as buildx's --no-cache: each target's
// graph is solved with ignore-cache on every vertex (see cold.go), so
// nothing comes from BuildKit's cache, though a step several targets of
// the run share is still run once. Images are measured as they are
// exported (a second pass would build them again).
func NoCache() Option {
	return func(c *config) error {
		c.noCache = true
		return nil
	}
}

// Pull resolves every base image in its registry again, as buildx's
// --pull: the configs with ResolveModeForcePull, and every image the
// targets' graphs pull with resolve mode "pull", whatever their LLB
// functions asked for.
func Pull() Option {
	return func(c *config) error {
		c.pull = true
		return nil
	}
}

// NoExport builds the images into BuildKit's cache only; it overrides the
// default image-store export. Combined with other export options it adds
// nothing.
func NoExport() Option {
	return func(c *config) error {
		c.exportsSet = true
		return nil
	}
}

// AfterSolve sets a hook run in each target's build session once its image
// is solved (see AfterSolveFunc).
func AfterSolve(f AfterSolveFunc) Option {
	return func(c *config) error {
		c.afterSolve = f
		return nil
	}
}
