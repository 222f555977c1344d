package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testLayout writes the base and derived test images into a new layout
// and returns its directory.
func testLayout(t *testing.T) (dir string, base, derived v1.Image, baseSpec, derivedSpec Spec) {
	t.Helper()
	base, derived, baseSpec, derivedSpec = testImages(t)
	lp, err := openLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	for _, p := range []struct {
		img  v1.Image
		spec Spec
	}{{base, baseSpec}, {derived, derivedSpec}} {
		if _, err := b.store(context.Background(), p.spec, amd64Only(p.img)); err != nil {
			t.Fatal(err)
		}
	}
	return string(lp), base, derived, baseSpec, derivedSpec
}

// startServe runs the registry of layoutDir on a free loopback port until
// the test ends and returns its address once it is ready.
func startServe(t *testing.T, layoutDir string, secret []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logbuf safeBuffer
	go func() { done <- serve(ctx, layoutDir, ln, secret, &logbuf) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, logbuf.String())
		}
	})
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if err := Ready(rctx, addr, secret); err != nil {
		t.Fatalf("%v\n%s", err, logbuf.String())
	}
	return addr
}

// layoutFiles lists every file under dir with its size and contents'
// digest, to show nothing was stored.
func layoutFiles(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h, n, err := v1.SHA256(f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %d %s", rel, n, h))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// errorCode decodes a registry-style error body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("not a registry error: %q (%v)", body, err)
	}
	return e.Errors[0].Code
}

// TestServeLayout pulls every image of a layout back with
// go-containerregistry: same digests, every layer readable.
func TestServeLayout(t *testing.T) {
	dir, base, derived, baseSpec, derivedSpec := testLayout(t)
	addr := startServe(t, dir, nil)
	for _, p := range []struct {
		img  v1.Image
		spec Spec
	}{{base, baseSpec}, {derived, derivedSpec}} {
		ref, err := name.ParseReference(addr+"/"+p.spec.Name, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if mustDigest(t, got) != mustDigest(t, p.img) {
			t.Errorf("%s: digest differs after serving", p.spec.Name)
		}
		wantCfg, _ := p.img.ConfigName()
		if gotCfg, err := got.ConfigName(); err != nil || gotCfg != wantCfg {
			t.Errorf("%s: config %v, %v; want %v", p.spec.Name, gotCfg, err, wantCfg)
		}
		layers, err := got.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest when read
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("%s: read layer: %v", p.spec.Name, err)
			}
			rc.Close()
		}
		// By digest too, as buildkitd fetches after resolving the tag.
		byDigest, err := name.ParseReference(addr+"/"+strings.Split(p.spec.Name, ":")[0]+"@"+mustDigest(t, p.img).String(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := remote.Image(byDigest); err != nil || mustDigest(t, got) != mustDigest(t, p.img) {
			t.Errorf("pull %s: %v", byDigest, err)
		}
	}
	resp, body := do(t, http.MethodGet, "http://"+addr+"/v2/library/test/tags/list", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"tags":["base","derived"]`) {
		t.Errorf("tags/list: %s %s", resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		t.Errorf("API version header %q", got)
	}
}

// TestServeManifestHeaders: HEAD and GET of a manifest, by tag and by
// digest, give its media type, digest and length, as containerd's
// resolver needs them (it trusts HEAD's Docker-Content-Digest and
// Content-Length, then GETs by digest).
func TestServeManifestHeaders(t *testing.T) {
	dir, base, _, _, _ := testLayout(t)
	addr := startServe(t, dir, nil)
	raw, err := base.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := base.MediaType()
	d := mustDigest(t, base)
	accept := map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"}
	for _, ref := range []string{"base", d.String()} {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			resp, body := do(t, method, "http://"+addr+"/v2/library/test/manifests/"+ref+"?ns=docker.io", nil, accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %s %s", method, ref, resp.Status, body)
			}
			if resp.Header.Get("Content-Type") != string(mt) || resp.Header.Get("Docker-Content-Digest") != d.String() ||
				resp.Header.Get("Content-Length") != strconv.Itoa(len(raw)) {
				t.Errorf("%s %s: headers %v", method, ref, resp.Header)
			}
			if method == http.MethodGet && !bytes.Equal(body, raw) {
				t.Errorf("GET %s: body differs from the manifest", ref)
			}
			if method == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD %s: %d bytes of body", ref, len(body))
			}
		}
	}
}

// TestServeBlobRanges: blob GETs honour bytes=N- (what containerd sends
// to resume a partial download), bytes=A-B and suffix ranges; HEAD gives
// the length without a body.
func TestServeBlobRanges(t *testing.T) {
	dir, base, _, _, _ := testLayout(t)
	addr := startServe(t, dir, nil)
	layers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layers[0].Digest()
	want, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", ld.Hex))
	if err != nil {
		t.Fatal(err)
	}
	n := len(want)
	if n < 100 {
		t.Fatalf("test layer only %d bytes", n)
	}
	url := "http://" + addr + "/v2/library/test/blobs/" + ld.String()
	for _, c := range []struct {
		rng        string
		start, end int // want[start:end]
	}{
		{"bytes=10-", 10, n},
		{fmt.Sprintf("bytes=%d-", n-1), n - 1, n},
		{"bytes=5-24", 5, 25},
		{fmt.Sprintf("bytes=20-%d", n+1000), 20, n},
		{"bytes=-7", n - 7, n},
	} {
		resp, body := do(t, http.MethodGet, url, nil, map[string]string{"Range": c.rng})
		if resp.StatusCode != http.StatusPartialContent {
			t.Errorf("%s: %s, want 206", c.rng, resp.Status)
			continue
		}
		if !bytes.Equal(body, want[c.start:c.end]) {
			t.Errorf("%s: got %d bytes, want bytes %d-%d", c.rng, len(body), c.start, c.end-1)
		}
		if cr := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end-1, n); resp.Header.Get("Content-Range") != cr {
			t.Errorf("%s: Content-Range %q, want %q", c.rng, resp.Header.Get("Content-Range"), cr)
		}
	}
	if resp, _ := do(t, http.MethodGet, url, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", n+5)}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %s, want 416", resp.Status)
	}
	resp, body := do(t, http.MethodGet, url, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("GET: %s, %d bytes, digest %q", resp.Status, len(body), resp.Header.Get("Docker-Content-Digest"))
	}
	resp, body = do(t, http.MethodHead, url, nil, nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(n) {
		t.Errorf("HEAD: %s, length %d, %d bytes of body", resp.Status, resp.ContentLength, len(body))
	}
}

// TestServeRefusesWrites: every write method answers 405 on every path,
// a push with go-containerregistry fails, and the layout is unchanged.
func TestServeRefusesWrites(t *testing.T) {
	dir, base, _, _, _ := testLayout(t)
	addr := startServe(t, dir, nil)
	before := layoutFiles(t, dir)
	raw, _ := base.RawManifest()
	blob := bytes.Repeat([]byte("intruder"), 4096)
	blobDigest, _, _ := v1.SHA256(bytes.NewReader(blob))
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPut, "/v2/library/alpine/manifests/3.22", raw},
		{http.MethodPut, "/v2/library/test/manifests/base", raw},
		{http.MethodPost, "/v2/library/alpine/blobs/uploads/", nil},
		{http.MethodPost, "/v2/library/alpine/blobs/uploads/?digest=" + blobDigest.String(), blob},
		{http.MethodPatch, "/v2/library/alpine/blobs/uploads/some-session", blob},
		{http.MethodPut, "/v2/library/alpine/blobs/uploads/some-session?digest=" + blobDigest.String(), blob},
		{http.MethodDelete, "/v2/library/test/manifests/base", nil},
		{http.MethodDelete, "/v2/library/test/blobs/" + mustDigest(t, base).String(), nil},
		{http.MethodPut, "/v2/", nil},
		{http.MethodPost, "/elsewhere", blob},
	} {
		resp, body := do(t, c.method, "http://"+addr+c.path, bytes.NewReader(c.body), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %s, want 405", c.method, c.path, resp.Status)
			continue
		}
		if code := errorCode(t, body); code != codeUnsupported || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: code %s, Allow %q", c.method, c.path, code, resp.Header.Get("Allow"))
		}
	}
	ref, err := name.ParseReference(addr+"/library/alpine:3.22", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err == nil {
		t.Error("push accepted")
	}
	if _, err := remote.Image(ref); err == nil {
		t.Error("the pushed image is served")
	}
	if after := layoutFiles(t, dir); after != before {
		t.Errorf("the layout changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestServeUnknown: registry-style 404s for what the layout does not hold.
func TestServeUnknown(t *testing.T) {
	dir, base, _, _, _ := testLayout(t)
	addr := startServe(t, dir, nil)
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := base.Layers()
	ld, _ := layers[0].Digest()
	for path, want := range map[string]string{
		"/v2/library/nope/manifests/1":                                codeNameUnknown,
		"/v2/library/test/manifests/nope":                             codeManifestUnknown,
		"/v2/library/test/manifests/" + mustDigest(t, other).String(): codeManifestUnknown,
		"/v2/library/test/blobs/" + mustDigest(t, other).String():     codeBlobUnknown,
		"/v2/library/nope/blobs/" + ld.String():                       codeNameUnknown,
		"/v2/library/nope/tags/list":                                  codeNameUnknown,
	} {
		resp, body := do(t, http.MethodGet, "http://"+addr+path, nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
			continue
		}
		if code := errorCode(t, body); code != want {
			t.Errorf("GET %s: code %s, want %s", path, code, want)
		}
	}
	if resp, body := do(t, http.MethodGet, "http://"+addr+"/v2/library/test/blobs/sha256:zz", nil, nil); resp.StatusCode != http.StatusBadRequest || errorCode(t, body) != codeDigestInvalid {
		t.Errorf("bad digest: %s %s", resp.Status, body)
	}
}

func TestServeRejectsNonLoopback(t *testing.T) {
	err := Serve(context.Background(), t.TempDir(), "0.0.0.0:5055", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("err = %v, want a loopback error", err)
	}
}

func TestServeNoLayout(t *testing.T) {
	err := Serve(context.Background(), t.TempDir(), "127.0.0.1:0", nil, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want a missing index.json", err)
	}
}

func TestReadyHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Ready(ctx, addr, []byte("secret")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrForeignRegistry) {
		t.Errorf("Ready on a closed port: %v, want the context's error", err)
	}
}

// TestReadyForeignRegistry: an HTTP server that answers /v2/ without the
// proof (a registry of someone else, a plain web server, one replaying a
// proof it saw) is reported at once, after its first answer, not retried
// until the context ends.
func TestReadyForeignRegistry(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	oldProof, _ := prove(secret, strings.Repeat("ab", challengeBytes))
	for what, h := range map[string]http.HandlerFunc{
		"registry": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			_, _ = io.WriteString(w, "{}")
		},
		"web server": http.NotFound,
		"replay": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(proofHeader, oldProof)
			_, _ = io.WriteString(w, "{}")
		},
	} {
		t.Run(what, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				h(w, r)
			}))
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := Ready(ctx, addr, secret)
			if !errors.Is(err, ErrForeignRegistry) || !strings.Contains(err.Error(), addr) {
				t.Fatalf("Ready: %v, want ErrForeignRegistry naming %s", err, addr)
			}
			if ctx.Err() != nil || requests.Load() != 1 {
				t.Errorf("Ready asked %d times (context: %v), want one answer to be enough", requests.Load(), ctx.Err())
			}
		})
	}
}

// TestReadyProof: Ready accepts our registry with its secret, refuses it
// with another one, and without a secret asks for no proof.
func TestReadyProof(t *testing.T) {
	dir, _, _, _, _ := testLayout(t)
	secret := bytes.Repeat([]byte{1}, 32)
	addr := startServe(t, dir, secret) // Ready(secret) succeeded in it
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Ready(ctx, addr, bytes.Repeat([]byte{2}, 32)); !errors.Is(err, ErrForeignRegistry) {
		t.Errorf("wrong secret: %v, want ErrForeignRegistry", err)
	}
	if err := Ready(ctx, addr, nil); err != nil {
		t.Errorf("no secret: %v", err)
	}
	// Without a secret the registry proves nothing.
	plain := startServe(t, dir, nil)
	if err := Ready(ctx, plain, secret); !errors.Is(err, ErrForeignRegistry) {
		t.Errorf("registry without the secret: %v, want ErrForeignRegistry", err)
	}
}

func TestLoadSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "home", "registry", "secret")
	s1, err := LoadSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != 32 {
		t.Errorf("secret of %d bytes", len(s1))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, %v", fi.Mode(), err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("secret directory: %v, %v", di.Mode(), err)
	}
	s2, err := LoadSecret(path)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Errorf("second LoadSecret: %x, %v; want the same secret", s2, err)
	}
	other, err := LoadSecret(filepath.Join(filepath.Dir(path), "other"))
	if err != nil || bytes.Equal(other, s1) {
		t.Errorf("another secret file: %x, %v", other, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecret(path); err == nil {
		t.Error("a secret others can read was accepted")
	}
	bad := filepath.Join(filepath.Dir(path), "bad")
	if err := os.WriteFile(bad, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecret(bad); err == nil {
		t.Error("a malformed secret was accepted")
	}
}

// corruptions of the test layout.
func truncateBlob(t *testing.T, dir string, h v1.Hash) {
	t.Helper()
	p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// editSameSize changes one letter of a config's author (the config still
// parses and looks up to date) and, to hide it, sets its mtime back: only
// its ctime tells.
func editSameSize(t *testing.T, dir string, h v1.Hash) {
	t.Helper()
	p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	author := []byte(`"author":"minikit stand-in"`)
	i := bytes.Index(data, author)
	if i < 0 {
		t.Fatalf("blob %s is not a stand-in config: %.200s", h, data)
	}
	data[i+len(author)-2] = 'N' // "minikit stand-iN"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestCheckLayout: a truncated layer and a config edited at the same size
// (mtime restored) are found, named with their images, and the error says
// how to repair.
func TestCheckLayout(t *testing.T) {
	dir, base, derived, baseSpec, derivedSpec := testLayout(t)
	if err := CheckLayout(dir); err != nil {
		t.Fatalf("fresh layout: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, recordName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record of verified blobs: %v, %v", fi, err)
	}
	if err := CheckLayout(dir); err != nil {
		t.Fatalf("second check: %v", err)
	}

	dl, _ := derived.Layers()
	ownLayer, _ := dl[1].Digest() // the derived image's own layer
	truncateBlob(t, dir, ownLayer)
	err = CheckLayout(dir)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated layer: %v, want ErrCorrupt", err)
	}
	for _, s := range []string{"layer " + shortDigest(ownLayer), derivedSpec.Name, "minikit standins build"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if strings.Contains(err.Error(), baseSpec.Name) {
		t.Errorf("error %q names the intact base image", err)
	}

	cfg, _ := base.ConfigName()
	editSameSize(t, dir, cfg)
	err = CheckLayout(dir)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "config "+shortDigest(cfg)) || !strings.Contains(err.Error(), baseSpec.Name) {
		t.Errorf("same-size config edit: %v, want ErrCorrupt naming config %s of %s", err, shortDigest(cfg), baseSpec.Name)
	}

	// A blob missing altogether.
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", mustDigest(t, derived).Hex)); err != nil {
		t.Fatal(err)
	}
	if err := CheckLayout(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing manifest: %v", err)
	}
}

// TestServeRefusesCorruptBlob: a blob whose file changed since it was
// verified is checked again before it is served, and refused with the
// repair hint when wrong.
func TestServeRefusesCorruptBlob(t *testing.T) {
	dir, base, _, _, _ := testLayout(t)
	if err := CheckLayout(dir); err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, dir, nil)
	cfg, _ := base.ConfigName()
	layers, _ := base.Layers()
	ld, _ := layers[0].Digest()
	for _, h := range []v1.Hash{cfg, ld} {
		if resp, _ := do(t, http.MethodGet, "http://"+addr+"/v2/library/test/blobs/"+h.String(), nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("intact blob %s: %s", h, resp.Status)
		}
	}
	editSameSize(t, dir, cfg)
	truncateBlob(t, dir, ld)
	for _, h := range []v1.Hash{cfg, ld} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := do(t, method, "http://"+addr+"/v2/library/test/blobs/"+h.String(), nil, map[string]string{"Range": "bytes=0-"})
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("%s corrupt blob %s: %s, want 500", method, h, resp.Status)
				continue
			}
			if method == http.MethodGet && !strings.Contains(string(body), "minikit standins build") {
				t.Errorf("corrupt blob %s: %s does not say how to repair", h, body)
			}
		}
	}
	ref, _ := name.ParseReference(addr+"/library/test:base", name.Insecure)
	if img, err := remote.Image(ref, remote.WithRetryStatusCodes()); err == nil {
		if _, err := img.ConfigFile(); err == nil {
			t.Error("the corrupt config was pulled")
		}
	}
}

// TestRemoveDamaged: the first step of Build removes bad blobs and the
// images using them from the layout (so that they are rebuilt, not
// reused by a blob writer that skips existing files), leaves intact
// images alone, and the layout checks clean once they are stored again.
func TestRemoveDamaged(t *testing.T) {
	dir, base, derived, baseSpec, derivedSpec := testLayout(t)
	lp, err := openLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	prog := newProgress(nil)
	if damaged, removed, err := removeDamaged(lp, prog); err != nil || removed || len(damaged) != 0 {
		t.Fatalf("intact layout: %v %v %v", damaged, removed, err)
	}
	cfg, _ := derived.ConfigName()
	editSameSize(t, dir, cfg)
	damaged, removed, err := removeDamaged(lp, prog)
	if err != nil || !removed {
		t.Fatal(err)
	}
	if len(damaged) != 1 || !strings.Contains(damaged[derivedSpec.Name], "config "+shortDigest(cfg)) {
		t.Errorf("damaged = %v, want only %s's config", damaged, derivedSpec.Name)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", cfg.Hex)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the bad config is still there: %v", err)
	}
	imgs, err := layoutImages(lp)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := imgs[derivedSpec.Name]; ok || imgs[baseSpec.Name] == nil {
		t.Errorf("layout images after repair: %v", imgs)
	}
	if err := CheckLayout(dir); err != nil {
		t.Errorf("layout with the damaged image removed: %v", err)
	}
	// The rebuild stores it again.
	b := &builder{lp: lp}
	if _, err := b.store(context.Background(), derivedSpec, amd64Only(derived)); err != nil {
		t.Fatal(err)
	}
	if err := CheckLayout(dir); err != nil {
		t.Errorf("after storing it again: %v", err)
	}

	// A truncated shared layer damages both images.
	bl, _ := base.Layers()
	shared, _ := bl[0].Digest()
	truncateBlob(t, dir, shared)
	damaged, _, err = removeDamaged(lp, prog)
	if err != nil {
		t.Fatal(err)
	}
	if len(damaged) != 2 || damaged[baseSpec.Name] == "" || damaged[derivedSpec.Name] == "" {
		t.Errorf("shared layer truncated: damaged = %v, want both images", damaged)
	}
	if imgs, _ := layoutImages(lp); len(imgs) != 0 {
		t.Errorf("images left: %v", imgs)
	}
}
