package domaincheck

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/relayctl/relayctl/listclean"
)

// bounce checks that the return path's domain accepts mail: bounces and
// receivers' callbacks go there, and many receivers refuse mail whose
// return path cannot take a reply.
func (c *checker) bounce(ctx context.Context) Check {
	b := c.o.BounceDomain
	ch := Check{Name: "bounce-mx"}
	res := c.o.MailHosts.CheckDomain(ctx, b)
	fix := fmt.Sprintf("%s. MX 10 YOUR_MAIL_HOST.", b)
	switch res.Verdict {
	case listclean.DomainOK:
		ch.Result = Pass
		if len(res.MX) == 0 {
			ch.Detail = fmt.Sprintf("%s accepts mail: %s", b, res.Detail)
			return ch
		}
		hosts := make([]string, len(res.MX))
		for i, h := range res.MX {
			hosts[i] = h + " (" + strconv.Itoa(int(res.Prefs[i])) + ")"
		}
		ch.Detail = fmt.Sprintf("%s accepts mail: MX %s", b, strings.Join(hosts, ", "))
	case listclean.DomainNullMX:
		ch.Result, ch.Fix = Fail, fix
		ch.Detail = fmt.Sprintf("%s has a null MX (MX 0 .): it accepts no mail, so bounces are lost and receivers may refuse mail from it; replace the null MX with a host that takes bounces", b)
	case listclean.DomainNoDomain:
		ch.Result, ch.Fix = Fail, fix
		ch.Detail = fmt.Sprintf("%s does not exist (NXDOMAIN): receivers refuse mail from a return path they cannot reply to; publish an MX for it", b)
	case listclean.DomainNoMailHost:
		ch.Result, ch.Fix = Fail, fix
		ch.Detail = fmt.Sprintf("%s has no MX, A or AAAA record, so it accepts no bounces; publish an MX for it", b)
	default:
		ch.Result = Fail
		ch.Detail = fmt.Sprintf("could not check %s: %s", b, res.Detail)
	}
	return ch
}
