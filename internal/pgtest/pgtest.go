// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// temporary folder, postgres on a free loopback port with trust
// authentication, stopped at cleanup. The server binaries come from Debian's
// `postgresql` package (scripts/install-postgres.sh installs it), from the
// folder named by SANIGATE_PG_BIN, or from PATH.
//
// PostgreSQL refuses to run as root, so when the tests run as root the data
// folder is handed to an unprivileged account (postgres, else nobody) and the
// server runs under that account's uid and gid.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/sanigate/sanigate/internal/testenv"
)

// Server is a running PostgreSQL server owned by a test or a test binary.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int
	dir  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	dbs  atomic.Int64
	stop sync.Once
}

// binDir finds the folder holding initdb and postgres.
func binDir() (string, bool) {
	if d := os.Getenv("SANIGATE_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, true
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), true
	}
	// Debian keeps server binaries out of PATH, one folder per major version.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, true
		}
	}
	return "", false
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Available reports whether PostgreSQL's server binaries were found.
func Available() bool {
	_, ok := binDir()
	return ok
}

// Start runs a new server for t and stops it at t's cleanup. When PostgreSQL
// is not installed the test is skipped, or fails under CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if errors.Is(err, errMissing) {
		testenv.Missing(t, "PostgreSQL (initdb, postgres)", "run scripts/install-postgres.sh (apt-get install postgresql), or set SANIGATE_PG_BIN")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// DB returns the DSN of a fresh, empty database on a server shared by the
// whole test binary, started on first use. Call StopShared from TestMain
// after the tests (Main does both). A missing installation skips the test,
// or fails it under CI=true.
func DB(t testing.TB) string {
	t.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start()
	}
	s, err := shared, sharedErr
	sharedMu.Unlock()
	if errors.Is(err, errMissing) {
		testenv.Missing(t, "PostgreSQL (initdb, postgres)", "run scripts/install-postgres.sh (apt-get install postgresql), or set SANIGATE_PG_BIN")
	}
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := s.CreateDB()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// StopShared stops the server DB started, if any.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Main runs the tests of a package that uses DB and stops the shared server
// afterwards: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

var errMissing = errors.New("pgtest: PostgreSQL is not installed")

// account returns the credential to run the server under: nil when we are
// not root, else the postgres account, else nobody.
func account() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root and no unprivileged account (postgres, nobody) to run PostgreSQL under")
}

func start() (*Server, error) {
	bin, ok := binDir()
	if !ok {
		return nil, errMissing
	}
	cred, err := account()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parent folders are private to us, and the server may
	// run under another account that must reach its data folder.
	dir, err := os.MkdirTemp("", "sanigate-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, log: filepath.Join(dir, "postgres.log"), done: make(chan struct{})}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		for _, p := range []string{dir, data} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("pgtest: hand %s to uid %d: %w", p, cred.Uid, err)
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v: %s", err, tail(string(out)))
	}

	var last error
	for try := 0; try < 3; try++ { // the free port may be taken between probe and bind
		s.Port = freePort()
		if last = s.run(bin, data, cred); last == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, last
}

func (s *Server) run(bin, data string, cred *syscall.Credential) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=32MB")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a terminal's Ctrl-C reaches us, not it; and
	// an immediate shutdown if this process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	db, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			b, _ := os.ReadFile(s.log)
			return fmt.Errorf("pgtest: postgres exited at start: %s", tail(string(b)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("pgtest: postgres did not answer within 30s: %v", err)
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// DSN is the connection string of the server's postgres database.
func (s *Server) DSN() string { return s.dsn("postgres") }

// CreateDB creates a new empty database and returns its DSN.
func (s *Server) CreateDB() (string, error) {
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	db, err := sql.Open("pgx", s.DSN())
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// Stop shuts the server down (fast shutdown, then kill) and removes its folder.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(15 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		os.RemoveAll(s.dir)
	})
}

func freePort() int {
	p, _ := testenv.LoopbackPort() // 0 on failure: the server then fails to start, and says so
	return p
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
