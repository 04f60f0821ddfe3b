package broker

import "testing"

func TestOwnTopic(t *testing.T) {
	for _, c := range []struct {
		topic, device, rest string
		ok                  bool
	}{
		{TopicPrefix + "bin-1/telemetry", "bin-1", "telemetry", true},
		{TopicPrefix + "bin-1/", "bin-1", "", true},
		{TopicPrefix + "bin-12/telemetry", "bin-1", "", false}, // another device sharing a prefix
		{TopicPrefix + "bin-1", "bin-1", "", false},
		{TopicPrefix + "bin-2/telemetry", "bin-1", "", false},
		{"sanigate/v2/devices/bin-1/telemetry", "bin-1", "", false},
		{TopicPrefix + "/telemetry", "", "", false},
		{TopicPrefix + "bin-1/cmd/x", "bin-1", "cmd/x", true},
	} {
		rest, ok := ownTopic(c.topic, []byte(c.device))
		if rest != c.rest || ok != c.ok {
			t.Errorf("ownTopic(%q, %q) = %q, %v; want %q, %v", c.topic, c.device, rest, ok, c.rest, c.ok)
		}
	}
}
