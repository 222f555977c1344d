package samples

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildWhatsmyip compiles whatsmyip.go (a //go:build ignore program) into
// a temporary directory.
func buildWhatsmyip(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "whatsmyip")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "whatsmyip.go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build whatsmyip.go: %v\n%s", err, out)
	}
	return bin
}

// runWhatsmyip runs the program with only the given environment (and PATH)
// and returns its exit code and output.
func runWhatsmyip(t *testing.T, ctx context.Context, bin string, env ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run whatsmyip: %v", err)
	return 0, "", ""
}

// By default whatsmyip asks the seed's service, canihazip.com (seen
// through a proxy that refuses every tunnel, so nothing leaves the
// machine), and fails with exit 1 when it cannot; WHATSMYIP_URL points it
// at another HTTPS server, whose body it prints.
func TestWhatsmyip(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build whatsmyip.go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildWhatsmyip(t, ctx)

	var mu sync.Mutex
	var asked []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+r.Host)
		mu.Unlock()
		http.Error(w, "no tunnels here", http.StatusBadGateway)
	}))
	defer proxy.Close()
	code, _, stderr := runWhatsmyip(t, ctx, bin, "HTTPS_PROXY="+proxy.URL)
	mu.Lock()
	got := strings.Join(asked, "; ")
	mu.Unlock()
	if got != "CONNECT canihazip.com:443" {
		t.Errorf("whatsmyip asked the proxy for %q, want one CONNECT canihazip.com:443", got)
	}
	if code != 1 || !strings.Contains(stderr, "canihazip.com") {
		t.Errorf("refused tunnel: exit %d, stderr %q; want exit 1 naming the service", code, stderr)
	}

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("203.0.113.7"))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runWhatsmyip(t, ctx, bin, "WHATSMYIP_URL="+srv.URL, "SSL_CERT_FILE="+ca)
	if code != 0 || stdout != "203.0.113.7\n" {
		t.Errorf("loopback override: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
