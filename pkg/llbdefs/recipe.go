package llbdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is the platform recipes are built for unless Sources.Platform
// says otherwise: linux/amd64.
func Platform() ocispecs.Platform {
	return ocispecs.Platform{OS: "linux", Architecture: "amd64"}
}

// Outcome is what happens when a recipe's image runs, as the original
// experiment recorded it: a Docker exit code, or a build failure.
type Outcome string

const (
	Works       Outcome = "0"     // the program prints its line and exits 0
	Fails       Outcome = "1"     // the program starts and fails
	CannotStart Outcome = "127"   // no loader, library or shell to start it
	BuildFails  Outcome = "build" // the image cannot be built
)

// Reproducible says whether a recipe can be built with no internet, on
// stand-in base images assembled from Debian packages.
type Reproducible string

const (
	Offline Reproducible = "yes"     // every base has a faithful stand-in
	Partial Reproducible = "partial" // built and run on a stand-in that differs from upstream in one stated respect (Recipe.Offline)
	Online  Reproducible = "no"      // upstream only: needs what no Debian suite packages (Recipe.Offline says what)
)

// Cmd is an image's CMD, in exec or shell form.
type Cmd struct {
	Args  []string
	Shell bool // Args[0] is a command line run through /bin/sh -c
}

// Exec is an exec-form CMD: the program runs directly.
func Exec(args ...string) Cmd { return Cmd{Args: args} }

// Shell is a shell-form CMD: it needs /bin/sh in the image.
func Shell(line string) Cmd { return Cmd{Args: []string{line}, Shell: true} }

// Config is the CMD as stored in an image config.
func (c Cmd) Config() []string {
	if c.Shell {
		return []string{"/bin/sh", "-c", strings.Join(c.Args, " ")}
	}
	return append([]string(nil), c.Args...)
}

func (c Cmd) String() string {
	if c.Shell {
		return strings.Join(c.Args, " ")
	}
	return fmt.Sprintf("%q", c.Args)
}

// A Recipe is one build/run combination of the matrix.
type Recipe struct {
	Name    string  // PROGRAM.BUILD[.RUN], as in the seed matrix
	Final   Stage   // the stage exported as the image
	Cmd     Cmd     // the image's CMD
	Expect  Outcome // what the original experiment observed
	StandIn Reproducible
	Why     string // why the outcome is what it is
	Note    string // how this differs from the original (mapped tags, stand-ins)
	Network bool   // the program needs the network when it runs
	Extra   bool   // beyond the 51 seed rows (see Extras)

	// Offline is, for a Partial recipe, the one respect in which its
	// stand-in differs from the upstream image; for an Online one, why it
	// cannot be reproduced offline (which musl-native toolchain, apk index
	// or GraalVM is missing). Empty for an Offline recipe.
	Offline string
}

// BuildsOffline reports whether the recipe is built and run on the
// stand-ins: every recipe but the upstream-only (Online) ones.
func (r Recipe) BuildsOffline() bool { return r.StandIn != Online }

// Program is the sample the recipe builds: the name up to the first dot.
func (r Recipe) Program() string {
	p, _, _ := strings.Cut(r.Name, ".")
	return p
}

// ExpectBuildFailure reports whether the recipe is kept to show a build
// that fails.
func (r Recipe) ExpectBuildFailure() bool { return r.Expect == BuildFails }

// Stages lists every stage of the recipe, each once, the stages copied
// from before the stages that copy them; the final stage is last.
func (r Recipe) Stages() []Stage {
	var out []Stage
	seen := map[string]bool{}
	var walk func(s Stage)
	walk = func(s Stage) {
		for _, d := range s.deps() {
			walk(d)
		}
		if k := s.key(); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	walk(r.Final)
	return out
}

// SingleStage reports whether the image is built where it runs.
func (r Recipe) SingleStage() bool { return len(r.Final.deps()) == 0 }

// BuildImage is the image the program is compiled (or prepared) in.
func (r Recipe) BuildImage() string { return r.buildStage().from }

// buildStage is the first stage that does something: an image that is only
// copied from (COPY --from=alpine /etc/ssl) is no build stage.
func (r Recipe) buildStage() Stage {
	stages := r.Stages()
	for _, s := range stages {
		if len(s.steps) > 0 {
			return s
		}
	}
	return stages[0]
}

// RunImage is the final stage's base image; "" is scratch.
func (r Recipe) RunImage() string { return r.Final.from }

// Images lists every image the recipe pulls, each once.
func (r Recipe) Images() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.Stages() {
		if s.from != "" && !seen[s.from] {
			seen[s.from] = true
			out = append(out, s.from)
		}
	}
	return out
}

// State compiles the recipe's final stage to LLB.
func (r Recipe) State(src Sources) llb.State { return r.Final.State(src) }

// Validate reports every step of the recipe's stages that cannot be
// compiled (a port that does not parse, a mode out of range, a Raw step
// with no function), naming the recipe and the stage.
func (r Recipe) Validate() error {
	var errs []error
	for _, s := range r.Stages() {
		for _, st := range s.steps {
			if err := st.check(); err != nil {
				errs = append(errs, fmt.Errorf("stage %s: %w", s.label(), err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	return nil
}

// Definition validates the recipe and marshals it for src's platform.
func (r Recipe) Definition(ctx context.Context, src Sources) (*llb.Definition, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	def, err := r.State(src).Marshal(ctx, llb.Platform(src.platform()))
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", r.Name, err)
	}
	return def, nil
}

func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
