package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/entitlements"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// An ImageSource is an image built elsewhere that TestImage runs: a
// registry reference, which buildkitd pulls, or an image manifest of an
// OCI image layout directory on this machine, which buildkitd reads
// through the session (llb.OCILayout).
type ImageSource struct {
	// Ref is a registry reference (alpine:3.22, registry.example/app@sha256:...).
	Ref string
	// LayoutDir is an OCI image layout (oci-layout, index.json,
	// blobs/sha256/...), used when Ref is empty; Manifest is the digest of
	// the image manifest in it to run (not an index).
	LayoutDir string
	Manifest  digest.Digest
}

// ErrNotALayout is wrapped by TestImage's error when an ImageSource's
// LayoutDir does not hold its Manifest.
var ErrNotALayout = errors.New("not an OCI image layout holding the image manifest")

// layoutStoreID names the OCI layout store in TestImage's session;
// layoutRepo is the repository name the image's reference gets (the
// store is found by ID, the image by digest: the name only has to hold a
// '/', or BuildKit reads the digest as a port).
const (
	layoutStoreID = "minikit-image"
	layoutRepo    = "minikit/image"
)

// TestImage runs src's image for platform p inside buildkitd, as Test runs
// a target's (RunImage: its own Entrypoint and Cmd, or check.Args), and
// explains the outcome. product names the client to buildkitd ("" for
// BuildKit's own). An error means the image could not be obtained or no
// build could run; a run that fails is an outcome.
func TestImage(ctx context.Context, c *client.Client, src ImageSource, p ocispecs.Platform, check Check, o TestOptions, product string) (*RunOutcome, error) {
	auth, err := registryAuth()
	if err != nil {
		return nil, err
	}
	opt := client.SolveOpt{Session: []session.Attachable{auth}}
	if check.hostNetwork() {
		opt.AllowedEntitlements = []string{string(entitlements.EntitlementNetworkHost)}
	}
	var st llb.State
	var img *ocispecs.Image
	switch {
	case src.Ref != "":
		st = llb.Image(src.Ref, llb.Platform(p))
	case src.LayoutDir != "":
		store, err := contentlocal.NewStore(src.LayoutDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.LayoutDir, err)
		}
		if img, err = layoutConfig(ctx, store, src); err != nil {
			return nil, err
		}
		opt.OCIStores = map[string]content.Store{layoutStoreID: store}
		st = llb.OCILayout(layoutRepo+"@"+src.Manifest.String(), llb.OCIStore("", layoutStoreID), llb.Platform(p))
	default:
		return nil, errors.New("test an image: no reference and no layout directory")
	}
	var out *RunOutcome
	_, err = c.Build(ctx, opt, product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		if img == nil {
			_, _, raw, err := gw.ResolveImageConfig(ctx, src.Ref, sourceresolver.Opt{ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p}})
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", src.Ref, err)
			}
			img = &ocispecs.Image{}
			if err := json.Unmarshal(raw, img); err != nil {
				return nil, fmt.Errorf("%s: image config: %w", src.Ref, err)
			}
		}
		def, err := st.Marshal(ctx, llb.Platform(p))
		if err != nil {
			return nil, err
		}
		res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		out = RunImage(ctx, gw, ref, *img, p, check, o)
		return gateway.NewResult(), nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("running the image: %w", err)
	}
	return out, nil
}

// layoutConfig reads the config of src's manifest from the layout.
func layoutConfig(ctx context.Context, store content.Store, src ImageSource) (*ocispecs.Image, error) {
	if _, err := os.Stat(filepath.Join(src.LayoutDir, "index.json")); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", src.LayoutDir, ErrNotALayout, err)
	}
	read := func(d digest.Digest, v any) error {
		raw, err := content.ReadBlob(ctx, store, ocispecs.Descriptor{Digest: d})
		if err != nil {
			return fmt.Errorf("%s: %w: %s: %w", src.LayoutDir, ErrNotALayout, d, err)
		}
		return json.Unmarshal(raw, v)
	}
	var m ocispecs.Manifest
	if err := read(src.Manifest, &m); err != nil {
		return nil, err
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("%s: %s: %w (no config: an index?)", src.LayoutDir, src.Manifest, ErrNotALayout)
	}
	var img ocispecs.Image
	if err := read(m.Config.Digest, &img); err != nil {
		return nil, err
	}
	return &img, nil
}
