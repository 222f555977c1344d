package runner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Loading into Docker (Export.Load, the Load option): the docker
// exporter's tarball is streamed into `docker load` as BuildKit sends it,
// never written to disk. The docker CLI is what talks to the engine, so
// DOCKER_HOST, DOCKER_CONTEXT and the CLI's TLS settings apply as they do
// to the user's own docker commands.

// loadWaitDelay bounds the wait for docker load's output once it was
// killed or exited.
const loadWaitDelay = 5 * time.Second

// lookDocker finds the docker CLI.
func lookDocker() (string, error) {
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("loading into Docker needs the docker CLI: %w", err)
	}
	return p, nil
}

// A dockerLoad is one target's load: the docker exporter's output is the
// standard input of a `docker load` started when the export begins.
type dockerLoad struct {
	ctx    context.Context
	target string

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{} // closed once docker load exited
	err    error         // its exit status
	over   bool          // finish was called: an export arriving now is too late
}

func newDockerLoad(ctx context.Context, target string) *dockerLoad {
	return &dockerLoad{ctx: ctx, target: target}
}

// open is the docker exporter's client.ExportEntry.Output: it starts
// docker load and returns its standard input.
func (l *dockerLoad) open(map[string]string) (io.WriteCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.over:
		// The build is over (the session outlives it, session.go).
		return nil, fmt.Errorf("load %s into Docker: the build is over", l.target)
	case l.cmd != nil:
		return nil, fmt.Errorf("load %s into Docker: opened twice", l.target)
	}
	bin, err := lookDocker()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(l.ctx, bin, "load")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("load %s into Docker: %w", l.target, err)
	}
	cmd.Stdout, cmd.Stderr = &l.stdout, &l.stderr
	cmd.WaitDelay = loadWaitDelay // a child left holding its output does not hold the run
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("load %s into Docker: %w", l.target, err)
	}
	l.cmd, l.stdin, l.done = cmd, stdin, make(chan struct{})
	go func() {
		defer close(l.done)
		l.err = cmd.Wait()
	}()
	return stdin, nil
}

// finish ends the load once the build is over and returns the tags
// Docker loaded the image as. After a failed build (buildErr set) the
// load is stopped and nothing is returned.
func (l *dockerLoad) finish(ctx context.Context, buildErr error) ([]string, error) {
	l.mu.Lock()
	l.over = true
	cmd, stdin, done := l.cmd, l.stdin, l.done
	l.mu.Unlock()
	if cmd == nil {
		if buildErr != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("load %s into Docker: the exporter sent nothing", l.target)
	}
	if buildErr != nil {
		_ = cmd.Process.Kill()
		<-done
		return nil, nil
	}
	_ = stdin.Close() // the exporter closed it already, normally
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("load %s into Docker: %w", l.target, context.Cause(ctx))
	}
	if l.err != nil {
		msg := strings.TrimSpace(l.stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(l.stdout.String())
		}
		return nil, fmt.Errorf("load %s into Docker: docker load: %w: %s", l.target, l.err, msg)
	}
	tags := loadedTags(l.stdout.String())
	if len(tags) == 0 {
		return nil, fmt.Errorf("load %s into Docker: docker load named no image: %q", l.target, strings.TrimSpace(l.stdout.String()))
	}
	return tags, nil
}

// loadedTags reads what docker load printed: a "Loaded image: NAME" line
// per tag, or "Loaded image ID: sha256:..." for an image without one.
func loadedTags(out string) []string {
	var tags []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if v, ok := strings.CutPrefix(line, prefix); ok && v != "" {
				tags = append(tags, v)
			}
		}
	}
	return tags
}
