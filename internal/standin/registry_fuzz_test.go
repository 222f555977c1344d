package standin

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// FuzzLoopbackAddr: a --listen address is accepted exactly when it is
// host:port with a loopback host (or localhost), and what is accepted is
// a loopback host:port that is accepted again unchanged. Nothing panics.
// Seeds: testdata/fuzz/FuzzLoopbackAddr.
func FuzzLoopbackAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		got, err := loopbackAddr(in)
		host, _, serr := net.SplitHostPort(in)
		loopback := serr == nil && (host == "localhost" || (net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback()))
		if (err == nil) != loopback {
			t.Fatalf("loopbackAddr(%q) = %q, %v; loopback host:port: %v", in, got, err, loopback)
		}
		if err != nil {
			return
		}
		h, _, err := net.SplitHostPort(got)
		if err != nil || !net.ParseIP(h).IsLoopback() {
			t.Fatalf("loopbackAddr(%q) = %q: not loopback host:port (%v)", in, got, err)
		}
		if again, err := loopbackAddr(got); err != nil || again != got {
			t.Fatalf("loopbackAddr(%q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}

// FuzzRegistryRequest: whatever method, path and Range a client sends, the
// registry answers without panicking: 405 to anything but GET and HEAD,
// otherwise a success or a client error (never a server error over an
// intact layout) with a registry-style body for errors, and a full GET of
// a blob returns exactly its content. LAYER, CONFIG and MANIFEST in the
// path stand for the test image's digests. Seeds:
// testdata/fuzz/FuzzRegistryRequest.
func FuzzRegistryRequest(f *testing.F) {
	img, err := random.Image(2048, 2)
	if err != nil {
		f.Fatal(err)
	}
	lp, err := openLayout(filepath.Join(f.TempDir(), "layout"))
	if err != nil {
		f.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{AnnotationRefName: "library/test:base"})); err != nil {
		f.Fatal(err)
	}
	reg, err := newRegistry(string(lp), []byte("secret"), log.New(io.Discard, "", 0))
	if err != nil {
		f.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	cfg, _ := img.ConfigName()
	md, _ := img.Digest()
	blobs := map[string][]byte{}
	for _, h := range []v1.Hash{ld, cfg, md} {
		var buf bytes.Buffer
		rc, err := lp.Blob(h)
		if err != nil {
			f.Fatal(err)
		}
		_, _ = io.Copy(&buf, rc)
		rc.Close()
		blobs[h.String()] = buf.Bytes()
	}
	subst := strings.NewReplacer("LAYER", ld.String(), "CONFIG", cfg.String(), "MANIFEST", md.String())

	f.Fuzz(func(t *testing.T, method, path, rng string) {
		path = subst.Replace(path)
		req, err := http.NewRequest(method, "http://registry"+path, nil)
		if err != nil {
			return // not a request a client can send
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		// NewRequest takes "" for GET, as a client sends it.
		method = req.Method
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, req)
		status := rec.Code
		switch {
		case method != http.MethodGet && method != http.MethodHead:
			if status != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s: %d, want 405", method, path, status)
			}
		case status >= 500:
			t.Fatalf("%s %s (Range %q): %d %s", method, path, rng, status, rec.Body.Bytes())
		}
		if status >= 400 && status != http.StatusRequestedRangeNotSatisfiable && method != http.MethodHead {
			var e struct{ Errors []struct{ Code string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code == "" {
				t.Fatalf("%s %s: %d with body %q, want a registry error", method, path, status, rec.Body.Bytes())
			}
		}
		if method == http.MethodGet && status == http.StatusOK {
			d := rec.Header().Get("Docker-Content-Digest")
			if want, ok := blobs[d]; ok && !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("GET %s: body is not blob %s", path, d)
			}
		}
	})
}
