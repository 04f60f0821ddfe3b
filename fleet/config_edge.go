package fleet

import (
	"net"
	"time"
)

// applyEdgeDefaults fills the listener, TLS and cap settings of the MQTT and
// HTTP sections.
func (c *Config) applyEdgeDefaults() {
	if c.MQTT.TLSAddress == "" {
		c.MQTT.TLSAddress = ":8883"
	}
	if c.MQTT.MaxSubscriptions == 0 {
		c.MQTT.MaxSubscriptions = 16
	}
	if c.MQTT.MaxFilterBytes == 0 {
		c.MQTT.MaxFilterBytes = 256
	}
	if c.MQTT.MaxSessionExpiry == 0 {
		c.MQTT.MaxSessionExpiry = Duration(time.Hour)
	}
	if c.MQTT.MaxSessionsPerDevice == 0 {
		c.MQTT.MaxSessionsPerDevice = 4
	}
	if c.HTTP.TLSAddress == "" {
		c.HTTP.TLSAddress = ":8443"
	}
	if c.HTTP.ReadTimeout == 0 {
		c.HTTP.ReadTimeout = Duration(30 * time.Second)
	}
	if c.HTTP.WriteTimeout == 0 {
		c.HTTP.WriteTimeout = Duration(60 * time.Second)
	}
	if c.HTTP.IdleTimeout == 0 {
		c.HTTP.IdleTimeout = Duration(60 * time.Second)
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 1 << 20
	}
}

// validateEdge checks the listener, TLS and cap settings.
func (c *Config) validateEdge(add func(path, format string, args ...any)) {
	for _, a := range []struct{ path, addr string }{{"mqtt.tls_address", c.MQTT.TLSAddress}, {"http.tls_address", c.HTTP.TLSAddress}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			add(a.path, "%q is not a host:port address", a.addr)
		}
	}
	pair := func(section, cert, key string) {
		switch {
		case cert != "" && key == "":
			add(section+".tls_cert_file", "needs %s.tls_key_file too", section)
		case cert == "" && key != "":
			add(section+".tls_key_file", "needs %s.tls_cert_file too", section)
		}
	}
	pair("mqtt", c.MQTT.TLSCertFile, c.MQTT.TLSKeyFile)
	pair("http", c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile)
	if c.MQTT.ClientCAFile != "" && c.MQTT.TLSCertFile == "" {
		add("mqtt.client_ca_file", "needs mqtt.tls_cert_file and mqtt.tls_key_file")
	}
	if c.MQTT.MaxSubscriptions < 1 || c.MQTT.MaxSubscriptions > 10000 {
		add("mqtt.max_subscriptions", "must be between 1 and 10000, got %d", c.MQTT.MaxSubscriptions)
	}
	if c.MQTT.MaxFilterBytes < 32 || c.MQTT.MaxFilterBytes > 65535 {
		add("mqtt.max_filter_bytes", "must be between 32 and 65535, got %d", c.MQTT.MaxFilterBytes)
	}
	if c.MQTT.MaxSessionsPerDevice < 1 || c.MQTT.MaxSessionsPerDevice > 1000 {
		add("mqtt.max_sessions_per_device", "must be between 1 and 1000, got %d", c.MQTT.MaxSessionsPerDevice)
	}
	if d := c.MQTT.MaxSessionExpiry.D(); d < 0 || d > 7*24*time.Hour {
		add("mqtt.max_session_expiry", "must be between 0 and 168h, got %s", d)
	}
	for _, d := range []struct {
		path string
		v    Duration
	}{{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout}} {
		if d.v < 0 {
			add(d.path, "must be positive")
		}
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		add("http.max_body_bytes", "must be at least 1024, got %d", c.HTTP.MaxBodyBytes)
	}
}
