package cases

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Backup layouts written into a backup folder.
const (
	BackupSQLite  = "sqlite"  // cases.db: a consistent copy made by VACUUM INTO
	BackupLogical = "logical" // tables/NAME.jsonl: every row of every table
)

// BackupInfo describes a store backup.
type BackupInfo struct {
	Driver        string   `json:"driver"`
	Layout        string   `json:"layout"`
	SchemaVersion int      `json:"schema_version"`
	Tables        []string `json:"tables,omitempty"`
	Rows          int64    `json:"rows"`
}

// StoreLocation resolves where a store configuration points: the SQLite
// file (relative paths against dir) or the PostgreSQL DSN (from dsn_env
// through getenv).
func StoreLocation(st StoreConfig, dir string, getenv func(string) string) (driver, dsn string, err error) {
	c := Config{Store: st}
	c.applyDefaults()
	switch c.Store.Driver {
	case SQLite:
		p := c.Store.Path
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		return SQLite, p, nil
	case Postgres:
		dsn := c.Store.DSN
		if c.Store.DSNEnv != "" {
			if getenv == nil {
				getenv = os.Getenv
			}
			if dsn = getenv(c.Store.DSNEnv); dsn == "" {
				return "", "", fmt.Errorf("cases: environment variable %s (store DSN) is not set", c.Store.DSNEnv)
			}
		}
		return Postgres, dsn, nil
	}
	return "", "", fmt.Errorf("cases: unknown store driver %q", c.Store.Driver)
}

// BackupStore writes a consistent copy of the store into the folder out,
// while gateways keep using it: SQLite through VACUUM INTO (one read
// transaction, so a point in time); PostgreSQL as a logical export of every
// table in one repeatable-read transaction, which any PostgreSQL version
// restores (RestoreStore) without a matching pg_dump.
func BackupStore(ctx context.Context, driver, dsn, out string) (BackupInfo, error) {
	st, err := openStore(ctx, driver, dsn)
	if err != nil {
		return BackupInfo{}, err
	}
	defer st.close()
	info := BackupInfo{Driver: driver}
	if info.SchemaVersion, err = st.storeVersion(ctx); err != nil {
		return info, err
	}
	if driver == SQLite {
		info.Layout = BackupSQLite
		dst := filepath.Join(out, "cases.db")
		if _, err := st.db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
			return info, fmt.Errorf("cases: backup: vacuum into %s: %w", dst, err)
		}
		err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cases`).Scan(&info.Rows)
		return info, err
	}
	info.Layout = BackupLogical
	tx, err := st.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return info, err
	}
	defer tx.Rollback()
	if info.Tables, err = st.tables(ctx, tx); err != nil {
		return info, err
	}
	if err := os.MkdirAll(filepath.Join(out, "tables"), 0o750); err != nil {
		return info, err
	}
	for _, t := range info.Tables {
		n, err := exportTable(ctx, tx, t, filepath.Join(out, "tables", t+".jsonl"))
		if err != nil {
			return info, fmt.Errorf("cases: backup: table %s: %w", t, err)
		}
		info.Rows += n
	}
	return info, nil
}

// tables lists the store's tables, parents before the tables whose foreign
// keys point at them.
func (s *store) tables(ctx context.Context, q querier) ([]string, error) {
	list := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	fks := `SELECT m.name, p."table" FROM sqlite_master m, pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`
	if s.driver == Postgres {
		list = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
		fks = `SELECT tc.table_name, ccu.table_name FROM information_schema.table_constraints tc
JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name AND tc.table_schema = ccu.table_schema
WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()`
	}
	names, err := stringColumn(ctx, q, list)
	if err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	rows, err := q.QueryContext(ctx, fks)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, err
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	rows.Close()
	var out []string
	var visit func(n string, depth int)
	visit = func(n string, depth int) {
		if slices.Contains(out, n) || depth > len(names) {
			return
		}
		for _, p := range parents[n] {
			visit(p, depth+1)
		}
		out = append(out, n)
	}
	for _, n := range names {
		visit(n, 0)
	}
	return out, rows.Err()
}

func stringColumn(ctx context.Context, q querier, query string) ([]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// exportTable writes a table as JSON lines: the column names, then one
// array of values per row.
func exportTable(ctx context.Context, q querier, table, path string) (int64, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT * FROM %q`, table))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	if err := enc.Encode(cols); err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		if err := enc.Encode(vals); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Sync()
}

// ErrStoreExists is returned by RestoreStore when the target holds data
// and force is not set.
var ErrStoreExists = errors.New("the case store already holds data")

// RestoreStore puts a backup made by BackupStore (the folder in) into the
// store at driver/dsn, then migrates it forward to this version's schema.
// A store that holds cases is replaced only with force. A backup of a newer
// schema than this version knows is refused. Stop the gateways first.
func RestoreStore(ctx context.Context, driver, dsn, in string, info BackupInfo, force bool) error {
	if info.SchemaVersion > SchemaVersion() {
		return fmt.Errorf("cases: %w: the backup has schema version %d, this sanigate knows up to %d",
			ErrNewerStore, info.SchemaVersion, SchemaVersion())
	}
	switch {
	case info.Layout == BackupSQLite && driver == SQLite:
		return restoreSQLiteFile(ctx, dsn, filepath.Join(in, "cases.db"), force)
	case info.Layout == BackupLogical || info.Layout == BackupSQLite:
		return restoreLogical(ctx, driver, dsn, in, info, force)
	}
	return fmt.Errorf("cases: restore: unknown backup layout %q", info.Layout)
}

func restoreSQLiteFile(ctx context.Context, path, src string, force bool) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 && !force {
		return fmt.Errorf("cases: restore into %s: %w (use -force to replace it)", path, ErrStoreExists)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cases: restore: %w", err)
	}
	tmp := path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("cases: restore: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	// The old file's write-ahead log belongs to the old file.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	st, err := openStore(ctx, SQLite, path) // checks the version and migrates forward
	if err != nil {
		return err
	}
	return st.close()
}
