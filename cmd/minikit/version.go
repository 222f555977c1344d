package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// buildkitModule is the module whose version minikit pins: the BuildKit
// client minikit speaks with, and the buildkitd scripts/setup builds.
const buildkitModule = "github.com/moby/buildkit"

// versionInfo is what `minikit version` prints, from the binary's build
// information.
type versionInfo struct {
	// Version is minikit's module version (a release tag, or Go's
	// pseudo-version of the commit it was built from), "devel" when the
	// build recorded none.
	Version string `json:"version"`
	// Revision, Time and Modified are the commit the binary was built
	// from, its time, and whether the tree had uncommitted changes (Go's
	// vcs.revision, vcs.time and vcs.modified), when recorded.
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// BuildKit is the version of github.com/moby/buildkit minikit was
	// built with (go.mod pins it), "unknown" when not recorded.
	BuildKit string `json:"buildkit"`
	// Go is the Go toolchain that built minikit, Platform the OS and
	// architecture it was built for.
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// versionOf reads a binary's build information (ok false: none, as
// debug.ReadBuildInfo returns for a binary built without module support).
func versionOf(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{
		Version:  "devel",
		BuildKit: "unknown",
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if !ok || bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		v.Version = mv
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path != buildkitModule {
			continue
		}
		v.BuildKit = d.Version
		if r := d.Replace; r != nil {
			if r.Version != "" {
				// Another module version (or fork) built in.
				v.BuildKit = r.Version
				if r.Path != d.Path {
					v.BuildKit += " (" + r.Path + ")"
				}
			} else {
				// A local directory: its version is whatever it holds.
				v.BuildKit = d.Version + " (replaced by " + r.Path + ")"
			}
		}
		if v.BuildKit == "" {
			v.BuildKit = "unknown"
		}
	}
	return v
}

// version prints minikit's, the pinned BuildKit's and Go's versions.
func (a app) version(ctx context.Context, args []string) error {
	fs := a.flags("version", "[--format table|json]")
	format := fs.String("format", "table", "output: table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	v := versionOf(debug.ReadBuildInfo())
	switch *format {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("writing the version: %w", err)
		}
		return nil
	case "table":
	default:
		return usagef("--format must be table or json, not %q", *format)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "minikit\t%s\n", v.minikitLine())
	fmt.Fprintf(tw, "buildkit\t%s\n", v.BuildKit)
	fmt.Fprintf(tw, "go\t%s %s\n", v.Go, v.Platform)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the version: %w", err)
	}
	return nil
}

// minikitLine is minikit's version with the commit it was built from:
// "devel (revision 5c47a90a1b2c, 2026-11-27T12:42:36Z, modified)".
func (v versionInfo) minikitLine() string {
	var about []string
	if v.Revision != "" {
		about = append(about, "revision "+v.Revision)
	}
	if v.Time != "" {
		about = append(about, v.Time)
	}
	if v.Modified {
		about = append(about, "modified")
	}
	if len(about) == 0 {
		return v.Version
	}
	return v.Version + " (" + strings.Join(about, ", ") + ")"
}
