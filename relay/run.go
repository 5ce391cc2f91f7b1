package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/relayctl/relayctl/store"
)

// Listener is a socket and what it is for.
type Listener struct {
	L    net.Listener
	Kind Kind
}

// RunOptions are what Run serves with.
type RunOptions struct {
	Server    *Server
	Deliverer *Deliverer
	Listeners []Listener
	// The lock: one server per database delivers its queue.
	Holder, Host string
	PID          int
	Alive        func(pid int) bool
	// Grace is how long sessions under way may take to finish at
	// shutdown (30s if 0).
	Grace time.Duration
	Log   *slog.Logger
}

// lockStale is how old a server lock's heartbeat may be before another
// server takes it over.
const lockStale = 2 * time.Minute

// Run serves until ctx ends, then stops accepting, lets the sessions and
// deliveries under way finish, and returns nil. It returns
// store.ErrLocked if another server delivers this queue.
func Run(ctx context.Context, st *store.Store, opt RunOptions) error {
	if opt.Grace <= 0 {
		opt.Grace = 30 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	lock, err := st.AcquireServerLock(ctx, "queue", opt.Holder, opt.Host, opt.PID, lockStale, opt.Alive)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("serve: another relayctl serve delivers this database's queue (%w)", err)
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	opt.Deliverer.Init()
	opt.Server.Accepted = opt.Deliverer.Wake
	var wg sync.WaitGroup
	dctx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() {
		if err := opt.Deliverer.Run(dctx); err != nil {
			cancel(fmt.Errorf("delivery: %w", err))
		}
	})
	wg.Go(func() {
		t := time.NewTicker(lockStale / 4)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := lock.Heartbeat(ctx); err != nil && ctx.Err() == nil {
					cancel(err)
					return
				}
			case <-ctx.Done():
				return
			}
		}
	})
	for _, l := range opt.Listeners {
		opt.Log.Info("listening", "addr", l.L.Addr().String(), "port", l.Kind.String())
		wg.Go(func() {
			if err := opt.Server.Serve(l.L, l.Kind); err != nil {
				cancel(err)
			}
		})
	}
	<-ctx.Done()
	cause := context.Cause(ctx)
	opt.Log.Info("stopping", "reason", cause.Error())
	sctx, cancelGrace := context.WithTimeout(context.Background(), opt.Grace)
	if err := opt.Server.Shutdown(sctx); err != nil {
		opt.Server.Close()
	}
	cancelGrace()
	stopDelivery()
	wg.Wait()
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}
