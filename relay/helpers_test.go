package relay_test

import (
	"sync"
	"testing"
	"time"
)

// testClock is a clock (Config.Now, Deliverer.Now) the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually polls cond every few milliseconds until it holds, or fails
// the test after within, saying what it waited for and, if detail is not
// nil, what detail says.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			more := ""
			if detail != nil {
				more = "\n" + detail()
			}
			t.Fatalf("after %s, still waiting for %s%s", within, what, more)
		}
		<-tick.C
	}
}
