package main

import (
	"context"
	"flag"
	"strings"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/runner"
)

// progressModes are --progress's values, as buildx has them.
const progressModes = "auto, tty, plain, quiet, rawjson"

// builderFlags are the flags of every command that talks to a builder,
// defined once (addBuilderFlags) so that they read the same everywhere:
// --addr (repeatable, or a comma list), the TLS flags of a tcp://
// buildkitd, and --progress (buildx's modes and default, auto).
type builderFlags struct {
	addrs    multiFlag
	tls      connect.TLS
	progress string
	// multi: the command spreads its work over several builders.
	multi bool
}

// addBuilderFlags defines the builder flags on fs; multi says whether the
// command uses every --addr given (else one at most is allowed).
func addBuilderFlags(fs *flag.FlagSet, multi bool) *builderFlags {
	b := &builderFlags{multi: multi}
	what := "buildkitd `ADDRESS` (unix://, tcp://, docker-container://NAME, ...); default $BUILDKIT_HOST (same syntax), else minikit's private daemon"
	if multi {
		what += "; repeatable or a comma list: the work is spread over the daemons, those sharing a build stage on one, " +
			"and a daemon lost mid-run has its share retried on the others"
	} else {
		what += "; one only"
	}
	fs.Var(&b.addrs, "addr", what)
	fs.StringVar(&b.tls.CACert, "tlscacert", "", "CA certificate of a tcp:// buildkitd, a PEM `FILE` (default $"+connect.EnvTLSCACert+")")
	fs.StringVar(&b.tls.Cert, "tlscert", "", "client certificate for a tcp:// buildkitd, a PEM `FILE` (default $"+connect.EnvTLSCert+")")
	fs.StringVar(&b.tls.Key, "tlskey", "", "client key for a tcp:// buildkitd, a PEM `FILE` (default $"+connect.EnvTLSKey+")")
	fs.StringVar(&b.tls.ServerName, "tlsservername", "", "`NAME` the buildkitd certificate must carry (default $"+connect.EnvTLSServerName+", else the address's host)")
	fs.StringVar(&b.progress, "progress", "auto", "build progress `MODE`: "+progressModes)
	return b
}

// check validates the flags once parsed: a usage error for an unknown
// --progress, or several addresses where the command uses one.
func (b *builderFlags) check() error {
	switch b.progress {
	case "auto", "tty", "plain", "quiet", "rawjson":
	default:
		return usagef("--progress must be one of %s, not %q", progressModes, b.progress)
	}
	if addrs := b.given(); !b.multi && len(addrs) > 1 {
		return usagef("--addr: this command uses one builder, not %d (%s)", len(addrs), strings.Join(addrs, ", "))
	}
	return nil
}

// given is the addresses of --addr, none when it was not given (connect
// then reads $BUILDKIT_HOST).
func (b *builderFlags) given() []string {
	if len(b.addrs) == 0 {
		return nil
	}
	return connect.Addrs(b.addrs)
}

// options are connect's options for these flags.
func (b *builderFlags) options(home paths.Home, a app) connect.Options {
	return connect.Options{Home: home, Log: a.stderr, TLS: b.tls}
}

// open connects to the one builder of a command that uses one.
func (b *builderFlags) open(ctx context.Context, home paths.Home, a app) (*connect.Conn, error) {
	o := b.options(home, a)
	if addrs := b.given(); len(addrs) > 0 {
		o.Addr = addrs[0]
	}
	return connect.Open(ctx, o)
}

// openAll connects to every builder given (the default one when none is).
func (b *builderFlags) openAll(ctx context.Context, home paths.Home, a app) (*builderSet, error) {
	conns, err := connect.OpenAll(ctx, b.options(home, a), connect.Addrs(b.addrs))
	if err != nil {
		return nil, err
	}
	s := &builderSet{conns: conns, first: conns[0]}
	for _, c := range conns {
		s.builders = append(s.builders, runner.Builder{Name: c.Addr, Client: c.Client})
		s.addrs = append(s.addrs, c.Addr)
	}
	return s, nil
}

// A builderSet is the builders a command spreads its work over.
type builderSet struct {
	conns    []*connect.Conn
	builders []runner.Builder // as the runner takes them
	addrs    []string
	// first is the private daemon, or the first address: whether the
	// run is on stand-ins is its.
	first *connect.Conn
}

// where names the builders, for messages and the report's machine.
func (s *builderSet) where() string { return strings.Join(s.addrs, ", ") }

// Close closes every connection.
func (s *builderSet) Close() {
	for _, c := range s.conns {
		c.Close()
	}
}

// runnerProgress is the runner option that shows the build's progress on
// stderr as --progress says.
func (b *builderFlags) runnerProgress(a app) runner.Option {
	return runner.Progress(a.stderr, b.progress)
}
