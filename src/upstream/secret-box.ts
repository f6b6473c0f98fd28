/**
 * Secrets the broker must keep to talk to an upstream (its bearer token, an OAuth client secret) are
 * sealed before they reach Redis: AES-256-GCM under a key derived from SSF_BROKER_SECRETS_KEY. Without
 * that variable they are stored unsealed (marked so), and are still never returned by the API nor logged.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

export class SecretBox {
  readonly #key: Buffer | undefined

  constructor(secret: string | undefined) {
    this.#key =
      secret === undefined
        ? undefined
        : createHash('sha256').update(`ssf-broker upstream secrets\u0000${secret}`).digest()
  }

  get sealing(): boolean {
    return this.#key !== undefined
  }

  seal(plain: string): string {
    if (!this.#key) return `plain:${Buffer.from(plain, 'utf8').toString('base64url')}`
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`
  }

  open(sealed: string): string {
    if (sealed.startsWith('plain:'))
      return Buffer.from(sealed.slice(6), 'base64url').toString('utf8')
    if (!sealed.startsWith('v1:')) throw new Error('unknown sealed secret format')
    if (!this.#key)
      throw new Error(
        'this secret is sealed; set SSF_BROKER_SECRETS_KEY to the key it was sealed with',
      )
    const raw = Buffer.from(sealed.slice(3), 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  }
}
