package cases

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Group robot channels: the chat groups crews already read. Each robot is a
// webhook URL of the chat service plus, for DingTalk and Feishu, the signing
// secret the group's robot settings show.
const (
	ChannelDingTalk = "dingtalk" // DingTalk custom robot (钉钉群机器人)
	ChannelWeCom    = "wecom"    // WeCom group robot (企业微信群机器人)
	ChannelFeishu   = "feishu"   // Feishu custom bot (飞书群机器人)
)

// RobotConfig is one group robot a unit's notifications go to, beside its
// webhook and MQTT topic:
//
//	robots:
//	  - {kind: dingtalk, url_env: EAST_DINGTALK_URL, secret_env: EAST_DINGTALK_SECRET}
//	  - {kind: wecom, url_file: east-wecom.url}
//	  - {kind: feishu, name: east-night-shift, url_env: EAST_FEISHU_URL, secret_file: east-feishu.secret}
//
// The robot's URL carries its access token (DingTalk's access_token, WeCom's
// key, Feishu's hook id), so it is a secret too: give it inline (url), in a
// file (url_file) or in the environment (url_env), exactly one.
type RobotConfig struct {
	// Name tells robots of one unit apart in the delivery records (default:
	// the kind). It is what the outbox stores, never the URL.
	Name string `yaml:"name"`
	// Kind is dingtalk, wecom or feishu.
	Kind    string `yaml:"kind"`
	URL     Secret `yaml:"url"`
	URLFile string `yaml:"url_file"`
	URLEnv  string `yaml:"url_env"`
	// Secret signs DingTalk and Feishu requests ("加签"); one of Secret,
	// SecretFile, SecretEnv, or none when the robot is protected by keywords
	// or an IP allow-list instead. WeCom group robots have no signature.
	Secret     Secret `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
}

func (r RobotConfig) name() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Kind
}

// validateRobots adds the problems of one unit's robots (f is the unit's
// field path, such as "units[2]").
func validateRobots(add addFunc, f string, robots []RobotConfig) {
	names := map[string]bool{}
	for i, r := range robots {
		rf := fmt.Sprintf("%s.robots[%d]", f, i)
		switch r.Kind {
		case ChannelDingTalk, ChannelFeishu:
		case ChannelWeCom:
			if r.Secret != "" || r.SecretFile != "" || r.SecretEnv != "" {
				add(rf+".secret", "WeCom group robots are not signed; its key is in the URL")
			}
		default:
			add(rf+".kind", "%q is not a robot kind (dingtalk, wecom, feishu)", r.Kind)
		}
		if names[r.name()] {
			add(rf+".name", "robot %q is listed twice for this unit; give each a name", r.name())
		}
		names[r.name()] = true
		if countSet(string(r.URL), r.URLFile, r.URLEnv) != 1 {
			add(rf+".url", "a robot needs exactly one of url, url_file, url_env")
		} else if r.URL != "" && !httpURL(string(r.URL)) {
			add(rf+".url", "the robot URL is not an http(s) URL")
		}
		if countSet(string(r.Secret), r.SecretFile, r.SecretEnv) > 1 {
			add(rf+".secret", "give at most one of secret, secret_file, secret_env")
		}
	}
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

func httpURL(s string) bool {
	p, err := url.Parse(s)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// robot is a configured robot with its URL and secret read.
type robot struct {
	kind   string
	url    string
	secret []byte
}

// loadRobot reads a robot's URL and secret from the setting, the file
// (relative to dir) or the environment.
func loadRobot(unit string, r RobotConfig, dir string, getenv func(string) string) (robot, error) {
	u, err := readSecret(string(r.URL), r.URLFile, r.URLEnv, dir, getenv)
	if err != nil {
		return robot{}, fmt.Errorf("unit %s: robot %s URL: %w", unit, r.name(), err)
	}
	if !httpURL(u) {
		return robot{}, fmt.Errorf("unit %s: robot %s: the URL is not an http(s) URL", unit, r.name())
	}
	sec, err := readSecret(string(r.Secret), r.SecretFile, r.SecretEnv, dir, getenv)
	if err != nil {
		return robot{}, fmt.Errorf("unit %s: robot %s secret: %w", unit, r.name(), err)
	}
	out := robot{kind: r.Kind, url: u}
	if sec != "" {
		out.secret = []byte(sec)
	}
	return out, nil
}

// readSecret returns the inline value, the trimmed content of file or the
// environment variable env, whichever is set; "" when none is.
func readSecret(inline, file, env, dir string, getenv func(string) string) (string, error) {
	switch {
	case inline != "":
		return inline, nil
	case file != "":
		p := file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("file %s is empty", file)
		}
		return s, nil
	case env != "":
		s := getenv(env)
		if s == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return s, nil
	}
	return "", nil
}
