package report_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/relayctl/relayctl/report"
)

// chromium is where Debian's chromium package puts the browser.
const chromium = "/usr/bin/chromium"

// TestHTMLInBrowser opens an HTML report in a real headless browser: the
// page must load without a console error or exception, render to a
// screenshot, and hold its three charts. Set REPORT_SCREENSHOT=FILE to
// keep the screenshot.
func TestHTMLInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no browser for the HTML report test: %v (CI installs Debian's chromium package)", err)
		}
		t.Skipf("no browser: %v (apt-get install chromium to run this test)", err)
	}
	f := stdFixture(t)
	page := filepath.Join(t.TempDir(), "report.html")
	rep := f.load(t)
	err := report.WriteFile(page, func(w io.Writer) error { return rep.Render(context.Background(), w, report.HTML) })
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	// Cancelling the allocator waits for the browser to exit, before
	// t.TempDir's clean-up removes its profile.
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(tab, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			p = "console error: " + strings.Join(args, " ")
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				p += " " + ex.Description
			}
		default:
			return
		}
		mu.Lock()
		problems = append(problems, p)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate((&url.URL{Scheme: "file", Path: page}).String())); err != nil {
		t.Fatalf("open the report: %v", err)
	}
	svgs, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("svg").length`))
	if err != nil {
		t.Fatal(err)
	}
	if svgs < 3 {
		t.Errorf("the page has %d <svg> elements, want at least 3", svgs)
	}
	// Each chart is laid out at a real size.
	sizes, err := chromedp.Run(tab, chromedp.Evaluate[[]float64](
		`Array.from(document.querySelectorAll("svg.chart")).map(s => s.getBoundingClientRect().height)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range sizes {
		if h < 50 {
			t.Errorf("chart %d is %.0f px high", i+1, h)
		}
	}
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot (%d bytes) is not a PNG: %v", len(shot), err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 900 {
		t.Errorf("screenshot of %dx%d px, want a whole page", b.Dx(), b.Dy())
	}
	if dst := os.Getenv("REPORT_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, shot, 0o644); err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the page said: %s", p)
	}
	t.Logf("report page: %d svg, charts %v px high, screenshot %dx%d", svgs, sizes, img.Bounds().Dx(), img.Bounds().Dy())
}
