// Command relayctl runs bulk mailings the way a careful mail administrator
// would: clean lists, provider-aware plans, shaped and resumable delivery.
package main

import "github.com/relayctl/relayctl/cmd"

func main() { cmd.Execute() }
