/** The command line's usage text: one place, printed by --help and on every usage error. */
export const USAGE = `Usage: ssf-broker [command] [options]

Server:
  serve                                   Run the broker (the default with no command). Configured by
                                          SSF_BROKER_* environment variables (see README).

Client commands (talk to a running broker):
  emit --type T --subject S [--event JSON] [--txn X]
                                          Post one event; S is subject JSON or email:ADDRESS. Prints {"txn": ...}.
  verify --issuer URL --audience A [--allow-insecure] SET
                                          Verify a SET from any transmitter (exit 0 valid, 1 invalid).
  streams list [--status S] [--client ID] [--limit N] [--cursor C]
  streams status ID enabled|paused|disabled [--reason TEXT]
  clients create --name N --role R [--role R2 ...]
  clients list
  keys list
  keys rotate [--immediate]              Publish new keys; they sign after the publish-ahead time (or at once).
  dead-letters list [--stream ID] [--limit N]
  dead-letters redrive ID... | --all [--stream ID]
  audit verify
  audit export [--txn X]                  JSON Lines on stdout.
  tail [--stream ID] [--count N]          Follow delivery outcomes live (Ctrl-C to stop).

Options:
  --url URL        Broker base URL (or SSF_BROKER_URL; default http://localhost:8080).
  --token TOKEN    Bearer token (or SSF_BROKER_TOKEN): the admin token, or an emitter token for emit.
  --json           Machine-readable JSON output instead of tables.
  -h, --help       Show this help.
  -v, --version    Show the version.

Exit codes: 0 success, 1 failure (request refused, invalid SET, broken audit chain), 2 usage error.
`
