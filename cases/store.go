package cases

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// Migrations are numbered SQL files applied in order, each in its own
// transaction, and recorded in schema_migrations(version, applied_at). One
// file serves both databases: the only word that differs, the
// auto-increment key, is written {{ID}}. Gateways that start together on one
// PostgreSQL take an advisory lock, so a migration runs once.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// store is the SQL database behind the service, SQLite or PostgreSQL.
type store struct {
	db     *sql.DB
	driver string
}

func openStore(ctx context.Context, driver, dsn string) (*store, error) {
	var (
		db  *sql.DB
		err error
	)
	switch driver {
	case SQLite:
		// WAL lets readers run beside the writer; BEGIN IMMEDIATE takes the
		// write lock up front (waiting up to busy_timeout), so a transaction
		// never fails upgrading a read lock when another process shares the
		// file; one connection per process keeps its writes strictly serial,
		// which SQLite needs anyway.
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		db, err = sql.Open("sqlite", "file:"+dsn+sep+"_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate")
		if err == nil {
			db.SetMaxOpenConns(1)
		}
	case Postgres:
		db, err = sql.Open("pgx", dsn)
		if err == nil {
			db.SetMaxOpenConns(16)
			db.SetMaxIdleConns(8)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, fmt.Errorf("cases: unknown store driver %q", driver)
	}
	if err != nil {
		return nil, fmt.Errorf("cases: open %s store: %w", driver, err)
	}
	s := &store{db: db, driver: driver}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if driver == SQLite {
			return nil, fmt.Errorf("cases: cannot open the SQLite store %s (check the folder's permissions, or set cases.store.path): %w", dsn, err)
		}
		// The DSN may hold a password: name the settings, not the value.
		return nil, fmt.Errorf("cases: cannot connect to the postgres store (cases.store.dsn or dsn_env): %w", err)
	}
	if err := s.checkVersion(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.db.Close() }

// rebind turns ? placeholders into PostgreSQL's $1, $2...
func (s *store) rebind(q string) string {
	if s.driver != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's writer lock
// already serialises writers.
func (s *store) forUpdate() string {
	if s.driver == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

func (s *store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

func (s *store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

// insertID inserts a row and returns its id (RETURNING works on both).
func (s *store) insertID(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	var id int64
	err := s.queryRow(ctx, q, query+" RETURNING id", args...).Scan(&id)
	return id, err
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("cases: migration %s is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements: they end with a semicolon
// at the end of a line; lines starting with -- are comments.
func statements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// migrationLock is the PostgreSQL advisory lock key of the case migrations.
const migrationLock = 7_021_993_301

func (s *store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.driver == Postgres {
		id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		// Two gateways creating the table at once: one wins, the other may
		// see a duplicate; the table is there either way.
		if _, err2 := s.db.ExecContext(ctx, `SELECT 1 FROM schema_migrations`); err2 != nil {
			return fmt.Errorf("cases: create schema_migrations: %w", err)
		}
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if s.driver == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
					return err
				}
			}
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, st := range statements(strings.ReplaceAll(m.sql, "{{ID}}", id)) {
				if _, err := tx.ExecContext(ctx, st); err != nil {
					return fmt.Errorf("%w\n%s", err, st)
				}
			}
			_, err := s.exec(ctx, tx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("cases: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// ms converts a time to the store's Unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts the store's Unix milliseconds back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
