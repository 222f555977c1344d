package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
)

const daemonUsage = `status|start|stop

  status  whether the private buildkitd (and the stand-in registry) run, where
  start   start them now (minikit solve does it on demand)
  stop    stop them; state and cache are kept`

func (a app) daemon(ctx context.Context, args []string) error {
	fs := a.flags("daemon", daemonUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("want one of status, start, stop")
	}
	home, err := paths.Default()
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "status":
		st, err := daemon.Status(ctx, home)
		if err != nil {
			return err
		}
		a.printDaemon(home, st)
		return nil
	case "start":
		conn, err := connect.Open(ctx, connect.Options{Home: home, Log: a.stderr})
		if err != nil {
			return err
		}
		defer conn.Close()
		fmt.Fprintf(a.stdout, "buildkitd answers at %s (stand-ins: %v)\n", conn.Addr, conn.StandIns)
		return nil
	case "stop":
		if err := daemon.Stop(ctx, home); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "stopped")
		return nil
	}
	return usagef("unknown daemon command %q: want status, start or stop", fs.Arg(0))
}

func (a app) printDaemon(home paths.Home, st daemon.State) {
	w := a.stdout
	state := "not running"
	switch {
	case st.Running && st.Answering:
		state = fmt.Sprintf("running (pid %d, up %s)", st.PID, time.Since(st.Started).Round(time.Second))
	case st.Running:
		state = fmt.Sprintf("running but not answering (pid %d): see %s", st.PID, st.LogFile)
	}
	fmt.Fprintf(w, "buildkitd:  %s\n", state)
	fmt.Fprintf(w, "address:    %s\n", st.Addr)
	if st.Version != "" {
		fmt.Fprintf(w, "version:    %s\n", st.Version)
	}
	fmt.Fprintf(w, "state:      %s\n", home.Buildkitd())
	if st.Mirror != "" {
		fmt.Fprintf(w, "docker.io:  mirrored by %s (stand-ins)\n", st.Mirror)
	}
	if st.Registry.Name != "" {
		reg := "not running"
		if st.Registry.Running {
			reg = fmt.Sprintf("running (pid %d): %s", st.Registry.PID, strings.Join(st.Registry.Args, " "))
		}
		fmt.Fprintf(w, "registry:   %s\n", reg)
	}
	fmt.Fprintf(w, "stand-ins:  %v (%s)\n", connect.HaveStandIns(home), home.StandIns())
}
