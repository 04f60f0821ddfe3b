package gateway

import (
	"context"
	"fmt"

	"github.com/sanigate/sanigate/violations"
)

// Withdraw takes back a violation late readings no longer support: a
// withdrawn point in InfluxDB (through the spool, as raises are), and a note
// on its case, which is resolved when nothing else holds it open. It makes
// violationSink a violations.Withdrawer.
func (s violationSink) Withdraw(ctx context.Context, v violations.Violation, reason string) error {
	if err := s.sp.AppendReserved(violations.AppendWithdrawnLine(nil, &v, reason)); err != nil {
		return fmt.Errorf("store withdrawal of %s: %w", v.Key, err)
	}
	if s.cases != nil {
		if err := s.cases.Withdraw(ctx, v, reason); err != nil {
			return fmt.Errorf("withdraw violation %s: %w", v.Key, err)
		}
	}
	s.log.Info("violation withdrawn", "type", v.Type, "device", v.Device, "key", v.Key)
	return nil
}
