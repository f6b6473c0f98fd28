/** Messages between scenario 6 and its resource-server process (resource-server-proc.ts). */

export interface ResourceServerStart {
  /** file: URL of the receiver SDK's built entry (dist/receiver/index.js). */
  sdkUrl: string
  /** The broker's issuer, as in its metadata. */
  issuer: string
  /** The resource server's receiver client at the broker. */
  audience: string
  receiverToken: string
  eventsRequested: string[]
  /** The bench IdP whose access tokens the middleware's verifyToken accepts (ES256 public JWK). */
  idp: { issuer: string; audience: string; jwk: Record<string, unknown> }
}

export interface ResourceServerStats {
  /** SETs the push handler accepted (verified and applied). */
  pushes: number
  pushErrors: number
  pushErrorSample: string[]
  /** Revocations recorded by the index. */
  revocations: number
  /** Requests refused at the start (phase `refused`), and answered 401 while being handled (`request`/`stream`). */
  refused: number
  refusedInFlight: number
  /** Access tokens the verifier refused (should stay 0). */
  tokenErrors: number
}

export type ResourceServerCommand =
  | { cmd: 'start'; options: ResourceServerStart }
  | { cmd: 'addSubject'; subject: Record<string, unknown> }
  | { cmd: 'applied'; txn: string }
  | { cmd: 'stats' }
  | { cmd: 'now' }
  | { cmd: 'stop' }
