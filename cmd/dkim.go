package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/message"
)

func newDKIMCmd(io *IOStreams) *cobra.Command {
	c := &cobra.Command{Use: "dkim", Short: "DKIM keys for signing campaigns"}
	var domain, selector, kind, out string
	keygen := &cobra.Command{
		Use:   "keygen --domain DOMAIN --selector SELECTOR",
		Short: "Make a DKIM key pair and print the DNS record to publish",
		Long: `keygen writes a new private key (PKCS #8 PEM, readable by its owner only)
and prints the TXT record to publish at SELECTOR._domainkey.DOMAIN and the
relayctl.yaml lines that sign with it. RSA keys are 2048 bits; Ed25519
(RFC 8463) is smaller, but not every receiver verifies it yet, so sign
with RSA unless you also publish an RSA selector.`,
		Example: `  relayctl dkim keygen --domain example.org --selector s2026
  relayctl dkim keygen --domain example.org --selector ed2026 --type ed25519 --out /etc/relayctl/ed2026.pem`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if domain == "" || selector == "" {
				return usagef("dkim keygen needs --domain and --selector")
			}
			if out == "" {
				out = selector + "._domainkey." + domain + ".pem"
			}
			key, txt, err := message.GenerateKey(kind)
			if err != nil {
				return usageError{err}
			}
			// O_EXCL: never overwrite a key that may already be published.
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return usagef("--out %s: %v", out, err)
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			if err := f.Close(); err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintf(io.Out, "Private key: %s\n\nPublish this record:\n\n%s\n\nThen sign with it from relayctl.yaml:\n\ndkim:\n  domain: %s\n  selector: %s\n  key: %s\n",
				out, message.TXTRecord(selector, domain, txt), domain, selector, out)
			return nil
		}),
	}
	f := keygen.Flags()
	f.StringVar(&domain, "domain", "", "signing domain (d=), normally the From address's domain")
	f.StringVar(&selector, "selector", "", "selector (s=), e.g. s2026")
	f.StringVar(&kind, "type", "rsa", "key type: rsa (2048 bits) or ed25519")
	f.StringVar(&out, "out", "", "private key file (default SELECTOR._domainkey.DOMAIN.pem); never overwritten")
	c.AddCommand(keygen)
	return c
}
