/** Identifier and secret generation. IDs use only RFC 3986 unreserved characters (SSF §8.1.1). */
import { createHash, randomBytes } from 'node:crypto'

/** Never starting with `-`, so that an id is not taken for an option on a command line. */
export function randomId(bytes = 16): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/** `count` ids as randomId(bytes) makes them, from one draw of random bytes (a large batch's event ids). */
export function randomIds(count: number, bytes = 16): string[] {
  const pool = randomBytes(count * bytes)
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const id = pool.subarray(i * bytes, (i + 1) * bytes).toString('base64url')
    ids.push(id.startsWith('-') ? randomId(bytes) : id)
  }
  return ids
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

/** A SET `jti` that is stable for one event on one stream, so a re-run after a crash repeats it exactly. */
export function deriveJti(eventId: string, streamId: string): string {
  return createHash('sha256').update(`${eventId}\u0000${streamId}`).digest('base64url').slice(0, 32)
}
