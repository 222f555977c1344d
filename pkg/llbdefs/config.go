package llbdefs

import (
	"maps"
	"slices"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/runner"
)

// Config is what the recipe sets in its image's config, to be applied
// over its run image's config (runner.ImageConfig.Apply, the one place
// the two are merged): the final stage's ENV (each key once, at its last
// value), WORKDIR (a relative one is relative to the base's), USER,
// ENTRYPOINT (exec form), LABEL and EXPOSE steps (the ports sorted), and
// the recipe's Cmd. What the build stages set is not in it, nor ARG
// values. A step that does not validate (Validate) is left out.
func (r Recipe) Config() runner.ImageConfig {
	var cfg ocispecs.ImageConfig
	for _, st := range r.Final.steps {
		if st.check() == nil {
			st.configure(&cfg)
		}
	}
	out := runner.ImageConfig{
		Entrypoint: cfg.Entrypoint,
		Cmd:        r.Cmd.Config(),
		Env:        cfg.Env,
		WorkingDir: cfg.WorkingDir,
		User:       cfg.User,
		Labels:     cfg.Labels,
	}
	out.ExposedPorts = slices.Sorted(maps.Keys(cfg.ExposedPorts))
	return out
}

// ImageConfig is the final image's config: Config applied over base, the
// run image's config (the zero value for scratch), for linux/amd64, as a
// Dockerfile would produce it. The Dockerfile rendering is checked
// against it.
func (r Recipe) ImageConfig(base ocispecs.Image) ocispecs.Image {
	return r.Config().Apply(base, r.Final.from == "", Platform())
}

// defaultPath is the PATH a Dockerfile gives an image that sets none.
const defaultPath = "PATH=" + runner.DefaultPath
