package daemon

import (
	"strings"
	"testing"

	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"
)

// FuzzCheckMirror: a mirror address checkMirror accepts (MINIKIT_REGISTRY
// ends up here) is written into a config buildkitd parses back to it.
func FuzzCheckMirror(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000", "[::1]:5000", "localhost:1", "a\"b:1", "host:", ":5000", "x:1\n[grpc]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, m string) {
		if checkMirror(m) != nil {
			return
		}
		text := bkConfig{Root: "/r", Socket: "/s", TraceSocket: "/t", Mirror: m}.render()
		c, err := bkconfig.Load(strings.NewReader(text))
		if err != nil {
			t.Fatalf("mirror %q accepted, config does not parse: %v\n%s", m, err, text)
		}
		if hub := c.Registries["docker.io"]; len(hub.Mirrors) != 1 || hub.Mirrors[0] != m {
			t.Fatalf("mirror %q accepted, config says %+v", m, hub)
		}
		if c.Root != "/r" {
			t.Fatalf("mirror %q changed the root: %q", m, c.Root)
		}
	})
}
