package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
)

const standinsUsage = `build|serve|list [flags]

  build   assemble the stand-in base images from Debian packages (incremental)
  serve   serve them as a read-only registry on loopback (the private daemon runs this)
  list    the stand-ins and what each is made from`

func (a app) standins(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := a.flags("standins", standinsUsage)
		if err := parse(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return usagef("want one of build, serve, list")
	}
	home, err := paths.Default()
	if err != nil {
		return err
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "build":
		fs := a.flags("standins build", "[--only NAME,...] [--platform linux/amd64,linux/arm64]")
		only := fs.String("only", "", "comma-separated stand-ins to build (with their parents), e.g. alpine:3.22,golang:1.26-bookworm")
		platform := fs.String("platform", standin.DefaultPlatforms(), "comma-separated platforms to build for: linux/amd64, linux/arm64 (the stand-ins that have one; emulated: scripts/binfmt); default $"+standin.PlatformsEnv+" or linux/amd64")
		if err := parse(fs, rest); err != nil {
			return err
		}
		platforms, err := standin.ParsePlatforms(*platform)
		if err != nil {
			return usagef("--platform: %v", err)
		}
		opts := []standin.Option{standin.Platforms(platforms...)}
		if *only != "" {
			opts = append(opts, standin.Only(strings.Split(*only, ",")...))
		}
		// The python stand-ins' pip finds the package index on the
		// registry at MINIKIT_REGISTRY: they are built for that address.
		opts = append(opts, standin.Progress(a.stderr), standin.IndexAddr(connect.RegistryAddr()))
		start := time.Now()
		built, err := standin.Build(ctx, home.StandIns(), opts...)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STAND-IN\tLAYERS\tCOMPRESSED\tBUILT")
		for _, b := range built {
			when := "up to date"
			if b.Rebuilt {
				when = b.Elapsed.Round(100 * time.Millisecond).String()
			}
			if b.Repaired != "" {
				when += " (repaired: " + b.Repaired + ")"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", b.Label(), b.Layers, humanBytes(b.Size), when)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d stand-ins in %s (%s)\n", len(built), home.StandIns(), time.Since(start).Round(100*time.Millisecond))
		return nil
	case "serve":
		fs := a.flags("standins serve", "[--listen ADDR] [--dir LAYOUT] [--secret-file FILE] [--public]")
		listen := fs.String("listen", connect.DefaultRegistry, "loopback address to listen on")
		dir := fs.String("dir", home.StandIns(), "OCI layout holding the stand-ins")
		secretFile := fs.String("secret-file", "", "file holding the secret the registry proves it holds (created if missing; set by the private daemon)")
		fs.String("generation", "", "the layout generation this server was started for (set by the private daemon; informative)")
		public := fs.Bool("public", false, "allow a --listen address that is not loopback (0.0.0.0:5000 in a container on a private network): anyone who reaches it can pull")
		if err := parse(fs, rest); err != nil {
			return err
		}
		var secret []byte
		if *secretFile != "" {
			if secret, err = standin.LoadSecret(*secretFile); err != nil {
				return err
			}
		}
		if *public {
			return standin.ServePublic(ctx, *dir, *listen, secret, a.stderr)
		}
		return standin.Serve(ctx, *dir, *listen, secret, a.stderr)
	case "list":
		fs := a.flags("standins list", "")
		if err := parse(fs, rest); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STAND-IN (docker.io)\tMADE FROM")
		for _, s := range standin.Catalog() {
			fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.From)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "built: %v (%s)\n", connect.HaveStandIns(home), home.StandIns())
		return nil
	}
	return usagef("unknown standins command %q: want build, serve or list", verb)
}

// humanBytes prints a byte count in SI units (kB, MB, GB), as image
// registries do.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
