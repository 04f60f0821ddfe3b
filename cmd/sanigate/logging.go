package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// newLogger builds the process's logger: text (logfmt) or JSON lines on w,
// every line with a "component" key. Parts of the gateway log through
// loggers that name theirs (writer, ingest, broker, cases, ...); a line from
// a logger that names none gets def.
func newLogger(w io.Writer, format string, level slog.Level, def string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	return slog.New(componentHandler{inner: h, def: def}), nil
}

// componentHandler adds component=def to records of loggers that have not
// set a component, so that each line has exactly one.
type componentHandler struct {
	inner slog.Handler
	def   string
	has   bool
}

func (h componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h componentHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.has {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = a.Key == "component"
			return !found
		})
		if !found {
			r = r.Clone()
			r.AddAttrs(slog.String("component", h.def))
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h componentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if a.Key == "component" {
			h.has = true
		}
	}
	h.inner = h.inner.WithAttrs(as)
	return h
}

func (h componentHandler) WithGroup(name string) slog.Handler {
	// Attributes after a group land inside it: fix the component first.
	if !h.has {
		h.inner = h.inner.WithAttrs([]slog.Attr{slog.String("component", h.def)})
		h.has = true
	}
	h.inner = h.inner.WithGroup(name)
	return h
}
