package relay

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/relayctl/relayctl/store"
)

// committer queues messages in group commits: sessions that finish DATA
// while a commit is under way go together in the next one, so sixteen
// clients cost about one synced commit each round, not sixteen.
type committer struct {
	st   *store.Store
	reqs chan *enqueueReq
	done chan struct{}
	once sync.Once
}

type enqueueReq struct {
	msg store.Queued
	id  int64
	err error
	ok  chan struct{}
}

// maxGroup bounds one commit's messages.
const maxGroup = 64

func newCommitter(st *store.Store) *committer {
	c := &committer{st: st, reqs: make(chan *enqueueReq), done: make(chan struct{})}
	go c.loop()
	return c
}

var errClosed = errors.New("the server is shutting down")

// enqueue returns once msg is committed, with its queue id.
func (c *committer) enqueue(ctx context.Context, msg store.Queued) (int64, error) {
	r := &enqueueReq{msg: msg, ok: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-c.done:
		return 0, errClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Once taken, the request is committed or failed: wait for which, so
	// a 250 is never lost nor given for a message that is not stored.
	<-r.ok
	return r.id, r.err
}

func (c *committer) loop() {
	for {
		var group []*enqueueReq
		select {
		case r := <-c.reqs:
			group = append(group, r)
		case <-c.done:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-c.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		msgs := make([]store.Queued, len(group))
		for i, r := range group {
			msgs[i] = r.msg
		}
		// One client giving up must not fail the others' commit.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ids, err := c.st.Enqueue(ctx, msgs)
		cancel()
		for i, r := range group {
			if err == nil {
				r.id = ids[i]
			}
			r.err = err
			close(r.ok)
		}
	}
}

func (c *committer) close() { c.once.Do(func() { close(c.done) }) }
