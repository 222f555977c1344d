package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
)

// Measure makes every built image's sizes part of its Result: BuildKit's
// OCI exporter streams the image into pkg/measure, which reads each layer
// once, as it passes, and keeps no copy on disk. Layers of the run image
// count as base layers, the rest as added by the recipe.
func Measure(opts ...measure.Option) Option {
	return func(c *config) error {
		c.measure = true
		c.measureOpts = append(c.measureOpts, opts...)
		return nil
	}
}

// A meter is one recipe's measurement: an extra OCI export whose output
// is a pipe into measure.FromOCITar.
type meter struct {
	opts  []measure.Option
	base  func() []string // the run image's diff IDs, known once the build ran
	mu    sync.Mutex
	pw    *io.PipeWriter
	over  bool // finish was called: the exporter is too late
	done  chan struct{}
	img   *measure.Image
	err   error
	entry client.ExportEntry
}

func newMeter(recipe string, opts []measure.Option, base func() []string) *meter {
	m := &meter{opts: opts, base: base}
	m.entry = client.ExportEntry{
		Type:   client.ExporterOCI,
		Attrs:  map[string]string{string(exptypes.OptKeyName): ImageName(recipe)},
		Output: m.open,
	}
	return m
}

// open is the exporter's Output: it starts the reader.
func (m *meter) open(map[string]string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pw != nil {
		return nil, fmt.Errorf("measure: opened twice")
	}
	if m.over {
		// The session outlives the build (session.go): an export
		// still under way when the build ended must find no reader.
		return nil, fmt.Errorf("measure: the build is over")
	}
	pr, pw := io.Pipe()
	m.pw, m.done = pw, make(chan struct{})
	opts := append([]measure.Option{measure.BaseDiffIDs(m.base())}, m.opts...)
	go func() {
		defer close(m.done)
		m.img, m.err = measure.FromOCITar(pr, opts...)
		// Unblock the exporter if the reader stopped early.
		pr.CloseWithError(fmt.Errorf("measure: %w", errOrEOF(m.err)))
	}()
	return pw, nil
}

func errOrEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// finish ends the measurement after the build: buildErr, if any, is what
// the reader sees as the end of its stream.
func (m *meter) finish(buildErr error) (*measure.Image, error) {
	m.mu.Lock()
	pw, done := m.pw, m.done
	m.over = true
	m.mu.Unlock()
	if pw == nil {
		if buildErr == nil {
			return nil, fmt.Errorf("measure: the exporter wrote nothing")
		}
		return nil, buildErr
	}
	if buildErr != nil {
		pw.CloseWithError(buildErr)
	} else {
		pw.Close()
	}
	<-done
	return m.img, m.err
}

// MeasureCache keeps measurements in dir, keyed by manifest digest and
// measuring options, so that an image already measured is not streamed
// again: a warm run then costs one image export per recipe, not a pass
// over every layer. Measure must be given too.
func MeasureCache(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return fmt.Errorf("measure cache: empty directory")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("measure cache: %w", err)
		}
		c.measureCache = dir
		return nil
	}
}

// measureKey names a measurement in the cache: the image's manifest
// digest and the options it was measured with.
func (s *solver) measureKey(manifest string) string {
	if s.cfg.measureCache == "" || !strings.HasPrefix(manifest, "sha256:") {
		return ""
	}
	sum := sha256.Sum256([]byte(manifest + "\x00" + measure.Key(s.cfg.measureOpts...)))
	return filepath.Join(s.cfg.measureCache, hex.EncodeToString(sum[:])+".json")
}

func (s *solver) loadMeasure(manifest string) *measure.Image {
	p := s.measureKey(manifest)
	if p == "" {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var img measure.Image
	if json.Unmarshal(data, &img) != nil || img.ManifestDigest != manifest {
		return nil
	}
	return &img
}

// storeMeasure saves a measurement; the cache is an optimisation, so a
// failure to write it is not an error.
func (s *solver) storeMeasure(manifest string, img *measure.Image) {
	p := s.measureKey(manifest)
	if p == "" || img == nil || img.ManifestDigest != manifest {
		return
	}
	data, err := json.Marshal(img)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".measure-*")
	if err != nil {
		return
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil || tmp.Close() != nil {
		return
	}
	_ = os.Rename(tmp.Name(), p)
}

// measureAgain returns the cached measurement of the image just built, or
// solves the recipe again (everything cached) with only an OCI export
// streamed into pkg/measure.
func (s *solver) measureAgain(ctx context.Context, r llbdefs.Recipe, opt client.SolveOpt, manifest string) (*measure.Image, error) {
	if img := s.loadMeasure(manifest); img != nil {
		return img, nil
	}
	var info built
	m := newMeter(r.Name, s.cfg.measureOpts, info.bases)
	opt.Exports = []client.ExportEntry{m.entry}
	opt.CacheExports = nil
	s.cfg.stampEpoch(opt.Exports)
	// The meter's output is an attachable of the build's own session.
	sess, err := s.sessions.forBuild(opt)
	if err != nil {
		return nil, fmt.Errorf("measure %s: %w", r.Name, err)
	}
	opt.SharedSession = sess
	statusCh := make(chan *client.SolveStatus)
	go func() {
		for range statusCh {
		}
	}()
	_, err = s.c.Build(ctx, opt, product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		return s.build(ctx, gw, r, &info, false)
	}, statusCh)
	img, merr := m.finish(err)
	switch {
	case err != nil:
		return nil, fmt.Errorf("measure %s: %w", r.Name, err)
	case merr != nil:
		return nil, fmt.Errorf("measure %s: %w", r.Name, merr)
	}
	s.storeMeasure(img.ManifestDigest, img)
	return img, nil
}
