package runner

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/tonistiigi/fsutil"
)

func TestOwnAttachables(t *testing.T) {
	nop := func(map[string]string) (io.WriteCloser, error) { return nil, nil }
	dir := t.TempDir()
	store, err := contentlocal.NewStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  client.SolveOpt
		want int // attachables
		bad  bool
	}{
		{"no export", client.SolveOpt{}, 0, false},
		{"image store", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{"name": "minikit:x"}}}}, 0, false},
		{"registry cache", client.SolveOpt{CacheExports: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "r/c"}}}}, 0, false},
		{"oci file", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterOCI, Output: nop}}}, 1, false},
		{"local cache export", client.SolveOpt{CacheExports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": filepath.Join(dir, "to")}}}}, 1, false},
		{"local cache import", client.SolveOpt{CacheImports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": filepath.Join(dir, "from")}}}}, 1, false},
		{"all of them", client.SolveOpt{
			Exports:      []client.ExportEntry{{Type: client.ExporterImage}, {Type: client.ExporterOCI, Output: nop}, {Type: client.ExporterDocker, Output: nop}},
			CacheExports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": filepath.Join(dir, "to")}}},
			CacheImports: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": filepath.Join(dir, "from")}}},
		}, 2, false}, // one content attachable, one file target
		{"local dir", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: "/tmp/x"}}}, 1, false},
		{"output store", client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterOCI, OutputStore: store}}}, 0, true},
		{"attachables", client.SolveOpt{Session: []session.Attachable{nil}}, 0, true},
	} {
		got, err := ownAttachables(tc.opt)
		if (err != nil) != tc.bad || len(got) != tc.want {
			t.Errorf("%s: %d attachables, error %v; want %d, error %v", tc.name, len(got), err, tc.want, tc.bad)
		}
	}
}

// TestSessionsClose: every session opened is ended by close, which waits
// for them; none is handed out after.
func TestSessionsClose(t *testing.T) {
	c, err := client.New(context.Background(), "unix:///nonexistent/bk.sock") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src := testSource(t)
	p := newSessions(c, map[string]fsutil.FS{src.Name: src.FS}, nil)
	nop := func(map[string]string) (io.WriteCloser, error) { return nil, nil }
	own := client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterOCI, Output: nop}}}
	a, err := p.forBuild(own)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.forBuild(own)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two builds with exports of their own got one session")
	}
	if _, err := p.forBuild(client.SolveOpt{}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	opened := append([]*openSession(nil), p.open...)
	p.mu.Unlock()
	if len(opened) != 3 {
		t.Fatalf("%d sessions opened, want 3", len(opened))
	}
	p.close()
	for i, o := range opened {
		select {
		case <-o.done:
		default:
			t.Errorf("session %d still running after close", i)
		}
	}
	if _, err := p.forBuild(client.SolveOpt{}); err == nil {
		t.Error("a session was handed out after close")
	}
	var none *sessions
	none.close() // no panic
}

// TestDockerConfig: the credentials come from DOCKER_CONFIG's directory;
// a malformed config is an error naming the variable.
func TestDockerConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	cf, err := dockerConfig()
	if err != nil || len(cf.AuthConfigs) != 0 {
		t.Fatalf("no config.json: %v, %v", cf, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"127.0.0.1:5000":{"auth":"dTpw"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, err = dockerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if a, err := cf.GetAuthConfig("127.0.0.1:5000"); err != nil || a.Username != "u" || a.Password != "p" {
		t.Errorf("credentials for 127.0.0.1:5000: %+v, %v", a, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dockerConfig(); err == nil || !strings.Contains(err.Error(), "DOCKER_CONFIG") {
		t.Errorf("malformed config: error %v", err)
	}
}

// authRegistry serves a registry on 127.0.0.1 that wants user:pass (HTTP
// basic authentication) for every request, and returns its host:port.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="minikit-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestSolveDaemonRegistryCredentials: a cache export to a registry that
// wants a login fails without credentials and succeeds with the Docker
// config's (DOCKER_CONFIG), which the build's session offers.
func TestSolveDaemonRegistryCredentials(t *testing.T) {
	c := startBuildkitd(t)
	base := pushBase(t)
	const user, pass = "minikit", "s3cret"
	host := authRegistry(t, user, pass)
	recipes := []Target{target("r.cached", testSource(t), from(base).copy("hello.c", "."), ImageConfig{Cmd: shell("cat hello.c")})}
	to, err := ParseCache("type=registry,ref="+host+"/cache,registry.insecure=true,mode=max", true)
	if err != nil {
		t.Fatal(err)
	}
	cacheRef, err := name.ParseReference(host+"/cache:r.cached", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	solve := func() Result {
		t.Helper()
		results, err := Solve(context.Background(), c, recipes, NoExport(), CacheExports(to))
		if err != nil {
			t.Fatal(err)
		}
		return results[0]
	}

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no config.json: no credentials
	if r := solve(); r.Status != StatusFailed {
		t.Errorf("without credentials: %s: %s", r.Status, r.Error)
	} else {
		t.Logf("without credentials: %s", r.Error)
	}
	if _, err := remote.Head(cacheRef, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err == nil {
		t.Fatal("the cache was pushed without credentials")
	}

	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	if r := solve(); r.Status != StatusOK {
		t.Errorf("with credentials: %s: %s", r.Status, r.Error)
	}
	if _, err := remote.Head(cacheRef, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Errorf("no cache in the registry after the export: %v", err)
	}
}
