package standin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/minikit/minikit/internal/pyindex"
)

// ServeVersion identifies the registry's behaviour: bump it when what or
// how it serves changes, so that a running registry of another version is
// restarted.
const ServeVersion = "3"

// Serve runs a read-only registry on listenAddr (a loopback address such
// as 127.0.0.1:5000) that serves every image of the OCI layout at
// layoutDir under its ref.name (127.0.0.1:5000/library/gcc:12-bookworm),
// straight from the layout, until ctx is done. Pushes and deletes are
// refused; nothing a client sends is stored. When secret is not nil the
// registry proves it holds it to Ready. Blobs are checked before they are
// served (see CheckLayout): a corrupt one is refused. It also serves the
// package index built beside the layout (PyIndexDir) under
// pyindex.Prefix, as read only. Errors are logged
// to logw (nil: discarded).
func Serve(ctx context.Context, layoutDir, listenAddr string, secret []byte, logw io.Writer) error {
	addr, err := loopbackAddr(listenAddr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	return serve(ctx, layoutDir, ln, secret, logw)
}

// ServePublic is Serve on any address, loopback or not. It is for a
// registry running in a container of its own on a private container
// network, where 0.0.0.0 is the container's own addresses only and the
// builders on that network need to reach it: anyone who reaches the
// address can pull the stand-ins (and nothing else). secret may be nil.
func ServePublic(ctx context.Context, layoutDir, listenAddr string, secret []byte, logw io.Writer) error {
	if _, _, err := net.SplitHostPort(listenAddr); err != nil {
		return fmt.Errorf("serve stand-ins: listen address %q: %w", listenAddr, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	return serve(ctx, layoutDir, ln, secret, logw)
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
func serve(ctx context.Context, layoutDir string, ln net.Listener, secret []byte, logw io.Writer) error {
	defer ln.Close()
	if logw == nil {
		logw = io.Discard
	}
	logger := log.New(logw, "registry: ", log.LstdFlags)
	reg, err := newRegistry(layoutDir, secret, logger)
	if err != nil {
		return fmt.Errorf("serve stand-ins: %w", err)
	}
	srv := &http.Server{
		Handler:           reg,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logger,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Printf("serving the stand-ins of %s on %s (read only)", layoutDir, ln.Addr())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("serve stand-ins: %w", err)
	}
}

// registry is the read-only HTTP API (the pull half of the OCI
// distribution spec) over an OCI layout.
type registry struct {
	dir    string
	secret []byte
	blobs  *verifier
	logger *log.Logger
	index  http.Handler // the package index beside the layout

	mu       sync.Mutex
	contents *contents
	indexID  fileID // of index.json when contents was read
}

func newRegistry(layoutDir string, secret []byte, logger *log.Logger) (*registry, error) {
	dir, err := filepath.Abs(layoutDir)
	if err != nil {
		return nil, err
	}
	// The index is beside the layout's real directory: a home whose
	// layout is a link to another's serves that one's index too.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	r := &registry{dir: dir, secret: secret, blobs: newVerifier(dir), logger: logger, index: pyindex.Handler(PyIndexDir(real))}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return r, nil
}

// current returns what the layout holds now: it is read again whenever
// index.json changed.
func (r *registry) current() (*contents, error) {
	fi, err := os.Stat(filepath.Join(r.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", r.dir, err)
	}
	id := statID(fi)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.contents != nil && r.indexID == id {
		return r.contents, nil
	}
	c, err := readContents(r.dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", r.dir, err)
	}
	r.contents, r.indexID = c, id
	return c, nil
}

// Registry error codes of the distribution spec.
const (
	codeNameUnknown     = "NAME_UNKNOWN"
	codeManifestUnknown = "MANIFEST_UNKNOWN"
	codeBlobUnknown     = "BLOB_UNKNOWN"
	codeDigestInvalid   = "DIGEST_INVALID"
	codeUnsupported     = "UNSUPPORTED"
	codeUnknown         = "UNKNOWN"
)

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		r.fail(w, req, http.StatusMethodNotAllowed, codeUnsupported, "the stand-in registry is read only")
		return
	}
	if req.URL.Path == "/v2" || req.URL.Path == "/v2/" {
		r.serveBase(w, req)
		return
	}
	if strings.HasPrefix(req.URL.Path, strings.TrimSuffix(pyindex.Prefix, "/")) {
		r.index.ServeHTTP(w, req)
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		r.fail(w, req, http.StatusNotFound, codeUnsupported, "not a registry API path")
		return
	}
	parts := strings.Split(rest, "/")
	n := len(parts)
	if n < 3 {
		r.fail(w, req, http.StatusNotFound, codeNameUnknown, "unknown API path")
		return
	}
	name := strings.Join(parts[:n-2], "/")
	switch parts[n-2] + "/" + parts[n-1] {
	case "tags/list":
		r.serveTags(w, req, name)
		return
	}
	switch parts[n-2] {
	case "manifests":
		r.serveManifest(w, req, name, parts[n-1])
	case "blobs":
		r.serveBlob(w, req, name, parts[n-1])
	default:
		r.fail(w, req, http.StatusNotFound, codeNameUnknown, "unknown API path")
	}
}

// serveBase answers /v2/, with the ownership proof when asked for one.
func (r *registry) serveBase(w http.ResponseWriter, req *http.Request) {
	if r.secret != nil {
		if proof, ok := prove(r.secret, req.Header.Get(challengeHeader)); ok {
			w.Header().Set(proofHeader, proof)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

// repo returns the repository name of the current layout, or answers
// NAME_UNKNOWN.
func (r *registry) repo(w http.ResponseWriter, req *http.Request, name string) (*contents, *repoContents, bool) {
	c, err := r.current()
	if err != nil {
		r.fail(w, req, http.StatusInternalServerError, codeUnknown, err.Error())
		return nil, nil, false
	}
	repo := c.repos[name]
	if repo == nil {
		r.fail(w, req, http.StatusNotFound, codeNameUnknown, fmt.Sprintf("repository %s is not a stand-in", name))
		return nil, nil, false
	}
	return c, repo, true
}

func (r *registry) serveTags(w http.ResponseWriter, req *http.Request, name string) {
	_, repo, ok := r.repo(w, req, name)
	if !ok {
		return
	}
	tags := make([]string, 0, len(repo.tags))
	for t := range repo.tags {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	data, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
	if err != nil {
		r.fail(w, req, http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// serveManifest serves a manifest or index by tag, or by digest when it
// is one of the repository's (a tagged one or a child of a tagged index).
func (r *registry) serveManifest(w http.ResponseWriter, req *http.Request, name, ref string) {
	_, repo, ok := r.repo(w, req, name)
	if !ok {
		return
	}
	var desc v1.Descriptor
	if h, err := v1.NewHash(ref); err == nil {
		desc, ok = repo.manifests[h]
	} else {
		desc, ok = repo.tags[ref]
	}
	if !ok {
		r.fail(w, req, http.StatusNotFound, codeManifestUnknown, fmt.Sprintf("manifest %s:%s is not a stand-in", name, ref))
		return
	}
	mediaType := string(desc.MediaType)
	if mediaType == "" {
		mediaType = "application/vnd.oci.image.manifest.v1+json"
	}
	r.serveContent(w, req, desc, mediaType)
}

// serveBlob serves a blob of the repository (a config, a layer or one of
// its manifests).
func (r *registry) serveBlob(w http.ResponseWriter, req *http.Request, name, ref string) {
	h, err := v1.NewHash(ref)
	if err != nil {
		r.fail(w, req, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("%q is not a digest", ref))
		return
	}
	c, repo, ok := r.repo(w, req, name)
	if !ok {
		return
	}
	_, isManifest := repo.manifests[h]
	if !repo.blobs[h] && !isManifest {
		r.fail(w, req, http.StatusNotFound, codeBlobUnknown, fmt.Sprintf("blob %s is not in %s", h, name))
		return
	}
	r.serveContent(w, req, c.blobs[h].desc, "application/octet-stream")
}

// serveContent serves desc's blob once it is verified, with every Range
// form http.ServeContent knows (bytes=N-, bytes=A-B, bytes=-N, several).
func (r *registry) serveContent(w http.ResponseWriter, req *http.Request, desc v1.Descriptor, mediaType string) {
	f, err := r.blobs.open(desc)
	if err != nil {
		r.fail(w, req, http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Etag", `"`+desc.Digest.String()+`"`)
	http.ServeContent(w, req, "", time.Time{}, f)
}

// fail answers with a registry-style JSON error and logs it.
func (r *registry) fail(w http.ResponseWriter, req *http.Request, status int, code, msg string) {
	r.logger.Printf("%s %s: %d %s: %s", req.Method, req.URL.Path, status, code, msg)
	type regErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	data, err := json.Marshal(struct {
		Errors []regErr `json:"errors"`
	}{[]regErr{{code, msg}}})
	if err != nil {
		data = []byte(`{"errors":[{"code":"UNKNOWN"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// ErrForeignRegistry marks an HTTP server on the registry's address that
// does not prove it holds minikit's secret: some other program, or
// another minikit home's registry.
var ErrForeignRegistry = errors.New("not minikit's stand-in registry")

// Ready polls until the registry at addr answers GET /v2/ and, when
// secret is not nil, proves it holds secret: each request carries a fresh
// random challenge that only a holder of secret can answer. When an HTTP
// server answers at addr without a valid proof, Ready returns at once an
// error that wraps ErrForeignRegistry and names addr. Connection errors
// are retried until ctx is done.
func Ready(ctx context.Context, addr string, secret []byte) error {
	client := &http.Client{
		Timeout:       2 * time.Second,
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	url := "http://" + addr + "/v2/"
	var last error
	for {
		resp, challenge, err := getBase(ctx, client, url, secret != nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if secret != nil && !checkProof(secret, challenge, resp.Header.Get(proofHeader)) {
				return fmt.Errorf("%w: the HTTP server on %s (it answered %q) does not prove it holds minikit's registry secret",
					ErrForeignRegistry, addr, resp.Status)
			}
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

// getBase sends GET url, with a fresh challenge when asked.
func getBase(ctx context.Context, client *http.Client, url string, challenge bool) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	var nonce string
	if challenge {
		if nonce, err = newChallenge(); err != nil {
			return nil, "", err
		}
		req.Header.Set(challengeHeader, nonce)
	}
	resp, err := client.Do(req)
	return resp, nonce, err
}
