package llbdefs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// A Stage is one stage of a multi-stage build: a base image (or scratch)
// and the steps applied to it, in order, with a Dockerfile's meaning.
// Stages are values: every method returns a new Stage and leaves its
// receiver alone, so a build stage is declared once and shared by every
// run stage that copies from it (its LLB vertices then have the same
// digests in every recipe, and BuildKit solves them once).
//
// Each step is a value of its own type (steps.go) that compiles itself to
// LLB, changes the image config, names itself for de-duplication and
// writes its Dockerfile line.
type Stage struct {
	from  string // image reference; "" is scratch
	steps []step
}

// From starts a stage on an image.
func From(image string) Stage { return Stage{from: image} }

// Scratch starts a stage on an empty filesystem.
func Scratch() Stage { return Stage{} }

func (s Stage) with(st step) Stage {
	return Stage{from: s.from, steps: append(slices.Clip(s.steps), st)}
}

// Copy copies a file or directory from the context (Sources.Context)
// into the stage (COPY). A relative dst is relative to the working
// directory, as in a Dockerfile.
func (s Stage) Copy(src, dst string, opts ...CopyOption) Stage {
	return s.with(copyStep{src: src, dst: dst, opts: copyOptions(opts)})
}

// CopyFrom copies from another stage (COPY --from). Like Docker, src is
// taken from the root of that stage whatever its working directory.
func (s Stage) CopyFrom(from Stage, src, dst string, opts ...CopyOption) Stage {
	return s.with(copyFromStep{from: from, src: src, dst: dst, opts: copyOptions(opts)})
}

// Run runs a shell command (RUN in shell form: /bin/sh -c).
func (s Stage) Run(command string, opts ...RunOption) Stage {
	st := runStep{cmd: command}
	for _, o := range opts {
		if o != nil {
			o(&st)
		}
	}
	return s.with(st)
}

// Env sets an environment variable for the following steps and, in a
// final stage, in the image config (ENV).
func (s Stage) Env(key, value string) Stage {
	return s.with(envStep{name: key, value: value})
}

// Workdir sets (and creates) the working directory (WORKDIR). A relative
// dir is relative to the previous working directory.
func (s Stage) Workdir(dir string) Stage {
	return s.with(workdirStep{dir: dir})
}

// User sets the user (name or uid, optionally :group) the following RUN
// steps run as and, in a final stage, the image's user (USER).
func (s Stage) User(user string) Stage {
	return s.with(userStep{user: user})
}

// Entrypoint sets the image's entrypoint in exec form (ENTRYPOINT [...]):
// the recipe's Cmd becomes its arguments. With no args it clears the base
// image's entrypoint. Only a final stage's entrypoint counts.
func (s Stage) Entrypoint(args ...string) Stage {
	return s.with(entrypointStep{args: append([]string{}, args...)})
}

// Label sets an image label (LABEL key=value). Only a final stage's
// labels count.
func (s Stage) Label(key, value string) Stage {
	return s.with(labelStep{name: key, value: value})
}

// Expose records a port the image's program listens on (EXPOSE): "8080"
// (TCP), "8080/tcp", "53/udp" or "9/sctp". Only a final stage's ports
// count. A port that does not parse fails the recipe's Validate.
func (s Stage) Expose(port string) Stage {
	p, err := ParsePort(port)
	return s.with(exposeStep{raw: port, port: p, err: err})
}

// Arg declares a build argument (ARG name=default): its value, from
// Sources.BuildArgs or else def, is in the environment of the stage's
// following RUN steps, not in the image config.
func (s Stage) Arg(name, def string) Stage {
	return s.with(argStep{name: name, def: def})
}

// Raw applies fn to the stage's LLB state: the way out to raw LLB where
// the stage language stops. name identifies the step, in progress output
// and for de-duplication: two Raw steps of one name must do the same
// thing. A recipe holding a Raw step has no Dockerfile (RenderDockerfile
// fails naming it).
func (s Stage) Raw(name string, fn func(llb.State) llb.State) Stage {
	return s.with(rawStep{name: name, fn: fn})
}

// Image is the stage's base image reference, "" for scratch.
func (s Stage) Image() string { return s.from }

// deps lists the stages s copies from, in order of first use.
func (s Stage) deps() []Stage {
	var out []Stage
	for _, st := range s.steps {
		if d, ok := st.(dependent); ok {
			out = append(out, d.dependsOn()...)
		}
	}
	return out
}

// Sources is what a stage is compiled against.
type Sources struct {
	// Context is the local source the recipe's Copy steps read, as an LLB
	// state: the samples directory for the catalog (SamplesSource).
	Context llb.State
	// Platform is what the stages are compiled for; the zero value is
	// Platform(), linux/amd64. It is the platform of every base image and
	// of scratch.
	Platform ocispecs.Platform
	// BuildArgs are the values of the recipe's build arguments (Arg),
	// by name; an argument not in the map takes its default.
	BuildArgs map[string]string
	// Resolver, if set, resolves each base image's config so that RUN
	// steps get its Env and WorkingDir, as a Dockerfile FROM does. Without
	// it the graph still marshals (for inspection and tests) but a build
	// step relying on the image's PATH would not find its compiler.
	Resolver llb.ImageMetaResolver
	// CompilerCache mounts a shared Go build cache in the RUN steps of Go
	// build stages that are not the final stage (cache.go). The images do
	// not change; the build steps do less work.
	CompilerCache bool
	// Epoch, if set (SOURCE_DATE_EPOCH), dates what the final stage's
	// COPY and WORKDIR steps create: the files copied and the directories
	// made for them. A final stage without RUN steps then adds layers
	// whose file times are the epoch, not the build's clock, so its image
	// is reproducible with no rewriting of the layers at export. Only the
	// final stage: the build stages keep their cache keys when the epoch
	// moves.
	Epoch *time.Time

	notFinal bool // compiling a stage copied from (cache.go)

	// goSeed is the stage seeding the shared Go build cache (cache.go).
	goSeed *Stage
}

// finalEpoch is the time the step being compiled dates what it creates:
// the epoch in the final stage, nil (the build's clock) elsewhere.
func (src Sources) finalEpoch() *time.Time {
	if src.notFinal || src.Epoch == nil {
		return nil
	}
	t := src.Epoch.UTC()
	return &t
}

// platform is the platform compiled for: Platform, or linux/amd64.
func (src Sources) platform() ocispecs.Platform {
	if src.Platform.OS == "" && src.Platform.Architecture == "" {
		return Platform()
	}
	return src.Platform
}

// SamplesName is the name of the local source holding the samples; a
// solver must provide a directory under this name.
const SamplesName = "samples"

// DefaultSources compiles the catalog without an image resolver (see
// Sources): the samples as the context, for linux/amd64.
func DefaultSources() Sources {
	return Sources{Context: SamplesSource()}
}

// SamplesSource is the local source every catalog recipe copies its
// program from.
func SamplesSource() llb.State {
	return llb.Local(SamplesName, llb.SharedKeyHint(SamplesName),
		llb.LocalUniqueID("minikit-"+SamplesName), llb.WithCustomName("samples"))
}

// compiler is what a step is compiled with: the sources, the stage it is
// in, and what the stage's earlier steps set that later ones depend on.
type compiler struct {
	src   Sources
	stage Stage
	label string // progress-name prefix: "[golang:1.26-bookworm] "
	dir   string // the working directory when known ("" is the image's)
	user  string // set by a User step of this stage ("" none)
}

// State compiles the stage to an LLB state. A stage holding a step that
// does not validate (Recipe.Validate) compiles to a state whose Marshal
// fails with that step's error.
func (s Stage) State(src Sources) llb.State {
	plat := src.platform()
	st := llb.Scratch().Platform(plat)
	c := &compiler{src: src, stage: s, label: "[" + s.label() + "] ", dir: "/"}
	if s.from != "" {
		opts := []llb.ImageOption{llb.Platform(plat)}
		if src.Resolver != nil {
			opts = append(opts, llb.WithMetaResolver(src.Resolver))
		}
		st = llb.Image(s.from, opts...)
		c.dir = ""
	}
	for _, x := range s.steps {
		if err := x.check(); err != nil {
			return failed(st, fmt.Errorf("stage %s: %w", s.label(), err))
		}
		st = x.apply(st, c)
	}
	return st
}

// failed is a state whose Marshal returns err.
func failed(st llb.State, err error) llb.State {
	return st.Async(func(context.Context, llb.State, *llb.Constraints) (llb.State, error) {
		return llb.State{}, err
	})
}

// label names the stage in progress output: its image without registry.
func (s Stage) label() string {
	if s.from == "" {
		return "scratch"
	}
	return ShortRef(s.from)
}

// key identifies a stage by its content, for de-duplication.
func (s Stage) key() string {
	var b strings.Builder
	b.WriteString(s.from)
	for _, st := range s.steps {
		b.WriteString(st.key())
	}
	return b.String()
}

// ShortRef drops the docker.io/library/ prefix from an image reference.
func ShortRef(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}
