package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

// TestWithdraw: a violation late readings no longer support is taken back.
// A case it alone holds open is resolved with the note; a case other
// occurrences hold open only gets the note.
func TestWithdraw(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/unused"), Deps{})
		t0 := e.clock.Now()
		for _, k := range []string{"ovf-1", "ovf-2"} {
			if err := e.svc.Raise(ctx, binOverflow(k, t0, false)); err != nil {
				t.Fatal(err)
			}
		}
		const why = "withdrawn: readings that arrived late no longer support it"
		if err := e.svc.Withdraw(ctx, binOverflow("ovf-1", t0, false), why); err != nil {
			t.Fatal(err)
		}
		page, err := e.svc.List(ctx, System, Filter{Type: violations.BinOverflow})
		if err != nil || len(page.Cases) != 1 {
			t.Fatalf("cases: %+v %v", page.Cases, err)
		}
		c, err := e.svc.Get(ctx, System, page.Cases[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		last := c.History[len(c.History)-1]
		if !c.Open || last.Action != Comment || !strings.Contains(last.Note, "ovf-1 "+why) {
			t.Fatalf("after withdrawing one of two: open %v, last %+v", c.Open, last)
		}
		e.clock.Advance(time.Minute)
		if err := e.svc.Withdraw(ctx, binOverflow("ovf-2", t0, false), why); err != nil {
			t.Fatal(err)
		}
		c, err = e.svc.Get(ctx, System, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		last = c.History[len(c.History)-1]
		if c.Open || c.State != Closed || last.Action != Resolve || !strings.Contains(last.Note, "ovf-2 "+why) {
			t.Fatalf("after withdrawing the last: state %s open %v, last %+v", c.State, c.Open, last)
		}
		// Withdrawing what has no open case does nothing.
		if err := e.svc.Withdraw(ctx, binOverflow("ovf-9", t0, false), why); err != nil {
			t.Fatal(err)
		}
	})
}
