package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
)

// TestStandInRegistryIdentity: the registry helper is identified by what
// it serves and how, not by the minikit binary that starts it.
func TestStandInRegistryIdentity(t *testing.T) {
	home := paths.Home(t.TempDir())
	layout := home.StandIns()
	if err := os.MkdirAll(layout, 0o700); err != nil {
		t.Fatal(err)
	}
	writeIndex := func(s string) {
		if err := os.WriteFile(filepath.Join(layout, "index.json"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(`{"manifests":[]}`)
	a, err := StandInRegistry(home, layout, "127.0.0.1:5000", "/checkout/bin/minikit")
	if err != nil {
		t.Fatal(err)
	}
	b, err := StandInRegistry(home, layout, "127.0.0.1:5000", "/usr/local/bin/minikit")
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity == "" || a.Identity != b.Identity {
		t.Errorf("two minikit binaries, identities %q and %q", a.Identity, b.Identity)
	}
	if a.Args[0] != "/checkout/bin/minikit" || b.Args[0] != "/usr/local/bin/minikit" {
		t.Errorf("command lines: %q, %q", a.Args, b.Args)
	}
	if i := slices.Index(a.Args, "--secret-file"); i < 0 || a.Args[i+1] != filepath.Join(home.Registry(), "secret") {
		t.Errorf("no --secret-file in %q", a.Args)
	}
	if a.Addr != "127.0.0.1:5000" {
		t.Errorf("Addr = %q", a.Addr)
	}
	for _, s := range []string{"version=" + standin.ServeVersion, "listen=127.0.0.1:5000", "secret-file="} {
		if !strings.Contains(a.Identity, s) {
			t.Errorf("identity %q lacks %q", a.Identity, s)
		}
	}
	if c, _ := StandInRegistry(home, layout, "127.0.0.1:5001", "/checkout/bin/minikit"); c.Identity == a.Identity {
		t.Errorf("another listen address, same identity")
	}
	writeIndex(`{"manifests":[{}]}`)
	if d, _ := StandInRegistry(home, layout, "127.0.0.1:5000", "/checkout/bin/minikit"); d.Identity == a.Identity {
		t.Errorf("another layout generation, same identity")
	}
	if fi, err := os.Stat(filepath.Join(home.Registry(), "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, %v", fi, err)
	}
}

// TestCheckRegistry: home's own registry passes; an HTTP server without
// the proof is foreign; nothing listening is neither.
func TestCheckRegistry(t *testing.T) {
	ctx := context.Background()
	home := paths.Home(t.TempDir())
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "{}")
	}))
	defer foreign.Close()
	addr := strings.TrimPrefix(foreign.URL, "http://")
	if err := CheckRegistry(ctx, home, addr, 2*time.Second); !errors.Is(err, standin.ErrForeignRegistry) || !strings.Contains(err.Error(), addr) {
		t.Errorf("foreign server: %v, want ErrForeignRegistry naming %s", err, addr)
	}
	foreign.Close()
	if err := CheckRegistry(ctx, home, addr, 300*time.Millisecond); err == nil || errors.Is(err, standin.ErrForeignRegistry) {
		t.Errorf("nothing listening: %v", err)
	}
}
