package tlsca

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreatePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "testca")
	var wg sync.WaitGroup
	cas := make([]*CA, 4)
	errs := make([]error, 4)
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cas[i], errs[i] = LoadOrCreate(dir)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if cas[i].Fingerprint() != cas[0].Fingerprint() {
			t.Fatalf("concurrent creation gave two CAs")
		}
	}
	again, err := Load(dir)
	if err != nil || again.Fingerprint() != cas[0].Fingerprint() {
		t.Fatalf("reload: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if !strings.HasPrefix(string(again.CertPEM), "-----BEGIN CERTIFICATE-----") || strings.Contains(string(again.CertPEM), "PRIVATE") {
		t.Fatalf("CertPEM must be the certificate alone:\n%s", again.CertPEM)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("a corrupt CA file must be an error, not silently replaced")
	}
}

func TestServerTrustedOnlyWithCA(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(ca)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := trusting.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != Answer {
		t.Fatalf("body %q", body)
	}

	other, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	distrusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.Pool()}}}
	if _, err := distrusting.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("another CA: want unknown authority, got %v", err)
	}
	if srv.Hits() != 1 {
		t.Fatalf("hits %d", srv.Hits())
	}
}
