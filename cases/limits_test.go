package cases

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Notes are bounded in length and refuse control and bidirectional
// characters; a case takes a bounded number of comments; a defer cannot
// move the close deadline beyond the horizon.
func TestCaseInputLimits(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		if err := e.svc.Raise(ctx, dumpingAtFarm(e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		page, _ := e.svc.List(ctx, System, Filter{})
		id := page.Cases[0].ID
		city := Actor{Name: "city-office-desk", Role: RoleCity}
		act := func(req ActionRequest) error {
			_, err := e.svc.Act(ctx, city, id, req)
			return err
		}
		for name, note := range map[string]string{
			"bidi override": "paid \u202egnp.exe",
			"bidi isolate":  "a\u2067b",
			"control":       "bell\x07",
			"escape":        "\x1b[31mred",
			"too long":      strings.Repeat("é", MaxNoteRunes+1),
			"invalid utf-8": "a\xffb",
		} {
			if err := act(ActionRequest{Action: Comment, Note: note}); !errors.Is(err, ErrBadRequest) {
				t.Errorf("comment with %s: got %v, want a bad request", name, err)
			}
		}
		if err := act(ActionRequest{Action: Comment, Note: "two lines\n\tindented, 中文"}); err != nil {
			t.Fatalf("a plain multi-line comment: %v", err)
		}
		if err := act(ActionRequest{Action: Transfer, Unit: "city-office\u202e"}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("unit with a bidi character: got %v", err)
		}
		for i := 1; i < MaxComments; i++ {
			if err := act(ActionRequest{Action: Comment, Note: "ok"}); err != nil {
				t.Fatalf("comment %d: %v", i+1, err)
			}
		}
		if err := act(ActionRequest{Action: Comment, Note: "one too many"}); !errors.Is(err, ErrConflict) {
			t.Errorf("comment %d: got %v, want a conflict", MaxComments+1, err)
		}
		far := e.clock.Now().Add(MaxDeferHorizon + time.Hour)
		if err := act(ActionRequest{Action: Defer, Until: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("defer to 9999-12-31: got %v, want a bad request", err)
		}
		if err := act(ActionRequest{Action: Defer, Until: far}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("defer beyond the horizon: got %v, want a bad request", err)
		}
		if err := act(ActionRequest{Action: Defer, Until: e.clock.Now().Add(30 * 24 * time.Hour)}); err != nil {
			t.Errorf("defer by 30 days: %v", err)
		}
	})
}
