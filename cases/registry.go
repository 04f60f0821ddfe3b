package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Who manages a row of the device registry.
const (
	// ManagedConfig rows follow the configuration file: SyncConfigDevices
	// inserts, updates and deletes them as the file's devices: section says.
	ManagedConfig = "config"
	// ManagedRegistry rows were added or changed through the API or the
	// command line; the file no longer touches them.
	ManagedRegistry = "registry"
)

// RegisteredDevice is one row of the device registry. Its hashes are never
// written out in JSON.
type RegisteredDevice struct {
	fleet.Device
	Disabled  bool      `json:"disabled"`
	Managed   string    `json:"managed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MarshalJSON writes the registration without any secret or hash.
func (d RegisteredDevice) MarshalJSON() ([]byte, error) {
	a := attrsOf(d.Device)
	v := struct {
		ID string `json:"id"`
		deviceAttrs
		Disabled      bool      `json:"disabled"`
		Managed       string    `json:"managed"`
		HasSecret     bool      `json:"has_secret"`
		PreviousUntil time.Time `json:"previous_secret_until,omitzero"`
		CreatedAt     time.Time `json:"created_at"`
		UpdatedAt     time.Time `json:"updated_at"`
	}{d.ID, a, d.Disabled, d.Managed, d.PasswordHash != "", d.PreviousUntil, d.CreatedAt, d.UpdatedAt}
	return json.Marshal(v)
}

// deviceAttrs is the registration kept in the attrs column.
type deviceAttrs struct {
	Kind       string   `json:"kind"`
	Category   string   `json:"category,omitempty"`
	Contractor string   `json:"contractor,omitempty"`
	District   string   `json:"district,omitempty"`
	CapacityKG float64  `json:"capacity_kg,omitempty"`
	Class      int      `json:"class,omitempty"`
	IntervalMS int64    `json:"interval_ms,omitempty"`
	Transport  string   `json:"transport,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
}

func attrsOf(d fleet.Device) deviceAttrs {
	return deviceAttrs{Kind: d.Kind, Category: d.Category, Contractor: d.Contractor, District: d.District,
		CapacityKG: d.CapacityKG, Class: d.Class, IntervalMS: d.Interval.D().Milliseconds(), Transport: d.Transport,
		Lat: d.Lat, Lon: d.Lon}
}

func (a deviceAttrs) device(id string) fleet.Device {
	return fleet.Device{ID: id, Kind: a.Kind, Category: a.Category, Contractor: a.Contractor, District: a.District,
		CapacityKG: a.CapacityKG, Class: a.Class, Interval: fleet.Duration(time.Duration(a.IntervalMS) * time.Millisecond),
		Transport: a.Transport, Lat: a.Lat, Lon: a.Lon}
}

// RegistryVersion is a number that changes with every change of the device
// registry, by any gateway sharing the store: polling it is cheap.
func (s *Service) RegistryVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.st.queryRow(ctx, s.st.db, `SELECT version FROM devices_version WHERE id = 1`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("cases: device registry version: %w", err)
	}
	return v, nil
}

// RegisteredDevices returns every row of the device registry, disabled ones
// included, sorted by id, and the registry's version they were read at.
func (s *Service) RegisteredDevices(ctx context.Context) ([]RegisteredDevice, int64, error) {
	var out []RegisteredDevice
	var version int64
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		if err := s.st.queryRow(ctx, tx, `SELECT version FROM devices_version WHERE id = 1`).Scan(&version); err != nil {
			return err
		}
		var err error
		out, err = s.st.devices(ctx, tx, "")
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("cases: read device registry: %w", err)
	}
	return out, version, nil
}

// RegisteredDevice returns one row of the device registry (ErrNotFound).
func (s *Service) RegisteredDevice(ctx context.Context, id string) (RegisteredDevice, error) {
	ds, err := s.st.devices(ctx, s.st.db, id)
	if err != nil {
		return RegisteredDevice{}, fmt.Errorf("cases: read device %s: %w", id, err)
	}
	if len(ds) == 0 {
		return RegisteredDevice{}, fmt.Errorf("%w: no device %q", ErrNotFound, id)
	}
	return ds[0], nil
}

func (st *store) devices(ctx context.Context, q querier, id string) ([]RegisteredDevice, error) {
	query := `SELECT id, attrs, password_hash, previous_hash, previous_until, disabled, managed, created_at, updated_at FROM devices`
	var args []any
	if id != "" {
		query += ` WHERE id = ?`
		args = append(args, id)
	}
	rows, err := st.query(ctx, q, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RegisteredDevice
	for rows.Next() {
		var d RegisteredDevice
		var id, attrs, hash, prev, managed string
		var until, created, updated int64
		var disabled int
		if err := rows.Scan(&id, &attrs, &hash, &prev, &until, &disabled, &managed, &created, &updated); err != nil {
			return nil, err
		}
		var a deviceAttrs
		if err := json.Unmarshal([]byte(attrs), &a); err != nil {
			return nil, fmt.Errorf("device %s: attrs: %w", id, err)
		}
		d.Device = a.device(id)
		d.PasswordHash, d.PreviousPasswordHash, d.PreviousUntil = hash, prev, fromMS(until)
		d.Disabled, d.Managed, d.CreatedAt, d.UpdatedAt = disabled == 1, managed, fromMS(created), fromMS(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (st *store) bumpDevices(ctx context.Context, tx *sql.Tx) error {
	_, err := st.exec(ctx, tx, `UPDATE devices_version SET version = version + 1 WHERE id = 1`)
	return err
}

// SyncResult counts what SyncConfigDevices changed.
type SyncResult struct {
	Added, Updated, Removed int
	// Kept lists the file's devices whose rows the registry manages (added or
	// changed through the API or the command line): their entries in the
	// file are not applied.
	Kept []string
}

// SyncConfigDevices brings the rows the configuration manages in step with
// the file's devices: a device missing from the registry is inserted, a
// changed one updated, and a row the file managed whose device left the
// file is deleted. Rows the registry manages (added, disabled or rotated
// through the API or the command line) are never changed by the file. The
// version moves only when something changed, so gateways sharing a store
// and the same file do not wake each other.
func (s *Service) SyncConfigDevices(ctx context.Context, devices []fleet.Device) (SyncResult, error) {
	var res SyncResult
	now := ms(s.now())
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		have, err := s.st.devices(ctx, tx, "")
		if err != nil {
			return err
		}
		rows := map[string]RegisteredDevice{}
		for _, d := range have {
			rows[d.ID] = d
		}
		inFile := map[string]bool{}
		for _, d := range devices {
			inFile[d.ID] = true
			attrs, err := json.Marshal(attrsOf(d))
			if err != nil {
				return err
			}
			row, ok := rows[d.ID]
			switch {
			case !ok:
				_, err = s.st.exec(ctx, tx, `INSERT INTO devices (id, kind, attrs, password_hash, managed, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, d.ID, d.Kind, string(attrs), d.PasswordHash, ManagedConfig, now, now)
				res.Added++
			case row.Managed != ManagedConfig:
				res.Kept = append(res.Kept, d.ID)
			case row.PasswordHash != d.PasswordHash || row.Disabled || !sameAttrs(attrsOf(row.Device), attrsOf(d)):
				err = s.st.setFileEntry(ctx, tx, d, now)
				res.Updated++
			}
			if err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
		}
		for _, row := range have {
			if row.Managed == ManagedConfig && !inFile[row.ID] {
				if _, err := s.st.exec(ctx, tx, `DELETE FROM devices WHERE id = ?`, row.ID); err != nil {
					return fmt.Errorf("device %s: %w", row.ID, err)
				}
				res.Removed++
			}
		}
		if res.Added+res.Updated+res.Removed == 0 {
			return nil
		}
		return s.st.bumpDevices(ctx, tx)
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("cases: seed device registry: %w", err)
	}
	file := slices.Clone(devices)
	s.fileDevices.Store(&file)
	return res, nil
}

// RemoveDevice takes a device's row out of the registry's hands
// (ErrNotFound when there is none). A device the file lists (as last given
// to SyncConfigDevices) is handed back to the file: its row is the file's
// entry again, enabled, with the file's secret, and backToFile is true.
// Any other device is deleted: gateways cut its connections and refuse it
// when they see the change.
func (s *Service) RemoveDevice(ctx context.Context, id string) (backToFile bool, err error) {
	var entry *fleet.Device
	if file := s.fileDevices.Load(); file != nil {
		for i := range *file {
			if (*file)[i].ID == id {
				entry = &(*file)[i]
			}
		}
	}
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM devices WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: no device %q", ErrNotFound, id)
		}
		if entry == nil {
			if _, err := s.st.exec(ctx, tx, `DELETE FROM devices WHERE id = ?`, id); err != nil {
				return err
			}
			return s.st.bumpDevices(ctx, tx)
		}
		if err := s.st.setFileEntry(ctx, tx, *entry, ms(s.now())); err != nil {
			return err
		}
		return s.st.bumpDevices(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("cases: remove device %s: %w", id, err)
	}
	s.log.Info("device removed from the registry", "device", id, "back_to_file", entry != nil)
	return entry != nil, nil
}

// setFileEntry makes d's row the file's entry d: enabled, with its secret
// alone, managed by the file.
func (st *store) setFileEntry(ctx context.Context, tx *sql.Tx, d fleet.Device, now int64) error {
	attrs, err := json.Marshal(attrsOf(d))
	if err != nil {
		return err
	}
	_, err = st.exec(ctx, tx, `UPDATE devices SET kind = ?, attrs = ?, password_hash = ?, previous_hash = '',
previous_until = 0, disabled = 0, managed = ?, updated_at = ? WHERE id = ?`, d.Kind, string(attrs), d.PasswordHash, ManagedConfig, now, d.ID)
	return err
}

func sameAttrs(a, b deviceAttrs) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// ErrPolled is returned when a secret is asked for a device polled over
// Modbus, which does not log in.
var ErrPolled = errors.New("device is polled over Modbus and has no secret")

// AddDevice registers a new device (ErrConflict if its id is registered,
// disabled or not; ErrBadRequest with the problems if it is invalid) and
// returns its machine-generated secret, which is not kept: only its hash
// is. cfg gives the kinds' default intervals (it may be nil). A device
// polled over Modbus gets no secret.
func (s *Service) AddDevice(ctx context.Context, cfg *fleet.Config, d fleet.Device) (secret string, err error) {
	d.PasswordHash = ""
	if d.Transport != "modbus" {
		var hash string
		if secret, hash, err = fleet.GenerateSecret(); err != nil {
			return "", err
		}
		d.PasswordHash = hash
	}
	if err := cfg.CheckDevice(&d); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	attrs, err := json.Marshal(attrsOf(d))
	if err != nil {
		return "", err
	}
	now := ms(s.now())
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM devices WHERE id = ?`, d.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: device %q is already registered", ErrConflict, d.ID)
		}
		if _, err := s.st.exec(ctx, tx, `INSERT INTO devices (id, kind, attrs, password_hash, managed, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, d.ID, d.Kind, string(attrs), d.PasswordHash, ManagedRegistry, now, now); err != nil {
			return err
		}
		return s.st.bumpDevices(ctx, tx)
	})
	if err != nil {
		return "", fmt.Errorf("cases: add device %s: %w", d.ID, err)
	}
	s.log.Info("device registered", "device", d.ID, "kind", d.Kind)
	return secret, nil
}

// SetDeviceDisabled disables (or enables again) a registered device
// (ErrNotFound). A disabled device cannot log in; gateways cut its
// connections when they see the change. The row passes to the registry's
// management: the file no longer changes it.
func (s *Service) SetDeviceDisabled(ctx context.Context, id string, disabled bool) error {
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.st.exec(ctx, tx, `UPDATE devices SET disabled = ?, managed = ?, updated_at = ? WHERE id = ?`,
			b2i(disabled), ManagedRegistry, ms(s.now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no device %q", ErrNotFound, id)
		}
		return s.st.bumpDevices(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("cases: disable device %s: %w", id, err)
	}
	s.log.Info("device disabled", "device", id, "disabled", disabled)
	return nil
}

// RotateDevice gives a registered device a new machine-generated secret
// and returns it; the secret it replaces stays valid for grace (0: it stops
// at once), so the device can be reconfigured without losing its
// connection. A rotation during a grace period ends the older secret. The
// row passes to the registry's management.
func (s *Service) RotateDevice(ctx context.Context, id string, grace time.Duration) (secret string, until time.Time, err error) {
	if grace < 0 {
		return "", time.Time{}, fmt.Errorf("%w: grace must not be negative", ErrBadRequest)
	}
	secret, hash, err := fleet.GenerateSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	if grace > 0 {
		until = now.Add(grace)
	}
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		ds, err := s.st.devices(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return fmt.Errorf("%w: no device %q", ErrNotFound, id)
		}
		if ds[0].Transport == "modbus" {
			return fmt.Errorf("%w: %w", ErrBadRequest, ErrPolled)
		}
		prev := ds[0].PasswordHash
		if grace == 0 {
			prev = ""
		}
		if _, err := s.st.exec(ctx, tx, `UPDATE devices SET password_hash = ?, previous_hash = ?, previous_until = ?,
managed = ?, updated_at = ? WHERE id = ?`, hash, prev, ms(until), ManagedRegistry, ms(now), id); err != nil {
			return err
		}
		return s.st.bumpDevices(ctx, tx)
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("cases: rotate device %s: %w", id, err)
	}
	s.log.Info("device secret rotated", "device", id, "old_valid_until", until)
	return secret, until, nil
}
