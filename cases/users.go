package cases

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/sanigate/sanigate/fleet"
)

// User is a person who works cases in the console. Its role, district and
// unit scope what it sees and may do exactly like an API token's.
type User struct {
	ID       int64
	Name     string
	Role     string
	District string
	Unit     string
	// Lang is the console language: "zh" or "en".
	Lang string
	// Admin users may create other users.
	Admin     bool
	Disabled  bool
	CreatedAt time.Time
}

// Actor is the user as the case service knows an actor.
func (u User) Actor() Actor {
	return Actor{Name: u.Name, Role: u.Role, District: u.District, Unit: u.Unit}
}

// Errors of the user store.
var (
	// ErrBadLogin: unknown user, disabled user or wrong password; callers
	// must not tell which.
	ErrBadLogin = errors.New("wrong user name or password")
	// ErrNoSession: the session does not exist or has expired.
	ErrNoSession = errors.New("no such session")
)

// Languages the console speaks.
var Languages = []string{"zh", "en"}

// argon2id parameters of new hashes (OWASP's minimum: 19 MiB, 2 passes).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashUserPassword returns the argon2id hash of password in PHC form.
func HashUserPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("cases: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// dummyHash is verified against when the user does not exist, so that a
// login for an unknown name costs as much as one with a wrong password.
var dummyHash, _ = HashUserPassword("no such user")

// CheckPassword says what is wrong with a new password, or nil.
func CheckPassword(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n < 10:
		return fmt.Errorf("%w: a password needs at least 10 characters", ErrBadRequest)
	case len(pw) > 1024:
		return fmt.Errorf("%w: a password has at most 1024 bytes", ErrBadRequest)
	}
	return nil
}

func (s *Service) validUser(u User) error {
	if u.Name == "" || len(u.Name) > 64 || strings.ContainsAny(u.Name, " \t\r\n/\\<>\"'&") {
		return fmt.Errorf("%w: a user name has 1 to 64 characters, no spaces or markup", ErrBadRequest)
	}
	switch u.Role {
	case RoleCity:
	case RoleDistrict:
		if u.District == "" {
			return fmt.Errorf("%w: a district user needs its district", ErrBadRequest)
		}
	case RoleUnit:
		if _, ok := s.r().units[u.Unit]; !ok {
			return fmt.Errorf("%w: unknown unit %q", ErrBadRequest, u.Unit)
		}
	default:
		return fmt.Errorf("%w: %q is not a role (city, district, unit)", ErrBadRequest, u.Role)
	}
	if !contains(Languages, u.Lang) {
		return fmt.Errorf("%w: language %q (zh, en)", ErrBadRequest, u.Lang)
	}
	return nil
}

// AddUser stores a new user with password; ErrConflict when the name is taken.
func (s *Service) AddUser(ctx context.Context, u User, password string) (User, error) {
	if u.Lang == "" {
		u.Lang = "zh"
	}
	if u.Role != RoleDistrict {
		u.District = ""
	}
	if u.Role != RoleUnit {
		u.Unit = ""
	}
	if err := s.validUser(u); err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	h, err := HashUserPassword(password)
	if err != nil {
		return User{}, err
	}
	var n int
	if err := s.st.queryRow(ctx, s.st.db, `SELECT COUNT(*) FROM users WHERE name = ?`, u.Name).Scan(&n); err != nil {
		return User{}, fmt.Errorf("cases: add user: %w", err)
	}
	if n > 0 {
		return User{}, fmt.Errorf("%w: user %q exists", ErrConflict, u.Name)
	}
	now := s.now()
	u.CreatedAt = now.UTC().Truncate(time.Millisecond)
	u.ID, err = s.st.insertID(ctx, s.st.db, `INSERT INTO users (name, password_hash, role, district, unit, lang, is_admin,
created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.Name, h, u.Role, u.District, u.Unit, u.Lang, b2i(u.Admin), ms(now), ms(now))
	if err != nil {
		return User{}, fmt.Errorf("cases: add user %s: %w", u.Name, err)
	}
	return u, nil
}

const userColumns = `id, name, role, district, unit, lang, is_admin, disabled, created_at`

func scanUser(r scanner) (User, error) {
	var u User
	var admin, disabled int
	var created int64
	if err := r.Scan(&u.ID, &u.Name, &u.Role, &u.District, &u.Unit, &u.Lang, &admin, &disabled, &created); err != nil {
		return User{}, err
	}
	u.Admin, u.Disabled, u.CreatedAt = admin == 1, disabled == 1, fromMS(created)
	return u, nil
}

// Users lists every user by name.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	rows, err := s.st.query(ctx, s.st.db, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("cases: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserByName returns the user called name, for a login that another
// party authenticated; ErrBadLogin when there is none.
func (s *Service) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.st.queryRow(ctx, s.st.db, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if isNoRows(err) {
		return User{}, ErrBadLogin
	}
	if err != nil {
		return User{}, fmt.Errorf("cases: user %q: %w", name, err)
	}
	return u, nil
}

// Login checks a user's password; ErrBadLogin whatever is wrong.
func (s *Service) Login(ctx context.Context, name, password string) (User, error) {
	var hash string
	var u User
	row := s.st.queryRow(ctx, s.st.db, `SELECT `+userColumns+`, password_hash FROM users WHERE name = ?`, name)
	var admin, disabled int
	var created int64
	err := row.Scan(&u.ID, &u.Name, &u.Role, &u.District, &u.Unit, &u.Lang, &admin, &disabled, &created, &hash)
	if isNoRows(err) {
		_ = fleet.VerifyPassword(dummyHash, password)
		return User{}, ErrBadLogin
	}
	if err != nil {
		return User{}, fmt.Errorf("cases: login: %w", err)
	}
	u.Admin, u.Disabled, u.CreatedAt = admin == 1, disabled == 1, fromMS(created)
	if fleet.VerifyPassword(hash, password) != nil || u.Disabled {
		return User{}, ErrBadLogin
	}
	return u, nil
}

// SetPassword changes a user's password after checking the old one, and
// ends the user's other sessions (keep is the session to keep, or "").
func (s *Service) SetPassword(ctx context.Context, userID int64, old, password, keep string) error {
	var name string
	if err := s.st.queryRow(ctx, s.st.db, `SELECT name FROM users WHERE id = ?`, userID).Scan(&name); err != nil {
		return fmt.Errorf("cases: user %d: %w", userID, err)
	}
	if _, err := s.Login(ctx, name, old); err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	h, err := HashUserPassword(password)
	if err != nil {
		return err
	}
	return s.st.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.st.exec(ctx, tx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, h, ms(s.now()), userID); err != nil {
			return err
		}
		_, err := s.st.exec(ctx, tx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, sessionKey(keep))
		return err
	})
}

// SetUserLang changes a user's console language.
func (s *Service) SetUserLang(ctx context.Context, userID int64, lang string) error {
	if !contains(Languages, lang) {
		return fmt.Errorf("%w: language %q (zh, en)", ErrBadRequest, lang)
	}
	_, err := s.st.exec(ctx, s.st.db, `UPDATE users SET lang = ?, updated_at = ? WHERE id = ?`, lang, ms(s.now()), userID)
	return err
}

// Session is a logged-in user and the session's CSRF token.
type Session struct {
	User    User
	CSRF    string
	Expires time.Time
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cases: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewSession starts a session for a user lasting ttl; it returns the
// cookie token (stored only as its hash) and the session.
func (s *Service) NewSession(ctx context.Context, u User, ttl time.Duration) (string, Session, error) {
	tok, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	exp := now.Add(ttl)
	if _, err := s.st.exec(ctx, s.st.db, `DELETE FROM sessions WHERE expires_at < ?`, ms(now)); err != nil {
		return "", Session{}, fmt.Errorf("cases: expire sessions: %w", err)
	}
	if _, err := s.st.exec(ctx, s.st.db, `INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		sessionKey(tok), u.ID, csrf, ms(now), ms(exp)); err != nil {
		return "", Session{}, fmt.Errorf("cases: new session: %w", err)
	}
	return tok, Session{User: u, CSRF: csrf, Expires: exp.UTC()}, nil
}

// SessionOf returns the live session of a cookie token; ErrNoSession when
// there is none, it expired or its user was disabled.
func (s *Service) SessionOf(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 128 {
		return Session{}, ErrNoSession
	}
	row := s.st.queryRow(ctx, s.st.db, `SELECT u.id, u.name, u.role, u.district, u.unit, u.lang, u.is_admin, u.disabled,
u.created_at, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`, sessionKey(token))
	var sess Session
	var admin, disabled int
	var created, exp int64
	u := &sess.User
	err := row.Scan(&u.ID, &u.Name, &u.Role, &u.District, &u.Unit, &u.Lang, &admin, &disabled, &created, &sess.CSRF, &exp)
	if isNoRows(err) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("cases: session: %w", err)
	}
	u.Admin, u.Disabled, u.CreatedAt, sess.Expires = admin == 1, disabled == 1, fromMS(created), fromMS(exp)
	if u.Disabled || !s.now().Before(sess.Expires) {
		return Session{}, ErrNoSession
	}
	return sess, nil
}

// EndSession deletes a session (logout).
func (s *Service) EndSession(ctx context.Context, token string) error {
	_, err := s.st.exec(ctx, s.st.db, `DELETE FROM sessions WHERE id = ?`, sessionKey(token))
	return err
}

// CSRFEqual compares two CSRF tokens in constant time.
func CSRFEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Units lists the configured units.
func (s *Service) Units() []UnitConfig { return append([]UnitConfig(nil), s.r().cfg.Units...) }
