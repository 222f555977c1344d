package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/grpchijack"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// A sharedSession is one BuildKit session that the recipes solved on one
// builder share, instead of each build opening its own: a session costs a
// hijacked gRPC stream and its handshake, which is most of a cached
// recipe's time. It offers the one thing every recipe needs from the
// client, the samples directory; builds that need more of the client
// (exports to files, local cache stores) open their own session
// (shareable).
//
// It is opened on first use and reopened if the daemon ended it.
type sharedSession struct {
	c       *client.Client
	samples fsutil.FS

	mu     sync.Mutex
	sess   *session.Session
	done   chan struct{} // closed when sess's Run returns
	cancel context.CancelFunc
	closed bool
}

func newSharedSession(c *client.Client, samples fsutil.FS) *sharedSession {
	return &sharedSession{c: c, samples: samples}
}

// get returns the open session, opening it if there is none.
func (p *sharedSession) get() (*session.Session, error) {
	if p == nil {
		return nil, errors.New("no shared session")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("shared session: closed")
	}
	if p.sess != nil {
		select {
		case <-p.done:
			p.sess = nil // the daemon or the connection ended it
		default:
			return p.sess, nil
		}
	}
	// The session outlives any one build: its context is its own,
	// canceled by close.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := session.NewSession(ctx, "")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open a BuildKit session: %w", err)
	}
	// As BuildKit's client does for a build's own session: the files
	// are sent as owned by root, whoever runs minikit.
	samples, err := fsutil.NewFilterFS(p.samples, &fsutil.FilterOpt{
		Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
			st.Uid, st.Gid = 0, 0
			return fsutil.MapResultKeep
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("samples directory: %w", err)
	}
	s.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{llbdefs.SamplesName: samples}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx, grpchijack.Dialer(p.c.ControlClient())) // ends with ctx or the connection
	}()
	p.sess, p.done, p.cancel = s, done, cancel
	return s, nil
}

// close ends the session and waits for it to be gone.
func (p *sharedSession) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	s, done, cancel := p.sess, p.done, p.cancel
	p.sess, p.closed = nil, true
	p.mu.Unlock()
	if s == nil {
		return
	}
	_ = s.Close()
	cancel()
	<-done
}

// shareable reports whether a build with opt can use a shared session:
// only when it needs nothing from the client but the samples, that is no
// export to a file, directory or store of the client's, and no local
// cache store (each of those is an attachable of the build's own
// session).
func shareable(opt client.SolveOpt) bool {
	for _, e := range opt.Exports {
		if e.Output != nil || e.OutputDir != "" || e.OutputStore != nil {
			return false
		}
	}
	for _, c := range append(append([]client.CacheOptionsEntry{}, opt.CacheExports...), opt.CacheImports...) {
		if c.Type == "local" {
			return false
		}
	}
	return len(opt.OCIStores) == 0 && len(opt.Session) == 0
}
