package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cases"
)

// maxStream bounds one event stream; the browser reconnects by itself.
const maxStream = 30 * time.Minute

// events streams the cases filed after since that match the queue's
// filters, as Server-Sent Events "case" with the case's id and queue row.
// It looks for news every Poll, which also serves cases filed by other
// gateways sharing the store.
func (c *Console) events(w http.ResponseWriter, r *http.Request, q *request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	v := r.URL.Query()
	f, _ := c.queueFilter(v)
	f.Order, f.Before, f.AfterDue, f.Limit = cases.OrderOldest, 0, time.Time{}, 20
	since, _ := strconv.ParseInt(v.Get("since"), 10, 64)
	if id, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && id > since {
		since = id
	}
	if since <= 0 {
		latest, err := c.svc.LatestID(r.Context(), q.who)
		if err != nil {
			c.fail(w, q, err)
			return
		}
		since = latest
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("retry: 3000\n\n"))
	fl.Flush()
	p := c.base(q, "queue", "queue")
	// The server's write timeout bounds ordinary responses; a stream moves
	// its own deadline forward before each write instead.
	rc := http.NewResponseController(w)
	t := time.NewTicker(c.opt.Poll)
	defer t.Stop()
	deadline := time.NewTimer(maxStream)
	defer deadline.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case <-deadline.C:
			return
		case <-t.C:
		}
		// A session ended elsewhere (logout, password change) ends the stream.
		if _, err := c.svc.SessionOf(r.Context(), q.token); err != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(c.opt.Poll + 30*time.Second))
		f.After = since
		pg, err := c.svc.List(r.Context(), q.who, f)
		if err != nil {
			if r.Context().Err() == nil {
				c.log.Warn("console event stream: list failed", "err", err)
			}
			return
		}
		for _, cs := range pg.Cases {
			if err := c.sendCase(w, &p, cs); err != nil {
				return
			}
			since = cs.ID
		}
		if len(pg.Cases) == 0 {
			_, _ = w.Write([]byte(": keep-alive\n\n"))
		}
		fl.Flush()
	}
}

func (c *Console) sendCase(w http.ResponseWriter, p *page, cs cases.Case) error {
	var row bytes.Buffer
	p.now = c.now()
	if err := c.tmpl["queue"].ExecuteTemplate(&row, "row", p.Row(cs)); err != nil {
		c.log.Error("console event row failed", "err", err)
		return err
	}
	b, err := json.Marshal(map[string]any{"id": cs.ID, "type": cs.Type, "severity": cs.Severity, "state": cs.State,
		"html": row.String()})
	if err != nil {
		return err
	}
	// JSON has no raw newlines, so the data fits one SSE line.
	_, err = w.Write([]byte("id: " + strconv.FormatInt(cs.ID, 10) + "\nevent: case\ndata: " +
		strings.ReplaceAll(string(b), "\n", " ") + "\n\n"))
	return err
}
