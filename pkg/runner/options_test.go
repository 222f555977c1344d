package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/util/progress/progressui"

	"github.com/minikit/minikit/pkg/llbdefs"
)

func TestCatalogNames(t *testing.T) {
	for _, r := range llbdefs.Catalog() {
		if !validName.MatchString(r.Name) {
			t.Errorf("%s is not a valid recipe name for Solve", r.Name)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)

	cfg, err := newConfig([]Option{SamplesDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.exports) != 1 || cfg.exports[0].Kind != ExportImage {
		t.Errorf("default exports %v; want image", cfg.exports)
	}
	if cfg.parallel < 2 || cfg.progressMode != progressui.QuietMode || cfg.progressOut != nil {
		t.Errorf("defaults: parallel %d, progress %q", cfg.parallel, cfg.progressMode)
	}

	cfg, err = newConfig([]Option{SamplesDir(dir), OCI("o"), Docker("d"), Parallel(3), Progress(os.Stderr, "plain")})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.exports) != 2 || cfg.parallel != 3 || cfg.progressMode != "plain" {
		t.Errorf("got exports %v, parallel %d, mode %s", cfg.exports, cfg.parallel, cfg.progressMode)
	}
	if cfg, err = newConfig([]Option{SamplesDir(dir), NoExport()}); err != nil || len(cfg.exports) != 0 {
		t.Errorf("NoExport: %v, %v", cfg.exports, err)
	}
	if cfg, err = newConfig([]Option{SamplesDir(dir), Exports()}); err != nil || len(cfg.exports) != 1 {
		t.Errorf("Exports() with no export: %v, %v; want the default", cfg.exports, err)
	}

	bad := map[string][]Option{
		"SamplesDir option is required": nil,
		"no such file":                  {SamplesDir(filepath.Join(dir, "missing"))},
		"not a directory":               {SamplesDir(file)},
		"empty path":                    {SamplesDir("")},
		"not a positive number":         {SamplesDir(dir), Parallel(0)},
		`progress mode "fancy"`:         {SamplesDir(dir), Progress(os.Stderr, "fancy")},
		"given twice":                   {SamplesDir(dir), OCI("o"), OCI("o")},
		"a directory is required":       {SamplesDir(dir), OCI("")},
		"unknown kind":                  {SamplesDir(dir), Exports(Export{Kind: "tar", Dir: "x"})},
	}
	for want, opts := range bad {
		_, err := newConfig(opts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want one containing %q", err, want)
		}
	}
}
