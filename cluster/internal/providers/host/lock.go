package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lock serialises Up and Down across processes (two `gatecheck cluster up` at once would
// start two sets of components on the same ports). It is an flock, so a killed holder
// releases it with its last file descriptor.
func (p *Provider) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(p.opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(p.opts.StateDir, "lock")
	// 0600: anyone who can open the file can flock it, and so hold up every `cluster up` and
	// `down`. A lock file left 0644 by an older gatecheck is narrowed too.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: make it 0600: %w", path, err)
	}
	start := time.Now()
	next := start.Add(5 * time.Second)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(next) {
			p.log.Info("waiting for another gatecheck cluster command to finish", "lock", path, "soFar", time.Since(start).Round(time.Second))
			next = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
