package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	sessioncontent "github.com/moby/buildkit/session/content"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/grpchijack"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// The BuildKit sessions of a run.
//
// A session is how buildkitd calls back to the client during a build: for
// the targets' sources, a registry's credentials, a local cache store, a
// tarball being exported. minikit opens every session itself and gives
// it to the build as SharedSession, SessionPreInitialized (BuildKit's
// client then neither opens nor closes one), so that it decides how long
// each lives:
//
//   - A build that needs nothing from the client but the sources and the
//     credentials uses the run's shared session (one per daemon): a
//     session costs a hijacked gRPC stream and its handshake, which is
//     most of a cached target's time.
//   - A build that needs more (a tarball export or the meter, whose
//     output is a file target numbered by its place in the build's
//     exports; a local cache store) gets a session of its own, offering
//     the sources and credentials too.
//
// Every session a run opens on a daemon stays open until every build of
// that run on that daemon has ended (sessions.close, at the end of
// Solve/SolveOn), and this is what makes it sound. buildkitd runs a step
// that several builds share once, and calls back through the session of
// any one of them, the one it picked when the step started: for a
// source's transfer, or for a layer imported from a local cache, which
// stays lazy and is pulled through the importing build's session when a
// build first reads it, even once the importing build has ended. A
// session closed under such a call fails the step in every build that
// shares it ("grpc: the client connection is closing"). While a build of
// the run is in flight no session of the run is closed, so none of its
// steps can meet a closed one. What a build's own session offers beyond
// the sources and the credentials is that build's alone (its cache
// stores, keyed by the target's own directory; its file outputs, written
// by its own exporter only), as in the session BuildKit's client would
// have opened for it. The price is one idle stream per finished build
// until the run ends.
//
// Builds of other clients of the same daemon that share a step with this
// run can borrow its sessions as well; those are theirs to protect
// against.
type sessions struct {
	c *client.Client
	// sources are the run's local directories by name (every target's
	// Sources); auth offers the Docker config's credentials.
	sources map[string]fsutil.FS
	auth    session.Attachable

	// dropped is signalled when a session ends before close: the
	// daemon ended it, or the connection to it is gone (multi.watch).
	dropped chan struct{}

	mu     sync.Mutex
	shared *openSession   // nil until first needed, or once it ended
	open   []*openSession // every session opened, the shared ones too
	closed bool
}

// An openSession is a session running until close.
type openSession struct {
	s      *session.Session
	done   chan struct{} // closed when the session's Run returns
	cancel context.CancelFunc
}

func newSessions(c *client.Client, sources map[string]fsutil.FS, auth session.Attachable) *sessions {
	return &sessions{c: c, sources: sources, auth: auth, dropped: make(chan struct{}, 1)}
}

// DirSource is the directory dir as a target's Source called name, sent
// as BuildKit's client sends a local mount: every file owned by root,
// whoever runs the build.
func DirSource(name, dir string) (Source, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	if !fi.IsDir() {
		return Source{}, fmt.Errorf("source %s: %s is not a directory", name, dir)
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	fs, err = fsutil.NewFilterFS(fs, &fsutil.FilterOpt{
		Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
			st.Uid, st.Gid = 0, 0
			return fsutil.MapResultKeep
		},
	})
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	return Source{Name: name, FS: fs}, nil
}

// forBuild returns the session a build with opt runs in: the shared one
// when the build needs nothing else from the client, else one of its
// own, holding what it needs. The caller sets it as opt.SharedSession.
func (p *sessions) forBuild(opt client.SolveOpt) (*session.Session, error) {
	own, err := ownAttachables(opt)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("BuildKit session: the run is over")
	}
	if len(own) > 0 {
		o, err := p.startLocked(own...)
		if err != nil {
			return nil, err
		}
		return o.s, nil
	}
	if p.shared != nil {
		select {
		case <-p.shared.done:
			p.shared = nil // the daemon or the connection ended it
		default:
			return p.shared.s, nil
		}
	}
	o, err := p.startLocked()
	if err != nil {
		return nil, err
	}
	p.shared = o
	return o.s, nil
}

// startLocked opens a session offering the sources, the credentials and
// extra. p.mu is held.
func (p *sessions) startLocked(extra ...session.Attachable) (*openSession, error) {
	// The session's context is its own, canceled by close: it outlives
	// the build it was opened for.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := session.NewSession(ctx, "")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open a BuildKit session: %w", err)
	}
	if len(p.sources) > 0 {
		s.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource(p.sources)))
	}
	if p.auth != nil {
		s.Allow(p.auth)
	}
	for _, a := range extra {
		s.Allow(a)
	}
	o := &openSession{s: s, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(o.done)
		_ = s.Run(ctx, grpchijack.Dialer(p.c.ControlClient())) // ends with close or the connection
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if !closed {
			select {
			case p.dropped <- struct{}{}:
			default: // a signal is pending already
			}
		}
	}()
	p.open = append(p.open, o)
	return o, nil
}

// close ends every session of the run and waits for them to be gone. No
// build of the run on this daemon may be in flight.
func (p *sessions) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	open := p.open
	p.open, p.shared, p.closed = nil, nil, true
	p.mu.Unlock()
	for _, o := range open {
		_ = o.s.Close()
		o.cancel()
		<-o.done
	}
}

// ownAttachables returns what a build with opt needs from the client
// besides the sources and the credentials, as BuildKit's client would
// offer it in the build's own session: a content store per local cache
// directory, exported to or imported from (keyed "local:DIR"), and a file
// target per export with an Output or an OutputDir (numbered by its place
// in opt.Exports). minikit sets no other client-side option.
func ownAttachables(opt client.SolveOpt) ([]session.Attachable, error) {
	if len(opt.OCIStores) > 0 || len(opt.Session) > 0 || opt.SourcePolicyProvider != nil {
		return nil, errors.New("BuildKit session: OCI stores, attachables and source policy providers are not supported")
	}
	var out []session.Attachable
	stores := map[string]content.Store{}
	addStore := func(dir string) error {
		key := "local:" + dir
		if _, ok := stores[key]; ok {
			return nil
		}
		cs, err := contentlocal.NewStore(dir)
		if err != nil {
			return fmt.Errorf("local cache %s: %w", dir, err)
		}
		stores[key] = cs
		return nil
	}
	for _, e := range opt.CacheExports {
		if e.Type == "local" {
			if err := addStore(e.Attrs["dest"]); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range opt.CacheImports {
		if e.Type == "local" {
			if err := addStore(e.Attrs["src"]); err != nil {
				return nil, err
			}
		}
	}
	if len(stores) > 0 {
		out = append(out, sessioncontent.NewAttachable(stores))
	}
	var targets []filesync.FSSyncTarget
	for id, e := range opt.Exports {
		if e.OutputStore != nil {
			return nil, fmt.Errorf("BuildKit session: export %s: only file and directory outputs are supported", e.Type)
		}
		if e.Output != nil {
			targets = append(targets, filesync.WithFSSync(id, e.Output))
		}
		if e.OutputDir != "" { // a local export (export.go)
			targets = append(targets, filesync.WithFSSyncDir(id, e.OutputDir))
		}
	}
	if len(targets) > 0 {
		out = append(out, filesync.NewFSSyncTarget(targets...))
	}
	return out, nil
}

// registryAuth offers the Docker CLI config's credentials to buildkitd,
// as buildctl and buildx do: the config.json of the directory
// DOCKER_CONFIG names, else of ~/.docker; without any credentials in it,
// the platform's default credential helper, if installed.
func registryAuth() (session.Attachable, error) {
	cf, err := dockerConfig()
	if err != nil {
		return nil, err
	}
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(cf),
	}), nil
}

func dockerConfig() (*configfile.ConfigFile, error) {
	dir := os.Getenv(dockerconfig.EnvOverrideConfigDir)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return configfile.New(""), nil // no home, no Docker config
		}
		dir = filepath.Join(home, ".docker")
	}
	cf, err := dockerconfig.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("docker config (%s sets another directory): %w", dockerconfig.EnvOverrideConfigDir, err)
	}
	if !cf.ContainsAuth() {
		cf.CredentialsStore = credentials.DetectDefaultStore(cf.CredentialsStore)
	}
	return cf, nil
}
