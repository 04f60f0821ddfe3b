package telemetry

import (
	"bytes"
	"context"

	"github.com/influxdata/influxdb-client-go/v2/api"
)

// deliverRouted writes a batch, each line to the bucket its measurement is
// routed to, keeping the order of lines within a bucket. It returns an
// error only when ctx ends; what was delivered before is delivered again
// after a rewind, which InfluxDB takes as an overwrite.
func (w *Writer) deliverRouted(ctx context.Context, batch []byte) error {
	if w.opts.Route == nil {
		return w.deliver(ctx, w.api, batch)
	}
	var order []string
	if w.parts == nil {
		w.parts = map[string][]byte{}
	}
	parts := w.parts
	for b, part := range parts {
		if cap(part) > 16<<20 {
			delete(parts, b)
		} else {
			parts[b] = part[:0]
		}
	}
	for len(batch) > 0 {
		line := batch
		if i := bytes.IndexByte(batch, '\n'); i >= 0 {
			line, batch = batch[:i+1], batch[i+1:]
		} else {
			batch = nil
		}
		b := w.opts.Route(lineMeasurement(line))
		part, ok := parts[b]
		if !ok || len(part) == 0 {
			order = append(order, b)
		}
		parts[b] = append(part, line...)
	}
	for _, b := range order {
		if err := w.deliver(ctx, w.bucketAPI(b), parts[b]); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) bucketAPI(bucket string) api.WriteAPIBlocking {
	if bucket == "" || bucket == w.opts.Bucket {
		return w.api
	}
	a, ok := w.apis[bucket]
	if !ok {
		a = w.client.WriteAPIBlocking(w.opts.Org, bucket)
		w.apis[bucket] = a
	}
	return a
}

// lineMeasurement returns the measurement of a line of line protocol: up to
// the first comma or space that is not escaped.
func lineMeasurement(line []byte) string {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ',', ' ':
			return string(line[:i])
		}
	}
	return string(bytes.TrimSpace(line))
}
