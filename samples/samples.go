// Package samples holds the sample programs the recipes build, embedded so
// that an installed minikit binary carries them.
package samples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/minikit/minikit/internal/atomicfile"
)

//go:embed hello.c hello.go hello.rs hello.java hello.py pyyaml.py pyds.py whatsmyip.go
var files embed.FS

// FS returns the samples. Embedding drops file modes: see Mode.
func FS() fs.FS { return files }

// Mode is a sample's file mode: the Python scripts are executable.
func Mode(name string) fs.FileMode {
	if strings.HasSuffix(name, ".py") {
		return 0o755
	}
	return 0o644
}

// WriteTo writes the samples into dir (created if missing) with their
// modes, replacing files that differ, and returns dir.
func WriteTo(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write samples: %w", err)
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return "", fmt.Errorf("write samples: %w", err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return "", fmt.Errorf("write samples: %w", err)
		}
		p := filepath.Join(dir, e.Name())
		if _, err := atomicfile.WriteFileIfChanged(p, data, Mode(e.Name())); err != nil {
			return "", fmt.Errorf("write sample %s: %w", e.Name(), err)
		}
	}
	return dir, nil
}
