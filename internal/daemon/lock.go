package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a contended flock is tried again.
const lockPoll = 50 * time.Millisecond

// ErrBusy: the private daemon must be restarted for another configuration,
// but other minikit processes keep using it (their builds are in flight).
var ErrBusy = errors.New("the private buildkitd is busy with another minikit's builds")

// fileLock holds an exclusive flock on a file, serialising minikit
// processes that start or stop the same daemon. onWait, if set, is called
// once when another holder makes it wait.
func fileLock(ctx context.Context, path string, onWait func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	ok, err := flockTry(f, syscall.LOCK_EX)
	if err == nil && !ok {
		if onWait != nil {
			onWait()
		}
		err = flockWait(ctx, f, syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for another minikit holding %s: %w", path, err)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// flockTry tries to take the flock how (LOCK_SH or LOCK_EX) without
// waiting; ok is false when another holder is in the way.
func flockTry(f *os.File, how int) (ok bool, err error) {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		return false, err
	}
}

// flockWait takes the flock how, polling until it is free or ctx ends
// (then it returns ctx.Err()).
func flockWait(ctx context.Context, f *os.File, how int) error {
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		ok, err := flockTry(f, how)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// useLock is one client's hold on the daemon's use lock (inuse.lock under
// home.Buildkitd()). Every client holds it shared for as long as it uses
// the daemon; restarting the daemon or its registry helper takes it
// exclusively, so that no build in flight loses its daemon. Only a holder of
// daemon.lock takes it exclusively, which makes converting it safe.
type useLock struct {
	f    *os.File
	mode int // 0, syscall.LOCK_SH or syscall.LOCK_EX
}

func openUseLock(path string) (*useLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &useLock{f: f}, nil
}

// tryShared takes the lock shared unless a restart holds it.
func (u *useLock) tryShared() (bool, error) {
	ok, err := flockTry(u.f, syscall.LOCK_SH)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", u.f.Name(), err)
	}
	if ok {
		u.mode = syscall.LOCK_SH
	}
	return ok, nil
}

// shared takes the lock shared, or turns an exclusive hold into a shared
// one (the caller holds daemon.lock, so no restart can come in between).
func (u *useLock) shared(ctx context.Context) error {
	if u.mode == syscall.LOCK_SH {
		return nil
	}
	if err := flockWait(ctx, u.f, syscall.LOCK_SH); err != nil {
		return fmt.Errorf("lock %s: %w", u.f.Name(), err)
	}
	u.mode = syscall.LOCK_SH
	return nil
}

// exclusive takes the lock exclusively before a restart: when other
// clients hold it, it says so once through logf and waits for them, for up
// to bound, or until ctx ends. what names the restart ("buildkitd (pid 12):
// its configuration changed").
func (u *useLock) exclusive(ctx context.Context, bound time.Duration, logf func(string, ...any), what string) error {
	if u.mode == syscall.LOCK_EX {
		return nil
	}
	if u.mode == syscall.LOCK_SH {
		// Never wait for ourselves.
		if err := u.unlock(); err != nil {
			return err
		}
	}
	ok, err := flockTry(u.f, syscall.LOCK_EX)
	if err != nil {
		return fmt.Errorf("lock %s: %w", u.f.Name(), err)
	}
	if !ok {
		logf("waiting for another minikit's builds to finish before restarting %s (up to %s)", what, bound)
		wctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		if err := flockWait(wctx, u.f, syscall.LOCK_EX); err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s, but it is still in use after %s, and minikit does not restart it under other builds: run again when they are done, or give this run its own MINIKIT_HOME", ErrBusy, what, bound)
			}
			return fmt.Errorf("waiting to restart %s: %w", what, err)
		}
	}
	u.mode = syscall.LOCK_EX
	return nil
}

func (u *useLock) unlock() error {
	if u.mode == 0 {
		return nil
	}
	if err := syscall.Flock(int(u.f.Fd()), syscall.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", u.f.Name(), err)
	}
	u.mode = 0
	return nil
}

// close releases the lock and its file.
func (u *useLock) close() error {
	return u.f.Close() // closing the only descriptor drops the flock
}
