package store

import (
	"context"
	"testing"
	"time"
)

func queued(from string, rcpts ...string) Queued {
	return Queued{Received: time.Unix(1_800_000_000, 0), From: from, Client: "127.0.0.1",
		Body: []byte("Subject: t\r\n\r\nhi\r\n"), Recipients: rcpts}
}

// TestQueueIDsNeverReused: once the queue drains, the next message still
// gets a new id, so "queued as N" names one message for ever.
func TestQueueIDsNeverReused(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "q.db")
	ids, err := s.Enqueue(ctx, []Queued{queued("a@example.com", "x@example.net")})
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.DueQueue(ctx, time.Unix(1_900_000_000, 0), 10, 1<<20)
	if err != nil || len(due) != 1 {
		t.Fatalf("due %v, %v", due, err)
	}
	if err := s.ApplyQueue(ctx, []QueueUpdate{{ID: due[0].ID, State: StateSent, Attempted: true, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeQueue(ctx); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want 1", n, err)
	}
	again, err := s.Enqueue(ctx, []Queued{queued("a@example.com", "y@example.net")})
	if err != nil {
		t.Fatal(err)
	}
	if again[0] == ids[0] {
		t.Errorf("queue id %d reused after the queue drained", again[0])
	}
	due2, _ := s.DueQueue(ctx, time.Unix(1_900_000_000, 0), 10, 1<<20)
	if len(due2) != 1 || due2[0].ID == due[0].ID {
		t.Errorf("recipient ids: %v after %v", due2, due)
	}
}

// TestPurgeQueueKeepsWhatIsOwed: a message stays until every recipient is
// delivered, or failed and its sender told.
func TestPurgeQueueKeepsWhatIsOwed(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "q.db")
	if _, err := s.Enqueue(ctx, []Queued{queued("a@example.com", "x@example.net", "y@example.net")}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueQueue(ctx, time.Unix(1_900_000_000, 0), 10, 1<<20)
	now := time.Now()
	if err := s.ApplyQueue(ctx, []QueueUpdate{
		{ID: due[0].ID, State: StateSent, Attempted: true, At: now},
		{ID: due[1].ID, State: StateBounced, Reply: "550 5.1.1 no", Attempted: true, At: now},
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PurgeQueue(ctx); n != 0 {
		t.Fatalf("purged a message whose sender is owed a notice")
	}
	notices, err := s.QueueNotices(ctx, time.Time{})
	if err != nil || len(notices) != 1 || len(notices[0].Recipients) != 1 || notices[0].Recipients[0].Rcpt != "y@example.net" {
		t.Fatalf("notices %+v, %v", notices, err)
	}
	if _, err := s.Notified(ctx, &Queued{Received: now, Body: []byte("dsn\r\n"), Recipients: []string{"a@example.com"}},
		[]int64{notices[0].Recipients[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PurgeQueue(ctx); n != 1 {
		t.Fatalf("purged %d, want the reported message", n)
	}
	var left []QueueEntry
	s.EachQueued(ctx, func(e QueueEntry) error { left = append(left, e); return nil })
	if len(left) != 1 || left[0].From != "" || left[0].Recipients != 1 {
		t.Fatalf("queue %+v, want only the notice, from <>", left)
	}
}
