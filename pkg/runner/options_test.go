package runner

import (
	"os"
	"strings"
	"testing"

	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestConfig(t *testing.T) {
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.exports) != 1 || cfg.exports[0].Kind != ExportImage {
		t.Errorf("default exports %v; want image", cfg.exports)
	}
	if cfg.parallel < 2 || cfg.progressMode != progressui.QuietMode || cfg.progressOut != nil || cfg.names != DefaultImageNames ||
		cfg.product != "" || cfg.platforms != nil || cfg.cachePrefix() != "runner" {
		t.Errorf("defaults: parallel %d, progress %q, names %q, product %q, platforms %v", cfg.parallel, cfg.progressMode, cfg.names, cfg.product, cfg.platforms)
	}
	cfg, err = newConfig([]Option{Product("minikit"), Platforms(ocispecs.Platform{OS: "linux", Architecture: "arm64"}), NameTemplate("example.com/x/{program}:{name}")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.product != "minikit" || cfg.cachePrefix() != "minikit" || len(cfg.platforms) != 1 || cfg.platforms[0].Architecture != "arm64" || cfg.names != "example.com/x/{program}:{name}" {
		t.Errorf("set: product %q, platforms %v, names %q", cfg.product, cfg.platforms, cfg.names)
	}

	cfg, err = newConfig([]Option{OCI("o"), Docker("d"), Parallel(3), Progress(os.Stderr, "plain")})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.exports) != 2 || cfg.parallel != 3 || cfg.progressMode != "plain" {
		t.Errorf("got exports %v, parallel %d, mode %s", cfg.exports, cfg.parallel, cfg.progressMode)
	}
	cfg, err = newConfig([]Option{Push(), Load(), Image(), Exports(Export{Kind: ExportImage, Attrs: map[string]string{"compression": "zstd"}}), NoCache(), Pull()})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.exports) != 4 || !cfg.exports[0].Push || !cfg.exports[1].Load || cfg.exports[1].Kind != ExportDocker || !cfg.noCache || !cfg.pull {
		t.Errorf("push, load, no-cache, pull: exports %v, no-cache %v, pull %v", cfg.exports, cfg.noCache, cfg.pull)
	}
	if cfg, err = newConfig(nil); err != nil || cfg.noCache || cfg.pull {
		t.Errorf("no-cache %v and pull %v by default (%v)", cfg.noCache, cfg.pull, err)
	}
	if cfg, err = newConfig([]Option{NoExport()}); err != nil || len(cfg.exports) != 0 {
		t.Errorf("NoExport: %v, %v", cfg.exports, err)
	}
	if cfg, err = newConfig([]Option{Exports()}); err != nil || len(cfg.exports) != 1 {
		t.Errorf("Exports() with no export: %v, %v; want the default", cfg.exports, err)
	}

	bad := map[string][]Option{
		"not a positive number":          {Parallel(0)},
		"want an OS and an architecture": {Platforms(ocispecs.Platform{OS: "linux"})},
		"platforms: none given":          {Platforms()},
		"linux/arm64/v8 given twice":     {Platforms(ocispecs.Platform{OS: "linux", Architecture: "arm64"}, ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})},
		"only {name} and {program}":      {NameTemplate("minikit:{tag}")},
		"template: empty":                {NameTemplate("")},
		`progress mode "fancy"`:          {Progress(os.Stderr, "fancy")},
		"given twice":                    {OCI("o"), OCI("o")},
		"a destination is required":      {OCI("")},
		"unknown type":                   {Exports(Export{Kind: "zip", Dest: "x"})},
		"push applies to type=image":     {Exports(Export{Kind: ExportOCI, Dest: "x", Push: true})},
		"not an attribute":               {Exports(Export{Kind: ExportImage, Attrs: map[string]string{"push": "true"}})},
		"lower-case key":                 {Exports(Export{Kind: ExportImage, Attrs: map[string]string{"Compression": "zstd"}})},
		"push=true given twice":          {Push(), Push()},
	}
	for want, opts := range bad {
		_, err := newConfig(opts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want one containing %q", err, want)
		}
	}
}
