package cases

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DingTalkSign returns the "sign" query parameter of a DingTalk robot
// request at timestamp ts (Unix milliseconds), before URL encoding: the
// base64 HMAC-SHA256 of ts + "\n" + secret under secret.
func DingTalkSign(secret []byte, ts int64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10) + "\n" + string(secret)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FeishuSign returns the "sign" field of a Feishu bot message at timestamp
// ts (Unix seconds): ts + "\n" + secret is the HMAC-SHA256 key, the message
// is empty, and the digest is base64-encoded.
func FeishuSign(secret []byte, ts int64) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(ts, 10)+"\n"+string(secret)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// textMessage is the text message of DingTalk and WeCom robots.
type textMessage struct {
	MsgType string `json:"msgtype"`
	Text    struct {
		Content string `json:"content"`
	} `json:"text"`
}

// feishuMessage is a Feishu bot text message with its signature.
type feishuMessage struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Content   struct {
		Text string `json:"text"`
	} `json:"content"`
}

// robotAnswer covers the three services' answers: DingTalk and WeCom say
// errcode/errmsg, Feishu code/msg (older Feishu bots StatusCode). All
// answer HTTP 200 when they refuse a message, so the code decides.
type robotAnswer struct {
	ErrCode    *int   `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
	Code       *int   `json:"code"`
	Msg        string `json:"msg"`
	StatusCode *int   `json:"StatusCode"`
}

// sendRobot posts one queued notification to a group robot.
func (s *Service) sendRobot(ctx context.Context, p pending) (int, error) {
	r, ok := s.r().robots[p.unit][p.target]
	if !ok || r.kind != p.channel {
		return 0, fmt.Errorf("unit %q has no %s robot named %q configured", p.unit, p.channel, p.target)
	}
	var n Notification
	if err := json.Unmarshal([]byte(p.payload), &n); err != nil {
		return 0, fmt.Errorf("queued notification %d: %w", p.id, err)
	}
	n.Delivery = p.id
	text := robotText(n, s.r().units[p.unit].Name, s.loc)
	target, body, err := robotRequest(r, text, s.now())
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Outbox.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s robot: %w", r.kind, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "sanigate-cases")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error text names the URL, which holds the robot's token.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return 0, fmt.Errorf("%s robot: %w", r.kind, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%s robot answered %s", r.kind, resp.Status)
	}
	return resp.StatusCode, checkRobotAnswer(r.kind, raw)
}

// robotRequest builds the URL and body of a robot message sent at now,
// signed as the robot's service documents it.
func robotRequest(r robot, text string, now time.Time) (string, []byte, error) {
	switch r.kind {
	case ChannelDingTalk, ChannelWeCom:
		var m textMessage
		m.MsgType = "text"
		m.Text.Content = text
		body, err := json.Marshal(m)
		if err != nil {
			return "", nil, err
		}
		if r.kind == ChannelWeCom || r.secret == nil {
			return r.url, body, nil
		}
		u, err := url.Parse(r.url)
		if err != nil {
			return "", nil, fmt.Errorf("dingtalk robot: the URL does not parse")
		}
		ts := now.UnixMilli()
		q := u.Query()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(r.secret, ts)) // Encode url-encodes the base64 once, as documented
		u.RawQuery = q.Encode()
		return u.String(), body, nil
	case ChannelFeishu:
		var m feishuMessage
		m.MsgType = "text"
		m.Content.Text = text
		if r.secret != nil {
			ts := now.Unix()
			m.Timestamp = strconv.FormatInt(ts, 10)
			m.Sign = FeishuSign(r.secret, ts)
		}
		body, err := json.Marshal(m)
		return r.url, body, err
	}
	return "", nil, fmt.Errorf("unknown robot kind %q", r.kind)
}

func checkRobotAnswer(kind string, raw []byte) error {
	var a robotAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("%s robot: answer is not JSON: %w", kind, err)
	}
	switch {
	case a.ErrCode != nil && *a.ErrCode != 0:
		return fmt.Errorf("%s robot refused the message: errcode %d %s", kind, *a.ErrCode, a.ErrMsg)
	case a.Code != nil && *a.Code != 0:
		return fmt.Errorf("%s robot refused the message: code %d %s", kind, *a.Code, a.Msg)
	case a.StatusCode != nil && *a.StatusCode != 0:
		return fmt.Errorf("%s robot refused the message: StatusCode %d", kind, *a.StatusCode)
	case a.ErrCode == nil && a.Code == nil && a.StatusCode == nil:
		return fmt.Errorf("%s robot: answer carries no result code", kind)
	}
	return nil
}
