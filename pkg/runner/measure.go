package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	sessioncontent "github.com/moby/buildkit/session/content"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/measure"
)

// Measure makes every built image's sizes part of its Result: BuildKit's
// OCI exporter streams the image into pkg/measure, which reads each layer
// once, as it passes, and keeps no copy on disk. Layers of the target's
// Base count as base layers, the rest as added by the target.
func Measure(opts ...measure.Option) Option {
	return func(c *config) error {
		c.measure = true
		c.measureOpts = append(c.measureOpts, opts...)
		return nil
	}
}

// A meter is one target's measurement: an extra OCI export whose output
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

// newMeter measures the image called image (its name in the OCI
// export).
func newMeter(image string, opts []measure.Option, base func() []string) *meter {
	m := &meter{opts: opts, base: base}
	m.entry = client.ExportEntry{
		Type:   client.ExporterOCI,
		Attrs:  map[string]string{string(exptypes.OptKeyName): image},
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
// over every layer. It also keeps each layer's measurement, keyed by the
// layer blob's digest, in dir/layers (measure.LayerCache): an image not
// measured yet is exported into a measure.Receiver, which tells the
// exporter it has the layers measured before (a base image's layers are
// read once per machine, not once per recipe), so only the new layers
// cross the session and are decompressed and hashed. Measure must be
// given too.
func MeasureCache(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return fmt.Errorf("measure cache: empty directory")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("measure cache: %w", err)
		}
		layers, err := measure.OpenLayerCache(LayerCacheDir(dir))
		if err != nil {
			return fmt.Errorf("measure cache: %w", err)
		}
		c.measureCache = dir
		// The layer cache changes how an image is read, not what is
		// found: measure.Key, and so the cache keys, ignore it.
		c.measureOpts = append(c.measureOpts, measure.WithLayerCache(layers))
		return nil
	}
}

// LayerCacheDir is where MeasureCache(dir) keeps its layer records, for
// other readers of images (minikit inspect) to share them.
func LayerCacheDir(dir string) string { return filepath.Join(dir, "layers") }

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
// solves the recipe again (everything cached) with only an OCI export,
// into a measure.Receiver offered as the export's content store: layers
// of the layer cache are not sent, the others are measured as they
// arrive.
func (s *solver) measureAgain(ctx context.Context, t Target, p ocispecs.Platform, image string, opt client.SolveOpt, manifest string) (*measure.Image, error) {
	if img := s.loadMeasure(manifest); img != nil {
		return img, nil
	}
	var info built
	recv := measure.NewReceiver(s.cfg.measureOpts...)
	opt.Exports = []client.ExportEntry{{
		Type: client.ExporterOCI,
		Attrs: map[string]string{
			string(exptypes.OptKeyName): image,
			"tar":                       "false", // blobs into the session's "export" store
		},
		OutputStore: recv,
	}}
	opt.CacheExports = nil
	s.cfg.stampEpoch(opt.Exports)
	sess, err := s.sessions.forStore(recv)
	if err != nil {
		return nil, fmt.Errorf("measure %s: %w", t.Name, err)
	}
	opt.SharedSession, opt.SessionPreInitialized = sess, true
	statusCh := make(chan *client.SolveStatus)
	go func() {
		for range statusCh {
		}
	}()
	resp, err := s.c.Build(ctx, opt, s.cfg.product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		return s.build(ctx, gw, t, p, &info, false)
	}, statusCh)
	if err != nil {
		return nil, fmt.Errorf("measure %s: %w", t.Name, err)
	}
	md := digest.Digest(resp.ExporterResponse[exptypes.ExporterImageDigestKey])
	if md.Validate() != nil {
		return nil, fmt.Errorf("measure %s: the oci exporter returned no image digest (%q)", t.Name, md)
	}
	opts := append([]measure.Option{measure.BaseDiffIDs(info.baseLayers())}, s.cfg.measureOpts...)
	if p.OS != "" {
		opts = append(opts, measure.Platform(platforms.Format(p))) // if the export is an index
	}
	img, err := recv.Image(md, opts...)
	if err != nil {
		return nil, fmt.Errorf("measure %s: %w", t.Name, err)
	}
	s.storeMeasure(img.ManifestDigest, img)
	return img, nil
}

// forStore opens a session of the run for a measuring build: the samples
// and the credentials, as every session of the run (session.go), and
// store as the oci exporter's content store (the "export" store of
// BuildKit's session protocol).
func (p *sessions) forStore(store content.Store) (*session.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("BuildKit session: the run is over")
	}
	o, err := p.startLocked(sessioncontent.NewAttachable(map[string]content.Store{"export": store}))
	if err != nil {
		return nil, err
	}
	return o.s, nil
}
