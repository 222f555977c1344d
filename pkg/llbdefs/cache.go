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
// build stage mount one persistent BuildKit cache directory at GOCACHE's
// default place, shared by every recipe of the solve (and by later solves
// on the same daemon), so a package compiled once is reused.
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
// Filled once, then read. The single-stage whatsmyip.golang compiles,
// from an empty cache and into its own layer, every package the other Go
// recipes need (whatsmyip's net/http includes hello's fmt). When a solve
// builds it (Sources.goSeed, set by Targets), the cache mount of the
// 1.26 build stages starts from that image's /root/.cache/go-build (a
// BuildKit cache mount with a source: a copy-on-write snapshot, not a
// copy): they wait for that one compile and then only link, or compile
// what differs (cgo off, musl's C compiler on alpine; Go's cache keys
// hold the toolchain, GOOS/GOARCH and the cgo configuration). golang and
// golang:alpine can share it: the two images carry the same Go 1.26
// toolchain layer (the same GOROOT, /usr/local/go, the same go, compile
// and link binaries, checked on the stand-ins), so their entries for
// pure Go packages are the same. The seeded mount is shared, not locked:
// what is left to compile differs from one build to the next. Without the
// seed (whatsmyip.golang not in the solve, or the Go 1.27 stages), the
// mount starts empty and is locked (llb.CacheMountLocked): Go builds that
// share it run one after the other, each using every CPU by itself, and a
// build that waits for the lock finds the packages the previous one
// compiled; with a concurrently shared empty mount, builds that start
// together would all miss and compile the same packages at once.
const (
	// GoBuildCache is where the golang images keep Go's build cache
	// (GOCACHE's default, $HOME/.cache/go-build, HOME being /root).
	GoBuildCache = "/root/.cache/go-build"
	// GoBuildCacheID names the shared cache mount in BuildKit.
	GoBuildCacheID = "minikit-go-build"
	// GoCacheSeed is the recipe whose image's Go build cache seeds the
	// shared one (see above).
	GoCacheSeed = "whatsmyip.golang"
)

// goImages are the base images whose RUN steps compile Go.
var goImages = map[string]bool{Golang: true, GolangAlpine: true, Golang127: true}

// seededImages are the Go images whose toolchain is the seed's.
var seededImages = map[string]bool{Golang: true, GolangAlpine: true}

// buildStage returns src for compiling a stage that another stage copies
// from: a stage that is not the image.
func (src Sources) buildStage() Sources {
	src.notFinal = true
	return src
}

// CompilerCacheSeed, on by default, seeds the shared Go build cache
// (CompilerCache) from whatsmyip.golang's image when the recipes include
// it (see above); off, the cache starts empty, locked, filled by
// whichever build gets it first. The images are the same either way.
func CompilerCacheSeed(on bool) TargetOption {
	return func(c *targetConfig) error {
		c.noSeed = !on
		return nil
	}
}

// compilerCacheSeed returns the stage whose Go build cache seeds the
// shared one, when recipes build it with the compiler cache on, else nil.
func compilerCacheSeed(recipes []Recipe) *Stage {
	for _, r := range recipes {
		if r.Name == GoCacheSeed && seededImages[r.Final.from] {
			s := r.Final
			return &s
		}
	}
	return nil
}

// compilerCacheMounts returns the extra RUN options of a step in stage s
// compiled with src: the shared Go build cache in a Go build stage that
// is not the final one, when asked for; nothing otherwise.
func (src Sources) compilerCacheMounts(s Stage) []llb.RunOption {
	if !src.CompilerCache || !src.notFinal || !goImages[s.from] {
		return nil
	}
	if src.goSeed != nil && seededImages[s.from] {
		// The seed as its own recipe compiles it, so that the two are one
		// vertex in BuildKit: compiled once for both.
		final := src
		final.notFinal, final.goSeed = false, nil
		seed := src.goSeed.State(final)
		return []llb.RunOption{llb.AddMount(GoBuildCache, seed, llb.SourcePath(GoBuildCache),
			llb.AsPersistentCacheDir(GoBuildCacheID, llb.CacheMountShared))}
	}
	return []llb.RunOption{llb.AddMount(GoBuildCache, llb.Scratch(),
		llb.AsPersistentCacheDir(GoBuildCacheID, llb.CacheMountLocked))}
}
