package fleet

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// verifier checks device credentials at a bounded cost:
//
//   - a cache of verified credentials answers a device that reconnects with
//     the password that passed before without hashing again. An entry is a
//     keyed digest of (stored hash, device id, password) under a key drawn at
//     start, compared in constant time: a wrong password, or a password that
//     matched a hash since replaced, never hits it.
//   - slow verifications (bcrypt, argon2id) run at most `slots` at once,
//     the others waiting in arrival order, so a reconnect storm keeps the CPU
//     bounded and served first come, first served; none is dropped.
//   - an unknown device id is checked against a dummy hash of the scheme and
//     cost most devices use, so it costs what a known id with a wrong
//     password costs.
type verifier struct {
	key     []byte
	pool    *semaphore.Weighted
	devices map[string]*Device

	dummyOnce sync.Once
	dummy     string

	mu    sync.Mutex
	cache map[string][sha256.Size]byte // device id -> digest of its last verified credentials
}

func newVerifier(devices map[string]*Device, slots int) *verifier {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &verifier{key: key, pool: semaphore.NewWeighted(int64(slots)), devices: devices,
		cache: make(map[string][sha256.Size]byte, len(devices))}
}

func (v *verifier) digest(hash, id, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, v.key)
	for _, s := range []string{hash, id, password} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	var d [sha256.Size]byte
	m.Sum(d[:0])
	return d
}

// check verifies password for device id with stored hash ("" when the id is
// unknown). An unknown id takes the same steps as a known one with a wrong
// password (digest, cache lookup, a verification against the dummy hash of
// the fleet's usual scheme) and always fails.
func (v *verifier) check(id, hash, password string) bool {
	known := hash != ""
	if !known {
		// Made on first use: building a registry stays cheap.
		v.dummyOnce.Do(func() { v.dummy = dummyHash(v.devices) })
		hash = v.dummy
	}
	d := v.digest(hash, id, password)
	v.mu.Lock()
	cached, seen := v.cache[id]
	v.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(cached[:], d[:]) == 1 && known {
		return true
	}
	if v.verify(hash, password) != nil || !known {
		return false
	}
	v.mu.Lock()
	v.cache[id] = d
	v.mu.Unlock()
	return true
}

// verify runs one hash comparison; slow schemes take a slot of the pool.
func (v *verifier) verify(hash, password string) error {
	if !strings.HasPrefix(hash, SecretPrefix) {
		if err := v.pool.Acquire(context.Background(), 1); err != nil {
			return fmt.Errorf("verify password: %w", err)
		}
		defer v.pool.Release(1)
	}
	return VerifyPassword(hash, password)
}

// dummyHash returns a hash of a random password in the scheme and cost used
// by most devices (bcrypt at the default cost when there are none).
func dummyHash(devices map[string]*Device) string {
	count := map[string]int{}
	sample := map[string]string{}
	best := ""
	for _, d := range devices {
		k := schemeOf(d.PasswordHash)
		if k == "" {
			continue
		}
		count[k]++
		sample[k] = d.PasswordHash
		if best == "" || count[k] > count[best] || (count[k] == count[best] && k < best) {
			best = k
		}
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	secret := base64.RawURLEncoding.EncodeToString(pw)
	h, err := hashLike(sample[best], secret)
	if err != nil || best == "" {
		h, _ = HashPassword(secret, bcrypt.DefaultCost)
	}
	return h
}

// schemeOf names a hash's scheme with its cost parameters.
func schemeOf(hash string) string {
	switch {
	case strings.HasPrefix(hash, SecretPrefix):
		return "hmac-sha256"
	case strings.HasPrefix(hash, "$argon2id$"):
		i := strings.LastIndex(hash, "$")
		j := strings.LastIndex(hash[:max(i, 0)], "$")
		if j <= 0 {
			return ""
		}
		return hash[:j] // $argon2id$v=19$m=..,t=..,p=..
	case strings.HasPrefix(hash, "$2"):
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return ""
		}
		return fmt.Sprintf("bcrypt-%02d", c)
	}
	return ""
}

// hashLike hashes password in the same scheme and cost as sample.
func hashLike(sample, password string) (string, error) {
	switch {
	case strings.HasPrefix(sample, SecretPrefix):
		return HashSecret(password)
	case strings.HasPrefix(sample, "$argon2id$"):
		p, salt, key, version, err := parseArgon2id(sample)
		if err != nil {
			return "", err
		}
		s := make([]byte, len(salt))
		_, _ = rand.Read(s)
		k := argon2.IDKey([]byte(password), s, p.time, p.memory, p.threads, uint32(len(key)))
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", version, p.memory, p.time, p.threads,
			base64.RawStdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(k)), nil
	default:
		c, err := bcrypt.Cost([]byte(sample))
		if err != nil {
			return "", err
		}
		return HashPassword(password, c)
	}
}
