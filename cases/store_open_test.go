package cases

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The SQLite store's folder is created; when the file cannot be opened the
// error names its path and the setting.
func TestSQLiteStorePath(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing folder is created", func(t *testing.T) {
		var cfg Config
		cfg.applyDefaults()
		cfg.Store.Path = filepath.Join("run", "data", "cases.db")
		svc, err := Open(context.Background(), cfg, Deps{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		svc.Close()
		if _, err := os.Stat(filepath.Join(dir, "run", "data", "cases.db")); err != nil {
			t.Errorf("store file: %v", err)
		}
	})
	t.Run("unusable path is named", func(t *testing.T) {
		blocker := filepath.Join(dir, "not-a-folder")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{filepath.Join(blocker, "cases.db"), dir} {
			var cfg Config
			cfg.applyDefaults()
			cfg.Store.Path = path
			svc, err := Open(context.Background(), cfg, Deps{})
			if err == nil {
				svc.Close()
				t.Fatalf("%s: opened", path)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "cases.store.path") || strings.Count(msg, "cases:") != 1 {
				t.Errorf("got %q, want the path %s, the setting, and one prefix", msg, path)
			}
		}
	})
}
