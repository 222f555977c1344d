package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
)

// registryCheckTimeout bounds the status check of the stand-in registry.
const registryCheckTimeout = 2 * time.Second

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
		a.printDaemon(ctx, home, st)
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

func (a app) printDaemon(ctx context.Context, home paths.Home, st daemon.State) {
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

	// What serves at the registry's address, checked with its proof: the
	// lines below say what is there, never only what was recorded.
	check := func(addr string) (ours, foreign bool) {
		err := connect.CheckRegistry(ctx, home, addr, registryCheckTimeout)
		return err == nil, errors.Is(err, standin.ErrForeignRegistry)
	}
	regAddr := st.Registry.Addr
	if regAddr == "" {
		regAddr = st.Mirror
	}
	standIns := connect.HaveStandIns(home)
	if regAddr == "" && standIns {
		regAddr = connect.RegistryAddr() // where it would run
	}
	var ours, foreign bool
	if regAddr != "" {
		ours, foreign = check(regAddr)
	}
	if st.Running && st.Mirror != "" {
		mOurs, mForeign := ours, foreign
		if st.Mirror != regAddr {
			mOurs, mForeign = check(st.Mirror)
		}
		mirror := fmt.Sprintf("mirrored by %s (stand-ins)", st.Mirror)
		switch {
		case mForeign:
			mirror = fmt.Sprintf("mirrored by %s, which another server holds (not minikit's stand-in registry): stop it, or move the registry with %s", st.Mirror, connect.EnvRegistry)
		case !mOurs:
			mirror = fmt.Sprintf("mirrored by %s, where no stand-in registry answers: pulls from docker.io fail until `minikit daemon start`", st.Mirror)
		}
		fmt.Fprintf(w, "docker.io:  %s\n", mirror)
	}
	if regAddr != "" {
		reg := "not running"
		switch {
		case st.Registry.Running && ours:
			reg = fmt.Sprintf("running (pid %d) at %s: %s", st.Registry.PID, regAddr, strings.Join(st.Registry.Args, " "))
		case st.Registry.Running:
			reg = fmt.Sprintf("running (pid %d) but not serving at %s: see %s", st.Registry.PID, regAddr, st.Registry.LogFile)
		case foreign:
			reg = fmt.Sprintf("not running; %s is held by another server (not minikit's stand-in registry)", regAddr)
		}
		fmt.Fprintf(w, "registry:   %s\n", reg)
	}
	fmt.Fprintf(w, "stand-ins:  %v (%s)\n", standIns, home.StandIns())
}
