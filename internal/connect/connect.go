// Package connect finds the buildkitd minikit talks to: an address given
// on the command line or in BUILDKIT_HOST, or else minikit's private
// daemon, started on demand with the stand-in registry as its docker.io
// mirror when stand-ins have been built.
package connect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container://
	_ "github.com/moby/buildkit/client/connhelper/kubepod"         // kube-pod://
	_ "github.com/moby/buildkit/client/connhelper/nerdctlcontainer"
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"
	_ "github.com/moby/buildkit/client/connhelper/ssh"

	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
)

// DefaultRegistry is where the stand-in registry listens, unless
// MINIKIT_REGISTRY says otherwise.
const DefaultRegistry = "127.0.0.1:5000"

// Options says how to reach buildkitd.
type Options struct {
	// Addr is an explicit daemon address (unix://, tcp://,
	// docker-container://, ...). Empty: BUILDKIT_HOST, else the private
	// daemon.
	Addr string
	// Home is minikit's state directory (the private daemon, stand-ins).
	Home paths.Home
	// Self is the minikit executable, run as the stand-in registry
	// ("minikit standins serve"). Empty: the current executable.
	Self string
	// Registry is the stand-in registry's loopback address; empty means
	// MINIKIT_REGISTRY, else DefaultRegistry.
	Registry string
	// Log receives one-line progress messages.
	Log io.Writer
	// Timeout bounds the first answer of an explicit daemon (default 20 s).
	Timeout time.Duration
	// TLS authenticates a tcp:// daemon (and minikit to it). Settings it
	// leaves empty come from the BUILDKIT_TLS_* environment variables
	// when the address is an explicit tcp:// one.
	TLS TLS
}

// Conn is a connected BuildKit client. Close it when done: for the private
// daemon it holds a lease that keeps other minikits from restarting the
// daemon under this one's builds.
type Conn struct {
	*client.Client
	Addr string
	// Private is true for minikit's own daemon.
	Private bool
	// StandIns is true when docker.io and gcr.io images come from the stand-in
	// registry: results are stand-in results.
	StandIns bool
	// PID is the private daemon's process id (0 for another daemon).
	PID   int
	lease *daemon.Lease
}

// Close closes the client and releases the private daemon's lease.
func (c *Conn) Close() error {
	var err error
	if c.Client != nil {
		err = c.Client.Close()
	}
	return errors.Join(err, c.lease.Release())
}

// DaemonExited reports whether this is the private daemon and the process
// it was opened to has exited since (killed, crashed or stopped), even if
// another minikit has started a new one meanwhile.
func (c *Conn) DaemonExited() bool {
	return c.lease != nil && c.lease.Exited()
}

// ErrUnreachable wraps every failure to reach a daemon.
var ErrUnreachable = errors.New("buildkitd unreachable")

// Open connects to buildkitd and checks that it answers.
func Open(ctx context.Context, o Options) (*Conn, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	addr := o.Addr
	if addr == "" {
		addr = os.Getenv("BUILDKIT_HOST")
	}
	if strings.Contains(addr, ",") {
		return nil, fmt.Errorf("%w: %q names several daemons; this command uses one (only solve spreads recipes over several)", ErrUnreachable, addr)
	}
	conn := &Conn{Addr: addr}
	if addr == "" {
		var err error
		if conn.lease, conn.StandIns, err = private(ctx, o); err != nil {
			return nil, err
		}
		conn.Addr, conn.PID, conn.Private = conn.lease.Addr, conn.lease.PID, true
	}
	fail := func(err error) (*Conn, error) {
		_ = conn.Close()
		return nil, err
	}
	tlsCfg := o.TLS
	if !conn.Private && strings.HasPrefix(conn.Addr, "tcp://") {
		tlsCfg = tlsCfg.WithEnv()
	}
	copts, err := tlsCfg.clientOpts(conn.Addr)
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", ErrUnreachable, conn.Addr, err))
	}
	c, err := client.New(ctx, conn.Addr, copts...)
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", ErrUnreachable, conn.Addr, err))
	}
	conn.Client = c
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if _, err := c.ListWorkers(pctx); err != nil {
		return fail(fmt.Errorf("%w: %s does not answer%s: %w", ErrUnreachable, conn.Addr, tlsCfg.explain(conn.Addr, err), err))
	}
	return conn, nil
}

// private ensures minikit's own daemon runs, with the stand-in registry
// as docker.io and gcr.io mirror when stand-ins exist, and returns a lease on it.
func private(ctx context.Context, o Options) (lease *daemon.Lease, standIns bool, err error) {
	if o.Home == "" {
		if o.Home, err = paths.Default(); err != nil {
			return nil, false, err
		}
	}
	cfg := daemon.Config{Home: o.Home, Log: o.Log}
	reg := ""
	if HaveStandIns(o.Home) {
		if reg = o.Registry; reg == "" {
			reg = RegistryAddr()
		}
		self := o.Self
		if self == "" {
			if self, err = os.Executable(); err != nil {
				return nil, false, fmt.Errorf("locate minikit to run the stand-in registry: %w", err)
			}
		}
		// A damaged stand-in is found here, cheaply (sizes and times;
		// digests of what changed), rather than as a failed pull.
		if err := standin.CheckLayout(o.Home.StandIns()); err != nil {
			return nil, false, fmt.Errorf("%w: private daemon: %w", ErrUnreachable, err)
		}
		if cfg.Registry, err = StandInRegistry(o.Home, o.Home.StandIns(), reg, self); err != nil {
			return nil, false, fmt.Errorf("%w: private daemon: %w", ErrUnreachable, err)
		}
		cfg.Mirror = reg
		standIns = true
	}
	lease, err = daemon.Acquire(ctx, cfg)
	switch {
	case err == nil:
		return lease, standIns, nil
	case errors.Is(err, standin.ErrForeignRegistry) || errors.Is(err, daemon.ErrAddrInUse):
		return nil, false, fmt.Errorf("%w: private daemon: the stand-in registry's address %s is taken by another server, which minikit will not use as its docker.io mirror: stop that server, or run the stand-in registry on a free port with %s=127.0.0.1:<port>: %w",
			ErrUnreachable, reg, EnvRegistry, err)
	}
	return nil, false, fmt.Errorf("%w: private daemon: %w", ErrUnreachable, err)
}

// EnvRegistry names the environment variable that moves the stand-in
// registry to another loopback host:port.
const EnvRegistry = "MINIKIT_REGISTRY"

// RegistryAddr is where the stand-in registry listens: $MINIKIT_REGISTRY,
// else DefaultRegistry.
func RegistryAddr() string {
	if addr := os.Getenv(EnvRegistry); addr != "" {
		return addr
	}
	return DefaultRegistry
}

// secretFile is where the stand-in registry's ownership secret is kept.
func secretFile(home paths.Home) string { return filepath.Join(home.Registry(), "secret") }

// StandInRegistry describes the stand-in registry helper process of home:
// `self standins serve` on the loopback address listen, serving the OCI
// layout at layoutDir and proving it holds home's registry secret (made on
// first use). Its identity is what it serves and how, not the path of the
// minikit binary self, so that two minikit binaries sharing home share it.
func StandInRegistry(home paths.Home, layoutDir, listen, self string) (*daemon.Process, error) {
	file := secretFile(home)
	secret, err := standin.LoadSecret(file)
	if err != nil {
		return nil, err
	}
	// The generation changes with the layout's index, so that a registry
	// serving an older set of stand-ins is restarted.
	gen := layoutGeneration(layoutDir)
	return &daemon.Process{
		Name: "stand-in registry",
		Args: []string{self, "standins", "serve", "--listen", listen, "--dir", layoutDir,
			"--secret-file", file, "--generation", gen},
		Identity: strings.Join([]string{"standins serve", "version=" + standin.ServeVersion,
			"listen=" + listen, "dir=" + layoutDir, "generation=" + gen, "secret-file=" + file}, "\n"),
		Addr: listen,
		Ready: func(ctx context.Context) error {
			return standin.Ready(ctx, listen, secret)
		},
	}, nil
}

// CheckRegistry tells what serves at addr, the stand-in registry address
// of home: nil when it is home's own stand-in registry (it proves it holds
// the secret), an error wrapping standin.ErrForeignRegistry for another
// HTTP server, another error when nothing answers within timeout.
func CheckRegistry(ctx context.Context, home paths.Home, addr string, timeout time.Duration) error {
	secret, err := standin.LoadSecret(secretFile(home))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return standin.Ready(ctx, addr, secret)
}

// layoutGeneration identifies an OCI layout's current contents: the
// digest of its index.
func layoutGeneration(layoutDir string) string {
	data, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	if err != nil {
		return "none"
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// HaveStandIns reports whether stand-in images have been built in home.
func HaveStandIns(home paths.Home) bool {
	data, err := os.ReadFile(filepath.Join(home.StandIns(), "index.json"))
	return err == nil && strings.Contains(string(data), "manifests")
}

// Addrs returns the daemon addresses given: each value may itself be a
// comma-separated list. With none, BUILDKIT_HOST is read the same way.
// Empty: minikit's private daemon. Duplicates are dropped.
func Addrs(values []string) []string {
	if len(values) == 0 {
		if env := os.Getenv("BUILDKIT_HOST"); env != "" {
			values = []string{env}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, a := range strings.Split(v, ",") {
			a = strings.TrimSpace(a)
			if a != "" && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// OpenAll connects to every address in addrs, concurrently, as Open does
// to one, with the same TLS settings for all (o.Addr is ignored; no
// address opens what Open opens without one). It returns the daemons that
// answer, in the order given, and tells o.Log about those that do not; it
// fails only when none answers, with every address's error.
func OpenAll(ctx context.Context, o Options, addrs []string) ([]*Conn, error) {
	if len(addrs) <= 1 {
		o.Addr = ""
		if len(addrs) == 1 {
			o.Addr = addrs[0]
		}
		c, err := Open(ctx, o)
		if err != nil {
			return nil, err
		}
		return []*Conn{c}, nil
	}
	conns := make([]*Conn, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			oi := o
			oi.Addr = a
			conns[i], errs[i] = Open(ctx, oi)
		})
	}
	wg.Wait()
	var out []*Conn
	for i, c := range conns {
		if errs[i] != nil {
			if o.Log != nil {
				fmt.Fprintf(o.Log, "leaving out %s: %v\n", addrs[i], errs[i])
			}
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of %d daemons answers: %w", ErrUnreachable, len(addrs), errors.Join(errs...))
	}
	return out, nil
}
