// Command applybench times store.Apply on a planned campaign's database:
// commits of K updates (sending, then sent), as a run makes them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/relayctl/relayctl/store"
)

func main() {
	db := flag.String("db", "", "a planned database (copied by the caller)")
	k := flag.Int("k", 6, "updates per commit")
	n := flag.Int("n", 20000, "recipients")
	flag.Parse()
	ctx := context.Background()
	st, err := store.Open(ctx, *db)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	commits := 0
	var ups []store.Update
	for id := int64(1); id <= int64(*n); id++ {
		// A connection's commit: its previous recipient's outcome and its
		// next one's sending mark; eight connections.
		ups = append(ups, store.Update{ID: id, State: "sending"})
		if id > 8 {
			ups = append(ups, store.Update{ID: id - 8, State: "sent", Reply: "250 2.0.0 Ok: queued as ABCDEF", Attempted: true})
		}
		if len(ups) >= *k {
			if err := st.Apply(ctx, "bench", ups); err != nil {
				log.Fatal(err)
			}
			commits++
			ups = ups[:0]
		}
	}
	if len(ups) > 0 {
		if err := st.Apply(ctx, "bench", ups); err != nil {
			log.Fatal(err)
		}
		commits++
	}
	el := time.Since(start)
	fmt.Printf("k=%d: %d commits of %d updates in %v: %v/commit, %v/update\n", *k, commits, 2**n, el.Round(time.Millisecond), el/time.Duration(commits), el/time.Duration(2**n))
}
