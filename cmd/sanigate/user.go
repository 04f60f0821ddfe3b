package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

// noPublisher stands in for the broker: the command never runs the outbox.
type noPublisher struct{}

func (noPublisher) Publish(string, []byte, bool, byte) error {
	return errors.New("no broker in this command")
}

// userCmd manages the console's users in the case store:
//
//	sanigate user add -config sanigate.yaml -name wang -role city [-admin] < password
//	sanigate user list -config sanigate.yaml
func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: sanigate user add|list -config FILE [flags]  (add reads the password on stdin)")
		return 2
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "sanigate.yaml", "path of the configuration `file`")
	name := fs.String("name", "", "user `name` (add)")
	role := fs.String("role", "", "`role`: city, district or unit (add)")
	district := fs.String("district", "", "the `district` of a district user (add)")
	unit := fs.String("unit", "", "the `unit` of a unit user (add)")
	lang := fs.String("lang", "zh", "console `language`: zh or en (add)")
	admin := fs.Bool("admin", false, "the user may create users (add)")
	existingOK := fs.Bool("existing-ok", false, "an existing user of that name is not an error (add)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := fleet.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	cc := cases.FromConfig(cfg)
	ctx := context.Background()
	svc, err := cases.Open(ctx, cc, cases.Deps{Calendar: cfg.WorkCalendar, Location: cfg.Location(),
		Publisher: noPublisher{}, Dir: filepath.Dir(cfg.File)})
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	defer svc.Close()
	if args[0] == "list" {
		users, err := svc.Users(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "sanigate: %v\n", err)
			return 1
		}
		for _, u := range users {
			fmt.Fprintf(stdout, "%s\t%s\t%s%s\tadmin=%v\n", u.Name, u.Role, u.District, u.Unit, u.Admin)
		}
		return 0
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	u := cases.User{Name: *name, Role: *role, District: *district, Unit: *unit, Lang: *lang, Admin: *admin}
	added, err := svc.AddUser(ctx, u, strings.TrimRight(line, "\r\n"))
	if errors.Is(err, cases.ErrConflict) && *existingOK {
		fmt.Fprintf(stdout, "user %s exists\n", *name)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "user %s added (%s)\n", added.Name, added.Role)
	return 0
}
