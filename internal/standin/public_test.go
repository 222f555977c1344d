package standin

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestServePublicUnspecified: on 0.0.0.0 the registry publishes its
// images over loopback and serves them on the other addresses too.
func TestServePublicUnspecified(t *testing.T) {
	base, _, baseSpec, _ := testImages(t)
	dir := t.TempDir()
	lp, err := openLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	if _, err := b.store(context.Background(), baseSpec, base); err != nil {
		t.Fatal(err)
	}
	// A free port, then ServePublic on every address with it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePublic(ctx, string(lp), filepath.Join(dir, "state"), "0.0.0.0:"+port, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePublic: %v", err)
		}
	})
	ref, err := name.ParseReference("127.0.0.1:"+port+"/"+baseSpec.Name, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := remote.Image(ref)
		if err == nil {
			if mustDigest(t, got) != mustDigest(t, base) {
				t.Fatal("digest differs after serving")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull %s: %v", ref, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := ServePublic(context.Background(), string(lp), t.TempDir(), "no-port", nil); err == nil {
		t.Error("ServePublic accepted an address without a port")
	}
}
