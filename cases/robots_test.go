package cases

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Known answers computed outside Go from the services' published sample
// code (Python's hmac, base64 and urllib.parse.quote_plus), for a fixed
// secret and timestamp.
func TestRobotSignKnownAnswers(t *testing.T) {
	ding := DingTalkSign([]byte("SEC0123456789abcdef"), 1764489600000)
	if got, want := url.QueryEscape(ding), "5YYUUW51ADvbSUEItAacIYq2CccgZar3Hwz%2BDg8nPBQ%3D"; got != want {
		t.Errorf("DingTalk sign: got %s, want %s", got, want)
	}
	if got, want := FeishuSign([]byte("feishu-secret"), 1764489600), "gJT9sAYjZe7HeyU69sAZohezSg7ZxWD48H3knLtMKuw="; got != want {
		t.Errorf("Feishu sign: got %s, want %s", got, want)
	}
}

// chatService is a local stand-in for one chat service's robot endpoint:
// it checks each request as the service documents (signature, timestamp
// window of one hour, token in the URL) and answers in the service's own
// format.
type chatService struct {
	t      *testing.T
	kind   string
	token  string // access_token (DingTalk), key (WeCom)
	secret string
	clock  func() time.Time
	srv    *httptest.Server

	mu       sync.Mutex
	texts    []string
	refusals []string
}

func newChatService(t *testing.T, kind, token, secret string, clock func() time.Time) *chatService {
	c := &chatService{t: t, kind: kind, token: token, secret: secret, clock: clock}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// url is the robot URL an operator copies from the group's robot settings.
func (c *chatService) url() string {
	switch c.kind {
	case ChannelDingTalk:
		return c.srv.URL + "/robot/send?access_token=" + c.token
	case ChannelWeCom:
		return c.srv.URL + "/cgi-bin/webhook/send?key=" + c.token
	}
	return c.srv.URL + "/open-apis/bot/v2/hook/" + c.token
}

func hmacB64(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (c *chatService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	text, refusal := c.check(r, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if refusal != "" {
		c.refusals = append(c.refusals, refusal)
		if c.kind == ChannelFeishu {
			_, _ = io.WriteString(w, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`)
		} else {
			_, _ = io.WriteString(w, `{"errcode":310000,"errmsg":"`+refusal+`"}`)
		}
		return
	}
	c.texts = append(c.texts, text)
	if c.kind == ChannelFeishu {
		_, _ = io.WriteString(w, `{"code":0,"msg":"success","data":{}}`)
	} else {
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}
}

// check returns the message text, or why the service would refuse it.
func (c *chatService) check(r *http.Request, body []byte) (string, string) {
	q := r.URL.Query()
	within := func(ts int64, unit time.Duration) bool {
		d := c.clock().Sub(time.Unix(0, ts*int64(unit)))
		return d < time.Hour && d > -time.Hour
	}
	switch c.kind {
	case ChannelDingTalk, ChannelWeCom:
		var m struct {
			MsgType string `json:"msgtype"`
			Text    struct {
				Content string `json:"content"`
			} `json:"text"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.MsgType != "text" {
			return "", "not a text message"
		}
		if c.kind == ChannelWeCom {
			if q.Get("key") != c.token {
				return "", "invalid webhook key"
			}
			return m.Text.Content, ""
		}
		if q.Get("access_token") != c.token {
			return "", "token is not exist"
		}
		// The sign must reach the server url-encoded: base64 has +, / and
		// =, which would otherwise be read as other characters.
		if strings.ContainsAny(rawParam(r.URL.RawQuery, "sign"), "+/=") {
			return "", "sign not url-encoded"
		}
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil || !within(ts, time.Millisecond) {
			return "", "invalid timestamp"
		}
		if q.Get("sign") != hmacB64(c.secret, q.Get("timestamp")+"\n"+c.secret) {
			return "", "sign not match"
		}
		return m.Text.Content, ""
	}
	var m struct {
		Timestamp string `json:"timestamp"`
		Sign      string `json:"sign"`
		MsgType   string `json:"msg_type"`
		Content   struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.MsgType != "text" {
		return "", "not a text message"
	}
	ts, err := strconv.ParseInt(m.Timestamp, 10, 64)
	if err != nil || !within(ts, time.Second) {
		return "", "invalid timestamp"
	}
	if m.Sign != hmacB64(m.Timestamp+"\n"+c.secret, "") {
		return "", "sign match fail"
	}
	return m.Content.Text, ""
}

func rawParam(raw, name string) string {
	for _, kv := range strings.Split(raw, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

func (c *chatService) got() ([]string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.texts...), append([]string(nil), c.refusals...)
}

func TestRobotNotificationsVerifyAsDocumented(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, cst)}
		ding := newChatService(t, ChannelDingTalk, "ding-token-1", "SECding-secret-1", clock.Now)
		wecom := newChatService(t, ChannelWeCom, "wecom-key-1", "", clock.Now)
		feishu := newChatService(t, ChannelFeishu, "feishu-hook-1", "feishu-secret-1", clock.Now)
		// A second Feishu group whose secret the operator mistyped: refused,
		// retried, never marked delivered.
		wrong := newChatService(t, ChannelFeishu, "feishu-hook-2", "the-real-secret", clock.Now)

		cfg := testConfig(st, "")
		cfg.Units[0].SecretEnv = ""
		cfg.Units[0].Robots = []RobotConfig{
			{Kind: ChannelDingTalk, URL: Secret(ding.url()), SecretEnv: "DING_SECRET"},
			{Kind: ChannelWeCom, URLEnv: "WECOM_URL"},
			{Kind: ChannelFeishu, URL: Secret(feishu.url()), Secret: "feishu-secret-1"},
			{Kind: ChannelFeishu, Name: "night-shift", URL: Secret(wrong.url()), Secret: "a-mistyped-secret"},
		}
		env := map[string]string{"DING_SECRET": "SECding-secret-1", "WECOM_URL": wecom.url()}
		e := newEnv(t, cfg, Deps{Clock: clock.Now, Getenv: func(k string) string { return env[k] }})

		if err := e.svc.Raise(ctx, dumpingAtFarm(clock.Now())); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := e.svc.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Advance(10 * time.Second)
		}
		for _, svc := range []*chatService{ding, wecom, feishu} {
			texts, refusals := svc.got()
			if len(refusals) > 0 || len(texts) != 1 {
				t.Fatalf("%s: got %d messages and refusals %v, want one verified message", svc.kind, len(texts), refusals)
			}
			t.Logf("%s received:\n%s", svc.kind, texts[0])
			for _, want := range []string{"新派遣", "违规倾倒", "严重", "东", "区域：east", "设备：truck-07", "farm-3",
				"受理时限：2026-11-27 11:00", "办结时限：2026-11-27 18:00", "load fell 1200 kg"} {
				if want == "东" {
					want = "责任单位：East enforcement bureau（enforcement-east）"
				}
				if !strings.Contains(texts[0], want) {
					t.Errorf("%s: message lacks %q:\n%s", svc.kind, want, texts[0])
				}
			}
		}
		texts, refusals := wrong.got()
		if len(texts) != 0 || len(refusals) != 2 {
			t.Fatalf("mistyped secret: got %d messages, %d refusals; want 0 and one refusal per attempt (2)", len(texts), len(refusals))
		}

		page, _ := e.svc.List(ctx, System, Filter{})
		ds, err := e.svc.Deliveries(ctx, page.Cases[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		byTarget := map[string]Delivery{}
		for _, d := range ds {
			if strings.Contains(d.Target, "token") || strings.Contains(d.Target, "hook-") || strings.Contains(d.LastError, "hook-") {
				t.Errorf("delivery %d shows the robot URL (a secret): %+v", d.ID, d)
			}
			byTarget[d.Channel+"/"+d.Target] = d
		}
		for _, k := range []string{"dingtalk/dingtalk", "wecom/wecom", "feishu/feishu"} {
			if d, ok := byTarget[k]; !ok || d.DeliveredAt.IsZero() || len(d.Attempts) != 1 {
				t.Errorf("%s: got %+v, want delivered at the first attempt", k, d)
			}
		}
		if d := byTarget["feishu/night-shift"]; !d.DeliveredAt.IsZero() || !strings.Contains(d.LastError, "19021") {
			t.Errorf("night-shift: got %+v, want undelivered with the service's refusal code", d)
		}
	})
}

func TestRobotConfigProblems(t *testing.T) {
	cfg := testConfig(StoreConfig{}, "")
	cfg.Units[1].Robots = []RobotConfig{
		{Kind: "telegram", URL: "https://example.invalid/x"},
		{Kind: ChannelWeCom, URL: "https://example.invalid/y", Secret: "x"},
		{Kind: ChannelDingTalk},
		{Kind: ChannelDingTalk, URL: "ftp://nowhere"},
	}
	got := cfg.Validate().Error()
	for _, want := range []string{
		"units[1].robots[0].kind", "units[1].robots[1].secret", "units[1].robots[2].url", "units[1].robots[3].name",
		"units[1].robots[3].url",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "example.invalid") {
		t.Errorf("problems print a robot URL (a secret):\n%s", got)
	}
}
