package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

// backupFormat is the version of the backup archive's layout.
const backupFormat = 1

// maxConfigFile bounds the size of one configuration file taken into a
// backup: configuration and GeoJSON, not data.
const maxConfigFile = 64 << 20

// manifest is MANIFEST.json, the first entry of a backup archive.
type manifest struct {
	Format     int              `json:"format"`
	Sanigate   string           `json:"sanigate"`
	Created    time.Time        `json:"created"`
	ConfigFile string           `json:"config_file"` // its name under config/
	Config     []string         `json:"config"`      // files under config/
	Store      cases.BackupInfo `json:"store"`
}

// backupCmd writes the case store and the configuration folder into one
// gzip-compressed tar archive, while the gateway runs.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "sanigate.yaml", "path of the configuration `file`")
	out := fs.String("out", "", "archive to write (default sanigate-backup-YYYYMMDDTHHMMSSZ.tar.gz)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		*out = "sanigate-backup-" + time.Now().UTC().Format("20060102T150405Z") + ".tar.gz"
	}
	m, err := backup(context.Background(), *configPath, *out)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: case store (%s, %s, schema %d, %d rows) and %d configuration files\n",
		*out, m.Store.Driver, m.Store.Layout, m.Store.SchemaVersion, m.Store.Rows, len(m.Config))
	return 0
}

func backup(ctx context.Context, configPath, out string) (manifest, error) {
	var m manifest
	cfg, err := fleet.Load(configPath)
	if err != nil {
		return m, err
	}
	cc := cases.FromConfig(cfg)
	dir := filepath.Dir(cfg.File)
	driver, dsn, err := cases.StoreLocation(cc.Store, dir, os.Getenv)
	if err != nil {
		return m, err
	}
	tmp, err := os.MkdirTemp("", "sanigate-backup-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(tmp)
	if m.Store, err = cases.BackupStore(ctx, driver, dsn, tmp); err != nil {
		return m, err
	}
	skip := []string{cfg.Resolve(cfg.Spool.Dir)}
	if driver == cases.SQLite {
		skip = append(skip, dsn, dsn+"-wal", dsn+"-shm", dsn+".restore")
	}
	files, err := configFiles(dir, skip)
	if err != nil {
		return m, err
	}
	v, _, _ := buildInfo()
	m.Format, m.Sanigate, m.Created, m.ConfigFile, m.Config = backupFormat, v, time.Now().UTC(), filepath.Base(cfg.File), files
	return m, writeArchive(out, m, tmp, dir)
}

// configFiles lists the regular files under dir, relative to it, leaving
// out skip (the spool, the SQLite store) and anything too large to be
// configuration.
func configFiles(dir string, skip []string) ([]string, error) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[abs(s)] = true
	}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skipped[abs(p)] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > maxConfigFile {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}

// writeArchive writes MANIFEST.json, the store backup in storeDir under
// cases/, and the configuration files under config/, to a temporary file
// renamed into place once complete. The archive holds secrets: mode 0600.
func writeArchive(out string, m manifest, storeDir, configDir string) error {
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: "MANIFEST.json", Mode: 0o600, Size: int64(len(mb)), ModTime: m.Created}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	add := func(src, name string) error {
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
		r, err := os.Open(src)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.CopyN(tw, r, fi.Size())
		return err
	}
	err = filepath.WalkDir(storeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(storeDir, p)
		return add(p, "cases/"+filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	for _, rel := range m.Config {
		if err := add(filepath.Join(configDir, filepath.FromSlash(rel)), "config/"+rel); err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// extract unpacks a backup archive into dir, refusing entries that would
// land outside it, links, and anything but regular files and folders.
func extract(archive, dir string) (manifest, error) {
	var m manifest
	f, err := os.Open(archive)
	if err != nil {
		return m, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return m, fmt.Errorf("%s: not a backup archive: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("%s: %w", archive, err)
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return m, fmt.Errorf("%s: entry %q leaves the archive's folder", archive, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return m, fmt.Errorf("%s: entry %q is not a regular file", archive, h.Name)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return m, err
		}
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return m, err
		}
		_, err = io.Copy(w, tr)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.json"))
	if err != nil {
		return m, fmt.Errorf("%s: no MANIFEST.json: not a sanigate backup", archive)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: MANIFEST.json: %w", archive, err)
	}
	if m.Format < 1 || m.Format > backupFormat {
		return m, fmt.Errorf("%s: backup format %d, this sanigate reads up to %d", archive, m.Format, backupFormat)
	}
	return m, nil
}

// restoreCmd puts a backup back: the configuration files into a folder
// (with -config-out) and the case store into the store the configuration
// names. Stop the gateway first.
func restoreCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "backup `archive` to restore (required)")
	configPath := fs.String("config", "", "configuration `file` naming the case store to restore into (default: the restored one under -config-out)")
	configOut := fs.String("config-out", "", "`folder` to write the backed-up configuration files into")
	force := fs.Bool("force", false, "replace a case store that holds cases, and configuration files that exist")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || (*configPath == "" && *configOut == "") {
		fmt.Fprintln(stderr, "sanigate restore: give -in, and -config or -config-out")
		return 2
	}
	if err := restore(context.Background(), *in, *configPath, *configOut, *force, stdout); err != nil {
		fmt.Fprintf(stderr, "sanigate restore: %v\n", err)
		return 1
	}
	return 0
}

func restore(ctx context.Context, in, configPath, configOut string, force bool, stdout io.Writer) error {
	tmp, err := os.MkdirTemp("", "sanigate-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	m, err := extract(in, tmp)
	if err != nil {
		return err
	}
	if configOut != "" {
		if err := restoreConfig(m, filepath.Join(tmp, "config"), configOut, force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d configuration files restored into %s\n", len(m.Config), configOut)
		if configPath == "" {
			configPath = filepath.Join(configOut, m.ConfigFile)
		}
	}
	cfg, err := fleet.Load(configPath)
	if err != nil {
		return err
	}
	cc := cases.FromConfig(cfg)
	driver, dsn, err := cases.StoreLocation(cc.Store, filepath.Dir(cfg.File), os.Getenv)
	if err != nil {
		return err
	}
	if err := cases.RestoreStore(ctx, driver, dsn, filepath.Join(tmp, "cases"), m.Store, force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "case store restored into the %s store of %s (%d rows, schema %d, made %s by sanigate %s)\n",
		driver, configPath, m.Store.Rows, m.Store.SchemaVersion, m.Created.Format(time.RFC3339), m.Sanigate)
	return nil
}

func restoreConfig(m manifest, from, to string, force bool) error {
	for _, rel := range m.Config {
		name := filepath.FromSlash(rel)
		if !filepath.IsLocal(name) || strings.HasPrefix(rel, "/") {
			return fmt.Errorf("configuration file %q leaves the folder", rel)
		}
		dst := filepath.Join(to, name)
		if _, err := os.Stat(dst); err == nil && !force {
			return fmt.Errorf("%s exists (use -force to replace it)", dst)
		}
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o640); err != nil {
			return err
		}
	}
	return nil
}
