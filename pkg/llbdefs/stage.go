package llbdefs

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
)

// A Stage is one stage of a multi-stage build: a base image (or scratch)
// and the steps applied to it, in order, with a Dockerfile's meaning.
// Stages are values: every method returns a new Stage and leaves its
// receiver alone, so a build stage is declared once and shared by every
// run stage that copies from it (its LLB vertices then have the same
// digests in every recipe, and BuildKit solves them once).
type Stage struct {
	from  string // image reference; "" is scratch
	steps []step
}

type stepKind int

const (
	stepCopy stepKind = iota
	stepRun
	stepEnv
	stepWorkdir
)

type step struct {
	kind stepKind
	from *Stage // stepCopy: the stage copied from; nil copies from the samples
	args []string
}

// From starts a stage on an image.
func From(image string) Stage { return Stage{from: image} }

// Scratch starts a stage on an empty filesystem.
func Scratch() Stage { return Stage{} }

func (s Stage) with(st step) Stage {
	return Stage{from: s.from, steps: append(slices.Clip(s.steps), st)}
}

// Copy copies a file or directory from the samples into the stage. A
// relative dst is relative to the working directory, as in a Dockerfile.
func (s Stage) Copy(src, dst string) Stage {
	return s.with(step{kind: stepCopy, args: []string{src, dst}})
}

// CopyFrom copies from another stage (COPY --from). Like Docker, src is
// taken from the root of that stage whatever its working directory.
func (s Stage) CopyFrom(from Stage, src, dst string) Stage {
	return s.with(step{kind: stepCopy, from: &from, args: []string{src, dst}})
}

// Run runs a shell command (RUN in shell form: /bin/sh -c).
func (s Stage) Run(command string) Stage {
	return s.with(step{kind: stepRun, args: []string{command}})
}

// Env sets an environment variable for the following steps and, in a
// final stage, in the image config.
func (s Stage) Env(key, value string) Stage {
	return s.with(step{kind: stepEnv, args: []string{key, value}})
}

// Workdir sets (and creates) the working directory.
func (s Stage) Workdir(dir string) Stage {
	return s.with(step{kind: stepWorkdir, args: []string{dir}})
}

// Image is the stage's base image reference, "" for scratch.
func (s Stage) Image() string { return s.from }

// deps lists the stages s copies from, in order of first use.
func (s Stage) deps() []Stage {
	var out []Stage
	for _, st := range s.steps {
		if st.from != nil {
			out = append(out, *st.from)
		}
	}
	return out
}

// Sources is what a stage is compiled against.
type Sources struct {
	// Samples is the directory of sample programs, as an LLB source.
	Samples llb.State
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

// SamplesName is the name of the local source holding the samples; a
// solver must provide a directory under this name.
const SamplesName = "samples"

// DefaultSources compiles without an image resolver (see Sources).
func DefaultSources() Sources {
	return Sources{Samples: SamplesSource()}
}

// SamplesSource is the local source every recipe copies its program from.
func SamplesSource() llb.State {
	return llb.Local(SamplesName, llb.SharedKeyHint(SamplesName),
		llb.LocalUniqueID("minikit-"+SamplesName), llb.WithCustomName("samples"))
}

// State compiles the stage to an LLB state.
func (s Stage) State(src Sources) llb.State {
	st := llb.Scratch().Platform(Platform())
	if s.from != "" {
		opts := []llb.ImageOption{llb.Platform(Platform())}
		if src.Resolver != nil {
			opts = append(opts, llb.WithMetaResolver(src.Resolver))
		}
		st = llb.Image(s.from, opts...)
	}
	label := "[" + s.label() + "] "
	for _, x := range s.steps {
		switch x.kind {
		case stepRun:
			ro := []llb.RunOption{llb.Args([]string{"/bin/sh", "-c", x.args[0]}),
				llb.WithCustomName(label + "RUN " + x.args[0])}
			ro = append(ro, src.compilerCacheMounts(s)...) // cache.go
			st = st.Run(ro...).Root()
		case stepEnv:
			st = st.AddEnv(x.args[0], x.args[1])
		case stepWorkdir:
			st = st.Dir(x.args[0])
			dir := x.args[0]
			if !path.IsAbs(dir) {
				dir = path.Join("/", dir)
			}
			mo := []llb.MkdirOption{llb.WithParents(true)}
			if t := src.finalEpoch(); t != nil {
				mo = append(mo, llb.WithCreatedTime(*t))
			}
			st = st.File(llb.Mkdir(dir, 0o755, mo...),
				llb.WithCustomName(label+"WORKDIR "+x.args[0]))
		case stepCopy:
			from, srcPath, name := src.Samples, x.args[0], "COPY "
			if x.from != nil {
				from = x.from.State(src.buildStage()) // cache.go: not the final stage
				srcPath = path.Join("/", srcPath)
				name = "COPY --from=" + x.from.label() + " "
			}
			st = st.File(llb.Copy(from, srcPath, x.args[1], &llb.CopyInfo{
				FollowSymlinks:      true,
				CopyDirContentsOnly: true,
				CreateDestPath:      true,
				AllowWildcard:       true,
				AllowEmptyWildcard:  true,
				CreatedTime:         src.finalEpoch(),
			}), llb.WithCustomName(label+name+x.args[0]+" "+x.args[1]))
		}
	}
	return st
}

// label names the stage in progress output: its image without registry.
func (s Stage) label() string {
	if s.from == "" {
		return "scratch"
	}
	return ShortRef(s.from)
}

// ShortRef drops the docker.io/library/ prefix from an image reference.
func ShortRef(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}
