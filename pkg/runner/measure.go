package runner

import (
	"fmt"
	"io"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"

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
