package runner

import (
	"io"
	"testing"

	"github.com/moby/buildkit/client"
)

func TestShareable(t *testing.T) {
	nop := func(map[string]string) (io.WriteCloser, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		opt  client.SolveOpt
		want bool
	}{
		{"no export", client.SolveOpt{}, true},
		{"image store", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{"name": "minikit:x"}}}}, true},
		{"registry cache", client.SolveOpt{CacheExports: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "r/c"}}}}, true},
		{"oci file", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterOCI, Output: nop}}}, false},
		{"local dir", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: "/tmp/x"}}}, false},
		{"local cache export", client.SolveOpt{CacheExports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": "/tmp/c"}}}}, false},
		{"local cache import", client.SolveOpt{CacheImports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": "/tmp/c"}}}}, false},
	} {
		if got := shareable(tc.opt); got != tc.want {
			t.Errorf("%s: shareable = %v, want %v", tc.name, got, tc.want)
		}
	}
	var p *sharedSession
	if _, err := p.get(); err == nil {
		t.Error("a nil shared session gave a session")
	}
	p.close() // no panic
}

func TestSessionLost(t *testing.T) {
	for msg, want := range map[string]bool{
		"Canceled: failed to compute cache key: Canceled: grpc: the client connection is closing: context canceled": true,
		`process "/bin/sh -c gcc -o hello hello.c" did not complete successfully: exit code: 1`:                     false,
		"failed to solve: rpc error: code = Unavailable desc = connection error":                                    false,
		"": false,
	} {
		if got := sessionLost(msg); got != want {
			t.Errorf("sessionLost(%q) = %v, want %v", msg, got, want)
		}
	}
}
