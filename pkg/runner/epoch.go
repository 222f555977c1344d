package runner

import (
	"fmt"
	"strconv"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	commonexptypes "github.com/moby/buildkit/exporter/exptypes"
)

// SourceDateEpoch makes every exported image reproducible (the
// SOURCE_DATE_EPOCH convention): BuildKit's image and OCI exporters get
// source-date-epoch=t, which clamps the config's created time and its
// history's, and rewrite-timestamp=true, which rewrites the layers' file
// times later than t to t. Two cold builds of a recipe whose build steps
// are themselves deterministic then give the same manifest digest.
func SourceDateEpoch(t time.Time) Option {
	return func(c *config) error {
		if t.IsZero() || t.Unix() < 0 {
			return fmt.Errorf("source date epoch %v: want a time after 1970", t)
		}
		u := t.UTC().Truncate(time.Second)
		c.epoch = &u
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
		entries[i].Attrs[string(exptypes.OptKeyRewriteTimestamp)] = "true"
	}
}
