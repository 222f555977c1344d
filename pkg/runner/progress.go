package runner

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
)

// A display merges the status streams of every build into one BuildKit
// progress display. Steps shared by several recipes have the same digest
// in every stream and show once.
type display struct {
	ch   chan *client.SolveStatus // nil: nothing is shown
	done chan struct{}
}

func startDisplay(w io.Writer, mode progressui.DisplayMode) (*display, error) {
	if w == nil || mode == progressui.QuietMode {
		return &display{}, nil
	}
	d, err := progressui.NewDisplay(w, mode)
	if err != nil {
		return nil, fmt.Errorf("progress display: %w", err)
	}
	p := &display{ch: make(chan *client.SolveStatus, 64), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// The display outlives the caller's context: after a cancellation
		// it still shows how each build ended. With a context that is never
		// canceled, UpdateFrom returns only when close closes ch, with no
		// error.
		_, _ = d.UpdateFrom(context.Background(), p.ch)
	}()
	return p, nil
}

// send passes a status to the display; it never blocks once the display
// has stopped.
func (p *display) send(ss *client.SolveStatus) {
	if p.ch == nil {
		return
	}
	select {
	case p.ch <- ss:
	case <-p.done:
	}
}

// close ends the display once no more sends can happen.
func (p *display) close() {
	if p.ch == nil {
		return
	}
	close(p.ch)
	<-p.done
}

// labelExport prefixes the recipe's name to the steps that are the
// recipe's own (the exporters'), so that the merged display says which
// image each export is for. Build steps are left alone: they can be shared
// between recipes.
func labelExport(ss *client.SolveStatus, recipe string) {
	for i, v := range ss.Vertexes {
		if strings.HasPrefix(v.Name, "exporting ") {
			cp := *v
			cp.Name = "[" + recipe + "] " + v.Name
			ss.Vertexes[i] = &cp
		}
	}
}
