/**
 * The published JWKS (RFC 7517, SSF §7.1 `jwks_uri`), held in memory and refreshed in the background, so
 * `/jwks.json` is answered without waiting on Redis and keeps being answered while Redis is away. The
 * refresh runs every second (keys rotated by another broker process appear within that time, and keys
 * whose publication window has passed drop out), and at once when this process rotates keys.
 *
 * After REFRESH_GIVE_UP consecutive failures (its Redis connection closed for good, say) the timer stops;
 * the next request starts it again.
 */
import type { JWK } from 'jose'
import type { KeyStore } from '../keys/keystore.js'

const REFRESH_MS = 1000
const REFRESH_GIVE_UP = 60

export class JwksDocument {
  #document: { keys: JWK[] } | undefined
  #timer: NodeJS.Timeout | undefined
  #failures = 0
  #refreshing: Promise<void> | undefined

  #started = false

  constructor(private readonly keys: KeyStore) {}

  /** Loads the document and starts refreshing it (also done by the first request). */
  start(): void {
    if (this.#started) return
    this.#started = true
    this.keys.onChange(() => this.#refreshQuietly())
    this.#refreshQuietly()
    this.#start()
  }

  /** The current document; waits (on Redis) only until the first load has succeeded. */
  async current(): Promise<{ keys: JWK[] }> {
    this.start()
    if (this.#timer === undefined) this.#start()
    if (this.#document === undefined) await this.#refresh()
    return this.#document!
  }

  #start(): void {
    this.#failures = 0
    this.#timer = setInterval(() => this.#refreshQuietly(), REFRESH_MS)
    this.#timer.unref()
  }

  // A failed background refresh keeps the document it had; the next tick tries again.
  #refreshQuietly(): void {
    this.#refresh().catch(() => {})
  }

  #refresh(): Promise<void> {
    this.#refreshing ??= this.keys
      .publicJwks()
      .then(
        (document) => {
          this.#document = document
          this.#failures = 0
        },
        (err: unknown) => {
          if (++this.#failures >= REFRESH_GIVE_UP && this.#timer !== undefined) {
            clearInterval(this.#timer)
            this.#timer = undefined
          }
          if (this.#document === undefined) throw err
        },
      )
      .finally(() => {
        this.#refreshing = undefined
      })
    return this.#refreshing
  }
}
