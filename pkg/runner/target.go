package runner

import (
	"context"
	"regexp"
	"time"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// A Target is one image the runner builds: any program, not only
// minikit's samples. It says how to get its LLB graph, which local
// directories the graph reads, what goes in the image config, and
// optionally the run the image must pass. Targets are values; the runner
// never changes one.
type Target struct {
	// Name identifies the target in a run and in its Result: unique within
	// a run, [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, so that it can be a tag
	// and a file name.
	Name string
	// Program is what the target builds (a sample's name, a directory's),
	// for image name templates ({program}); optional: Name stands in for
	// it when empty.
	Program string
	// Platforms are what the target is built for, in order; empty: the
	// runner's Platforms option, else the builder's own platform (its
	// first worker's first platform). The base images are resolved for
	// each, and the test run's container uses it. With two or more, the
	// image is an OCI image index, one manifest per platform, and the
	// target has one Result per platform (Result.Platform).
	Platforms []ocispecs.Platform

	// Base is the image the final stage starts from ("" is scratch): its
	// config is what Config is applied over, and its layers count as the
	// image's base layers (Measure, SourceDateEpoch).
	Base string
	// Images lists every image the graph pulls, Base included (the runner
	// adds it if it is missing): the runner resolves each once per run and
	// platform, before the graph is made, and reports them in
	// Result.Bases.
	Images []string
	// Sources are the local directories the graph reads (llb.Local with
	// the same name; give it llb.LocalUniqueID too, or each graph reading
	// it gets a vertex of its own, which SolveOn cannot group). Within one
	// run a name means one filesystem: two targets may share a Source
	// (the same FS value), not give one name two filesystems; that is a
	// setup error of Solve.
	Sources []Source
	// LLB returns the target's graph, given what the build knows once it
	// started (BuildInput). It is called once per build and platform, and once more,
	// without a resolver, by ScheduleItems when SolveOn spreads targets
	// over several builders; an error fails the target only.
	LLB func(ctx context.Context, in BuildInput) (llb.State, error)
	// Config is applied over Base's config (see ImageConfig).
	Config ImageConfig

	// ExpectBuildFailure marks a target kept to show a build that fails:
	// its failure is StatusExpectedFailure, its success
	// StatusUnexpectedSuccess.
	ExpectBuildFailure bool
	// Check is the run the image must pass with the Test option; nil: the
	// image is built only.
	Check *Check
}

// A Source is a local directory a target's graph reads by name: the FS
// is sent to buildkitd as it is (DirSource makes one of a directory, its
// files owned by root).
type Source struct {
	Name string
	FS   fsutil.FS
}

// BuildInput is what a target's LLB function is given.
type BuildInput struct {
	// Resolver resolves base images' configs through the build (each
	// image once per run): pass it to llb.Image with llb.WithMetaResolver
	// so that RUN steps get the image's Env and WorkingDir.
	Resolver llb.ImageMetaResolver
	// Platform is the platform this graph is for, resolved (never zero):
	// a target built for several platforms has its LLB function called
	// once for each.
	Platform ocispecs.Platform
	// Epoch is the SourceDateEpoch option's time, nil without it: what the
	// final stage creates can be dated with it.
	Epoch *time.Time
}

// ImageConfig is what a target sets in its image config, over its base
// image's, as `docker build` does (ImageConfig.Apply): Env entries
// replace the base's of the same key and add the others, Labels and
// ExposedPorts are added to the base's (a label of the same key
// replaced), and a non-empty WorkingDir (relative: to the base's) or
// User replaces the base's. A non-nil Entrypoint replaces the base's and
// resets its Cmd; a non-nil Cmd replaces it. A base that sets no PATH
// gets Docker's default PATH, appended, and scratch's WorkingDir is "/".
// The image's platform is the target's.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string // KEY=VALUE
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string // "8080/tcp", "53/udp"
}

// A Check is the run a target's image must pass: its process started as a
// container runtime would (Entrypoint and Cmd, or Args; the config's Env
// with Env added; its WorkingDir and User), and what it must do. The outcome is
// Result.Run: RunOutcome.Matches says whether it passed.
type Check struct {
	// Args, if set, replace the image's Cmd (as `docker run IMAGE ARGS`).
	Args []string
	// Env is added to the image's environment for the run.
	Env []string
	// Network runs the container on the host's network (the build then
	// asks for the network.host entitlement); without it the container
	// has no network but its own loopback.
	Network bool
	// ExpectExit is the exit code the process must end with (Docker's:
	// 127 when the executable, its loader or /bin/sh is missing).
	ExpectExit int
	// ExpectOutput, if set, must match the process's standard output
	// (its first MiB).
	ExpectOutput *regexp.Regexp
	// Probe, if set, checks a server instead: the container runs on the
	// host's network (as with Network), and the process must answer HTTP
	// on the port with a 2xx before Probe.Timeout; it is then killed and
	// its container released, and ExpectExit and ExpectOutput are not
	// checked. Probes of one run on the same port take turns.
	Probe *Probe
}

// A Probe polls a server started by a Check, from the runner's process,
// at http://127.0.0.1:PORT/PATH: the runner must run on buildkitd's host.
type Probe struct {
	Port    int           // TCP port the server listens on, 1 to 65535
	Path    string        // URL path asked for, "/" if empty
	Timeout time.Duration // how long to wait for a 2xx; 0 is DefaultProbeTimeout
}
