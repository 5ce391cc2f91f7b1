package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestApplyBatches checks Apply's multi-row statements: a batch longer
// than one statement carries, a recipient updated twice in one batch (the
// later update wins, as if applied one by one), an empty reply keeping the
// last one, attempts and the first attempt's time counted only for
// attempts, and a deferral's next attempt.
func TestApplyBatches(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t, "apply.db")
	const n = 75 // more than two statements' worth
	c := &Campaign{Name: "batch", ListPath: "list.csv", Template: "Subject: x\n\nx\n", Columns: []string{},
		PerJob: n, StartAt: time.Unix(1_700_000_000, 0), Conns: 1, Recipients: n, Reasons: map[string]int64{},
		Settings: "{}", Secret: []byte("0123456789abcdef")}
	err := st.CreateCampaign(ctx, NewCampaign{
		Campaign: c,
		Jobs:     []Job{{Seq: 1, NotBefore: c.StartAt, Recipients: n, Providers: map[string]int64{"other": n}}},
		Recipients: func(add func(Recipient) error) error {
			for i := range n {
				if err := add(Recipient{Row: int64(i + 2), Email: fmt.Sprintf("u%d@example.com", i), Domain: "example.com",
					Group: "example.com", Job: 1, Slot: float64(i), Fields: "{}"}); err != nil {
					return err
				}
			}
			return nil
		},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	due, _, err := st.DueRecipients(ctx, c.ID, 1, time.Now(), Start, n)
	if err != nil || len(due) != n {
		t.Fatalf("due: %d, %v", len(due), err)
	}
	next := time.Unix(1_800_000_000, 0)
	var ups []Update
	for _, d := range due {
		ups = append(ups, Update{ID: d.ID, State: "sending"})
	}
	// The first recipient: sent, in the same batch as its sending mark.
	ups = append(ups, Update{ID: due[0].ID, State: "sent", Reply: "250 2.0.0 queued as A1", Attempted: true})
	// The second: deferred.
	ups = append(ups, Update{ID: due[1].ID, State: "deferred", Reply: "451 4.3.0 try later", Attempted: true, NextAttempt: next})
	if err := st.Apply(ctx, "batch", ups); err != nil {
		t.Fatal(err)
	}
	// The second again, in a later batch: a sending mark with no reply
	// keeps the 451, and is not an attempt.
	if err := st.Apply(ctx, "batch", []Update{{ID: due[1].ID, State: "sending"}}); err != nil {
		t.Fatal(err)
	}
	counts, err := st.CampaignCounts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := counts.Total["sent"]; got != 1 {
		t.Errorf("sent %d, want 1", got)
	}
	if got := counts.Total["sending"]; got != n-1 {
		t.Errorf("sending %d, want %d", got, n-1)
	}
	var state, reply string
	var attempts int
	var nextAt, first *int64
	row := st.db.QueryRowContext(ctx, `SELECT state, reply, attempts, next_attempt_at, first_attempt_at FROM recipients WHERE id = ?`, due[1].ID)
	if err := row.Scan(&state, &reply, &attempts, &nextAt, &first); err != nil {
		t.Fatal(err)
	}
	if state != "sending" || reply != "451 4.3.0 try later" || attempts != 1 || nextAt != nil || first == nil {
		t.Errorf("second recipient: state %q reply %q attempts %d next %v first %v; want sending, the 451 kept, 1 attempt, no next attempt, a first attempt",
			state, reply, attempts, nextAt, first)
	}
	row = st.db.QueryRowContext(ctx, `SELECT state, reply, attempts FROM recipients WHERE id = ?`, due[0].ID)
	if err := row.Scan(&state, &reply, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != "sent" || reply != "250 2.0.0 queued as A1" || attempts != 1 {
		t.Errorf("first recipient: %q %q %d, want sent with its reply, 1 attempt", state, reply, attempts)
	}
}
