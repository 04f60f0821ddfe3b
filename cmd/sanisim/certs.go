package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sanigate/sanigate/internal/certgen"
)

// genCerts writes a throw-away CA, a server certificate for localhost and
// client certificates for the given devices, for the local demo.
func genCerts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim gen-certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".run/tls", "`folder` to write the PEM files to")
	devices := fs.String("devices", "bin-0001", "comma-separated device `ids` to issue client certificates for")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "sanisim gen-certs: %v\n", err)
		return 1
	}
	ca, err := certgen.NewCA(*dir, "ca")
	if err != nil {
		fmt.Fprintf(stderr, "sanisim gen-certs: %v\n", err)
		return 1
	}
	if _, _, err := ca.Server(*dir, "gateway"); err != nil {
		fmt.Fprintf(stderr, "sanisim gen-certs: %v\n", err)
		return 1
	}
	for _, id := range strings.Split(*devices, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if _, _, err := ca.Client(*dir, id, id); err != nil {
			fmt.Fprintf(stderr, "sanisim gen-certs: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "certificates written to %s (ca.pem, gateway.pem, and one per device), valid for a day\n", *dir)
	return 0
}
