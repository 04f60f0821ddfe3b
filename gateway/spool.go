package gateway

import (
	"errors"
	"fmt"

	"github.com/sanigate/sanigate/telemetry/spool"
)

// openSpool opens (and if need be repairs) the spool and its metrics.
func (g *Gateway) openSpool() error {
	cfg := g.cfg
	g.sm = spool.NewMetrics(g.reg)
	dir := cfg.Resolve(cfg.Spool.Dir)
	sp, rec, err := spool.Open(dir, spool.Options{
		MaxBytes:     cfg.Spool.MaxBytes,
		SegmentBytes: cfg.Spool.SegmentBytes,
		SyncDelay:    cfg.Spool.SyncDelay.D(),
		SyncRecords:  cfg.Spool.SyncRecords,
		MinFreeBytes: cfg.Spool.MinFreeBytes,
		OnSync:       g.sm.ObserveSync,
	})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	g.spool, g.recovery = sp, rec
	g.logRecovery(dir, rec)
	return nil
}

func (g *Gateway) logRecovery(dir string, rec spool.Recovery) {
	if rec.TornTail > 0 {
		g.log.Warn("spool: cut a torn record at the end of the log (power loss or kill during a write)", "dir", dir, "bytes", rec.TornTail)
	}
	for _, c := range rec.TornCursors {
		g.log.Warn("spool: a consumer's cursor was left empty by a power loss; it reads the spool again from its oldest record", "dir", dir, "consumer", c)
	}
	for _, q := range rec.Quarantined {
		g.log.Error("spool: corrupt segment copied to quarantine and cut back to its last good record", "copy", q)
	}
	if rec.LostBytes > 0 {
		g.log.Error("spool: bytes lost to corruption", "bytes", rec.LostBytes)
	}
	g.log.Info("spool opened", "dir", dir, "segments", rec.Segments, "records", rec.Records)
}

// appendCounter counts appends on their way to the spool.
type appendCounter struct {
	sp *spool.Spool
	m  *spool.Metrics
}

func (a appendCounter) AppendNotify(rec []byte, done func(error)) error {
	err := a.sp.AppendNotify(rec, done)
	if err == nil {
		a.m.CountAppend()
	} else if errors.Is(err, spool.ErrFull) {
		a.m.Update()
	}
	return err
}
