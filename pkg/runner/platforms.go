package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatforms reads a comma-separated list of platforms, as buildx's
// --platform takes it: each os/arch[/variant] (linux/amd64,
// linux/arm64, linux/arm/v7), normalized as BuildKit does
// (linux/aarch64 is linux/arm64), in the order given. An empty item, a
// platform without an OS or an architecture, and one given twice are
// errors.
func ParsePlatforms(list string) ([]ocispecs.Platform, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no platform given; want os/arch[/variant], such as linux/arm64")
	}
	var out []ocispecs.Platform
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q: an empty platform in the list", list)
		}
		if !strings.Contains(item, "/") {
			return nil, fmt.Errorf("platform %q: want os/arch[/variant], such as linux/%s", item, item)
		}
		p, err := platforms.Parse(item)
		if err != nil {
			return nil, fmt.Errorf("platform %q: want os/arch[/variant], such as linux/arm64: %w", item, err)
		}
		p = platforms.Normalize(p)
		if p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want an OS and an architecture, such as linux/arm64", item)
		}
		out = append(out, p)
	}
	if err := checkPlatforms(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkPlatforms refuses a platform without an OS or an architecture,
// and one given twice (linux/arm64 and linux/arm64/v8 are one platform).
func checkPlatforms(ps []ocispecs.Platform) error {
	seen := map[string]string{}
	for _, p := range ps {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q: want an OS and an architecture", formatPlatform(p))
		}
		key := platformKey(p)
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("platform %s given twice (as %s)", formatPlatform(p), prev)
		}
		seen[key] = formatPlatform(p)
	}
	return nil
}

// platformKey is p's key in a multi-platform result (its refs, its
// platform-specific metadata, exptypes.Platforms), as BuildKit's
// Dockerfile frontend names it: the normalized platform, formatted with
// its OS version and features.
func platformKey(p ocispecs.Platform) string {
	return platforms.FormatAll(platforms.Normalize(p))
}

// platformList is ps as a frontend's "platform" attribute takes them:
// their keys, comma-separated.
func platformList(ps []ocispecs.Platform) string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = platformKey(p)
	}
	return strings.Join(keys, ",")
}

// A platformImage is one platform's image of a build: its root
// filesystem, its config and its Base's config.
type platformImage struct {
	platform ocispecs.Platform
	ref      gateway.Reference
	config   ocispecs.Image
	base     ocispecs.Image
}

// imageResult is the build function's result for the images made, one
// per platform: with one, a single ref and its config, as a
// single-platform build returns; with several, a ref per platform key
// and the platforms listed (exptypes.ExporterPlatformsKey), as
// BuildKit's Dockerfile frontend returns for several platforms, so that
// the image exporter writes one image index.
func imageResult(images []platformImage) (*gateway.Result, error) {
	out := gateway.NewResult()
	if len(images) == 1 {
		im := images[0]
		cfg, err := json.Marshal(im.config)
		if err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
		out.SetRef(im.ref)
		out.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		if err := markBaseLayers(out, im.base, ""); err != nil { // epoch.go
			return nil, err
		}
		return out, nil
	}
	exp := exptypes.Platforms{Platforms: make([]exptypes.Platform, len(images))}
	for i, im := range images {
		key := platformKey(im.platform)
		cfg, err := json.Marshal(im.config)
		if err != nil {
			return nil, fmt.Errorf("image config for %s: %w", formatPlatform(im.platform), err)
		}
		out.AddRef(key, im.ref)
		out.AddMeta(exptypes.ExporterImageConfigKey+"/"+key, cfg)
		if err := markBaseLayers(out, im.base, key); err != nil {
			return nil, fmt.Errorf("%s: %w", formatPlatform(im.platform), err)
		}
		exp.Platforms[i] = exptypes.Platform{ID: key, Platform: im.platform}
	}
	dt, err := json.Marshal(exp)
	if err != nil {
		return nil, fmt.Errorf("the platforms of the image index: %w", err)
	}
	out.AddMeta(exptypes.ExporterPlatformsKey, dt)
	return out, nil
}

// eachPlatform calls fn for 0..n-1 at once and waits for them: the
// first failure (in platform order, among those not caused by another's)
// is the error, and cancels the context the others were given. With
// several platforms the error names the platform.
func eachPlatform(ctx context.Context, ps []ocispecs.Platform, fn func(ctx context.Context, i int) error) error {
	if len(ps) == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				errs[i] = fmt.Errorf("%s: %w", formatPlatform(ps[i]), err)
				cancel(errs[i])
			}
		})
	}
	wg.Wait()
	first := context.Cause(ctx)
	for _, err := range errs {
		if err != nil && err == first {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// splitPlatforms turns a target's Result into its Results, one per
// platform when it was built for several (Result.Platform set, the
// platform's image, run and bases; the build's outcome, digest and
// timings shared), else res itself. A result that never got as far as a
// build (canceled, a builder lost) is the same for each platform.
func splitPlatforms(res Result, ps []ocispecs.Platform) []Result {
	if len(ps) < 2 {
		return []Result{res}
	}
	out := make([]Result, len(ps))
	for i, p := range ps {
		r := res
		r.platformResults = nil
		r.Image, r.Run, r.Bases = nil, nil, nil
		if i < len(res.platformResults) {
			pr := res.platformResults[i]
			r.Image, r.Run, r.Bases = pr.Image, pr.Run, pr.Bases
		}
		r.Platform = formatPlatform(p)
		out[i] = r
	}
	return out
}

// targetPlatforms is what t is built for when that does not depend on
// the builder: its own Platforms, else the run's; nil means each
// builder's own (one platform).
func (c *config) targetPlatforms(t Target) []ocispecs.Platform {
	if len(t.Platforms) > 0 {
		return t.Platforms
	}
	return c.platforms
}
