package cases

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Notification channels.
const (
	ChannelWebhook = "webhook"
	ChannelMQTT    = "mqtt"
)

// Webhook headers. The signature covers the timestamp and the body, so a
// receiver that refuses old timestamps (see VerifySignature) cannot be fed
// a replayed request; the delivery id lets it drop a duplicate (delivery is
// at least once: a receiver that stored a notification but whose answer was
// lost gets it again).
const (
	HeaderTimestamp = "X-Sanigate-Timestamp" // Unix seconds when the attempt was signed
	HeaderSignature = "X-Sanigate-Signature" // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderDelivery  = "X-Sanigate-Delivery"  // the outbox id, the same on every attempt
	HeaderEvent     = "X-Sanigate-Event"     // dispatched, transferred, reworked, reopened, overdue
)

// Notification is the JSON body of a webhook and of an MQTT message.
type Notification struct {
	Delivery int64     `json:"delivery"`
	Event    string    `json:"event"`
	At       time.Time `json:"at"`
	// Unit is the unit notified; for overdue, Responsible is the unit that
	// missed the deadline.
	Unit        string      `json:"unit"`
	Responsible string      `json:"responsible,omitempty"`
	Note        string      `json:"note,omitempty"`
	Case        CaseSummary `json:"case"`
}

// CaseSummary is what a notification says about its case.
type CaseSummary struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"`
	Severity  string    `json:"severity"`
	State     State     `json:"state"`
	District  string    `json:"district,omitempty"`
	Device    string    `json:"device,omitempty"`
	Place     string    `json:"place,omitempty"`
	Site      string    `json:"site,omitempty"`
	Lat       float64   `json:"lat,omitempty"`
	Lon       float64   `json:"lon,omitempty"`
	Summary   string    `json:"summary,omitempty"`
	Count     int       `json:"count"`
	AcceptDue time.Time `json:"accept_due,omitzero"`
	CloseDue  time.Time `json:"close_due,omitzero"`
	Overdue   bool      `json:"overdue"`
}

// notify queues a notification of event about c for each channel of unit,
// in tx: it is durable exactly when the change it reports is.
func (s *Service) notify(ctx context.Context, tx *sql.Tx, c *Case, unit, event string, now time.Time, note string) error {
	u, ok := s.r().units[unit]
	if !ok {
		return nil
	}
	n := Notification{Event: event, At: now, Unit: unit, Note: note, Case: CaseSummary{
		ID: c.ID, Type: c.Type, Severity: c.Severity, State: c.State, District: c.District, Device: c.Device,
		Place: c.Place, Site: c.Site, Lat: c.Lat, Lon: c.Lon, Summary: c.Summary, Count: c.Count,
		AcceptDue: c.AcceptDue, CloseDue: c.CloseDue, Overdue: c.Overdue,
	}}
	if event == "overdue" {
		n.Responsible = c.Unit
	} else if ns, ok := nextStateFor(event); ok {
		n.Case.State = ns
	}
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	channels := []struct{ channel, target string }{{ChannelWebhook, u.WebhookURL}, {ChannelMQTT, u.MQTTTopic}}
	for _, r := range u.Robots {
		channels = append(channels, struct{ channel, target string }{r.Kind, r.name()})
	}
	for _, ch := range channels {
		if ch.target == "" {
			continue
		}
		if _, err := s.st.exec(ctx, tx, `INSERT INTO outbox (case_id, unit, channel, target, event, payload, created_at, next_attempt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, unit, ch.channel, ch.target, event, string(body), ms(now), ms(now)); err != nil {
			return err
		}
	}
	return nil
}

// nextStateFor is the state a case is in once the event's transition is
// saved (notify runs before the state is written).
func nextStateFor(event string) (State, bool) {
	switch event {
	case "dispatched", "reworked", "reopened":
		return Dispatched, true
	case "transferred":
		return Transferred, true
	}
	return "", false
}

func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Attempt is one try at delivering a notification.
type Attempt struct {
	At       time.Time     `json:"at"`
	OK       bool          `json:"ok"`
	Status   int           `json:"status,omitempty"` // HTTP status of a webhook
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Delivery is a queued notification and its attempts.
type Delivery struct {
	ID          int64     `json:"id"`
	Case        int64     `json:"case"`
	Unit        string    `json:"unit"`
	Channel     string    `json:"channel"`
	Target      string    `json:"target"`
	Event       string    `json:"event"`
	CreatedAt   time.Time `json:"created_at"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Attempts    []Attempt `json:"attempts"`
}

// Deliveries returns the notifications queued for a case, oldest first,
// with every attempt.
func (s *Service) Deliveries(ctx context.Context, caseID int64) ([]Delivery, error) {
	rows, err := s.st.query(ctx, s.st.db, `SELECT id, case_id, unit, channel, target, event, created_at, next_attempt, delivered_at, last_error
FROM outbox WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, err
	}
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var created, nxt, delivered int64
		if err := rows.Scan(&d.ID, &d.Case, &d.Unit, &d.Channel, &d.Target, &d.Event, &created, &nxt, &delivered, &d.LastError); err != nil {
			rows.Close()
			return nil, err
		}
		d.CreatedAt, d.DeliveredAt = fromMS(created), fromMS(delivered)
		if delivered == 0 {
			d.NextAttempt = fromMS(nxt)
		}
		d.Attempts = []Attempt{}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		rows, err := s.st.query(ctx, s.st.db, `SELECT at, ok, status, error, duration_ms FROM outbox_attempts WHERE outbox_id = ? ORDER BY id`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var a Attempt
			var at, dur int64
			var ok int
			if err := rows.Scan(&at, &ok, &a.Status, &a.Error, &dur); err != nil {
				rows.Close()
				return nil, err
			}
			a.At, a.OK, a.Duration = fromMS(at), ok == 1, time.Duration(dur)*time.Millisecond
			out[i].Attempts = append(out[i].Attempts, a)
		}
		rows.Close()
	}
	return out, nil
}

func (s *Service) runOutbox(ctx context.Context) {
	t := time.NewTicker(s.cfg.Outbox.Poll)
	defer t.Stop()
	for {
		if _, err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("case outbox scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// claimLease is how long a claimed notification is left to its claimer
// before another worker may try it: longer than any attempt takes.
const claimLease = 2 * time.Minute

type pending struct {
	id       int64
	unit     string
	channel  string
	target   string
	event    string
	payload  string
	attempts int
	next     int64
}

// DeliverDue makes one attempt at every notification that is due, and
// returns how many were delivered. Run calls it on every poll and after
// every change that queues one; tests call it directly with a moved clock.
// Workers of several gateways may run it at once: a notification is claimed
// by a conditional update before it is sent, so it is sent by one of them.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := s.st.query(ctx, s.st.db, `SELECT id, unit, channel, target, event, payload, attempts, next_attempt FROM outbox
WHERE delivered_at = 0 AND next_attempt <= ? ORDER BY next_attempt, id LIMIT 64`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("cases: outbox: %w", err)
	}
	var due []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.unit, &p.channel, &p.target, &p.event, &p.payload, &p.attempts, &p.next); err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var claimed []pending
	for _, p := range due {
		res, err := s.st.exec(ctx, s.st.db, `UPDATE outbox SET next_attempt = ? WHERE id = ? AND next_attempt = ? AND delivered_at = 0`,
			ms(now.Add(claimLease)), p.id, p.next)
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			claimed = append(claimed, p)
		}
	}
	// Different receivers are tried in parallel, so one that hangs does not
	// hold up the others; a few at a time.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		delivered int
		firstErr  error
		sem       = make(chan struct{}, 8)
	)
	for _, p := range claimed {
		wg.Add(1)
		sem <- struct{}{}
		go func(p pending) {
			defer wg.Done()
			defer func() { <-sem }()
			ok, err := s.attempt(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				delivered++
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}(p)
	}
	wg.Wait()
	return delivered, firstErr
}

// attempt sends one notification once and records the attempt.
func (s *Service) attempt(ctx context.Context, p pending) (bool, error) {
	start := s.now()
	began := time.Now()
	status, err := s.send(ctx, p)
	took := time.Since(began)
	ok := err == nil
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	s.metrics.notifications.WithLabelValues(p.channel, map[bool]string{true: "ok", false: "error"}[ok]).Inc()
	attempts := p.attempts + 1
	dbErr := s.st.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.st.exec(ctx, tx, `INSERT INTO outbox_attempts (outbox_id, at, ok, status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			p.id, ms(start), b2i(ok), status, errText, took.Milliseconds()); err != nil {
			return err
		}
		if ok {
			_, err := s.st.exec(ctx, tx, `UPDATE outbox SET attempts = ?, delivered_at = ?, last_error = '' WHERE id = ?`, attempts, ms(s.now()), p.id)
			return err
		}
		_, err := s.st.exec(ctx, tx, `UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?`,
			attempts, ms(start.Add(s.backoff(attempts))), errText, p.id)
		return err
	})
	if !ok {
		s.log.Warn("case notification not delivered; will retry", "unit", p.unit, "channel", p.channel, "delivery", p.id,
			"attempt", attempts, "err", errText)
	}
	return ok, dbErr
}

// backoff is the wait after the n-th failed attempt: retry_min doubled each
// time, at most retry_max. It never gives up.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.Outbox.RetryMin
	for i := 1; i < n && d < s.cfg.Outbox.RetryMax; i++ {
		d *= 2
	}
	if d > s.cfg.Outbox.RetryMax {
		d = s.cfg.Outbox.RetryMax
	}
	return d
}

func (s *Service) send(ctx context.Context, p pending) (int, error) {
	u, ok := s.r().units[p.unit]
	switch p.channel {
	case ChannelWebhook:
		target := p.target
		if ok && u.WebhookURL != "" {
			target = u.WebhookURL // the configured URL wins: an operator may have moved it
		}
		secret := s.r().secrets[p.unit]
		if secret == nil {
			return 0, fmt.Errorf("unit %q has no webhook secret configured", p.unit)
		}
		return s.postWebhook(ctx, target, secret, p)
	case ChannelMQTT:
		topic := p.target
		if ok && u.MQTTTopic != "" {
			topic = u.MQTTTopic
		}
		if s.pub == nil {
			return 0, errors.New("no MQTT publisher")
		}
		return 0, s.pub.Publish(topic, []byte(p.payload), false, 1)
	case ChannelDingTalk, ChannelWeCom, ChannelFeishu:
		return s.sendRobot(ctx, p)
	}
	return 0, fmt.Errorf("unknown channel %q", p.channel)
}

func (s *Service) postWebhook(ctx context.Context, url string, secret []byte, p pending) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Outbox.Timeout)
	defer cancel()
	body := withDelivery(p.payload, p.id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sanigate-cases")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	req.Header.Set(HeaderDelivery, strconv.FormatInt(p.id, 10))
	req.Header.Set(HeaderEvent, p.event)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// withDelivery sets the delivery id in a queued payload (it is known only
// once the outbox row exists).
func withDelivery(payload string, id int64) []byte {
	var n Notification
	if json.Unmarshal([]byte(payload), &n) != nil {
		return []byte(payload)
	}
	n.Delivery = id
	b, err := json.Marshal(n)
	if err != nil {
		return []byte(payload)
	}
	return b
}

// Sign returns the signature header value for a body sent at Unix time ts:
// "v1=" and the hex HMAC-SHA256 of "{ts}.{body}" under secret.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Errors of VerifySignature.
var (
	ErrBadSignature   = errors.New("webhook signature does not match")
	ErrStaleSignature = errors.New("webhook timestamp outside the accepted window")
)

// VerifySignature checks a received webhook: the signature over the
// timestamp header and body, and that the timestamp lies within tolerance
// of now (which refuses replays of an old request). Receivers should also
// drop a delivery id they have already processed.
func VerifySignature(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid %s header", ErrBadSignature, HeaderTimestamp)
	}
	got := strings.TrimSpace(h.Get(HeaderSignature))
	if !hmac.Equal([]byte(got), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrStaleSignature, d.Round(time.Second))
	}
	return nil
}
