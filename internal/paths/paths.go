// Package paths says where minikit keeps its state on this machine: the
// private buildkitd, the stand-in base images and their registry, and the
// binaries it builds for itself.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
)

// Home is minikit's state directory.
type Home string

// Default returns $MINIKIT_HOME, else the user's cache directory plus
// "minikit" (~/.cache/minikit on Linux).
func Default() (Home, error) {
	if h := os.Getenv("MINIKIT_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		if err != nil {
			return "", fmt.Errorf("MINIKIT_HOME: %w", err)
		}
		return Home(abs), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locate state directory (set MINIKIT_HOME): %w", err)
	}
	return Home(filepath.Join(d, "minikit")), nil
}

// Buildkitd is the private daemon's directory: root, socket, config, log, pid.
func (h Home) Buildkitd() string { return filepath.Join(string(h), "buildkitd") }

// Socket is the private daemon's unix socket.
func (h Home) Socket() string { return filepath.Join(h.Buildkitd(), "buildkitd.sock") }

// StandIns is the OCI image layout holding the stand-in base images.
func (h Home) StandIns() string { return filepath.Join(string(h), "standins") }

// Registry is the stand-in registry's directory: its ownership secret, pid,
// record and log (it stores nothing it is sent).
func (h Home) Registry() string { return filepath.Join(string(h), "registry") }

// Bin holds binaries minikit builds for itself (buildkitd from the pinned module).
func (h Home) Bin() string { return filepath.Join(string(h), "bin") }

// Samples is where the sample programs built into minikit are written.
func (h Home) Samples() string { return filepath.Join(string(h), "samples") }

// Measurements caches image measurements by manifest digest.
func (h Home) Measurements() string { return filepath.Join(string(h), "measurements") }

// MkdirPrivate creates each directory (and its parents) if missing and
// makes it private to minikit's user (0700), as everything under the home
// is: what the stand-ins, the package index and the daemon's state hold is
// what every build on them trusts.
func MkdirPrivate(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}
