package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
)

// An Option configures Solve.
type Option func(*config) error

// AfterSolveFunc runs inside a recipe's build session once its image is
// solved, before it is exported: ref is the image's root filesystem and img
// its config. It can start containers on ref through c. A non-nil error
// fails the recipe (its image is then not exported), so a hook that tests
// the image should record the test's outcome itself and return an error
// only when it could not run at all.
type AfterSolveFunc func(ctx context.Context, c gateway.Client, ref gateway.Reference, r llbdefs.Recipe, img ocispecs.Image) error

type config struct {
	samplesDir   string
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

	compilerCache bool // llbdefs.Sources.CompilerCache (compilercache.go)
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{parallel: DefaultParallel(), progressMode: progressui.QuietMode}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.samplesDir == "" {
		return nil, errors.New("no samples directory: the SamplesDir option is required")
	}
	fi, err := os.Stat(cfg.samplesDir)
	if err != nil {
		return nil, fmt.Errorf("samples directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("samples directory %s is not a directory", cfg.samplesDir)
	}
	if !cfg.exportsSet {
		cfg.exports = []Export{{Kind: ExportImage}}
	}
	seen := map[Export]bool{}
	for _, e := range cfg.exports {
		if seen[e] {
			return nil, fmt.Errorf("export %s given twice", e)
		}
		seen[e] = true
	}
	return cfg, nil
}

// SamplesDir is the directory of sample programs the recipes copy from,
// provided to BuildKit as the local source llbdefs.SamplesName. Required.
func SamplesDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("samples directory: empty path")
		}
		c.samplesDir = dir
		return nil
	}
}

// DefaultParallel is how many recipes are solved at once unless Parallel
// says otherwise: twice the number of CPUs, and at least 16. The limit is
// the client's, not the daemon's: buildkitd schedules the compilers
// itself, so a cold run is CPU-bound whatever it is, while a warm run
// (every step cached) is a chain of round trips per recipe that only
// overlap when many recipes are in flight.
func DefaultParallel() int {
	return max(16, 2*runtime.NumCPU())
}

// Parallel sets how many recipes are solved at once (default
// DefaultParallel). BuildKit de-duplicates the steps the recipes share
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

// BuildHistory records each recipe's build in buildkitd's build history
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

// Progress shows BuildKit's progress display on w, every recipe's steps in
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

// Exports adds where each recipe's image goes (see ParseOutput). Without
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

// Image keeps each image in buildkitd's image store as minikit:NAME.
func Image() Option { return Exports(Export{Kind: ExportImage}) }

// OCI writes each image as an OCI layout tarball DIR/NAME.oci.tar.
func OCI(dir string) Option { return Exports(Export{Kind: ExportOCI, Dir: dir}) }

// Docker writes each image as a `docker load` tarball DIR/NAME.docker.tar.
func Docker(dir string) Option { return Exports(Export{Kind: ExportDocker, Dir: dir}) }

// NoExport builds the images into BuildKit's cache only; it overrides the
// default image-store export. Combined with other export options it adds
// nothing.
func NoExport() Option {
	return func(c *config) error {
		c.exportsSet = true
		return nil
	}
}

// AfterSolve sets a hook run in each recipe's build session once its image
// is solved (see AfterSolveFunc).
func AfterSolve(f AfterSolveFunc) Option {
	return func(c *config) error {
		c.afterSolve = f
		return nil
	}
}
