package standin

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestServePublicUnspecified: on 0.0.0.0 the registry serves its images
// on loopback too, and stays read only.
func TestServePublicUnspecified(t *testing.T) {
	base, _, baseSpec, _ := testImages(t)
	dir := t.TempDir()
	lp, err := openLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{lp: lp}
	if _, err := b.store(context.Background(), baseSpec, amd64Only(base)); err != nil {
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
	go func() { done <- ServePublic(ctx, string(lp), "0.0.0.0:"+port, nil, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePublic: %v", err)
		}
	})
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if err := Ready(rctx, "127.0.0.1:"+port, nil); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference("127.0.0.1:"+port+"/"+baseSpec.Name, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if mustDigest(t, got) != mustDigest(t, base) {
		t.Fatal("digest differs after serving")
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err == nil {
		t.Error("the public registry accepted a push")
	}

	if err := ServePublic(context.Background(), string(lp), "no-port", nil, nil); err == nil {
		t.Error("ServePublic accepted an address without a port")
	}
}
