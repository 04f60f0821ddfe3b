package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errConnectRefused ends a connection whose CONNECT was answered with a
// refusal by OnConnect.
var errConnectRefused = errors.New("connect refused")

// OnConnect runs before authentication. It binds the device to a verified
// client certificate when there is one (filling in the username when the
// client sent none), and refuses:
//   - a client id that is neither the device id nor "{id}-..." (0x85; 3.1.1: 0x02),
//     so that no device can take over another's session;
//   - a new session for a device that holds MaxSessionsPerDevice already
//     (0x97; 3.1.1: 0x03);
//   - a will on any topic but the device's own status topic (0x87; 3.1.1: 0x05),
//     since mochi publishes wills without asking the ACL.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.recoveredValue("connect_checks", cl, r)
			err = errInternal
		}
	}()
	if ids := certIdentities(cl); len(ids) > 0 && len(cl.Properties.Username) == 0 {
		cl.Properties.Username = []byte(ids[0])
	}
	device := string(cl.Properties.Username)
	if device == "" {
		return nil // refused by OnConnectAuthenticate
	}
	if !clientIDBound(device, cl.ID, pk.Connect.ClientIdentifier == "") {
		h.b.metrics.authFailures.WithLabelValues("client_id").Inc()
		h.b.logLimited("client_id", "mqtt client id not bound to the device; refused", "device", device, "client", cl.ID, "remote", cl.Net.Remote)
		return h.refuseConnect(cl, packets.ErrClientIdentifierNotValid)
	}
	if err := h.checkSessions(cl, device); err != nil {
		return err
	}
	if cl.Properties.Will.Flag == 1 && cl.Properties.Will.TopicName != TopicPrefix+device+"/status" {
		h.b.metrics.authFailures.WithLabelValues("will_topic").Inc()
		h.b.logLimited("will", "mqtt will on a topic the device may not publish; refused", "device", device, "topic", cl.Properties.Will.TopicName, "remote", cl.Net.Remote)
		code := packets.ErrNotAuthorized
		if cl.Properties.ProtocolVersion < 5 {
			code = packets.ErrBadUsernameOrPassword // sent as 3.1.1's 0x05 not authorized
		}
		return h.refuseConnect(cl, code)
	}
	return nil
}

func (h *hook) refuseConnect(cl *mqtt.Client, code packets.Code) error {
	if err := h.b.srv.SendConnack(cl, code, false, nil); err != nil {
		return fmt.Errorf("send connack: %w", err)
	}
	return fmt.Errorf("%w: %s", errConnectRefused, code.Reason)
}

// clientIDBound reports whether client id may be used by device: the id
// itself or "{id}-anything"; an id the broker assigned (the client sent
// none) is unique and allowed.
func clientIDBound(device, id string, assigned bool) bool {
	return assigned || id == device || strings.HasPrefix(id, device+"-")
}

// certIdentities are the device ids a verified client certificate vouches
// for: its CN, then its DNS SANs. None when the connection is not TLS or the
// client sent no certificate.
func certIdentities(cl *mqtt.Client) []string {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return nil
	}
	leaf := st.PeerCertificates[0]
	var ids []string
	if leaf.Subject.CommonName != "" {
		ids = append(ids, leaf.Subject.CommonName)
	}
	return append(ids, leaf.DNSNames...)
}

// certAuthenticate decides a connection that presented a verified client
// certificate: the claimed device must be one the certificate names and a
// registered device; no password is asked. ok is false when no certificate
// was presented, so the password path decides.
func (h *hook) certAuthenticate(cl *mqtt.Client) (accept, ok bool) {
	ids := certIdentities(cl)
	if len(ids) == 0 {
		return false, false
	}
	device := string(cl.Properties.Username)
	if !slices.Contains(ids, device) || h.known == nil || !h.known(device) {
		h.b.metrics.authFailures.WithLabelValues("certificate").Inc()
		h.b.logLimited("auth", "mqtt client certificate does not name the device; refused", "device", device, "certificate", ids[0], "remote", cl.Net.Remote)
		return false, true
	}
	return true, true
}
