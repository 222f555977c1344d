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
// is piped into measure.FromOCITar, once per platform for an image
// index (each reader measures its platform's manifest).
type meter struct {
	opts  []measure.Option
	plats []string // the platform each reader chooses; [""] for a single image
	info  *built   // the run images' diff IDs, known once the build ran
	mu    sync.Mutex
	pws   []*io.PipeWriter
	over  bool // finish was called: the exporter is too late
	done  chan struct{}
	imgs  []*measure.Image
	errs  []error
	entry client.ExportEntry
}

// newMeter measures the image called image (its name in the OCI
// export), built for ps by the build info is about.
func newMeter(image string, opts []measure.Option, ps []ocispecs.Platform, info *built) *meter {
	m := &meter{opts: opts, info: info}
	for i := range ps {
		m.plats = append(m.plats, measuredPlatform(ps, i))
	}
	m.entry = client.ExportEntry{
		Type:   client.ExporterOCI,
		Attrs:  map[string]string{string(exptypes.OptKeyName): image},
		Output: m.open,
	}
	return m
}

// open is the exporter's Output: it starts the readers.
func (m *meter) open(map[string]string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pws != nil {
		return nil, fmt.Errorf("measure: opened twice")
	}
	if m.over {
		// The session outlives the build (session.go): an export
		// still under way when the build ended must find no reader.
		return nil, fmt.Errorf("measure: the build is over")
	}
	n := len(m.plats)
	m.imgs, m.errs, m.done = make([]*measure.Image, n), make([]error, n), make(chan struct{})
	var wg sync.WaitGroup
	writers := make([]io.Writer, n)
	for i, plat := range m.plats {
		pr, pw := io.Pipe()
		m.pws, writers[i] = append(m.pws, pw), pw
		opts := append([]measure.Option{measure.BaseDiffIDs(m.info.plats[i].baseLayers())}, m.opts...)
		if plat != "" {
			opts = append(opts, measure.Platform(plat))
		}
		wg.Go(func() {
			m.imgs[i], m.errs[i] = measure.FromOCITar(pr, opts...)
			// Unblock the exporter if the reader stopped early.
			pr.CloseWithError(fmt.Errorf("measure: %w", errOrEOF(m.errs[i])))
		})
	}
	go func() {
		wg.Wait()
		close(m.done)
	}()
	if n == 1 {
		return m.pws[0], nil
	}
	return meterWriter{io.MultiWriter(writers...), m.pws}, nil
}

// meterWriter writes an export to every reader of a meter.
type meterWriter struct {
	io.Writer
	pws []*io.PipeWriter
}

func (w meterWriter) Close() error {
	for _, pw := range w.pws {
		pw.Close()
	}
	return nil
}

func errOrEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// finish ends the measurement after the build: buildErr, if any, is what
// the readers see as the end of their stream. It returns one image per
// platform.
func (m *meter) finish(buildErr error) ([]*measure.Image, error) {
	m.mu.Lock()
	pws, done := m.pws, m.done
	m.over = true
	m.mu.Unlock()
	if pws == nil {
		if buildErr == nil {
			return nil, fmt.Errorf("measure: the exporter wrote nothing")
		}
		return nil, buildErr
	}
	for _, pw := range pws {
		if buildErr != nil {
			pw.CloseWithError(buildErr)
		} else {
			pw.Close()
		}
	}
	<-done
	for i, err := range m.errs {
		if err != nil {
			if m.plats[i] != "" {
				err = fmt.Errorf("%s: %w", m.plats[i], err)
			}
			return nil, err
		}
	}
	return m.imgs, nil
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
// digest (its index's, with the platform chosen in it: plat, "" for a
// single image) and the options it was measured with.
func (s *solver) measureKey(manifest, plat string) string {
	if s.cfg.measureCache == "" || !strings.HasPrefix(manifest, "sha256:") {
		return ""
	}
	key := manifest
	if plat != "" {
		key += "\x00" + plat
	}
	sum := sha256.Sum256([]byte(key + "\x00" + measure.Key(s.cfg.measureOpts...)))
	return filepath.Join(s.cfg.measureCache, hex.EncodeToString(sum[:])+".json")
}

func (s *solver) loadMeasure(manifest, plat string) *measure.Image {
	p := s.measureKey(manifest, plat)
	if p == "" {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var img measure.Image
	if json.Unmarshal(data, &img) != nil || (plat == "" && img.ManifestDigest != manifest) || !strings.HasPrefix(img.ManifestDigest, "sha256:") {
		return nil
	}
	return &img
}

// storeMeasure saves a measurement; the cache is an optimisation, so a
// failure to write it is not an error.
func (s *solver) storeMeasure(manifest, plat string, img *measure.Image) {
	p := s.measureKey(manifest, plat)
	if p == "" || img == nil || (plat == "" && img.ManifestDigest != manifest) {
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

// cachedMeasures returns the cached measurements of the image manifest
// (an index's for several platforms), one per platform of ps, or nil
// unless all of them are cached.
func (s *solver) cachedMeasures(manifest string, ps []ocispecs.Platform) []*measure.Image {
	imgs := make([]*measure.Image, len(ps))
	for i := range ps {
		if imgs[i] = s.loadMeasure(manifest, measuredPlatform(ps, i)); imgs[i] == nil {
			return nil
		}
	}
	return imgs
}

// measureAgain returns the cached measurements of the image just built
// (one per platform of ps), or solves the recipe again (everything
// cached) with only an OCI export, into a measure.Receiver offered as
// the export's content store: layers of the layer cache are not sent,
// the others are measured as they arrive.
func (s *solver) measureAgain(ctx context.Context, t Target, ps []ocispecs.Platform, image string, opt client.SolveOpt, manifest string) ([]*measure.Image, error) {
	if imgs := s.cachedMeasures(manifest, ps); imgs != nil {
		return imgs, nil
	}
	info := newBuilt(len(ps))
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
		return s.build(ctx, gw, t, ps, info, false)
	}, statusCh)
	if err != nil {
		return nil, fmt.Errorf("measure %s: %w", t.Name, err)
	}
	md := digest.Digest(resp.ExporterResponse[exptypes.ExporterImageDigestKey])
	if md.Validate() != nil {
		return nil, fmt.Errorf("measure %s: the oci exporter returned no image digest (%q)", t.Name, md)
	}
	imgs := make([]*measure.Image, len(ps))
	for i, p := range ps {
		opts := append([]measure.Option{measure.BaseDiffIDs(info.plats[i].baseLayers())}, s.cfg.measureOpts...)
		opts = append(opts, measure.Platform(platforms.Format(p))) // if the export is an index
		img, err := recv.Image(md, opts...)
		if err != nil {
			if len(ps) > 1 {
				return nil, fmt.Errorf("measure %s for %s: %w", t.Name, formatPlatform(p), err)
			}
			return nil, fmt.Errorf("measure %s: %w", t.Name, err)
		}
		plat := measuredPlatform(ps, i)
		if plat == "" {
			s.storeMeasure(img.ManifestDigest, "", img)
		} else {
			s.storeMeasure(md.String(), plat, img)
		}
		imgs[i] = img
	}
	return imgs, nil
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
