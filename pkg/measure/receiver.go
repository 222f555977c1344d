package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// A Receiver is a content store (containerd's content.Store) that
// measures the blobs written into it instead of keeping them: every blob
// is hashed, and every layer decompressed and walked, as it is written;
// only small JSON blobs (manifests, configs) are kept in memory. Image
// then measures the image of a manifest written into it.
//
// It is made for BuildKit's oci exporter with tar=false, which copies an
// image's blobs into a store of the client (client.ExportEntry's
// OutputStore, the session's "export" content store) and does not send a
// blob the store says it already has. With a layer cache
// (WithLayerCache), the Receiver has every layer the cache knows: those
// layers are never sent, read or hashed, and a layer another Receiver of
// the process is receiving is waited for rather than received twice.
//
// A Receiver is safe for concurrent use.
type Receiver struct {
	layers *LayerCache

	mu      sync.Mutex
	blobs   map[digest.Digest]*blob    // committed, or known from the cache
	writers map[string]*receiverWriter // by ref, until committed or closed
}

var _ content.Store = (*Receiver)(nil)

// NewReceiver returns an empty Receiver. Of opts, only WithLayerCache
// matters: the layer cache it answers from and adds to.
func NewReceiver(opts ...Option) *Receiver {
	return &Receiver{
		layers:  newOptions(opts).layers,
		blobs:   map[digest.Digest]*blob{},
		writers: map[string]*receiverWriter{},
	}
}

// Image measures, with opts, the image whose manifest (of digest
// manifest) was written into the Receiver; for an index, the image
// Platform chooses.
func (r *Receiver) Image(manifest digest.Digest, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	raw, err := jsonBlob(r, "manifest", manifest, -1)
	if err != nil {
		return nil, err
	}
	var head struct {
		MediaType string                `json:"mediaType"`
		Manifests []ocispecs.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", manifest, err)
	}
	if head.MediaType == ocispecs.MediaTypeImageIndex || head.MediaType == dockerManifestList || head.Manifests != nil {
		d, err := chooseManifest(r, head.Manifests, o, "index "+manifest.String())
		if err != nil {
			return nil, err
		}
		if raw, err = jsonBlob(r, "manifest", d.Digest, d.Size); err != nil {
			return nil, err
		}
		return resolveManifest(r, d.Digest, d.MediaType, raw, o)
	}
	return resolveManifest(r, manifest, "", raw, o)
}

// index and blob make a Receiver a store of resolve.go.
func (r *Receiver) index() ([]byte, error) {
	return nil, errors.New("an exported image has no index.json")
}

func (r *Receiver) blob(d digest.Digest) (*blob, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.blobs[d]; ok {
		return b, nil
	}
	return nil, errMissing
}

// Writer starts receiving a blob. A blob already received, or a layer of
// the layer cache, is refused with an error wrapping
// errdefs.ErrAlreadyExists, as a content store refuses what it has: the
// exporter then skips it.
func (r *Receiver) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, opt := range opts {
		if err := opt(&wo); err != nil {
			return nil, err
		}
	}
	if wo.Ref == "" {
		return nil, fmt.Errorf("measure: a writer needs a ref: %w", cerrdefs.ErrInvalidArgument)
	}
	d, size := wo.Desc.Digest, wo.Desc.Size
	if size <= 0 {
		size = -1 // unknown
	}
	var finish func(*blob) *record
	if d != "" {
		if _, err := r.blob(d); err == nil {
			return nil, fmt.Errorf("measure: blob %s: %w", d, cerrdefs.ErrAlreadyExists)
		}
		rec, fin, err := r.layers.begin(ctx, d, size)
		if err != nil {
			return nil, fmt.Errorf("measure: blob %s: %w", d, err)
		}
		if rec != nil {
			r.mu.Lock()
			r.blobs[d] = rec.blob()
			r.mu.Unlock()
			return nil, fmt.Errorf("measure: layer %s is in the layer cache: %w", d, cerrdefs.ErrAlreadyExists)
		}
		finish = fin
	}
	if finish == nil {
		finish = func(b *blob) *record { return r.layers.store(b) }
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.writers[wo.Ref]; busy {
		finish(nil)
		return nil, fmt.Errorf("measure: ref %s is being written: %w", wo.Ref, cerrdefs.ErrUnavailable)
	}
	pr, pw := io.Pipe()
	now := time.Now()
	w := &receiverWriter{
		r:      r,
		finish: finish,
		pw:     pw,
		done:   make(chan struct{}),
		status: content.Status{Ref: wo.Ref, Total: max(size, 0), Expected: d, StartedAt: now, UpdatedAt: now},
	}
	go func() {
		defer close(w.done)
		w.blob, w.err = analyze(pr, d, size)
		pr.CloseWithError(errOrEOF(w.err))
	}()
	r.writers[wo.Ref] = w
	return w, nil
}

func errOrEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// Info reports a blob received or known from the layer cache.
func (r *Receiver) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	b, err := r.blob(d)
	if err != nil {
		return content.Info{}, fmt.Errorf("measure: blob %s: %w", d, cerrdefs.ErrNotFound)
	}
	return content.Info{Digest: d, Size: b.size}, nil
}

// Update changes nothing: a Receiver keeps no labels.
func (r *Receiver) Update(ctx context.Context, info content.Info, _ ...string) (content.Info, error) {
	return r.Info(ctx, info.Digest)
}

// Walk calls fn for every blob received or known from the layer cache.
func (r *Receiver) Walk(ctx context.Context, fn content.WalkFunc, _ ...string) error {
	r.mu.Lock()
	infos := make([]content.Info, 0, len(r.blobs))
	for d, b := range r.blobs {
		infos = append(infos, content.Info{Digest: d, Size: b.size})
	}
	r.mu.Unlock()
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete forgets a blob.
func (r *Receiver) Delete(_ context.Context, d digest.Digest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.blobs[d]; !ok {
		return fmt.Errorf("measure: blob %s: %w", d, cerrdefs.ErrNotFound)
	}
	delete(r.blobs, d)
	return nil
}

// ReaderAt reads a JSON blob received; layers are not kept.
func (r *Receiver) ReaderAt(_ context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	b, err := r.blob(desc.Digest)
	if err != nil || b.comp != compJSON || b.data == nil {
		return nil, fmt.Errorf("measure: blob %s is not kept: %w", desc.Digest, cerrdefs.ErrNotFound)
	}
	return readerAt{bytes.NewReader(b.data)}, nil
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

// Status reports a blob being received.
func (r *Receiver) Status(_ context.Context, ref string) (content.Status, error) {
	r.mu.Lock()
	w, ok := r.writers[ref]
	r.mu.Unlock()
	if !ok {
		return content.Status{}, fmt.Errorf("measure: ref %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return w.Status()
}

// ListStatuses reports every blob being received.
func (r *Receiver) ListStatuses(_ context.Context, _ ...string) ([]content.Status, error) {
	r.mu.Lock()
	ws := make([]*receiverWriter, 0, len(r.writers))
	for _, w := range r.writers {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	out := make([]content.Status, 0, len(ws))
	for _, w := range ws {
		st, _ := w.Status()
		out = append(out, st)
	}
	return out, nil
}

// Abort stops receiving a blob.
func (r *Receiver) Abort(_ context.Context, ref string) error {
	r.mu.Lock()
	w, ok := r.writers[ref]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("measure: ref %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return w.Close()
}

// A receiverWriter feeds one blob to analyze through a pipe.
type receiverWriter struct {
	r      *Receiver
	finish func(*blob) *record // tells the layer cache how it went
	pw     *io.PipeWriter
	done   chan struct{} // analyze returned
	blob   *blob
	err    error

	mu     sync.Mutex
	status content.Status
	over   bool // committed or closed
}

func (w *receiverWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	over := w.over
	w.mu.Unlock()
	if over {
		return 0, errors.New("measure: write after commit or close")
	}
	n, err := w.pw.Write(p)
	w.mu.Lock()
	w.status.Offset += int64(n)
	w.status.UpdatedAt = time.Now()
	w.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("measure: %w", err)
	}
	return n, nil
}

// Digest is the expected digest, as told by the writer's descriptor.
func (w *receiverWriter) Digest() digest.Digest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status.Expected
}

func (w *receiverWriter) Status() (content.Status, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status, nil
}

// Truncate supports only starting again from nothing written.
func (w *receiverWriter) Truncate(size int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if size == 0 && w.status.Offset == 0 {
		return nil
	}
	return fmt.Errorf("measure: truncate to %d after %d bytes: %w", size, w.status.Offset, cerrdefs.ErrNotImplemented)
}

// end marks the writer over and removes it from the Receiver; false if
// it was over already.
func (w *receiverWriter) end() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return false
	}
	w.over = true
	w.r.mu.Lock()
	if w.r.writers[w.status.Ref] == w {
		delete(w.r.writers, w.status.Ref)
	}
	w.r.mu.Unlock()
	return true
}

// Commit ends the blob and checks it against size and expected (either
// may be zero: unknown); the blob is then the Receiver's.
func (w *receiverWriter) Commit(_ context.Context, size int64, expected digest.Digest, _ ...content.Opt) error {
	if !w.end() {
		return fmt.Errorf("measure: commit after commit or close: %w", cerrdefs.ErrFailedPrecondition)
	}
	w.pw.Close()
	<-w.done
	w.mu.Lock()
	st := w.status
	w.mu.Unlock()
	if expected == "" {
		expected = st.Expected
	}
	b, err := w.blob, w.err
	switch {
	case err != nil:
	case expected == "":
		err = fmt.Errorf("no digest given for ref %s: %w", st.Ref, cerrdefs.ErrInvalidArgument)
	case st.Expected != "" && expected != st.Expected:
		err = fmt.Errorf("committed as %s, opened as %s: %w", expected, st.Expected, cerrdefs.ErrFailedPrecondition)
	case b.sum != expected:
		err = fmt.Errorf("content digest is %s, not %s: %w", b.sum, expected, cerrdefs.ErrFailedPrecondition)
	case size > 0 && b.size != size:
		err = fmt.Errorf("blob is %d bytes, not %d: %w", b.size, size, cerrdefs.ErrFailedPrecondition)
	}
	if err != nil {
		w.finish(nil)
		return fmt.Errorf("measure: blob %s: %w", expected, err)
	}
	b.digest = expected
	w.r.mu.Lock()
	w.r.blobs[expected] = b
	w.r.mu.Unlock()
	w.finish(b)
	return nil
}

// Close abandons a blob that was not committed.
func (w *receiverWriter) Close() error {
	if !w.end() {
		return nil
	}
	w.pw.CloseWithError(errors.New("measure: writer closed before commit"))
	<-w.done
	w.finish(nil)
	return nil
}
