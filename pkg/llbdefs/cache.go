package llbdefs

import (
	"github.com/moby/buildkit/client/llb"
)

// Shared compiler caches (Sources.CompilerCache).
//
// The Go recipes compile the same standard library again and again: every
// golang and golang-alpine build stage is a separate LLB vertex (another
// program, another working directory, cgo on or off), and each starts
// with an empty GOCACHE. With CompilerCache on, the RUN steps of a Go
// build stage mount one persistent BuildKit cache directory, shared by
// every recipe of the solve (and by later solves on the same daemon), at
// GOCACHE's default place, so a package compiled once is reused.
//
// Only stages that are NOT the recipe's final stage get the mount. A cache
// mount keeps its files out of the stage's layers; a multi-stage recipe
// copies only its program out of the build stage, so its image is the
// same file for file (a Go binary does not depend on whether its packages
// came from the cache: the build is reproducible and its build ID is a
// hash of the inputs). The single-stage golang images (hello-go.golang,
// whatsmyip.golang) keep /root/.cache/go-build in their layer; their
// final stage is compiled as without the option, so they do not change
// either.
//
// The mount is locked (llb.CacheMountLocked): Go builds that share it run
// one after the other. Each go build uses every CPU by itself, and a
// build that waits for the lock then finds the packages the previous one
// compiled; with a concurrently shared mount, builds that start together
// all miss the cache and compile the same packages at once.
const (
	// GoBuildCache is where the golang images keep Go's build cache
	// (GOCACHE's default, $HOME/.cache/go-build, HOME being /root).
	GoBuildCache = "/root/.cache/go-build"
	// GoBuildCacheID names the shared cache mount in BuildKit.
	GoBuildCacheID = "minikit-go-build"
)

// goImages are the base images whose RUN steps compile Go.
var goImages = map[string]bool{Golang: true, GolangAlpine: true, Golang127: true}

// buildStage returns src for compiling a stage that another stage copies
// from: a stage that is not the image.
func (src Sources) buildStage() Sources {
	src.notFinal = true
	return src
}

// compilerCacheMounts returns the extra RUN options of a step in stage s
// compiled with src: the shared Go build cache in a Go build stage that
// is not the final one, when asked for; nothing otherwise.
func (src Sources) compilerCacheMounts(s Stage) []llb.RunOption {
	if !src.CompilerCache || !src.notFinal || !goImages[s.from] {
		return nil
	}
	return []llb.RunOption{llb.AddMount(GoBuildCache, llb.Scratch(),
		llb.AsPersistentCacheDir(GoBuildCacheID, llb.CacheMountLocked))}
}
