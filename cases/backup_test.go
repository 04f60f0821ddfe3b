package cases

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/pgtest"
)

// snapshot is what a store holds, as the API shows it.
func snapshot(t *testing.T, s *Service) string {
	t.Helper()
	ctx := context.Background()
	page, err := s.List(ctx, System, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, c := range page.Cases {
		full, err := s.Get(ctx, System, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.Deliveries(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%+v\n%+v\n", *full, ds)
	}
	return out
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, cst)}
		rcv := newReceiver(t, clock.Now)
		cfg := testConfig(st, rcv.srv.URL)
		e := newEnv(t, cfg, Deps{Clock: clock.Now})
		if err := e.svc.Raise(ctx, dumpingAtFarm(clock.Now())); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Raise(ctx, binOverflow("ovf-1", clock.Now(), false)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		page, _ := e.svc.List(ctx, System, Filter{})
		if _, err := e.svc.Act(ctx, System, page.Cases[0].ID, ActionRequest{Action: "accept", Note: "on our way"}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, e.svc)
		if len(page.Cases) != 2 || before == "" {
			t.Fatalf("setup: %d cases", len(page.Cases))
		}

		driver, dsn, err := StoreLocation(st, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		info, err := BackupStore(ctx, driver, dsn, dir) // while the service has the store open
		if err != nil {
			t.Fatal(err)
		}
		wantLayout := map[string]string{SQLite: BackupSQLite, Postgres: BackupLogical}[driver]
		if info.Layout != wantLayout || info.SchemaVersion != SchemaVersion() || info.Rows == 0 {
			t.Fatalf("backup info %+v, want layout %s at schema %d with rows", info, wantLayout, SchemaVersion())
		}

		// Into an empty store of the same kind.
		target := StoreConfig{Driver: SQLite, Path: filepath.Join(t.TempDir(), "restored.db")}
		if driver == Postgres {
			target = StoreConfig{Driver: Postgres, DSN: pgtest.DB(t)}
		}
		_, tdsn, _ := StoreLocation(target, "", nil)
		if err := RestoreStore(ctx, target.Driver, tdsn, dir, info, false); err != nil {
			t.Fatal(err)
		}
		cfg2 := cfg
		cfg2.Store = target
		e2 := newEnv(t, cfg2, Deps{Clock: clock.Now})
		if after := snapshot(t, e2.svc); after != before {
			t.Fatalf("restored store differs:\nbefore\n%s\nafter\n%s", before, after)
		}
		// New cases continue after the restored ids.
		v := binOverflow("ovf-9", clock.Now().Add(time.Hour), false)
		v.Device, v.Place = "bin-elsewhere", "elsewhere"
		if err := e2.svc.Raise(ctx, v); err != nil {
			t.Fatal(err)
		}
		p2, _ := e2.svc.List(ctx, System, Filter{})
		var maxID int64
		for _, c := range p2.Cases {
			maxID = max(maxID, c.ID)
		}
		if len(p2.Cases) != 3 || maxID != 3 {
			t.Errorf("after a new case: %d cases, highest id %d; want 3 and 3", len(p2.Cases), maxID)
		}
		e2.svc.Close()

		// A store holding cases is not overwritten without force.
		if err := RestoreStore(ctx, target.Driver, tdsn, dir, info, false); !errors.Is(err, ErrStoreExists) {
			t.Errorf("restore over data: %v, want ErrStoreExists", err)
		}
		if err := RestoreStore(ctx, target.Driver, tdsn, dir, info, true); err != nil {
			t.Errorf("restore with force: %v", err)
		}
		newer := info
		newer.SchemaVersion = SchemaVersion() + 1
		if err := RestoreStore(ctx, target.Driver, tdsn, dir, newer, true); !errors.Is(err, ErrNewerStore) {
			t.Errorf("restore of a newer schema: %v, want ErrNewerStore", err)
		}
	})
}
