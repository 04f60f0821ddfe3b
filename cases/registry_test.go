package cases

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

func mustSecret(t *testing.T) string {
	t.Helper()
	_, h, err := fleet.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDeviceRegistrySeed: the file seeds the registry; rows it manages follow
// it (insert, update, delete), rows changed through the registry do not, and
// the version moves only when something changed.
func TestDeviceRegistrySeed(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		h1, h2 := mustSecret(t), mustSecret(t)
		file := []fleet.Device{
			{ID: "bin-1", Kind: "bin", Category: "kitchen", PasswordHash: h1, Interval: fleet.Duration(5 * time.Minute)},
			{ID: "bin-2", Kind: "bin", Category: "other", PasswordHash: h2, Interval: fleet.Duration(5 * time.Minute)},
		}
		res, err := e.svc.SyncConfigDevices(ctx, file)
		if err != nil || res.Added != 2 {
			t.Fatalf("first seed: %+v, %v; want 2 added", res, err)
		}
		v1, _ := e.svc.RegistryVersion(ctx)
		if res, err := e.svc.SyncConfigDevices(ctx, file); err != nil || res.Added+res.Updated+res.Removed != 0 {
			t.Fatalf("same file again: %+v, %v; want no change", res, err)
		}
		if v, _ := e.svc.RegistryVersion(ctx); v != v1 {
			t.Fatalf("version moved from %d to %d on a sync that changed nothing", v1, v)
		}
		// bin-2 is disabled through the registry: the file no longer owns it.
		if err := e.svc.SetDeviceDisabled(ctx, "bin-2", true); err != nil {
			t.Fatal(err)
		}
		file[0].Category = "recyclable"
		file = file[:1] // bin-2 leaves the file, bin-1 changes
		res, err = e.svc.SyncConfigDevices(ctx, append(file, fleet.Device{ID: "bin-2", Kind: "bin", Category: "other", PasswordHash: h2}))
		if err != nil || res.Updated != 1 || !slices.Equal(res.Kept, []string{"bin-2"}) {
			t.Fatalf("sync: %+v, %v; want bin-1 updated and bin-2 kept", res, err)
		}
		res, err = e.svc.SyncConfigDevices(ctx, file)
		if err != nil || res.Removed != 0 {
			t.Fatalf("sync without bin-2: %+v, %v; want the registry's row kept", res, err)
		}
		ds, _, err := e.svc.RegisteredDevices(ctx)
		if err != nil || len(ds) != 2 || ds[0].Category != "recyclable" || !ds[1].Disabled || ds[1].Managed != ManagedRegistry {
			t.Fatalf("registry %+v, %v", ds, err)
		}
		// A row the file manages goes when its device leaves the file.
		if res, err := e.svc.SyncConfigDevices(ctx, nil); err != nil || res.Removed != 1 {
			t.Fatalf("empty file: %+v, %v; want bin-1 removed", res, err)
		}
	})
}

// TestDeviceRegistryAPI: only administrators change the registry; a new
// device's secret is shown once and verifies against the stored hash; a
// rotation keeps the old hash until the grace period ends; nothing secret is
// listed.
func TestDeviceRegistryAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		changes := 0
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{OnRegistryChange: func() { changes++ }})
		add := map[string]any{"id": "truck-9", "kind": "truck", "category": "kitchen", "capacity_kg": 8000}
		if code := e.call(t, tokEast, "POST", "/api/v1/devices", add, nil); code != http.StatusForbidden {
			t.Fatalf("district token adds a device: %d, want 403", code)
		}
		var bad apiError
		if code := e.call(t, tokCity, "POST", "/api/v1/devices", map[string]any{"id": "x y", "kind": "truck"}, &bad); code != http.StatusBadRequest ||
			!strings.Contains(bad.Error, "device.id") || !strings.Contains(bad.Error, "device.capacity_kg") {
			t.Fatalf("invalid device: %d %+v, want 400 naming every problem", code, bad)
		}
		var added struct {
			Device map[string]any
			Secret string
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices", add, &added); code != http.StatusCreated || len(added.Secret) < 22 {
			t.Fatalf("add: %d %+v", code, added)
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices", add, nil); code != http.StatusConflict {
			t.Fatalf("second add: %d, want 409", code)
		}
		d, err := e.svc.RegisteredDevice(ctx, "truck-9")
		if err != nil || fleet.VerifyPassword(d.PasswordHash, added.Secret) != nil || d.Interval.D() != 10*time.Second {
			t.Fatalf("stored device %+v, %v: the secret must verify and the truck interval default", d, err)
		}
		var rot struct {
			Secret string
			Until  time.Time `json:"previous_secret_until"`
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices/truck-9/rotate", map[string]any{"grace": "2h"}, &rot); code != http.StatusOK || rot.Secret == added.Secret {
			t.Fatalf("rotate: %d %+v", code, rot)
		}
		d, _ = e.svc.RegisteredDevice(ctx, "truck-9")
		if fleet.VerifyPassword(d.PasswordHash, rot.Secret) != nil || fleet.VerifyPassword(d.PreviousPasswordHash, added.Secret) != nil ||
			!d.PreviousUntil.Equal(e.clock.Now().Add(2*time.Hour).Truncate(time.Millisecond)) {
			t.Fatalf("after rotation: %+v", d)
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices/truck-9/rotate", map[string]any{"grace": "2h", "extra": 1}, nil); code != http.StatusBadRequest {
			t.Fatalf("rotate with an unknown key: %d, want 400", code)
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices/nope/disable", nil, nil); code != http.StatusNotFound {
			t.Fatalf("disable unknown: %d, want 404", code)
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices/truck-9/disable", nil, nil); code != http.StatusOK {
			t.Fatalf("disable: %d", code)
		}
		var list map[string]any
		raw := e.call(t, tokCity, "GET", "/api/v1/admin/devices", nil, &list)
		if raw != http.StatusOK || len(list["devices"].([]any)) != 1 {
			t.Fatalf("list: %d %v", raw, list)
		}
		got := list["devices"].([]any)[0].(map[string]any)
		for k := range got {
			if strings.Contains(k, "hash") || strings.Contains(k, "Password") {
				t.Fatalf("the registry list shows %q: %v", k, got)
			}
		}
		if got["disabled"] != true || got["managed"] != ManagedRegistry {
			t.Fatalf("listed %v", got)
		}
		if changes != 3 {
			t.Fatalf("%d change notices, want 3 (add, rotate, disable)", changes)
		}
	})
}

// TestDeviceRegistryRemove: removing a device the registry added deletes
// it; removing a device of the file that the registry took over (disabled,
// rotated) hands it back to the file: enabled, with the file's secret and
// entry, managed by the file again. Only administrators may; an unknown
// device is 404.
func TestDeviceRegistryRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		changes := 0
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{OnRegistryChange: func() { changes++ }})
		h1 := mustSecret(t)
		file := []fleet.Device{{ID: "bin-1", Kind: "bin", Category: "kitchen", PasswordHash: h1, Interval: fleet.Duration(5 * time.Minute)}}
		if _, err := e.svc.SyncConfigDevices(ctx, file); err != nil {
			t.Fatal(err)
		}
		add := map[string]any{"id": "truck-9", "kind": "truck", "category": "kitchen", "capacity_kg": 8000}
		if code := e.call(t, tokCity, "POST", "/api/v1/devices", add, nil); code != http.StatusCreated {
			t.Fatalf("add: %d", code)
		}
		if err := e.svc.SetDeviceDisabled(ctx, "bin-1", true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.RotateDevice(ctx, "bin-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		if code := e.call(t, tokEast, "DELETE", "/api/v1/devices/truck-9", nil, nil); code != http.StatusForbidden {
			t.Fatalf("district token removes a device: %d, want 403", code)
		}
		if code := e.call(t, tokCity, "DELETE", "/api/v1/devices/nope", nil, nil); code != http.StatusNotFound {
			t.Fatalf("remove unknown: %d, want 404", code)
		}
		v0, _ := e.svc.RegistryVersion(ctx)
		var out struct{ Removed bool }
		if code := e.call(t, tokCity, "DELETE", "/api/v1/devices/truck-9", nil, &out); code != http.StatusOK || !out.Removed {
			t.Fatalf("remove truck-9: %d %+v", code, out)
		}
		if _, err := e.svc.RegisteredDevice(ctx, "truck-9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("truck-9 after removal: %v, want not found", err)
		}
		if code := e.call(t, tokCity, "DELETE", "/api/v1/devices/bin-1", nil, &out); code != http.StatusOK || out.Removed {
			t.Fatalf("remove bin-1: %d %+v, want it handed back to the file", code, out)
		}
		d, err := e.svc.RegisteredDevice(ctx, "bin-1")
		if err != nil || d.Disabled || d.Managed != ManagedConfig || d.PasswordHash != h1 || d.PreviousPasswordHash != "" ||
			d.Category != "kitchen" {
			t.Fatalf("bin-1 handed back: %+v, %v", d, err)
		}
		if v, _ := e.svc.RegistryVersion(ctx); v != v0+2 {
			t.Fatalf("version %d after two removals from %d", v, v0)
		}
		if changes != 3 {
			t.Fatalf("%d change notices, want 3 (add, two removals)", changes)
		}
		// The file owns it again: a change in the file applies.
		file[0].Category = "other"
		if res, err := e.svc.SyncConfigDevices(ctx, file); err != nil || res.Updated != 1 || len(res.Kept) != 0 {
			t.Fatalf("sync after hand-back: %+v, %v", res, err)
		}
	})
}
