package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for StreamOptions.
const (
	DefaultStream          = "SANIGATE_READINGS"
	DefaultSubjectPrefix   = "sanigate.readings"
	DefaultPartitions      = 16
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultRetention       = 24 * time.Hour
)

// StreamOptions describe the stream readings are forwarded to.
type StreamOptions struct {
	// Name is the stream's name (default SANIGATE_READINGS).
	Name string
	// SubjectPrefix is the subjects' prefix; partition p is prefix.p
	// (default sanigate.readings).
	SubjectPrefix string
	// Partitions is how many partitions devices are spread over (default 16).
	Partitions int
	// Replicas is how many nodes hold each message (default 1; 3 in a
	// cluster of three, so that the stream survives the loss of one node).
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids to drop a
	// republished message (default 2m). A replay after a restart is exactly
	// once only for messages first published within this window.
	DuplicateWindow time.Duration
	// MaxAge bounds how long messages are kept (default 24h).
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; the oldest messages go first (0: no bound).
	MaxBytes int64
}

// WithDefaults is o with every unset option at its default.
func (o StreamOptions) WithDefaults() StreamOptions {
	o.defaults()
	return o
}

func (o *StreamOptions) defaults() {
	if o.Name == "" {
		o.Name = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultRetention
	}
}

// Config is the JetStream configuration of the stream.
func (o StreamOptions) Config() jetstream.StreamConfig {
	o.defaults()
	maxBytes := o.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        o.Name,
		Description: "sanigate device readings, one subject per device partition",
		Subjects:    []string{o.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		MaxAge:      o.MaxAge,
		MaxBytes:    maxBytes,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
	}
}

// EnsureStream creates the stream, or updates an existing one to o. Every
// gateway calls it at start; they all ask for the same configuration.
func EnsureStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	cfg := o.Config()
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return js.Stream(ctx, cfg.Name)
		}
		return nil, fmt.Errorf("cluster: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}
