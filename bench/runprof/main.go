// Command runprof runs relayctl in-process under the profilers, for
// finding where a command's time and memory go without changing it:
//
//	go run ./bench/runprof -cpuprofile cpu.pprof -memprofile heap.pprof -- \
//	    --db bench.db run bench --via 'smtp://127.0.0.1:2525?tls=none'
//	go tool pprof -top cpu.pprof
//
// Everything after -- is relayctl's command line. The heap profile is the
// one taken when the Go heap in use was largest (sampled every 20 ms); on
// exit runprof prints that peak beside the memory the runtime got from the
// system, on stderr. With -trace it also writes an execution trace (go
// tool trace), which shows time spent waiting, not only on CPU.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/relayctl/relayctl/cmd"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write the CPU profile here")
	mem := flag.String("memprofile", "", "write the heap profile at the heap's peak here")
	tr := flag.String("trace", "", "write an execution trace here")
	flag.Parse()
	if *cpu != "" {
		f := create(*cpu)
		check(pprof.StartCPUProfile(f))
		defer f.Close()
	}
	if *tr != "" {
		f := create(*tr)
		check(trace.Start(f))
		defer f.Close()
	}
	var stop func() (peak []byte, inuse, sys uint64)
	if *mem != "" {
		stop = heapPeak(20 * time.Millisecond)
	}

	code := cmd.Run(context.Background(), flag.Args(), cmd.System())

	if *tr != "" {
		trace.Stop()
	}
	if *cpu != "" {
		pprof.StopCPUProfile()
	}
	if stop != nil {
		peak, inuse, sys := stop()
		check(os.WriteFile(*mem, peak, 0o644))
		fmt.Fprintf(os.Stderr, "runprof: Go heap in use at its peak %.1f MiB; runtime memory from the system %.1f MiB\n",
			float64(inuse)/(1<<20), float64(sys)/(1<<20))
	}
	os.Exit(code)
}

// heapPeak samples the heap every interval and keeps a heap profile taken
// at the largest HeapInuse seen; the returned function stops it.
func heapPeak(interval time.Duration) func() ([]byte, uint64, uint64) {
	done := make(chan struct{})
	result := make(chan struct {
		peak       []byte
		inuse, sys uint64
	})
	go func() {
		var best bytes.Buffer
		var inuse, sys uint64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			sys = max(sys, ms.Sys)
			if ms.HeapInuse > inuse {
				inuse = ms.HeapInuse
				best.Reset()
				pprof.Lookup("heap").WriteTo(&best, 0)
			}
			select {
			case <-t.C:
			case <-done:
				result <- struct {
					peak       []byte
					inuse, sys uint64
				}{best.Bytes(), inuse, sys}
				return
			}
		}
	}()
	return func() ([]byte, uint64, uint64) {
		close(done)
		r := <-result
		return r.peak, r.inuse, r.sys
	}
}

func create(path string) *os.File {
	f, err := os.Create(path)
	check(err)
	return f
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runprof:", err)
		os.Exit(1)
	}
}
