package runner

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
)

// An honest cold build, as buildx's --no-cache and --pull.
//
// NoCache marshals every target's graph with llb.IgnoreCache, which sets
// ignore-cache on every vertex (what the Dockerfile frontend does for
// no-cache): BuildKit runs every step again, though the steps that
// several targets of the run share are still run once (BuildKit merges
// ignore-cache vertices of one digest). Pull re-resolves every base
// image in the registry: its config is resolved with ResolveModeForcePull,
// and every docker-image source of the graph gets resolve mode "pull"
// (as llb.Image with llb.ResolveModeForcePull would), whatever the
// target's LLB function set.

// marshal returns st's definition for platform p, as the run's options
// have it: ignore-cache on every vertex with NoCache, every image pulled
// with Pull.
func (c *config) marshal(ctx context.Context, st llb.State, p ocispecs.Platform) (*llb.Definition, error) {
	co := []llb.ConstraintsOpt{llb.Platform(p)}
	if c.noCache {
		co = append(co, llb.IgnoreCache)
	}
	def, err := st.Marshal(ctx, co...)
	if err != nil || !c.pull {
		return def, err
	}
	return forcePull(def)
}

// resolveMode is the mode base images' configs are resolved with: mode
// as asked, or force-pull with Pull.
func (c *config) resolveMode(mode string) string {
	if c != nil && c.pull {
		return llb.ResolveModeForcePull.String()
	}
	return mode
}

// forcePull returns def with every docker-image source set to resolve
// mode "pull". A source changed has a new digest, so every vertex above
// it is rewritten to point at it (Def is in dependency order: a vertex
// comes after its inputs), and the metadata and source locations follow
// the new digests. Vertices that change neither keep their bytes.
func forcePull(def *llb.Definition) (*llb.Definition, error) {
	renamed := map[string]string{} // old digest -> new
	out := &llb.Definition{
		Def:         make([][]byte, 0, len(def.Def)),
		Metadata:    make(map[digest.Digest]llb.OpMetadata, len(def.Metadata)),
		Constraints: def.Constraints,
	}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, fmt.Errorf("force pull: read a vertex: %w", err)
		}
		changed := false
		for _, in := range op.Inputs {
			if n, ok := renamed[in.Digest]; ok {
				in.Digest, changed = n, true
			}
		}
		if src := op.GetSource(); src != nil && strings.HasPrefix(src.Identifier, "docker-image://") &&
			src.Attrs[pb.AttrImageResolveMode] != pb.AttrImageResolveModeForcePull {
			if src.Attrs == nil {
				src.Attrs = map[string]string{}
			}
			src.Attrs[pb.AttrImageResolveMode] = pb.AttrImageResolveModeForcePull
			changed = true
		}
		if changed {
			ndt, err := proto.MarshalOptions{Deterministic: true}.Marshal(&op)
			if err != nil {
				return nil, fmt.Errorf("force pull: write a vertex: %w", err)
			}
			renamed[digest.FromBytes(dt).String()] = digest.FromBytes(ndt).String()
			dt = ndt
		}
		out.Def = append(out.Def, dt)
	}
	for d, md := range def.Metadata {
		if n, ok := renamed[d.String()]; ok {
			d = digest.Digest(n)
		}
		out.Metadata[d] = md
	}
	if def.Source != nil {
		src := &pb.Source{Infos: def.Source.Infos, Locations: make(map[string]*pb.Locations, len(def.Source.Locations))}
		for d, l := range maps.All(def.Source.Locations) {
			if n, ok := renamed[d]; ok {
				d = n
			}
			src.Locations[d] = l
		}
		out.Source = src
	}
	return out, nil
}
