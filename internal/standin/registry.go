package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Serve runs a registry on listenAddr (a loopback address such as
// 127.0.0.1:5000) that serves every image of the OCI layout at layoutDir
// under its ref.name (127.0.0.1:5000/library/gcc:12-bookworm), until ctx
// is done. Blobs are served straight from the layout; blobs pushed by
// clients are kept on disk under stateDir/blobs. Requests are logged to
// logw (nil: discarded). Restart it after Build changed the layout.
func Serve(ctx context.Context, layoutDir, stateDir, listenAddr string, logw io.Writer) error {
	addr, err := loopbackAddr(listenAddr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	return serve(ctx, layoutDir, stateDir, ln, logw)
}

// ServePublic is Serve on any address, loopback or not. It is for a
// registry running in a container of its own on a private container
// network, where 0.0.0.0 is the container's own addresses only and the
// builders on that network need to reach it: anyone who reaches the
// address can pull the stand-ins and push blobs.
func ServePublic(ctx context.Context, layoutDir, stateDir, listenAddr string, logw io.Writer) error {
	if _, _, err := net.SplitHostPort(listenAddr); err != nil {
		return fmt.Errorf("serve stand-ins: listen address %q: %w", listenAddr, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	return serve(ctx, layoutDir, stateDir, ln, logw)
}

// loopbackAddr checks that hostport names a loopback address.
func loopbackAddr(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("listen address %q: the stand-in registry binds only to loopback addresses (127.0.0.1, ::1)", hostport)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// serve is Serve on an existing listener (which it closes).
func serve(ctx context.Context, layoutDir, stateDir string, ln net.Listener, logw io.Writer) error {
	defer ln.Close()
	if logw == nil {
		logw = io.Discard
	}
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return fmt.Errorf("serve stand-ins: open layout %s: %w", layoutDir, err)
	}
	blobDir := filepath.Join(stateDir, "blobs")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	logger := log.New(logw, "registry: ", log.LstdFlags)
	handler := registry.New(
		registry.WithBlobHandler(&layeredBlobs{
			layoutBlobs: filepath.Join(string(lp), "blobs"),
			disk:        registry.NewDiskBlobHandler(blobDir),
		}),
		registry.Logger(logger),
	)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logger,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}

	addr := ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		// Listening on every address: talk to it over loopback.
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = Ready(rctx, addr)
	cancel()
	if err != nil {
		shutdown()
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	n, err := publish(ctx, lp, addr, logger)
	if err != nil {
		shutdown()
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	logger.Printf("serving %d stand-in images from %s on %s", n, layoutDir, addr)

	select {
	case <-ctx.Done():
		shutdown()
		return nil
	case err := <-errc:
		return fmt.Errorf("serve stand-ins: %w", err)
	}
}

// publish makes every named image of the layout available in the registry
// at addr. The blobs are already there (served from the layout), so only
// manifests travel.
func publish(ctx context.Context, lp layout.Path, addr string, logger *log.Logger) (int, error) {
	idx, err := lp.ImageIndex()
	if err != nil {
		return 0, fmt.Errorf("read layout index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return 0, fmt.Errorf("read layout index: %w", err)
	}
	n := 0
	for _, d := range im.Manifests {
		refName := d.Annotations[AnnotationRefName]
		if refName == "" || !d.MediaType.IsImage() {
			continue
		}
		ref, err := name.ParseReference(addr+"/"+refName, name.Insecure)
		if err != nil {
			return n, fmt.Errorf("image %q in layout: %w", refName, err)
		}
		img, err := lp.Image(d.Digest)
		if err != nil {
			return n, fmt.Errorf("image %s: %w", refName, err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return n, fmt.Errorf("publish %s: %w", refName, err)
		}
		logger.Printf("published %s (%s)", ref, d.Digest)
		n++
	}
	return n, nil
}

// layeredBlobs serves blobs from the OCI layout first, then from a disk
// handler that also takes uploads. Layout blobs are content-addressed files
// written by go-containerregistry, so their size is their Stat.
type layeredBlobs struct {
	layoutBlobs string
	disk        registry.BlobHandler
}

func (l *layeredBlobs) layoutPath(h v1.Hash) string {
	return filepath.Join(l.layoutBlobs, h.Algorithm, h.Hex)
}

func (l *layeredBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	if fi, err := os.Stat(l.layoutPath(h)); err == nil && fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	if s, ok := l.disk.(registry.BlobStatHandler); ok {
		return s.Stat(ctx, repo, h)
	}
	return 0, registry.ErrNotFound
}

func (l *layeredBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	if f, err := os.Open(l.layoutPath(h)); err == nil {
		return f, nil
	}
	rc, err := l.disk.Get(ctx, repo, h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return rc, err
}

func (l *layeredBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	p, ok := l.disk.(registry.BlobPutHandler)
	if !ok {
		return errors.New("blob uploads not supported")
	}
	return p.Put(ctx, repo, h, rc)
}

func (l *layeredBlobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	if _, err := os.Stat(l.layoutPath(h)); err == nil {
		return errors.New("stand-in blobs cannot be deleted through the registry")
	}
	d, ok := l.disk.(registry.BlobDeleteHandler)
	if !ok {
		return registry.ErrNotFound
	}
	return d.Delete(ctx, repo, h)
}

// Ready polls GET http://addr/v2/ until the registry answers 200 or ctx is done.
func Ready(ctx context.Context, addr string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + addr + "/v2/"
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("registry %s: %w", addr, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("GET %s: %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry %s not ready: %w (last: %v)", addr, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
