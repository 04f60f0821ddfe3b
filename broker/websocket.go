package broker

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// WebSocketHandler serves MQTT over WebSocket (subprotocol "mqtt") for crew
// terminals and browser clients; mount it on the HTTPS server. Clients log
// in and are checked by the topic ACL exactly as on the TCP listeners.
// Origins are not restricted: credentials travel in the MQTT CONNECT, never
// in cookies, so a foreign page gains nothing it could not do by itself.
func (b *Broker) WebSocketHandler() http.Handler {
	up := websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     []string{"mqtt"},
		CheckOrigin:      func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.logLimited("ws_upgrade", "mqtt over websocket: upgrade refused", "remote", r.RemoteAddr, "error", err.Error())
			return
		}
		ws.SetReadLimit(int64(b.maxPacket) + 8)
		conn := &wsConn{Conn: ws.NetConn(), ws: ws}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		b.wsLn.serveConn(b.srv.EstablishConnection, conn)
	})
}

// wsConn is a WebSocket connection as the byte stream mochi reads MQTT
// packets from: binary messages concatenated.
type wsConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader
	wm sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.ws.Close() }

// wsListener registers the WebSocket clients with mochi, so that closing
// the broker closes them too; connections arrive through WebSocketHandler.
type wsListener struct{ listener }

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}
func (l *wsListener) Protocol() string            { return "wss" }
func (l *wsListener) Address() string             { return "/mqtt" }
func (l *wsListener) Serve(listeners.EstablishFn) {}
func (l *wsListener) Close(listeners.CloseFn)     { l.end.Store(true) } // Broker.Close disconnects the clients
