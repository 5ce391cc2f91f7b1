package message

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/quotedprintable"
	nettextproto "net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Settings are a campaign's sender-side choices, fixed when it is planned.
type Settings struct {
	// ReturnPath is the envelope sender (MAIL FROM), where bounces go;
	// "" means the From address.
	ReturnPath string `json:"return_path,omitempty" yaml:"return_path"`
	// VERP gives each message its own return path, local+TOKEN@domain,
	// so a bounce names its recipient.
	VERP bool `json:"verp,omitempty" yaml:"verp"`
	// MessageIDDomain is the right-hand side of Message-IDs; "" means the
	// From address's domain.
	MessageIDDomain string `json:"message_id_domain,omitempty" yaml:"message_id_domain"`
	// UnsubscribeMailto and UnsubscribeURL build List-Unsubscribe (RFC
	// 2369); an https URL adds List-Unsubscribe-Post (RFC 8058 one-click).
	// "{token}" in the URL is replaced by the recipient's token, otherwise
	// it is added as the query parameter "token".
	UnsubscribeMailto string `json:"unsubscribe_mailto,omitempty" yaml:"unsubscribe_mailto"`
	UnsubscribeURL    string `json:"unsubscribe_url,omitempty" yaml:"unsubscribe_url"`
	// FeedbackID is the Feedback-ID header (Gmail's feedback loop);
	// "{campaign}" is replaced by the campaign's name.
	FeedbackID string `json:"feedback_id,omitempty" yaml:"feedback_id"`
}

// Check reports settings that cannot work.
func (s Settings) Check() error {
	if s.UnsubscribeURL != "" {
		u, err := url.Parse(s.UnsubscribeURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("unsubscribe_url %q: want an https:// URL (RFC 8058 one-click needs https)", s.UnsubscribeURL)
		}
	}
	for name, a := range map[string]string{"return_path": s.ReturnPath, "unsubscribe_mailto": s.UnsubscribeMailto} {
		local, domain, _ := strings.Cut(a, "@")
		if a != "" && (strings.Count(a, "@") != 1 || local == "" || !strings.Contains(domain, ".") || strings.ContainsAny(a, " <>\r\n")) {
			return fmt.Errorf("%s %q: want a bare address such as bounces@example.org", name, a)
		}
	}
	for _, c := range s.FeedbackID {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("feedback_id %q: want printable ASCII without spaces", s.FeedbackID)
		}
	}
	return nil
}

// Attachment is a file sent with every message.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Spec is everything that makes a campaign's messages but the recipient.
type Spec struct {
	Campaign    string
	Template    *Template
	Attachments []Attachment
	Settings    Settings
	// Secret keys the per-recipient tokens (Message-ID, VERP,
	// unsubscribe): the same recipient gets the same ones on every run.
	Secret []byte
	// Signer DKIM-signs each message; nil sends them unsigned.
	Signer *Signer
}

// Recipient is one addressee and the list columns the template uses.
type Recipient struct {
	ID     int64 // the caller's, passed through (a relay's queued recipient)
	Email  string
	Values map[string]string
}

// Envelope is what the SMTP transaction needs besides the message.
type Envelope struct {
	MailFrom  string
	RcptTo    string
	MessageID string // without angle brackets
}

// Composer renders a campaign's message for each recipient.
type Composer struct {
	spec       Spec
	from       *mail.Address
	idDomain   string
	returnPath string
	now        func() time.Time

	macs sync.Pool // keyed HMACs for Token
	// static holds the template's header fields as rendered without
	// values, and formatted: a field that renders the same for a
	// recipient (From, most often) is not formatted again.
	static map[string]staticField
	date   atomic.Pointer[dateField]
}

type staticField struct{ raw, formatted string }

// dateField is the Date header of one second.
type dateField struct {
	unix int64
	v    string
}

// NewComposer checks spec once for everything every message needs.
func NewComposer(spec Spec, now func() time.Time) (*Composer, error) {
	if spec.Template == nil {
		return nil, fmt.Errorf("no template")
	}
	if len(spec.Secret) < 16 {
		return nil, fmt.Errorf("campaign secret too short")
	}
	if err := spec.Settings.Check(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	c := &Composer{spec: spec, now: now}
	// The From header may use fields, but its address must not vary: it is
	// what Message-IDs and the default return path hang on. Render it with
	// no values to find the address.
	h, err := c.renderHeader(nil)
	if err != nil {
		return nil, err
	}
	from, err := mail.ParseAddressList(h.Get("From"))
	if err != nil || len(from) != 1 {
		return nil, fmt.Errorf("the From header must hold exactly one address, not %q", h.Get("From"))
	}
	c.from = from[0]
	_, domain, _ := strings.Cut(c.from.Address, "@")
	c.idDomain = firstNonEmpty(spec.Settings.MessageIDDomain, domain)
	c.returnPath = firstNonEmpty(spec.Settings.ReturnPath, c.from.Address)
	c.static = map[string]staticField{}
	for f := h.Fields(); f.Next(); {
		k, v := f.Key(), f.Value()
		if _, dup := c.static[k]; dup || k == "To" {
			continue
		}
		formatted, err := formatField(k, v)
		if err != nil {
			continue // a field that needs values to be valid
		}
		c.static[k] = staticField{raw: v, formatted: formatted}
	}
	return c, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// tokenEncoding is base32 in lower case, without padding.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Token is the recipient's token for purpose: 20 base32 characters (100
// bits) of an HMAC of the address under the campaign's secret.
func (c *Composer) Token(purpose, email string) string {
	// Keyed HMACs are reused: keying one costs as much as the hash itself.
	m, _ := c.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, c.spec.Secret)
	} else {
		m.Reset()
	}
	var in [256]byte
	b := append(append(append(in[:0], purpose...), 0), strings.ToLower(email)...)
	m.Write(b)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	c.macs.Put(m)
	// 20 characters need the first 12.5 bytes; base32 encodes 5 at a time.
	var out [24]byte
	tokenEncoding.Encode(out[:], sum[:15])
	return string(out[:20])
}

// Envelope returns the SMTP envelope of the recipient's message.
func (c *Composer) Envelope(email string) Envelope {
	env := Envelope{MailFrom: c.returnPath, RcptTo: email,
		MessageID: c.Token("message-id", email) + "@" + c.idDomain}
	if c.spec.Settings.VERP {
		local, domain, _ := strings.Cut(c.returnPath, "@")
		env.MailFrom = local + "+" + c.Token("verp", email) + "@" + domain
	}
	return env
}

// renderHeader renders the template's header section for values.
func (c *Composer) renderHeader(values map[string]string) (textproto.Header, error) {
	var b bytes.Buffer
	if err := c.spec.Template.executeHeader(&b, values); err != nil {
		return textproto.Header{}, err
	}
	b.WriteString("\r\n\r\n")
	br := headerReaders.Get().(*bufio.Reader)
	defer headerReaders.Put(br)
	br.Reset(&b)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return textproto.Header{}, fmt.Errorf("headers: %w", err)
	}
	return h, nil
}

// headerReaders read rendered header sections: a reader's buffer is
// larger than most messages' headers.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// addressHeaders hold address lists, encoded as such.
var addressHeaders = map[string]bool{"From": true, "Reply-To": true, "Sender": true}

// Compose writes the recipient's message to w: CRLF line ends, no line
// over 998 octets, non-ASCII headers as RFC 2047 encoded words, bodies in
// UTF-8 (quoted-printable where needed), DKIM-signed if the spec has a key.
func (c *Composer) Compose(w io.Writer, r Recipient) (Envelope, error) {
	env := c.Envelope(r.Email)
	th, err := c.renderHeader(r.Values)
	if err != nil {
		return env, err
	}
	// Fields are collected in the order they are written.
	fields := make([]field, 0, 16)
	add := func(k, v string) { fields = append(fields, field{k, v}) }
	add("Date", c.dateField())
	toName := ""
	for f := th.Fields(); f.Next(); {
		k, v := f.Key(), f.Value()
		if k == "To" {
			toName = strings.TrimSpace(v)
			continue
		}
		if sf, ok := c.static[k]; ok && sf.raw == v {
			add(k, sf.formatted)
			continue
		}
		formatted, err := formatField(k, v)
		if err != nil {
			return env, err
		}
		add(k, formatted)
	}
	to := &mail.Address{Name: toName, Address: r.Email}
	add("To", to.String()) // as go-message's SetAddressList writes one address
	add("Message-ID", "<"+env.MessageID+">")
	add("MIME-Version", "1.0")
	if lu := c.listUnsubscribe(r.Email); lu != "" {
		add("List-Unsubscribe", lu)
		if c.spec.Settings.UnsubscribeURL != "" {
			add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		}
	}
	if fb := c.spec.Settings.FeedbackID; fb != "" {
		add("Feedback-ID", strings.ReplaceAll(fb, "{campaign}", feedbackToken(c.spec.Campaign)))
	}

	var text bytes.Buffer
	if err := c.spec.Template.body.Execute(&text, r.Values); err != nil {
		return env, fmt.Errorf("body: %w", err)
	}
	var html bytes.Buffer
	if c.spec.Template.html != nil {
		if err := c.spec.Template.html.Execute(&html, r.Values); err != nil {
			return env, fmt.Errorf("html: %w", err)
		}
	}
	// A multipart message's boundary is drawn from the recipient's token:
	// stable, and never in a quoted-printable body, where "=" is always
	// escaped.
	boundary := ""
	if c.spec.Template.html != nil || len(c.spec.Attachments) > 0 {
		boundary = "=_relayctl_" + c.Token("boundary", r.Email)
	}
	top := c.body(text.Bytes(), html.Bytes(), boundary)
	for f := top.header.Fields(); f.Next(); {
		add(f.Key(), f.Value())
	}
	if b, ok := w.(*bytes.Buffer); ok && c.spec.Signer == nil {
		return env, writeMessage(b, fields, top) // straight into the caller's buffer
	}
	var out bytes.Buffer
	if err := writeMessage(&out, fields, top); err != nil {
		return env, err
	}
	if c.spec.Signer != nil {
		return env, c.spec.Signer.sign(w, out.Bytes())
	}
	_, err = w.Write(out.Bytes())
	return env, err
}

// field is a header field, its value formatted.
type field struct{ k, v string }

// formatField formats a template header field's value as go-message's
// mail.Header would: address lists parsed and written back, any other
// text as RFC 2047 encoded words where it needs them.
func formatField(k, v string) (string, error) {
	if !addressHeaders[k] {
		return mime.QEncoding.Encode("utf-8", v), nil // go-message's SetText
	}
	addrs, err := mail.ParseAddressList(v)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not an address list: %v", k, v, err)
	}
	var h mail.Header
	h.SetAddressList(k, addrs)
	return h.Get(k), nil
}

// dateField is the Date header's value now, formatted once a second.
func (c *Composer) dateField() string {
	now := c.now()
	if d := c.date.Load(); d != nil && d.unix == now.Unix() {
		return d.v
	}
	var h mail.Header
	h.SetDate(now)
	d := &dateField{unix: now.Unix(), v: h.Get("Date")}
	c.date.Store(d)
	return d.v
}

// feedbackToken makes a campaign name fit Feedback-ID's colon-separated
// ASCII fields: anything but letters, digits, '.', '_' and '-' becomes '-'.
func feedbackToken(name string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '.' || r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '-'
	}, name)
}

// listUnsubscribe builds the List-Unsubscribe value, "" if not configured.
func (c *Composer) listUnsubscribe(email string) string {
	s := c.spec.Settings
	token := c.Token("unsubscribe", email)
	var parts []string
	if s.UnsubscribeMailto != "" {
		parts = append(parts, "<mailto:"+s.UnsubscribeMailto+"?subject=unsubscribe%20"+token+">")
	}
	if s.UnsubscribeURL != "" {
		u := s.UnsubscribeURL
		if strings.Contains(u, "{token}") {
			u = strings.ReplaceAll(u, "{token}", token)
		} else {
			base, frag, hasFrag := strings.Cut(u, "#")
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			u = base + sep + "token=" + token
			if hasFrag {
				u += "#" + frag // the query goes before the fragment, or it never reaches the server
			}
		}
		parts = append(parts, "<"+u+">")
	}
	return strings.Join(parts, ", ")
}

// entity is a MIME entity: a leaf with a body, or a multipart of parts.
type entity struct {
	header gomessage.Header
	body   []byte
	parts  []entity
}

// leaf makes a single-part entity. (go-message writes fields in reverse
// order of addition: Content-Type comes out first.)
func leaf(contentType, encoding string, body []byte, params map[string]string) entity {
	var h gomessage.Header
	h.Set("Content-Transfer-Encoding", encoding)
	h.SetContentType(contentType, params)
	return entity{header: h, body: body}
}

// textLeaf is the header of a text/plain part, by transfer encoding; made
// once, only ever read.
var textLeaf = map[string]gomessage.Header{
	"7bit":             leaf("text/plain", "7bit", nil, map[string]string{"charset": "utf-8"}).header,
	"quoted-printable": leaf("text/plain", "quoted-printable", nil, map[string]string{"charset": "utf-8"}).header,
}

// body builds the MIME structure: the text alone; text and HTML as
// multipart/alternative; either one inside multipart/mixed with the
// attachments.
func (c *Composer) body(text, html []byte, boundary string) entity {
	text = crlf(text)
	content := entity{header: textLeaf[transferEncoding(text)], body: text}
	if c.spec.Template.html != nil {
		var alt gomessage.Header
		alt.SetContentType("multipart/alternative", map[string]string{"boundary": boundary + "_alt"})
		content = entity{header: alt, parts: []entity{content,
			leaf("text/html", "quoted-printable", crlf(html), map[string]string{"charset": "utf-8"})}}
	}
	top := content
	if len(c.spec.Attachments) > 0 {
		var mixed gomessage.Header
		mixed.SetContentType("multipart/mixed", map[string]string{"boundary": boundary + "_mix"})
		top = entity{header: mixed, parts: []entity{content}}
		for _, a := range c.spec.Attachments {
			var ah mail.AttachmentHeader
			ah.Set("Content-Transfer-Encoding", "base64")
			ah.SetFilename(a.Name)
			// Types arrive with parameters ("text/plain; charset=utf-8"),
			// which SetContentType wants apart.
			mt, params, err := mime.ParseMediaType(a.ContentType)
			if err != nil {
				mt, params = "application/octet-stream", nil
			}
			ah.SetContentType(mt, params)
			top.parts = append(top.parts, entity{header: ah.Header, body: a.Data})
		}
	}
	return top
}

// writeMessage writes the message with go-message's writer; a text-only
// message, most campaigns', it writes as that writer would without
// parsing back the Content-Type it was given.
func writeMessage(out *bytes.Buffer, fields []field, top entity) error {
	if top.parts == nil {
		switch top.header.Get("Content-Transfer-Encoding") {
		case "7bit":
			// go-message wraps lines over 998 octets; transferEncoding
			// chose 7bit because there are none.
			if longestLine(top.body) < 990 {
				if err := writeHeader(out, fields); err != nil {
					return err
				}
				out.Write(top.body)
				return nil
			}
		case "quoted-printable":
			if err := writeHeader(out, fields); err != nil {
				return err
			}
			qp := quotedprintable.NewWriter(out)
			qp.Write(top.body)
			return qp.Close()
		}
	}
	// go-message writes a header's fields in reverse order of addition.
	var h gomessage.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i].k, fields[i].v)
	}
	mw, err := gomessage.CreateWriter(out, h)
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return writeEntity(mw, top)
}

// writeHeader writes fields and the blank line after them exactly as
// go-message's textproto.WriteHeader does: names in canonical MIME case,
// and a field that fits in 76 octets as "Name: value" on one line; a
// longer one is folded by go-message itself.
func writeHeader(out *bytes.Buffer, fields []field) error {
	for _, f := range fields {
		k := canonicalKey(f.k)
		if f.v != "" && len(k)+2+len(f.v) <= 76 && validKey(k) && !strings.ContainsAny(f.v, "\r\n") {
			out.WriteString(k)
			out.WriteString(": ")
			out.WriteString(f.v)
			out.WriteString("\r\n")
			continue
		}
		var h textproto.Header
		h.Add(k, f.v)
		if err := textproto.WriteHeader(out, h); err != nil {
			return fmt.Errorf("compose: %w", err)
		}
		out.Truncate(out.Len() - 2) // WriteHeader's blank line
	}
	out.WriteString("\r\n")
	return nil
}

// canonicalKeys are the names relayctl writes that are not in canonical
// MIME case as written: go-message's Add canonicalises them.
var canonicalKeys = map[string]string{"Message-ID": "Message-Id", "MIME-Version": "Mime-Version", "Feedback-ID": "Feedback-Id"}

func canonicalKey(k string) string {
	if c, ok := canonicalKeys[k]; ok {
		return c
	}
	return nettextproto.CanonicalMIMEHeaderKey(k)
}

// validKey is go-message's test of a field name: printable US-ASCII but ':'.
func validKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if ch := k[i]; !(ch >= '!' && ch < ':' || ch > ':' && ch <= '~') {
			return false
		}
	}
	return true
}

func longestLine(b []byte) int {
	longest := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		longest = max(longest, i)
		b = b[min(i+1, len(b)):]
	}
	return longest
}

func writeEntity(mw *gomessage.Writer, e entity) error {
	if e.parts == nil {
		if _, err := mw.Write(e.body); err != nil {
			return fmt.Errorf("compose: %w", err)
		}
		return mw.Close()
	}
	for _, p := range e.parts {
		pw, err := mw.CreatePart(p.header)
		if err != nil {
			return fmt.Errorf("compose: %w", err)
		}
		if err := writeEntity(pw, p); err != nil {
			return err
		}
	}
	return mw.Close()
}

// crlf turns every line end into CRLF: lone LF and lone CR alike.
func crlf(b []byte) []byte {
	if bytes.IndexByte(b, '\r') >= 0 {
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// transferEncoding is 7bit for ASCII text whose lines fit in 998 octets
// (RFC 5322 §2.1.1) and have no NUL; quoted-printable otherwise.
func transferEncoding(b []byte) string {
	line := 0
	for _, c := range b {
		switch {
		case c == '\n':
			line = 0
			continue
		case c == 0 || c >= 0x80:
			return "quoted-printable"
		}
		if line++; line > 998 {
			return "quoted-printable"
		}
	}
	return "7bit"
}
