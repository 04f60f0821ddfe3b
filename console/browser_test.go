package console

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/internal/testenv"
)

// browser starts Debian's Chromium headless with a fresh profile; under CI
// a missing Chromium fails the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	var exe string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, ok := testenv.Tool("CHROMIUM", name); ok {
			exe = p
			break
		}
	}
	if exe == "" {
		testenv.Missing(t, "chromium", "make tools (scripts/install-packages.sh chromium)")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return ctx
}

// shots is where screenshots go: $CONSOLE_SCREENSHOTS, or a new temporary
// folder that is kept and named in the log.
func shots(t *testing.T) string {
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sanigate-console-shots-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// step runs actions with a bounded time, failing the test with what was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// shoot saves the page at desktop (1280x800) and phone (390x844) widths.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, vp := range []struct {
		tag  string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{{"desktop", 1280, 800, nil}, {"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateMobile}}} {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := chromedp.Run(sctx, chromedp.EmulateViewport(vp.w, vp.h, vp.opts...))
		var png []byte
		if err == nil {
			_, err = chromedp.Run(sctx, chromedp.Sleep(300*time.Millisecond))
		}
		if err == nil {
			png, err = chromedp.Run(sctx, chromedp.FullScreenshot(100))
		}
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s %s: %v", name, vp.tag, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, vp.tag)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "back to desktop", chromedp.EmulateViewport(1280, 800))
}

// unlabelled lists the form fields of the page that have no label.
const unlabelled = `Array.from(document.querySelectorAll('input:not([type=hidden]),select,textarea'))
	.filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.id || el.name)`

func checkLabels(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if bad := eval[[]string](t, ctx, unlabelled); len(bad) > 0 {
		t.Errorf("%s: fields without a label: %v", page, bad)
	}
}

// loginByKeyboard logs in with the keyboard alone: the name field has the
// focus, Tab moves to the password, Enter submits.
func loginByKeyboard(t *testing.T, ctx context.Context, base, name string) {
	t.Helper()
	step(t, ctx, "login page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#name")))
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "name" {
		t.Errorf("login page: focus starts on %q, want the name field", id)
	}
	step(t, ctx, "type the login", chromedp.KeyEvent(name), chromedp.KeyEvent("\t"))
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "password" {
		t.Errorf("login page: Tab from the name goes to %q, want the password", id)
	}
	step(t, ctx, "submit the login", chromedp.KeyEvent(passwordOf(name)), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#logout")))
}

func logout(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "logout", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#name")))
}

// act opens an action on the case page, fills it and confirms it.
func act(t *testing.T, ctx context.Context, name string, fill ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS("#a-" + name + " summary")),
		chromedp.WaitVisible(chromedp.CSS("#do-" + name))}
	steps = append(steps, fill...)
	steps = append(steps, chromedp.Click(chromedp.CSS("#do-"+name)),
		chromedp.WaitVisible(chromedp.CSS(`p.ok[data-done="`+name+`"]`)))
	step(t, ctx, "action "+name, steps...)
}

func caseState(t *testing.T, ctx context.Context) string {
	return eval[string](t, ctx, `document.getElementById('case-state').dataset.state`)
}

// TestConsoleInChromium walks the case loop through the pages in a real
// browser: a dispatcher sees a dump arrive live, opens it, sees where it
// happened and the load curve, and transfers it to the district's bureau;
// the bureau's crew accepts it and reports it handled with a comment and a
// photo; the dispatcher verifies and closes it. Along the way each role sees
// only its cases, and a forged POST without the CSRF token is refused.
func TestConsoleInChromium(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, Options{})
	dir := shots(t)
	base := e.srv.URL
	now := time.Now()
	if err := e.svc.Raise(context.Background(), binOverflow("bin-7", now.Add(-2*time.Hour))); err != nil {
		t.Fatal(err)
	}

	// The dispatcher logs in by keyboard and waits on the queue.
	shootLogin := func() {
		step(t, ctx, "login page", chromedp.Navigate(base+"/login?lang=en"), chromedp.WaitVisible(chromedp.CSS("#name")))
		checkLabels(t, ctx, "login")
		shoot(t, ctx, dir, "login")
	}
	shootLogin()
	loginByKeyboard(t, ctx, base, "dispatcher")
	step(t, ctx, "queue", chromedp.Navigate(base+"/cases"), chromedp.WaitVisible(chromedp.CSS(`tr[data-id="1"]`)))
	checkLabels(t, ctx, "queue")
	step(t, ctx, "first Tab", chromedp.KeyEvent("\t"))
	if cls := eval[string](t, ctx, `document.activeElement.className`); cls != "skip" {
		t.Errorf("queue: the first Tab stop is %q, want the skip link", cls)
	}
	// Give the event stream a moment to connect, then a truck dumps.
	step(t, ctx, "event stream", chromedp.Sleep(500*time.Millisecond))
	e.dump(t, "truck-7", now.Add(-20*time.Minute))
	step(t, ctx, "the new case arrives live", chromedp.WaitVisible(chromedp.CSS(`tr[data-id="2"]`)), chromedp.WaitVisible(chromedp.CSS("#live")))
	if n := eval[string](t, ctx, `document.getElementById('live-n').textContent`); n != "1" {
		t.Errorf("badge counts %q new cases, want 1", n)
	}
	if n := eval[string](t, ctx, `document.getElementById('count-dispatched').textContent`); n != "2" {
		t.Errorf("the dispatched count says %s after the new case, want 2", n)
	}
	if first := eval[string](t, ctx, `document.querySelector('#queue-body tr').dataset.id`); first != "2" {
		t.Errorf("the new case is not on top: first row is %s", first)
	}
	shoot(t, ctx, dir, "queue")

	// It opens the case: the map with the track and the load curve.
	step(t, ctx, "open the case", chromedp.Click(chromedp.CSS(`tr[data-id="2"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#map[data-ready="1"]`)), chromedp.WaitVisible(chromedp.CSS(`#curve[data-ready="1"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('#map .leaflet-overlay-pane canvas, #map .leaflet-overlay-pane path').length`); n == 0 {
		t.Error("nothing drawn on the case map")
	}
	if legend := eval[string](t, ctx, `document.querySelector('#curve .u-legend').textContent`); !strings.Contains(legend, "load_kg") {
		t.Errorf("the curve does not show the load: legend %q", legend)
	}
	if track := eval[int](t, ctx, `JSON.parse(document.getElementById('case-data').textContent).track.length`); track < 8 {
		t.Errorf("track has %d points, want the stop's 9", track)
	}
	checkLabels(t, ctx, "case")
	shoot(t, ctx, dir, "case")
	act(t, ctx, "transfer", chromedp.SetValue(chromedp.CSS("#u-transfer"), "enforcement-north"),
		chromedp.SendKeys(chromedp.CSS("#n-transfer"), "north bureau, please go"))
	if st := caseState(t, ctx); st != string(cases.Transferred) {
		t.Fatalf("after the transfer the case is %s", st)
	}

	// Another look around while logged in as the city.
	for _, p := range []string{"fleet", "assessment", "account", "admin/users"} {
		step(t, ctx, p, chromedp.Navigate(base+"/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if p == "fleet" {
			step(t, ctx, "fleet ready", chromedp.WaitVisible(chromedp.CSS(`#fleetmap[data-ready="1"]`)))
			rows := eval[string](t, ctx, `Array.from(document.querySelectorAll('#device-rows tr')).map(r => r.cells[0].textContent + ':' + r.cells[3].textContent).join(' ')`)
			if want := "bin-7:Open case bin-8:Full toilet-1:OK truck-7:Open case truck-8:Offline"; rows != want {
				t.Errorf("fleet rows %q, want %q", rows, want)
			}
			if n := eval[int](t, ctx, `document.querySelectorAll('#fleetmap .leaflet-overlay-pane canvas').length`); n == 0 {
				t.Error("no devices drawn on the fleet map")
			}
		}
		checkLabels(t, ctx, p)
		shoot(t, ctx, dir, strings.ReplaceAll(p, "/", "-"))
	}
	logout(t, ctx)

	// The north bureau's crew: sees the case, not the bin; accepts and handles it with a photo.
	loginByKeyboard(t, ctx, base, "crew")
	step(t, ctx, "crew queue", chromedp.Navigate(base+"/cases"), chromedp.WaitVisible(chromedp.CSS(`tr[data-id="2"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-id="1"]').length`); n != 0 {
		t.Error("the crew sees the bin's case")
	}
	shoot(t, ctx, dir, "queue-unit")
	photo := filepath.Join(t.TempDir(), "site.png")
	if err := os.WriteFile(photo, pngBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "crew opens the case", chromedp.Click(chromedp.CSS(`tr[data-id="2"] a`)), chromedp.WaitVisible(chromedp.CSS("#a-accept")))
	act(t, ctx, "accept")
	act(t, ctx, "handle", chromedp.SendKeys(chromedp.CSS("#n-handle"), "waste removed, site swept"),
		chromedp.SetUploadFiles(chromedp.CSS("#p-handle"), []string{photo}))
	if st := caseState(t, ctx); st != string(cases.Handled) {
		t.Fatalf("after handling the case is %s", st)
	}
	step(t, ctx, "photo shown", chromedp.WaitVisible(chromedp.CSS("img.thumb")))
	if ok := eval[bool](t, ctx, `document.querySelector('img.thumb').naturalWidth === 40`); !ok {
		t.Error("the uploaded photo does not load")
	}
	shoot(t, ctx, dir, "case-handled")
	if n := eval[int](t, ctx, `document.querySelectorAll('#a-verify').length`); n != 0 {
		t.Error("a unit is offered verification")
	}
	// A forged POST from the page, without the token, is refused.
	forged := eval[int](t, ctx, `fetch('/cases/2/act', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
		body: 'action=comment&note=forged'}).then(r => r.status)`)
	if forged != 403 {
		t.Errorf("forged POST answered %d, want 403", forged)
	}
	bin := eval[int](t, ctx, `fetch('/cases/1').then(r => r.status)`)
	if bin != 404 {
		t.Errorf("the crew opens the bin's case: %d, want 404", bin)
	}
	logout(t, ctx)

	// The dispatcher verifies and closes.
	loginByKeyboard(t, ctx, base, "dispatcher")
	step(t, ctx, "dispatcher opens the case", chromedp.Navigate(base+"/cases/2"), chromedp.WaitVisible(chromedp.CSS("#a-verify")))
	act(t, ctx, "verify", chromedp.SendKeys(chromedp.CSS("#n-verify"), "checked on site"))
	if st := caseState(t, ctx); st != string(cases.Closed) {
		t.Fatalf("after verification the case is %s", st)
	}
	shoot(t, ctx, dir, "case-closed")
	step(t, ctx, "assessment after the closure", chromedp.Navigate(base+"/assessment"), chromedp.WaitVisible(chromedp.CSS("table.kpis")))
	if row := eval[string](t, ctx, `Array.from(document.querySelectorAll('table.kpis tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent.trim()).join(' ')).join(' | ')`); !strings.Contains(row, "enforcement-north  1 1 100.0% 100.0% 0.0% 0.0%") {
		t.Errorf("assessment after the closure: %q", row)
	}
	shoot(t, ctx, dir, "assessment-closed")

	// Filtering swaps the table in place (htmx) and the live stream follows
	// the filter: a new bin does not show among the dumps, a new dump does.
	step(t, ctx, "queue again", chromedp.Navigate(base+"/cases"), chromedp.WaitVisible(chromedp.CSS(`tr[data-id="1"]`)))
	eval[bool](t, ctx, `(window.sameDocument = true)`)
	step(t, ctx, "filter dumps", chromedp.SetValue(chromedp.CSS("#f-type"), "illegal_dumping"),
		chromedp.Click(chromedp.CSS("#filters button[type=submit]")), chromedp.WaitNotPresent(chromedp.CSS(`tr[data-id="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-id="2"]`)))
	if !eval[bool](t, ctx, `window.sameDocument === true && location.search.includes('type=illegal_dumping')`) {
		t.Error("the filter reloaded the page or did not update the address")
	}
	step(t, ctx, "stream reconnects", chromedp.Sleep(700*time.Millisecond))
	if err := e.svc.Raise(context.Background(), binOverflow("bin-9", time.Now())); err != nil {
		t.Fatal(err)
	}
	e.dump(t, "truck-9", time.Now().Add(-5*time.Minute))
	step(t, ctx, "the new dump arrives", chromedp.WaitVisible(chromedp.CSS(`tr[data-id="4"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-id="3"]').length`); n != 0 {
		t.Error("a bin arrived among the filtered dumps")
	}
	logout(t, ctx)

	// The contractor sees only its bin, in Chinese.
	loginByKeyboard(t, ctx, base, "green")
	step(t, ctx, "green queue", chromedp.Navigate(base+"/cases"), chromedp.WaitVisible(chromedp.CSS(`tr[data-id="1"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-id="2"]').length`); n != 0 {
		t.Error("the contractor sees the dump")
	}
	if lang := eval[string](t, ctx, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("green's console speaks %q, want zh-CN", lang)
	}
	shoot(t, ctx, dir, "queue-zh")

	c, err := e.svc.Get(context.Background(), cases.System, 2)
	if err != nil || c.State != cases.Closed || c.Open {
		t.Fatalf("case 2 at the end: %+v %v", c, err)
	}
	var actions []string
	for _, h := range c.History {
		actions = append(actions, h.Actor+":"+string(h.Action))
	}
	want := "detector:report system:file system:dispatch dispatcher:transfer crew:accept crew:handle dispatcher:verify"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("history %s\nwant    %s", got, want)
	}
}
