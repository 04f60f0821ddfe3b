package cases

import (
	"context"
	"errors"
	"testing"
)

func TestStoreRefusesANewerSchema(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		cfg := testConfig(st, "")
		cfg.Units[0].SecretEnv = ""
		e := newEnv(t, cfg, Deps{})
		var v int
		if err := e.svc.st.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() || v < 1 {
			t.Fatalf("schema version %d (err %v), want SchemaVersion() = %d", v, err, SchemaVersion())
		}
		if _, err := e.svc.st.exec(ctx, e.svc.st.db, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		e.svc.Close()
		_, err := Open(ctx, cfg, Deps{Getenv: func(string) string { return "" }})
		if !errors.Is(err, ErrNewerStore) {
			t.Fatalf("reopening a store one migration ahead: %v, want ErrNewerStore", err)
		}
	})
}
