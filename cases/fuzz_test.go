package cases

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// FuzzActionBody posts arbitrary bodies to every action of a real case
// through the API. Whatever the body, the answer is a 2xx or a 4xx with a
// JSON error, never a 5xx, and the case stays readable.
func FuzzActionBody(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"note":"x"}`, `{"note":"a","note":"b"}`, `{"until":"9999-12-31T00:00:00Z"}`,
		`{"pass":true}`, `{"unit":"city-office"}`, `{"note":"\u202e"}`, `{"note":1}`, `[]`, `null`,
		`{"note":"x"} trailing`, `{"until":"2026-12-01T00:00:00+08:00","note":"later"}`,
	} {
		for a := range APIActions {
			f.Add(uint8(a), []byte(s))
		}
	}
	e := newEnv(f, testConfig(StoreConfig{Driver: SQLite, Path: filepath.Join(f.TempDir(), "cases.db")}, "http://127.0.0.1:1/x"), Deps{})
	ctx := context.Background()
	if err := e.svc.Raise(ctx, dumpingAtFarm(e.clock.Now())); err != nil {
		f.Fatal(err)
	}
	page, _ := e.svc.List(ctx, System, Filter{})
	id := page.Cases[0].ID
	f.Fuzz(func(t *testing.T, a uint8, body []byte) {
		action := APIActions[int(a)%len(APIActions)]
		req, err := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/cases/%d/%s", e.api.URL, id, action), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tokCity)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s with %q: %d %s", action, body, resp.StatusCode, out)
		}
		if _, err := e.svc.Get(ctx, System, id); err != nil {
			t.Fatalf("case unreadable after %s with %q: %v", action, body, err)
		}
	})
}

// A body with a key given twice, or data after the object, is refused.
func TestActionBodyStrictJSON(t *testing.T) {
	e := newEnv(t, testConfig(StoreConfig{Driver: SQLite, Path: filepath.Join(t.TempDir(), "cases.db")}, "http://127.0.0.1:1/x"), Deps{})
	ctx := context.Background()
	if err := e.svc.Raise(ctx, dumpingAtFarm(e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	page, _ := e.svc.List(ctx, System, Filter{})
	id := page.Cases[0].ID
	for _, body := range []string{`{"note":"a","note":"b"}`, `{"note":"a"} {"note":"b"}`} {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/cases/%d/comment", e.api.URL, id), bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+tokCity)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("comment with %s: got %d, want 400", body, resp.StatusCode)
		}
	}
}
