package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/sanigate/sanigate/internal/tlsfiles"
)

// mqttTLS is the MQTT over TLS listener's configuration, or nil when no
// certificate is configured.
func (g *Gateway) mqttTLS() (*tls.Config, error) {
	mc := g.cfg.MQTT
	if mc.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tlsfiles.Load(g.cfg.Resolve(mc.TLSCertFile), g.cfg.Resolve(mc.TLSKeyFile))
	if err != nil {
		return nil, fmt.Errorf("mqtt tls: %w", err)
	}
	ca := ""
	if mc.ClientCAFile != "" {
		ca = g.cfg.Resolve(mc.ClientCAFile)
	}
	cfg, err := tlsfiles.ServerConfig(cert, ca)
	if err != nil {
		return nil, fmt.Errorf("mqtt tls: %w", err)
	}
	return cfg, nil
}

// startHTTPS serves mux over TLS when http.tls_cert_file is set, with MQTT
// over WebSocket at /mqtt (only here: its passwords must not travel in clear).
func (g *Gateway) startHTTPS(mux *http.ServeMux) error {
	hc := g.cfg.HTTP
	if hc.TLSCertFile == "" {
		return nil
	}
	cert, err := tlsfiles.Load(g.cfg.Resolve(hc.TLSCertFile), g.cfg.Resolve(hc.TLSKeyFile))
	if err != nil {
		return fmt.Errorf("https: %w", err)
	}
	tc, err := tlsfiles.ServerConfig(cert, "")
	if err != nil {
		return fmt.Errorf("https: %w", err)
	}
	ln, err := net.Listen("tcp", hc.TLSAddress)
	if err != nil {
		return fmt.Errorf("https: %w", err)
	}
	g.httpsLn = ln
	withWS := http.NewServeMux()
	withWS.Handle("/", mux)
	withWS.Handle("GET /mqtt", g.broker.WebSocketHandler())
	g.https = g.newHTTPServer(withWS)
	g.https.TLSConfig = tc
	go func() {
		if err := g.https.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("https server stopped", "error", err)
		}
	}()
	return nil
}

// HTTPSAddr is the HTTPS listener's address, or "" when there is none.
func (g *Gateway) HTTPSAddr() string {
	if g.httpsLn == nil {
		return ""
	}
	return g.httpsLn.Addr().String()
}

// MQTTTLSAddr is the MQTT over TLS listener's address, or "" when there is none.
func (g *Gateway) MQTTTLSAddr() string { return g.broker.TLSAddr() }
