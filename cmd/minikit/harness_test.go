package main

import (
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/paths"
)

// Upstream base images trust the public CAs only: off the stand-ins no
// loopback server is started and the whatsmyip images keep their URL.
func TestHarnessServesOnlyOnStandIns(t *testing.T) {
	home := paths.Home(t.TempDir())
	up, err := newTestHarness(home, time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if up.URL() != "" || up.Option == nil {
		t.Fatalf("upstream harness: URL %q, option set %v; want no server and a Test option", up.URL(), up.Option != nil)
	}
	si, err := newTestHarness(home, time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	defer si.Close()
	if !strings.HasPrefix(si.URL(), "https://127.0.0.1:") {
		t.Fatalf("stand-in harness URL %q, want a loopback https URL", si.URL())
	}
}
