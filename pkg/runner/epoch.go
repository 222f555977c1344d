package runner

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	commonexptypes "github.com/moby/buildkit/exporter/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// SourceDateEpoch makes the exported images reproducible (the
// SOURCE_DATE_EPOCH convention) without a pass over their layers:
//   - each target's LLB function gets t as BuildInput.Epoch, to date what
//     its final stage creates (llbdefs dates its COPY and WORKDIR steps'
//     files with it), so a target whose final stage only copies (a
//     binary onto scratch, alpine, distroless...) adds layers whose file
//     times are t, and those layers are cached like any step;
//   - BuildKit's image and OCI exporters get source-date-epoch=t, which
//     dates the config's created time and its history.
//
// Files that a RUN step of the final stage writes keep the build's clock:
// RewriteTimestamp clamps them too, at a price on every export.
// Unix time 0 is allowed.
func SourceDateEpoch(t time.Time) Option {
	return func(c *config) error {
		if t.IsZero() || t.Unix() < 0 {
			return fmt.Errorf("source date epoch %v: want a time from 1970 on", t)
		}
		u := t.UTC().Truncate(time.Second)
		c.epoch = &u
		return nil
	}
}

// RewriteTimestamp, with SourceDateEpoch, also has the exporters rewrite
// every file time later than the epoch in the layers a target adds
// (BuildKit's rewrite-timestamp=true): the images of recipes whose final
// stage runs commands become reproducible too, when those commands are.
// BuildKit does not keep a rewritten layer, so every export decompresses,
// rewrites and compresses those layers again, cached or not: a warm solve
// --all took about 5 s with it against 0.5 s without (stand-ins, 2-core
// machine). The run image's layers are never rewritten (markBaseLayers).
func RewriteTimestamp(on bool) Option {
	return func(c *config) error {
		c.rewriteTimestamp = on
		return nil
	}
}

// stampEpoch adds the epoch attributes to the exporters, when set.
func (c *config) stampEpoch(entries []client.ExportEntry) {
	if c.epoch == nil {
		return
	}
	for i := range entries {
		if entries[i].Attrs == nil {
			entries[i].Attrs = map[string]string{}
		}
		entries[i].Attrs[string(commonexptypes.OptKeySourceDateEpoch)] = strconv.FormatInt(c.epoch.Unix(), 10)
		if c.rewriteTimestamp {
			entries[i].Attrs[string(exptypes.OptKeyRewriteTimestamp)] = "true"
		}
	}
}

// markBaseLayers tells the exporters which layers of the result are the
// run image's, as the Dockerfile frontend does (containerimage.base.config):
// with rewrite-timestamp, BuildKit v0.34.2 rewrites a layer only from the
// first one whose diff ID differs from the base config's
// (exporter/containerimage/writer.go, rewriteRemoteWithEpoch), and keeps
// the base's history entries as they are. Without it every export
// decompresses, rewrites and compresses again every layer of the image,
// the base's included, since the rewritten blob is not remembered. A
// scratch run image (no layers) adds nothing. key is the platform's key
// in a multi-platform result (platformKey), "" for a single image.
func markBaseLayers(out *gateway.Result, base ocispecs.Image, key string) error {
	if len(base.RootFS.DiffIDs) == 0 {
		return nil
	}
	dt, err := json.Marshal(base)
	if err != nil {
		return fmt.Errorf("base image config: %w", err)
	}
	k := exptypes.ExporterImageBaseConfigKey
	if key != "" {
		k += "/" + key
	}
	out.AddMeta(k, dt)
	return nil
}
