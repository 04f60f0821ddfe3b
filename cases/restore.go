package cases

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// restoreLogical loads a logical backup into the store, replacing what it
// holds, in one transaction: a failed restore leaves the store as it was.
func restoreLogical(ctx context.Context, driver, dsn, in string, info BackupInfo, force bool) error {
	if info.SchemaVersion != SchemaVersion() {
		// Migrations may rewrite rows; loading old rows under a new schema
		// would skip that. Restore with the version that wrote the backup,
		// then upgrade.
		return fmt.Errorf("cases: restore: the backup has schema version %d, this sanigate %d; restore it with the sanigate that made it, then upgrade",
			info.SchemaVersion, SchemaVersion())
	}
	st, err := openStore(ctx, driver, dsn)
	if err != nil {
		return err
	}
	defer st.close()
	var n int64
	if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cases`).Scan(&n); err != nil {
		return err
	}
	if n > 0 && !force {
		return fmt.Errorf("cases: restore: %w (%d cases; use -force to replace them)", ErrStoreExists, n)
	}
	return st.tx(ctx, func(tx *sql.Tx) error {
		have, err := st.tables(ctx, tx)
		if err != nil {
			return err
		}
		var load []string
		for _, t := range info.Tables {
			if t != "schema_migrations" && slices.Contains(have, t) {
				load = append(load, t)
			}
		}
		if err := st.clear(ctx, tx, have); err != nil {
			return err
		}
		for _, t := range load {
			if err := st.importTable(ctx, tx, t, filepath.Join(in, "tables", t+".jsonl")); err != nil {
				return fmt.Errorf("cases: restore: table %s: %w", t, err)
			}
		}
		return nil
	})
}

// clear empties every table but schema_migrations, children first.
func (s *store) clear(ctx context.Context, tx *sql.Tx, tables []string) error {
	var del []string
	for _, t := range tables {
		if t != "schema_migrations" {
			del = append(del, fmt.Sprintf("%q", t))
		}
	}
	if len(del) == 0 {
		return nil
	}
	if s.driver == Postgres {
		_, err := tx.ExecContext(ctx, "TRUNCATE "+strings.Join(del, ", ")+" RESTART IDENTITY")
		return err
	}
	for i := len(del) - 1; i >= 0; i-- {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+del[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) importTable(ctx context.Context, tx *sql.Tx, table, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	if !sc.Scan() {
		return fmt.Errorf("no header line: %v", sc.Err())
	}
	var cols []string
	if err := json.Unmarshal(sc.Bytes(), &cols); err != nil || len(cols) == 0 {
		return fmt.Errorf("bad header line: %v", err)
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	ins := fmt.Sprintf("INSERT INTO %q (%s) VALUES (%s)", table, strings.Join(quoted, ", "),
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	stmt, err := tx.PrepareContext(ctx, s.rebind(ins))
	if err != nil {
		return err
	}
	defer stmt.Close()
	line := 1
	for sc.Scan() {
		line++
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var vals []any
		if err := dec.Decode(&vals); err != nil || len(vals) != len(cols) {
			return fmt.Errorf("line %d: not a row of %d values", line, len(cols))
		}
		for i, v := range vals {
			if num, ok := v.(json.Number); ok {
				if n, err := num.Int64(); err == nil {
					vals[i] = n
				} else if fl, err := num.Float64(); err == nil {
					vals[i] = fl
				}
			}
		}
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if s.driver == Postgres && slices.Contains(cols, "id") {
		// The identity continues after the restored ids (tables whose id
		// is not a serial, such as sessions keyed by a token digest, have
		// no sequence to move).
		var seq sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT pg_get_serial_sequence($1, 'id')`, table).Scan(&seq); err != nil {
			return err
		}
		if !seq.Valid {
			return nil
		}
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), COALESCE((SELECT MAX(id) FROM %q), 0) + 1, false)`, table, table)
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
