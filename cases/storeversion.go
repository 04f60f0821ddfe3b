package cases

import (
	"context"
	"errors"
	"fmt"
)

// ErrNewerStore is returned by Open for a case store migrated by a newer
// sanigate: this one does not know its schema, and leaves it untouched.
var ErrNewerStore = errors.New("case store written by a newer sanigate")

// SchemaVersion is the case store's format version this code migrates to:
// the number of its last migration. A store records the migrations applied
// in schema_migrations; Open applies the missing ones in order, so a store
// only ever moves forward.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// storeVersion is the highest migration applied to the store (0 for a new
// one).
func (s *store) storeVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		// No table yet: a new store.
		return 0, nil
	}
	return v, nil
}

// checkVersion refuses a store a newer sanigate has migrated.
func (s *store) checkVersion(ctx context.Context) error {
	have, err := s.storeVersion(ctx)
	if err != nil {
		return err
	}
	if want := SchemaVersion(); have > want {
		return fmt.Errorf("cases: %w: schema version %d, this sanigate knows up to %d; upgrade sanigate or restore a backup",
			ErrNewerStore, have, want)
	}
	return nil
}
