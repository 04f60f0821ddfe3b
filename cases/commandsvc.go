package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CommandTopic is the topic a device receives commands on; the device
// answers on CommandTopic(id)+"/ack".
func CommandTopic(device string) string { return "sanigate/v1/devices/" + device + "/cmd" }

// errNoDevice: the device does not exist or the actor may not see it.
var errNoDevice = fmt.Errorf("%w: device not found", ErrNotFound)

// commandDevice finds the device the actor may command: city any, district
// its own; units command none.
func (s *Service) commandDevice(who Actor, id string) error {
	if who.Role != RoleCity && who.Role != RoleDistrict {
		return fmt.Errorf("%w: only city and district tokens command devices", ErrForbidden)
	}
	if s.devices == nil {
		return errNoDevice
	}
	for _, d := range s.devices.Devices() {
		if d.ID == id {
			if !s.seesDevice(who, d) {
				return errNoDevice
			}
			return nil
		}
	}
	return errNoDevice
}

// SendCommand validates a command, stores it as queued and publishes it on
// the device's cmd topic with QoS 1. The broker keeps it in the device's
// persistent session if the device is away; a publish the broker refuses
// marks the command failed.
func (s *Service) SendCommand(ctx context.Context, who Actor, device string, req CommandRequest) (Command, error) {
	if err := s.commandDevice(who, device); err != nil {
		return Command{}, err
	}
	params, ttl, err := req.validate()
	if err != nil {
		return Command{}, err
	}
	if s.pub == nil {
		return Command{}, fmt.Errorf("%w: this gateway has no MQTT broker to send commands through", ErrConflict)
	}
	now := s.now()
	c := Command{Device: device, Type: req.Type, Params: params, State: CommandQueued, RequestedBy: who.Name,
		Created: now.UTC().Truncate(time.Millisecond), Deadline: now.Add(ttl).UTC().Truncate(time.Millisecond)}
	c.ID, err = s.st.insertID(ctx, s.st.db, `INSERT INTO device_commands
		(device, type, params, state, requested_by, created_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Device, c.Type, string(c.Params), string(c.State), c.RequestedBy, ms(c.Created), ms(c.Deadline))
	if err != nil {
		return Command{}, fmt.Errorf("cases: store command: %w", err)
	}
	msg, err := json.Marshal(CommandMessage{CommandID: c.ID, Type: c.Type, Params: c.Params, Deadline: c.Deadline})
	if err != nil {
		return Command{}, fmt.Errorf("cases: encode command: %w", err)
	}
	if perr := s.pub.Publish(CommandTopic(device), msg, false, 1); perr != nil {
		s.log.Warn("command not published", "device", device, "command", c.ID, "err", perr)
		if _, err := s.finishCommand(ctx, c.ID, device, CommandFailed, "broker refused the publish: "+perr.Error(), false); err != nil {
			return Command{}, err
		}
		return s.command(ctx, c.ID)
	}
	s.metrics.commandsSent.WithLabelValues(c.Type).Inc()
	s.log.Info("command queued", "device", device, "command", c.ID, "type", c.Type, "by", who.Name)
	return s.command(ctx, c.ID)
}

// Commands lists a device's commands, newest first (at most limit).
func (s *Service) Commands(ctx context.Context, who Actor, device string, limit int) ([]Command, error) {
	if err := s.commandDevice(who, device); err != nil {
		return nil, err
	}
	if _, err := s.ExpireCommands(ctx); err != nil {
		return nil, err
	}
	rows, err := s.st.query(ctx, s.st.db, `SELECT `+commandCols+` FROM device_commands WHERE device = ? ORDER BY id DESC LIMIT ?`, device, limit)
	if err != nil {
		return nil, fmt.Errorf("cases: list commands: %w", err)
	}
	defer rows.Close()
	out := []Command{}
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const commandCols = `id, device, type, params, state, detail, requested_by, created_at, deadline, delivered_at, finished_at`

func scanCommand(r scanner) (Command, error) {
	var (
		c                   Command
		params, state       string
		created, dl, dv, fn int64
	)
	if err := r.Scan(&c.ID, &c.Device, &c.Type, &params, &state, &c.Detail, &c.RequestedBy, &created, &dl, &dv, &fn); err != nil {
		return Command{}, fmt.Errorf("cases: read command: %w", err)
	}
	c.Params, c.State, c.Created, c.Deadline = json.RawMessage(params), CommandState(state), fromMS(created), fromMS(dl)
	if dv != 0 {
		t := fromMS(dv)
		c.Delivered = &t
	}
	if fn != 0 {
		t := fromMS(fn)
		c.Finished = &t
	}
	return c, nil
}

func (s *Service) command(ctx context.Context, id int64) (Command, error) {
	return scanCommand(s.st.queryRow(ctx, s.st.db, `SELECT `+commandCols+` FROM device_commands WHERE id = ?`, id))
}

// CommandDelivered records that the broker delivered a message on device's
// cmd topic to its session (the device's PUBACK). Messages that are not
// commands (a crew terminal's dispatches) are ignored.
func (s *Service) CommandDelivered(ctx context.Context, device string, payload []byte) error {
	var m struct {
		CommandID int64 `json:"command_id"`
	}
	if json.Unmarshal(payload, &m) != nil || m.CommandID <= 0 {
		return nil
	}
	now := ms(s.now())
	_, err := s.st.exec(ctx, s.st.db, `UPDATE device_commands SET state = ?, delivered_at = ?
		WHERE id = ? AND device = ? AND state = ?`, string(CommandDelivered), now, m.CommandID, device, string(CommandQueued))
	if err != nil {
		return fmt.Errorf("cases: command %d delivered: %w", m.CommandID, err)
	}
	return nil
}

// HandleCommandAck takes a device's answer from its cmd/ack topic. The
// payload is untrusted: it must be one CommandAck object naming a command
// sent to this very device that is not final yet; anything else is refused
// with an error wrapping ErrBadRequest and changes nothing.
func (s *Service) HandleCommandAck(ctx context.Context, device string, payload []byte) error {
	if len(payload) > maxAckBytes {
		return fmt.Errorf("%w: command ack over %d bytes", ErrBadRequest, maxAckBytes)
	}
	var a CommandAck
	if err := decodeStrict("command ack", payload, &a); err != nil {
		return err
	}
	state := CommandAcknowledged
	switch a.Status {
	case "ok":
	case "failed":
		state = CommandFailed
	default:
		return fmt.Errorf("%w: command ack: status must be ok or failed", ErrBadRequest)
	}
	if a.CommandID <= 0 {
		return fmt.Errorf("%w: command ack: command_id is required", ErrBadRequest)
	}
	detail := truncate(strings.ToValidUTF8(a.Detail, "?"), maxAckDetailLen)
	n, err := s.finishCommand(ctx, a.CommandID, device, state, detail, true)
	if err != nil {
		return err
	}
	if n == 0 {
		s.metrics.commandAcksRefused.Inc()
		return fmt.Errorf("%w: command ack: no open command %d for device %s", ErrBadRequest, a.CommandID, device)
	}
	s.log.Info("command answered", "device", device, "command", a.CommandID, "state", string(state))
	return nil
}

// finishCommand moves an open command of device to a final state; it
// returns how many rows changed (0 or 1). reached: the device answered, so
// a command whose PUBACK was not seen yet counts as delivered too.
func (s *Service) finishCommand(ctx context.Context, id int64, device string, state CommandState, detail string, reached bool) (int64, error) {
	now := ms(s.now())
	deliveredAt := int64(0)
	if reached {
		deliveredAt = now
	}
	res, err := s.st.exec(ctx, s.st.db, `UPDATE device_commands SET state = ?, detail = ?, finished_at = ?,
		delivered_at = CASE WHEN delivered_at = 0 THEN ? ELSE delivered_at END
		WHERE id = ? AND device = ? AND state IN (?, ?) AND deadline >= ?`,
		string(state), detail, now, deliveredAt, id, device, string(CommandQueued), string(CommandDelivered), now)
	if err != nil {
		return 0, fmt.Errorf("cases: command %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cases: command %d: %w", id, err)
	}
	return n, nil
}

// ExpireCommands marks commands still open after their deadline expired and
// returns how many. Run calls it with the deadline checks; listing calls it
// first, so that a list is never staler than the clock.
func (s *Service) ExpireCommands(ctx context.Context) (int64, error) {
	now := ms(s.now())
	res, err := s.st.exec(ctx, s.st.db, `UPDATE device_commands SET state = ?, finished_at = ?, detail = ?
		WHERE state IN (?, ?) AND deadline < ?`,
		string(CommandExpired), now, "no acknowledgement before the deadline", string(CommandQueued), string(CommandDelivered), now)
	if err != nil {
		return 0, fmt.Errorf("cases: expire commands: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("cases: expire commands: %w", err)
	}
	if n > 0 {
		s.metrics.commandsExpired.Add(float64(n))
	}
	return n, nil
}
