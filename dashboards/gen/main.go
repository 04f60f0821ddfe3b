// Command gen writes sanigate's Grafana dashboards as JSON into
// dashboards/json (or -out), from the Go definitions in package dashboards.
//
//	go run ./dashboards/gen
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sanigate/sanigate/dashboards"
)

func main() {
	out := flag.String("out", "dashboards/json", "folder to write the dashboards into")
	flag.Parse()
	if err := dashboards.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
