package llbdefs

import (
	"context"
	"testing"
	"time"

	"github.com/moby/buildkit/solver/pb"
)

// ops returns a recipe's ops, keyed by their marshalled bytes (the
// terminal op, which only names the output, left out).
func ops(t *testing.T, r Recipe, src Sources) map[string]*pb.Op {
	t.Helper()
	def, err := r.Definition(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pb.Op{}
	for i, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if op.Op == nil {
			continue // the terminal op, naming the output
		}
		out[string(def.Def[i])] = &op
	}
	return out
}

// TestEpochDatesOnlyTheFinalStage: with an epoch, the final stage's COPY
// and WORKDIR steps date what they create at it, and no other op changes,
// so the build stages keep their cache keys when the epoch moves.
func TestEpochDatesOnlyTheFinalStage(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	dated := DefaultSources()
	dated.Epoch = &epoch
	seen := map[string]bool{}
	// No recipe has a WORKDIR in its final stage; this one does.
	workdir := Recipe{Name: "workdir", Final: From(Alpine).Workdir("/app").CopyFrom(From(GCC).Run("true"), "/etc/hostname", ".")}
	for _, r := range append(All(), workdir) {
		plain, withEpoch := ops(t, r, DefaultSources()), ops(t, r, dated)
		changed := 0
		for k, op := range withEpoch {
			if _, ok := plain[k]; ok {
				if f := op.GetFile(); f != nil {
					for _, a := range f.Actions {
						if ts := timestamp(a); ts != -1 {
							t.Errorf("%s: an op unchanged by the epoch has a timestamp %d", r.Name, ts)
						}
					}
				}
				continue
			}
			changed++
			f := op.GetFile()
			if f == nil {
				continue // a later op of the final stage, changed by its input
			}
			for _, a := range f.Actions {
				if ts := timestamp(a); ts != epoch.UnixNano() {
					t.Errorf("%s: a final-stage file action has timestamp %d, want %d", r.Name, ts, epoch.UnixNano())
				}
				if a.GetCopy() != nil {
					seen["copy"] = true
				}
				if a.GetMkdir() != nil {
					seen["mkdir"] = true
				}
			}
		}
		final := r.Final
		if len(final.steps) > 0 && changed == 0 {
			copies := false
			for _, s := range final.steps {
				switch s.(type) {
				case copyStep, copyFromStep, workdirStep:
					copies = true
				}
			}
			if copies {
				t.Errorf("%s: the final stage copies but no op changed with the epoch", r.Name)
			}
		}
		// Every op of the build stages is the same with or without it.
		for _, dep := range final.deps() {
			for k := range ops(t, Recipe{Name: "dep", Final: dep}, Sources{Context: dated.Context, notFinal: true, Epoch: &epoch}) {
				if _, ok := plain[k]; !ok {
					t.Errorf("%s: build stage %s changed with the epoch", r.Name, dep.label())
				}
			}
		}
	}
	if !seen["copy"] || !seen["mkdir"] {
		t.Errorf("no final COPY or WORKDIR dated across the catalog: %v", seen)
	}
}

// timestamp is a file action's creation time, -1 when it has none.
func timestamp(a *pb.FileAction) int64 {
	switch {
	case a.GetCopy() != nil:
		return a.GetCopy().Timestamp
	case a.GetMkdir() != nil:
		return a.GetMkdir().Timestamp
	case a.GetMkfile() != nil:
		return a.GetMkfile().Timestamp
	}
	return -1
}
